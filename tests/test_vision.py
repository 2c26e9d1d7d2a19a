"""verifier.vision on synthetic images: diffs, thresholds, masks, template matching."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from verifier.vision import Image, compare, find, mark_match, read_image, write_image

WHITE = (255, 255, 255)


def blank(width: int = 320, height: int = 120, colour: tuple[int, int, int] = WHITE) -> Image:
    image = np.empty((height, width, 3), np.uint8)
    image[:] = colour
    return image


def text(width: int = 520, height: int = 80) -> Image:
    """Anti-aliased dark text on white."""
    image = blank(width, height)
    cv2.putText(
        image,
        "Anti-aliased 0123 Wg",
        (10, 55),
        cv2.FONT_HERSHEY_SIMPLEX,
        1.4,
        (25, 25, 25),
        2,
        cv2.LINE_AA,
    )
    return image


def ui(seed: int = 0, width: int = 1280, height: int = 800) -> Image:
    """A busy screen: coloured buttons with labels and lines of text."""
    rng = np.random.default_rng(seed)
    image = blank(width, height, (246, 248, 250))
    for i in range(120):
        x, y = int(rng.integers(0, width - 100)), int(rng.integers(0, height - 30))
        colour = tuple(int(c) for c in rng.integers(0, 200, 3))
        cv2.rectangle(image, (x, y), (x + 90, y + 24), colour, -1)
        cv2.putText(
            image,
            f"Item {i}",
            (x + 4, y + 17),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            WHITE,
            1,
            cv2.LINE_AA,
        )
    for _ in range(40):
        x, y = int(rng.integers(0, width - 380)), int(rng.integers(12, height))
        cv2.putText(
            image,
            "The quick brown fox jumps",
            (x, y),
            cv2.FONT_HERSHEY_DUPLEX,
            0.6,
            (30, 30, 30),
            1,
            cv2.LINE_AA,
        )
    return image


def timed(fn: Callable[[], object], rounds: int = 20) -> tuple[float, float]:
    """(min, median) milliseconds of ``fn``."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return times[0], times[len(times) // 2]


# -- compare ----------------------------------------------------------------------------------


def test_identical_images_pass() -> None:
    image = ui()
    result = compare(image, image.copy())
    assert result.passed and result.diff_pixels == 0 and result.diff_ratio == 0
    assert result.compared_pixels == 1280 * 800
    assert result.message == "no pixel differs beyond threshold 0.1"


def test_antialiasing_noise_passes_by_threshold() -> None:
    base = text()
    edge = (base[..., 0] > 40) & (base[..., 0] < 215)
    assert edge.sum() > 500
    rng = np.random.default_rng(1)
    noisy = base.astype(int)
    noisy[edge] += rng.integers(-20, 21, size=(int(edge.sum()), 3))
    noisy = np.clip(noisy, 0, 255).astype(np.uint8)
    assert not np.array_equal(noisy, base)
    # Under the default threshold even without anti-aliasing detection.
    assert compare(noisy, base, max_diff_pixels=0, ignore_antialiasing=False).diff_pixels == 0
    assert compare(noisy, base, threshold=0.02, ignore_antialiasing=False).diff_pixels > 100


def test_stronger_antialiasing_changes_pass_by_detection() -> None:
    base = text()
    edge = (base[..., 0] > 40) & (base[..., 0] < 215)
    rng = np.random.default_rng(2)
    changed = base.astype(int)
    changed[edge] += rng.choice([-60, 60], size=(int(edge.sum()), 1))
    changed = np.clip(changed, 0, 255).astype(np.uint8)
    assert compare(changed, base).diff_pixels == 0
    assert compare(changed, base, ignore_antialiasing=False).diff_pixels == int(edge.sum())


@pytest.mark.parametrize("grey", [0, 90, 200])
def test_a_one_pixel_line_fails_when_no_pixel_may_differ(grey: int) -> None:
    base = text()
    line = base.copy()
    line[70, 20:420] = grey  # under the text, one pixel high, 400 long
    result = compare(line, base, max_diff_pixels=0)
    assert not result.passed and result.diff_pixels == 400
    assert result.message.startswith("400 pixels differ (0.962% of 41,600) beyond threshold 0.1")
    assert result.message.endswith("more than the 0 allowed")
    assert compare(line, base, max_diff_pixels=400).passed
    vertical = base.copy()
    vertical[5:75, 500] = grey
    assert compare(vertical, base).diff_pixels == 70


def test_a_line_moved_by_one_pixel_fails() -> None:
    before, after = blank(), blank()
    before[60, 10:300] = (40, 40, 40)
    after[61, 10:300] = (40, 40, 40)
    assert compare(after, before).diff_pixels == 2 * 290


def test_threshold_and_colour_distance() -> None:
    base = blank(100, 100, (120, 120, 120))
    lighter = blank(100, 100, (140, 140, 140))  # 20 grey levels apart
    assert compare(lighter, base).passed
    assert compare(lighter, base, threshold=0.05).diff_pixels == 100 * 100
    one = base.copy()
    one[50, 50] = (121, 120, 120)
    assert compare(one, base, threshold=0).diff_pixels == 1
    # Perceptual: a blue step counts for less than the same green step.
    blue, green = base.copy(), base.copy()
    blue[..., 2] += 40
    green[..., 1] += 40
    assert compare(blue, base, threshold=0.1).passed
    assert not compare(green, base, threshold=0.1).passed
    with pytest.raises(ValueError, match="threshold must be between 0 and 1"):
        compare(base, base, threshold=1.5)


def test_diff_bounds_take_the_stricter() -> None:
    base = blank(100, 100)
    changed = base.copy()
    changed[:10, :10] = 0  # 100 of 10,000 pixels: 1 %
    assert not compare(changed, base).passed
    assert compare(changed, base, max_diff_ratio=0.01).passed
    assert not compare(changed, base, max_diff_ratio=0.0099).passed
    assert compare(changed, base, max_diff_pixels=100, max_diff_ratio=0.5).passed
    assert not compare(changed, base, max_diff_pixels=99, max_diff_ratio=0.5).passed
    assert not compare(changed, base, max_diff_pixels=1000, max_diff_ratio=0.005).passed
    assert compare(changed, base, max_diff_ratio=0.01).allowed_pixels == 100


def test_masks_leave_areas_out() -> None:
    base = blank(400, 300)
    changed = base.copy()
    changed[100:140, 50:150] = (255, 0, 0)
    assert compare(changed, base).diff_pixels == 4000
    masked = compare(changed, base, masks=[(40, 90, 200, 60)])
    assert masked.passed and masked.diff_pixels == 0
    assert masked.compared_pixels == 400 * 300 - 200 * 60
    half = compare(changed, base, masks=[(50, 100, 50, 40)])
    assert half.diff_pixels == 2000
    # Overlapping masks count once; a mask partly off the image is cut to it.
    off = compare(changed, base, masks=[(-10, -10, 30, 30), (0, 0, 20, 20), (390, 290, 50, 50)])
    assert off.compared_pixels == 400 * 300 - 400 - 100
    assert off.masks == ((0, 0, 20, 20), (0, 0, 20, 20), (390, 290, 10, 10))
    assert compare(changed, base, masks=[(1000, 1000, 5, 5)]).masks == ()


def test_sizes_must_match() -> None:
    with pytest.raises(ValueError, match="sizes differ: actual 320x120, expected 300x120"):
        compare(blank(320, 120), blank(300, 120))
    with pytest.raises(ValueError, match="expected an HxWx3 uint8 RGB image"):
        compare(blank()[..., 0], blank())


def test_diff_image_highlights_the_change() -> None:
    base = blank(400, 300, (200, 220, 240))
    cv2.putText(base, "Total: 42", (10, 120), cv2.FONT_HERSHEY_SIMPLEX, 1, (20, 20, 20), 2)
    changed = base.copy()
    changed[200, 100:160] = (0, 0, 0)
    changed[20:40, 300:380] = (0, 200, 0)
    result = compare(changed, base, masks=[(290, 10, 100, 40)])
    assert result.diff_pixels == 60
    diff = result.diff_image()
    assert diff.shape == base.shape and diff.dtype == np.uint8
    assert tuple(diff[200, 130]) == (230, 20, 40)  # red on the changed line
    assert tuple(diff[193, 130]) == (230, 20, 40)  # the box drawn around it
    masked = diff[25, 310].astype(int)
    assert masked[2] > masked[0] + 60  # tinted blue
    for calm in (diff[100, 20], diff[250, 250]):  # unchanged: faded grey, lighter
        assert calm[0] == calm[1] == calm[2] >= 178


def test_big_differences_are_counted() -> None:
    base = ui(seed=5)
    inverted = 255 - base
    shifted = np.roll(base, 1, axis=1)
    assert compare(inverted, base).diff_pixels > 900_000
    assert compare(shifted, base).diff_pixels > 1_000


# -- find -------------------------------------------------------------------------------------


def test_find_an_exact_cut() -> None:
    screen = ui(seed=7)
    template = screen[300:360, 500:700].copy()
    match = find(screen, template)
    assert match.found and match.score > 0.999
    assert match.box == (500, 300, 200, 60) and match.centre == (600, 330)
    assert match.scale == 1.0 and match.to_json()["box"] == [500, 300, 200, 60]
    best, median = timed(lambda: find(screen, template))
    print(f"\nfind 200x60 in 1280x800: min {best:.2f} ms, median {median:.2f} ms")


def button(colour: tuple[int, int, int], label: str = "Launch") -> Image:
    image = blank(220, 64, (250, 250, 250))
    cv2.rectangle(image, (2, 2), (217, 61), colour, -1)
    cv2.putText(image, label, (50, 42), cv2.FONT_HERSHEY_SIMPLEX, 0.9, WHITE, 2, cv2.LINE_AA)
    return image


def test_colour_tells_look_alikes_apart() -> None:
    screen = blank(900, 400, (250, 250, 250))
    screen[50:114, 60:280] = button((140, 149, 159))  # greyed out, first in reading order
    screen[250:314, 600:820] = button((31, 111, 235))
    match = find(screen, button((31, 111, 235)))
    assert match.found and match.box == (600, 250, 220, 64)
    grey_only = screen.copy()
    grey_only[250:314, 600:820] = (250, 250, 250)
    look_alike = find(grey_only, button((31, 111, 235)))
    assert not look_alike.found and look_alike.score < 0.8
    assert look_alike.box[:2] == (60, 50)


def test_region_restricts_the_search() -> None:
    screen = blank(900, 400, (250, 250, 250))
    screen[50:114, 60:280] = button((31, 111, 235))
    screen[250:314, 600:820] = button((31, 111, 235))
    template = button((31, 111, 235))
    assert find(screen, template, region=(500, 0, 400, 400)).box == (600, 250, 220, 64)
    assert find(screen, template, region=(0, 0, 450, 200)).box == (60, 50, 220, 64)
    with pytest.raises(ValueError, match=r"region \(1000, 0, 10, 10\) is outside the 900x400"):
        find(screen, template, region=(1000, 0, 10, 10))
    with pytest.raises(ValueError, match="the 220x64 image is larger than the 100x400 region"):
        find(screen, template, region=(0, 0, 100, 400))


@pytest.mark.parametrize("scale", [0.8, 0.85, 0.9, 1.1, 1.2, 1.25])
def test_templates_cut_at_another_scale_are_found(scale: float) -> None:
    screen = ui(seed=8)
    template = screen[400:460, 300:500].copy()
    method = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    scaled = np.asarray(
        cv2.resize(template, None, fx=scale, fy=scale, interpolation=method), np.uint8
    )
    match = find(screen, scaled)
    assert match.found, match
    assert match.scale == pytest.approx(1 / scale, rel=0.04)
    cx, cy = match.centre
    assert abs(cx - 400) <= 3 and abs(cy - 430) <= 3
    assert find(screen, scaled, scales=()).score < match.score  # the scales helped


def test_an_absent_picture_is_not_found() -> None:
    screen = ui(seed=9)
    absent = blank(200, 60, (90, 30, 120))
    cv2.putText(absent, "Nowhere", (10, 42), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (250, 250, 0), 2)
    match = find(screen, absent)
    assert not match.found and match.score < 0.5
    best, median = timed(lambda: find(screen, absent), rounds=5)
    print(f"\nfind, absent (every scale tried): min {best:.1f} ms, median {median:.1f} ms")
    flat_screen = blank(1280, 800, (128, 128, 128))
    assert find(flat_screen, button((31, 111, 235))).score <= 0.0 + 1e-6


def test_unusable_templates() -> None:
    with pytest.raises(ValueError, match="a single flat colour"):
        find(ui(), blank(50, 50, (10, 20, 30)))
    with pytest.raises(ValueError, match="the 320x120 image is larger than the 100x100 screen"):
        find(blank(100, 100), text(320, 120))


def test_small_templates_are_matched_at_full_size() -> None:
    screen = ui(seed=10)
    screen[200:212, 640:652] = (250, 250, 250)
    cv2.circle(screen, (645, 205), 4, (200, 30, 30), -1)
    screen[200:212, 651] = (20, 20, 20)
    icon = screen[200:212, 640:652].copy()  # 12x12: no pyramid level to spare
    match = find(screen, icon)
    assert match.found and match.box == (640, 200, 12, 12)


def test_mark_match_draws_on_a_copy() -> None:
    screen = ui(seed=11, width=400, height=300)
    match = find(screen, screen[100:160, 100:300].copy())
    marked = mark_match(screen, match)
    assert marked is not screen and not np.array_equal(marked, screen)
    assert tuple(marked[97, 150]) == (20, 170, 60)  # green: found


# -- files ------------------------------------------------------------------------------------


def test_images_round_trip_through_png(tmp_path: Path) -> None:
    image = ui(seed=12, width=400, height=300)
    path = write_image(tmp_path, "deep/x.png", image)
    assert path.read_bytes().startswith(b"\x89PNG")
    assert np.array_equal(read_image(path), image)
    assert list(tmp_path.joinpath("deep").iterdir()) == [path]  # no temporary left behind
    (tmp_path / "junk.png").write_bytes(b"not a picture")
    with pytest.raises(ValueError, match="is not a readable image"):
        read_image(tmp_path / "junk.png")


def test_a_baseline_is_never_written_through_a_link_the_app_made(tmp_path: Path) -> None:
    """The app may write in its checkout, where the recipe and its baselines live: a
    ``<stem>.baselines`` link it plants must not send a new baseline elsewhere."""
    import errno

    checkout, elsewhere = tmp_path / "checkout", tmp_path / "elsewhere"
    checkout.mkdir()
    elsewhere.mkdir()
    image = np.zeros((4, 6, 3), dtype=np.uint8)
    (checkout / "shop.baselines").symlink_to(elsewhere)
    with pytest.raises(OSError) as caught:
        write_image(checkout, "shop.baselines/home.png", image)
    assert caught.value.errno == errno.ELOOP and not list(elsewhere.iterdir())
    (checkout / "shop.baselines").unlink()
    (checkout / "shop.baselines").mkdir()
    (checkout / "shop.baselines" / "home.png").symlink_to(elsewhere / "home.png")
    written = write_image(checkout, "shop.baselines/home.png", image)  # link replaced
    assert not written.is_symlink() and not list(elsewhere.iterdir())
    assert read_image(written).shape == (4, 6, 3)
