"""Where the page is on the screen: its window, its viewport, its frames, and waiting
until it has painted or stopped scrolling.

The scripts are shared with the steps (``steps/_aim.py`` maps an element through frames
with them); the questions here are asked within the browser's deadlines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from playwright.sync_api import Frame, Page

__all__ = (
    "FRAME_INSET_JS",
    "ORIGIN_JS",
    "WINDOW_JS",
    "Place",
    "next_frame",
    "origin_of",
    "place_of",
    "settle",
)

# What the page knows of where its viewport is on the screen; see origin_of().
ORIGIN_JS = "[screenX, screenY, outerWidth - innerWidth, outerHeight - innerHeight]"
# The browser window's box on the screen (x, y, width, height), the same in every frame.
WINDOW_JS = "[screenX, screenY, outerWidth, outerHeight]"
# A script fragment: ``frameInset(iframe)``, where the iframe's document is drawn in its
# border box (inside its border and padding): [left, top, width, height].
FRAME_INSET_JS = """
const frameInset = (f) => {
  const cs = getComputedStyle(f), px = (v) => parseFloat(v) || 0;
  return [f.clientLeft + px(cs.paddingLeft), f.clientTop + px(cs.paddingTop),
          f.clientWidth - px(cs.paddingLeft) - px(cs.paddingRight),
          f.clientHeight - px(cs.paddingTop) - px(cs.paddingBottom)];
};
"""
_SETTLE_JS = """
() => new Promise((resolve) => {
  let moved = false, quiet = 0, last = scrollX + ',' + scrollY;
  const seen = () => { moved = true; };
  addEventListener('scroll', seen, { capture: true, passive: true });
  const tick = () => {
    const now = scrollX + ',' + scrollY;
    quiet = moved || now !== last ? 0 : quiet + 1;
    moved = false; last = now;
    if (quiet >= 3) { removeEventListener('scroll', seen, { capture: true }); resolve(true); }
    else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})
"""
_NEXT_FRAME_JS = (
    "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame("
    f"() => r([...{ORIGIN_JS}, innerWidth, innerHeight]))))"
)

Box = tuple[int, int, int, int]


def origin_of(values: Sequence[float]) -> tuple[int, int]:
    """The screen point of the viewport's top-left pixel, from ORIGIN_JS's values."""
    sx, sy, dw, dh = values
    # Browser UI (tabs, toolbar, infobars) sits above the page; side borders are equal.
    return int(sx) + int(dw) // 2, int(sy) + int(dh)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a page is on the screen: its window's box, its title (the window's title
    starts with it) and its viewport's box."""

    window: Box
    title: str
    viewport: Box


_PLACE_JS = f"[...{WINDOW_JS}, innerWidth, innerHeight, document.title]"


def place_of(page: Page) -> Place:
    """Where ``page`` is on the screen (one question)."""
    sx, sy, ow, oh, iw, ih, title = page.evaluate(_PLACE_JS)
    x, y = origin_of((sx, sy, ow - iw, oh - ih))
    return Place((int(sx), int(sy), int(ow), int(oh)), str(title), (x, y, int(iw), int(ih)))


def next_frame(page: Page, timeout: float) -> Box:
    """Wait until ``page`` has produced a frame since now (two animation frames); its
    viewport's screen box then."""
    values = page.wait_for_function(_NEXT_FRAME_JS, timeout=timeout * 1000).json_value()
    x, y = origin_of(values[:4])
    return x, y, int(values[4]), int(values[5])


def settle(frame: Frame, timeout: float) -> None:
    """Wait until scrolling has stopped in ``frame`` (its own and every scroller's) and a
    frame has been painted."""
    frame.wait_for_function(_SETTLE_JS, timeout=timeout * 1000)
