"""Visual steps end to end through the CLI: real Xvfb, real Chromium, real pictures.

Baselines (expect_screenshot), picture targets on a canvas page (click/double_click/
wait_for with image:, expect_image, expect_no_image), and the page health checks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from verifier.cli import main
from verifier.errors import RecipeError
from verifier.evidence import read_manifest
from verifier.recipe import parse_recipe
from verifier.vision import read_image, write_image

pytestmark = pytest.mark.usefixtures("no_leaks")

LAUNCH_BLUE = (0x1F, 0x6F, 0xEB)  # the canvas page's "Launch" button


class Runner:
    """Writes one recipe file (so its baselines folder stays the same) and runs it."""

    def __init__(
        self,
        site_url: str,
        write_recipe: Callable[..., Path],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        self.site_url = site_url
        self.write_recipe = write_recipe
        self.out = tmp_path / "out"
        self.capsys = capsys
        self.path = tmp_path / "visual.yaml"

    @property
    def baselines(self) -> Path:
        return self.path.parent / "visual.baselines"

    def __call__(self, steps: list[Any], *args: str) -> tuple[int, dict[str, Any], str]:
        recipe = {"name": "visual checks", "url": self.site_url, "video": False, "steps": steps}
        self.write_recipe(recipe, name=self.path.name)
        code = main(["run", str(self.path), "--out", str(self.out), "--json", *args])
        captured = self.capsys.readouterr()
        (line,) = [json.loads(x) for x in captured.out.splitlines() if x.startswith("{")]
        manifest = read_manifest(Path(line["bundle"])) if line["bundle"] else {}
        return code, manifest, captured.err

    def bundle_of(self, manifest: dict[str, Any]) -> Path:
        return self.out / str(manifest["run_id"])


@pytest.fixture
def run(
    site_url: str,
    write_recipe: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Runner:
    return Runner(site_url, write_recipe, tmp_path, capsys)


def attachments(step: dict[str, Any]) -> dict[str, str]:
    return {a["name"]: a["path"] for a in step.get("attachments", [])}


# -- expect_screenshot ------------------------------------------------------------------------


def test_baseline_lifecycle(run: Runner) -> None:
    home = [{"goto": "/visual.html"}, {"expect_screenshot": "home"}]
    code, manifest, err = run(home)
    assert code == 1
    baseline = run.baselines / "home.png"
    assert f"there was no baseline; wrote '{baseline}' from this run" in err
    step = manifest["steps"][1]
    assert step["status"] == "failed"
    assert step["details"]["baseline"] == "visual.baselines/home.png"
    width, height = step["details"]["size"]
    assert read_image(baseline).shape == (height, width, 3)
    assert width == 1280 and 600 < height < 800  # the page viewport, not the whole screen
    assert set(attachments(step)) == {"actual"}

    code, manifest, _ = run(home, "--update-baselines")
    assert code == 0
    assert "baseline_written" not in manifest["steps"][1]["details"]  # it still matched

    code, manifest, _ = run(home)
    assert code == 0 and manifest["steps"][1]["details"]["diff_pixels"] == 0

    changed = [{"goto": "/visual.html"}, {"click": "#add"}, {"expect_screenshot": "home"}]
    code, manifest, err = run(changed)
    assert code == 1
    assert re.search(r"expect_screenshot 'home': [\d,]+ pixels differ \([\d.]+% of", err)
    assert "beyond threshold 0.1, more than the 0 allowed; see the diff image" in err
    step = manifest["steps"][2]
    details = step["details"]
    assert details["diff_pixels"] > 100 and 0 < details["diff_ratio"] < 0.05
    assert details["threshold"] == 0.1 and details["baseline"] == "visual.baselines/home.png"
    bundle = run.bundle_of(manifest)
    files = attachments(step)
    assert list(files) == ["expected", "actual", "diff"]
    listed = {a["path"] for a in manifest["artifacts"]}
    for rel in files.values():
        assert (bundle / rel).is_file() and rel in listed
    assert np.array_equal(read_image(bundle / files["expected"]), read_image(baseline))
    diff = read_image(bundle / files["diff"])
    assert np.all(diff == (230, 20, 40), axis=2).sum() >= details["diff_pixels"]
    report = (bundle / "report.html").read_text(encoding="utf-8")
    # In the failure's section, and in the failed step's pane of the viewer.
    assert report.count("<figure><figcaption>") == 6 and 'class="sbs"' in report
    summary = (bundle / "summary.md").read_text(encoding="utf-8")
    assert "| Expected | Actual | Diff |" in summary
    assert f"![Diff]({files['diff']})" in summary

    code, manifest, _ = run(changed, "--update-baselines")
    assert code == 0 and manifest["steps"][2]["details"]["baseline_written"] == "changed"
    code, manifest, _ = run(changed)
    assert code == 0 and manifest["steps"][2]["details"]["diff_pixels"] == 0


def test_a_baseline_of_another_size_fails_clearly(run: Runner) -> None:
    write_image(
        run.baselines.parent,
        f"{run.baselines.name}/home.png",
        np.full((400, 640, 3), 200, np.uint8),
    )
    code, manifest, err = run([{"goto": "/visual.html"}, {"expect_screenshot": "home.png"}])
    assert code == 1
    width, height = manifest["steps"][1]["details"]["size"]
    assert (
        f"expect_screenshot 'home': the baseline is 640x400 but the page viewport is "
        f"{width}x{height} now; if the new size is right, run with --update-baselines"
    ) in err
    assert set(attachments(manifest["steps"][1])) == {"expected", "actual"}


def test_thresholds_bounds_and_masks_on_a_real_page(run: Runner) -> None:
    code, _, _ = run(
        [{"goto": "/visual.html"}, {"expect_screenshot": "home"}], "--update-baselines"
    )
    assert code == 0
    line_mask = {"x": 0, "y": 290, "width": 700, "height": 20}  # the line sits at y 300
    steps = [
        # Text drawn at 94 % opacity: every glyph changes a little, under the threshold.
        {"goto": "/visual.html?soft"},
        {"expect_screenshot": "home"},
        {"expect_screenshot": {"name": "home", "threshold": 0, "max_diff_ratio": 0.5}},
        # The same text 0.3 px to the right: anti-aliasing is forgiven, glyph cores not.
        {"goto": "/visual.html?nudge"},
        {"expect_screenshot": {"name": "home", "max_diff_ratio": 0.002}},
        # A line one pixel high and 600 long.
        {"goto": "/visual.html?line"},
        {"expect_screenshot": {"name": "home", "max_diff_pixels": 600}},
        {"expect_screenshot": {"name": "home", "mask": [line_mask]}},
        {"expect_screenshot": "home"},
    ]
    code, manifest, err = run(steps)
    assert code == 1
    found = [s.get("details", {}) for s in manifest["steps"]]
    assert found[1]["diff_pixels"] == 0
    assert found[2]["diff_pixels"] > 50  # it did change
    assert 0 < found[4]["diff_pixels"] <= found[4]["allowed_pixels"]
    assert found[6]["diff_pixels"] == 600
    assert found[7]["diff_pixels"] == 0
    assert found[7]["compared_pixels"] == found[6]["compared_pixels"] - 700 * 20
    assert manifest["steps"][8]["status"] == "failed"
    assert "expect_screenshot 'home': 600 pixels differ" in err


def test_element_boxes_and_moving_parts_masked(run: Runner) -> None:
    steps = [
        {"goto": "/visual.html?clock"},
        {"expect_screenshot": {"name": "card", "selector": ".card"}},
        {"expect_screenshot": {"name": "clocked", "mask": ["#clock"], "timeout": 5}},
    ]
    code, manifest, _ = run(steps, "--update-baselines")
    assert code == 0, manifest["steps"]
    card = read_image(run.baselines / "card.png")
    assert list(card.shape[1::-1]) == manifest["steps"][1]["details"]["size"]
    assert card.shape[:2] == (178, 454)  # the card's box: 420 + 2 * 16 padding + 2 * 1 border
    clocked = read_image(run.baselines / "clocked.png")
    assert np.all(clocked == (255, 0, 255), axis=2).sum() > 1000  # the clock, painted out
    code, manifest, _ = run(steps)
    assert code == 0, manifest["steps"]
    code, manifest, err = run(
        [{"goto": "/visual.html?clock"}, {"expect_screenshot": {"name": "clocked", "timeout": 2}}]
    )
    assert code == 1
    assert "pixels differ" in err
    assert "the screen did not hold still for 100 ms within 2 s" in err


def test_animations_pause_for_a_stable_capture(run: Runner) -> None:
    masked = [
        {"goto": "/animate.html"},
        {"expect_screenshot": {"name": "moving", "mask": ["#clock"], "timeout": 5}},
    ]
    code, manifest, _ = run(masked, "--update-baselines")
    assert code == 0 and manifest["steps"][1]["details"]["baseline_written"] == "missing"
    code, manifest, _ = run(masked)  # infinite animations rewind to their start: same frame
    assert code == 0 and manifest["steps"][1]["details"]["diff_pixels"] == 0
    ticking = [{"goto": "/animate.html"}, {"expect_screenshot": {"name": "ticking", "timeout": 2}}]
    code, manifest, err = run(ticking, "--update-baselines")
    assert code == 1
    assert "expect_screenshot 'ticking': baseline not written; the screen did not hold still" in err
    assert not (run.baselines / "ticking.png").exists()


# -- picture targets --------------------------------------------------------------------------


def cut_launch_button(run: Runner) -> tuple[int, int, int, int]:
    """Screenshot the canvas page, cut the blue button out as launch.png (and a copy at
    0.85x as launch-small.png) beside the recipe; its box on the screen."""
    code, manifest, _ = run([{"goto": "/canvas.html"}, {"screenshot": "stage"}])
    assert code == 0
    shot = read_image(run.bundle_of(manifest) / manifest["steps"][1]["screenshot"])
    ys, xs = np.nonzero(np.all(shot == LAUNCH_BLUE, axis=2))
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    button = shot[y0:y1, x0:x1]
    write_image(run.path.parent, "launch.png", button)
    small = cv2.resize(button, None, fx=0.85, fy=0.85, interpolation=cv2.INTER_AREA)
    write_image(run.path.parent, "launch-small.png", np.asarray(small, np.uint8))
    return x0, y0, x1 - x0, y1 - y0


def test_a_canvas_button_is_found_by_its_picture_and_clicked(run: Runner) -> None:
    box = cut_launch_button(run)
    assert box[2:] == (220, 64)
    code, manifest, err = run(
        [
            {"goto": "/canvas.html"},
            {"expect_image": "launch.png"},
            {"click": {"image": "launch.png"}},
            {"expect_text": "launch clicked at 630,292"},  # the centre, in canvas pixels
            {"wait_for": {"image": "launch.png", "state": "hidden"}},
            {"expect_no_image": "launch.png"},
        ]
    )
    assert code == 0, err
    steps = manifest["steps"]
    click = steps[2]
    assert click["details"]["box"] == list(box) and click["details"]["score"] >= 0.99
    assert click["details"]["image"] == "launch.png" and click["details"]["scale"] == 1.0
    assert click["points"] == [[box[0] + box[2] // 2, box[1] + box[3] // 2]]
    bundle = run.bundle_of(manifest)
    assert (bundle / attachments(click)["match"]).is_file()
    assert steps[1]["details"]["box"] == list(box)
    # Gone: only the grey look-alike is left, and it scores well below the confidence.
    assert steps[5]["details"]["score"] < 0.8


def test_scaled_pictures_offsets_and_regions(run: Runner) -> None:
    box = cut_launch_button(run)
    left_half = {"x": 0, "y": 0, "width": box[0] - 20, "height": 800}
    code, manifest, err = run(
        [
            {"goto": "/canvas.html"},
            {"double_click": {"image": "launch-small.png", "offset": {"x": 60}}},
            {"expect_text": "launch clicked at 69"},  # 60 px right of the centre, at 630
            {"expect_text": "x2"},
            {"goto": "/canvas.html"},
            {"expect_image": {"image": "launch.png", "region": left_half, "timeout": 1}},
        ]
    )
    assert code == 1
    double = manifest["steps"][1]
    assert double["status"] == "passed"
    assert double["details"]["scale"] == pytest.approx(1 / 0.85, rel=0.03)
    assert abs(double["details"]["box"][0] - box[0]) <= 2
    (x, y), (cx, cy) = double["points"][0], (box[0] + box[2] // 2, box[1] + box[3] // 2)
    assert abs(x - (cx + 60)) <= 2 and abs(y - cy) <= 2
    assert re.search(
        r"at step 6: expect_image: image 'launch.png' is not on the screen within 1 s "
        r"\(best score 0\.[0-7]\d* < confidence 0\.9, 2\d\dx\d\d at \(\d+, \d+\)\)",
        err,
    ), err
    failed = manifest["steps"][5]
    assert failed["details"]["score"] < 0.9 and failed["details"]["box"][0] < box[0]
    assert set(attachments(failed)) == {"best-match"}


def test_a_missing_picture_file_is_a_recipe_error(run: Runner) -> None:
    code, manifest, err = run([{"goto": "/canvas.html"}, {"click": {"image": "nope.png"}}])
    assert code == 2
    where = run.path.parent / "nope.png"
    assert f"click: image 'nope.png' not found (looked for '{where}')" in err
    assert manifest["steps"][1]["status"] == "error"


# -- page health ------------------------------------------------------------------------------


def test_console_errors_and_failed_requests(run: Runner) -> None:
    code, manifest, err = run(
        [{"goto": "/health.html"}, {"expect_text": "loaded"}, "expect_no_console_errors"]
    )
    assert code == 1
    assert re.search(
        r"at step 3: expect_no_console_errors: \d+ console errors: "
        r"'expected noise from a third-party widget' \(http://127\.0\.0\.1:\d+/health\.html:6\); "
        r"[^;]+; [^;]+; and \d+ more -> ",
        err,
    ), err
    details = manifest["steps"][2]["details"]
    assert details["count"] >= 4 and len(details["errors"]) == details["count"]
    assert {"type": "pageerror", "text": "boom from a timer"} in details["errors"]

    code, manifest, err = run(
        [
            {"goto": "/health.html"},
            {"expect_text": "loaded"},
            {
                "expect_no_console_errors": {
                    "allow": ["third-party widget", "^boom", "Failed to load resource"]
                }
            },
            {"expect_no_failed_requests": {"allow": [r"/missing\.json$", r":9/", "favicon"]}},
            {"expect_no_failed_requests": {"allow": [r"/missing\.json$", "favicon"]}},
        ]
    )
    assert code == 1
    assert [s["status"] for s in manifest["steps"]] == ["passed"] * 4 + ["failed"]
    assert re.search(
        r"at step 5: expect_no_failed_requests: 1 failed request: "
        r"GET http://127\.0\.0\.1:9/analytics failed: net::ERR_\w+",
        err,
    ), err
    assert manifest["steps"][4]["details"]["requests"][0]["url"] == "http://127.0.0.1:9/analytics"


# -- recipes ----------------------------------------------------------------------------------


def parse(step: Any) -> Any:
    return parse_recipe({"name": "t", "url": "http://127.0.0.1:1/", "steps": [step]}).steps[0]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            {"click": {"imgae": "a.png"}},
            "steps[0] (click): unknown key 'imgae'; did you mean 'image'?",
        ),
        (
            {"click": {"image": "a.png", "selector": "#a"}},
            "steps[0] (click): give one target: a selector, an image, or x and y",
        ),
        (
            {"click": {"selector": "#a", "offset": {"x": 3}}},
            "steps[0] (click): offset applies to an image target; add image: PATH or remove it",
        ),
        (
            {"double_click": {"image": "a.png", "region": {"x": 1, "y": 2, "widht": 3}}},
            "steps[0] (double_click).region: unknown key 'widht'; did you mean 'width'?",
        ),
        (
            {"click": {"image": "a.png", "confidence": 1.5}},
            "steps[0] (click).confidence: Input should be less than or equal to 1 (got 1.5)",
        ),
        (
            {"wait_for": {"image": "a.png", "state": "attached"}},
            "steps[0] (wait_for): state 'attached' is for selectors; an image is 'visible' or "
            "'hidden'",
        ),
        (
            {"wait_for": {"imag": "a.png"}},
            "steps[0] (wait_for): unknown key 'imag'; did you mean 'image'?",
        ),
        (
            {
                "expect_screenshot": {
                    "name": "a",
                    "mask": [{"x": 1, "y": 2, "widht": 3, "height": 4}],
                }
            },
            "steps[0] (expect_screenshot).mask[0]: unknown key 'widht'; did you mean 'width'?",
        ),
        (
            {"expect_screenshot": {"name": "a", "mask": ["#a", {"x": 1}]}},
            "steps[0] (expect_screenshot).mask[1]: a mask is a selector, or a rectangle with all "
            "of x, y, width and height",
        ),
        (
            {"expect_screenshot": {"name": "a", "treshold": 0.2}},
            "steps[0] (expect_screenshot): unknown key 'treshold'; did you mean 'threshold'?",
        ),
        (
            {"expect_screenshot": {"name": "a", "max_diff_pixel": 2}},
            "steps[0] (expect_screenshot): unknown key 'max_diff_pixel'; did you mean "
            "'max_diff_pixels'?",
        ),
        (
            {"expect_screenshot": {"name": "a", "full_page": True}},
            "steps[0] (expect_screenshot).full_page: true is not supported: the check compares "
            "what is on the screen; scroll first, or give a selector",
        ),
        (
            {"expect_screenshot": "../home"},
            "steps[0] (expect_screenshot).name: '../home' cannot name a baseline file",
        ),
        ("expect_screenshot", "steps[0] (expect_screenshot).name: required, but missing"),
        ("expect_no_console_error", "did you mean 'expect_no_console_errors'?"),
        (
            {"expect_no_console_errors": {"allow": ["ok", "(open"]}},
            "steps[0] (expect_no_console_errors).allow: item 1 ('(open') is not a valid regular "
            "expression: missing ), unterminated subpattern at position 0",
        ),
        (
            {"expect_no_failed_requests": {"alow": ["x"]}},
            "steps[0] (expect_no_failed_requests): unknown key 'alow'; did you mean 'allow'?",
        ),
        (
            {"expect_imag": "a.png"},
            "steps[0]: unknown step 'expect_imag'; did you mean 'expect_image'?",
        ),
        ({"expect_no_image": {"region": {"x": 0}}}, "steps[0] (expect_no_image).image: required"),
    ],
)
def test_recipe_errors_are_one_line(step: Any, message: str) -> None:
    with pytest.raises(RecipeError) as info:
        parse(step)
    assert message in info.value.message and "\n" not in info.value.message


def test_short_long_and_bare_forms() -> None:
    assert parse("expect_no_console_errors").args.allow == ()
    assert parse("expect_no_failed_requests").action == "expect_no_failed_requests"
    shot = parse({"expect_screenshot": {"name": "home", "mask": "#clock", "max_diff_ratio": 0.01}})
    assert shot.args.mask[0].selector == "#clock" and shot.args.threshold == 0.1
    assert parse({"expect_screenshot": "home"}).target == "home"
    image = parse({"expect_image": "a.png", "timeout": 3})
    assert image.args.image == "a.png" and image.timeout == 3
    click = parse({"click": {"image": "b.png", "offset": {"x": 10}, "button": "right"}})
    assert click.args.offset.y == 0 and click.args.confidence is None
    wait = parse({"wait_for": {"image": "a.png", "state": "hidden"}})
    assert wait.args.image == "a.png" and wait.args.selector is None
    assert parse({"wait_for": "#a"}).args.image is None
