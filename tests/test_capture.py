"""Screen capture: XShm frames as RGB numpy arrays, saved as PNG."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support import imread
from verifier.browser import Browser
from verifier.desktop import Desktop, save_png
from verifier.desktop._display import open_display


def test_frame_is_rgb_and_screen_sized(desktop: Desktop, browser: Browser, site_url: str) -> None:
    browser.page.goto(site_url + "input.html")
    browser.page.evaluate("window.scrollTo(0, 0)")
    browser.settle()
    frame = desktop.wait_stable()
    assert frame.shape == (800, 1280, 3) and frame.dtype == np.uint8
    ox, oy = browser.viewport_origin()
    # #red is at (700, 100) 50x40 in the page: pure red in RGB order.
    assert tuple(frame[oy + 120, ox + 725]) == (255, 0, 0)


def _read_png(path: Path) -> np.ndarray:
    return cv2.cvtColor(imread(path), cv2.COLOR_BGR2RGB)


def test_save_png_round_trip(desktop: Desktop, tmp_path: Path) -> None:
    frame = desktop.screenshot()
    frame[:10, :10] = (255, 0, 0)  # red, in RGB order: a swap to BGR would show
    path = save_png(frame, tmp_path / "shot.png")
    assert np.array_equal(_read_png(path), frame)  # lossless: the very pixels come back
    shot = desktop.save_screenshot(tmp_path / "screen.png")
    assert shot == tmp_path / "screen.png" and _read_png(shot).shape == frame.shape


def test_capture_is_fresh_each_call(desktop: Desktop) -> None:
    a = desktop.screenshot()
    b = desktop.screenshot()
    assert a is not b and not np.shares_memory(a, b)


# A box that changes colour every frame for 0.6 s, then turns blue and stays; a still box
# beside it.
_ANIMATION = """
<body style="margin:0">
<div id="busy" style="position:absolute;left:0;top:0;width:200px;height:100px"></div>
<div style="position:absolute;left:400px;top:0;width:200px;height:100px;background:#0a0"></div>
<script>
(() => {  // set_content keeps the window: no top-level const, or a second run throws
  const busy = document.getElementById('busy'), end = performance.now() + 600;
  (function tick() {
    if (performance.now() >= end) { busy.style.background = 'rgb(0, 0, 255)'; return; }
    busy.style.background = `rgb(${Math.floor(Math.random() * 200)}, 0, 0)`;
    requestAnimationFrame(tick);
  })();
})();
</script>
</body>
"""


@pytest.fixture(params=["damage", "polling"])
def watching(request: pytest.FixtureRequest, desktop: Desktop) -> Iterator[Desktop]:
    """The desktop as it waits for stillness: by the X server's DAMAGE events, or (on a
    display without them) by comparing grabs."""
    if request.param == "polling":
        saved, desktop._damage = desktop._damage, None
        yield desktop
        desktop._damage = saved
    else:
        assert desktop._damage is not None, "Xvfb offers DAMAGE; the desktop should use it"
        # A connection opened later once broke event parsing (python-xlib shares its event
        # table between connections).
        open_display(desktop.display).close()
        yield desktop
        assert desktop._damage.running


def test_wait_stable_waits_out_an_animation(watching: Desktop, browser: Browser) -> None:
    browser.page.set_content(_ANIMATION)
    viewport = browser.next_frame()
    assert viewport is not None
    ox, oy, _, _ = viewport
    started = time.monotonic()
    frame = watching.wait_stable(quiet=0.1, timeout=5.0, region=viewport)
    assert time.monotonic() - started >= 0.3
    assert tuple(frame[oy + 50, ox + 100]) == (0, 0, 255)


def test_wait_stable_in_a_region_ignores_changes_outside_it(
    watching: Desktop, browser: Browser
) -> None:
    browser.page.set_content(_ANIMATION)
    viewport = browser.next_frame()
    assert viewport is not None
    ox, oy, _, _ = viewport
    started = time.monotonic()
    frame = watching.wait_stable(quiet=0.05, timeout=5.0, region=(ox + 400, oy, 200, 100))
    assert time.monotonic() - started < 0.4, "the busy box is outside the region"
    assert tuple(frame[oy + 50, ox + 500]) == (0, 170, 0)
    # The whole screen does not hold still until the animation is over.
    frame = watching.wait_stable(quiet=0.1, timeout=5.0)
    assert tuple(frame[oy + 50, ox + 100]) == (0, 0, 255)


def test_wait_stable_gives_an_app_the_quiet_time_to_start_drawing(
    watching: Desktop, browser: Browser
) -> None:
    # The screen has long been still when the call comes; what the app draws a moment
    # later (its answer to an action) must still be waited for.
    browser.page.set_content('<div id="b" style="width:200px;height:100px;background:#f00"></div>')
    viewport = browser.next_frame()
    assert viewport is not None
    ox, oy, _, _ = viewport
    watching.wait_stable(quiet=0.4, timeout=5.0)  # longer than the quiet asked below
    browser.page.evaluate(
        "setTimeout(() => { document.getElementById('b').style.background = '#00f'; }, 30)"
    )
    frame = watching.wait_stable(quiet=0.3, timeout=5.0, region=viewport)
    assert tuple(frame[oy + 50, ox + 100]) == (0, 0, 255)
