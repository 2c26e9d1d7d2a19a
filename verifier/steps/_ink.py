"""The screen's test of what the page says a person sees: hidden for two frames, does
anything in its box change on the screen?

The page cannot tell every way it hides something: an overlay that lets the pointer
through, a filter, a mask, a pseudo-element on top, a colour like what is behind it, the
browser's own print preview. The screen can. A first look is quick; only what seems to
show nothing is looked at again, slowly, before it is said so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
from playwright.sync_api import Frame

from verifier.browser import FRAME_INSET_JS
from verifier.steps._context import StepContext

__all__ = ("HIDE_ELEMENT_JS", "VEIL_JS", "shows")

# A pixel that changes by this much (in a colour channel) when the thing is hidden is its
# ink; this many such pixels make it seen.
_INK_SPREAD = 24
_INK_PIXELS = 3


# A script fragment: ``veil(el, key, {prop: value})`` sets those properties on ``el``
# (important, transitions off, what was there kept under ``key``); ``unveil(el, key)``
# puts back what was there, and its transitions only once that is drawn, so that
# nothing fades back.
VEIL_JS = """
const veil = (el, key, values) => {
  const style = el.style;
  const props = [...Object.keys(values), 'transition'];
  el[key] = props.map((p) => [p, style.getPropertyValue(p), style.getPropertyPriority(p)]);
  style.setProperty('transition', 'none', 'important');
  for (const [p, v] of Object.entries(values)) style.setProperty(p, v, 'important');
};
const unveil = (el, key) => {
  const saved = el[key];
  if (!saved) return;
  delete el[key];
  const put = ([p, v, priority]) => {
    if (v) el.style.setProperty(p, v, priority); else el.style.removeProperty(p);
  };
  for (const s of saved) if (s[0] !== 'transition') put(s);
  getComputedStyle(el).opacity;  // the old look applies before its transitions return
  put(saved.find((s) => s[0] === 'transition'));
};
const twoFrames = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
"""
# For an element: made fully transparent and two frames drawn (``on``), or as it was.
HIDE_ELEMENT_JS = """
(el, on) => {
  VEIL
  const key = Symbol.for('verifier.fade');
  if (!on) return unveil(el, key);
  veil(el, key, { opacity: '0' });
  return twoFrames();
}
""".replace("VEIL", VEIL_JS)


def shows(
    ctx: StepContext, frame: Frame, box: Sequence[float], hide: Callable[[bool], object]
) -> bool | None:
    """Whether the screen changes in ``box`` (x0, y0, x1, y1 in ``frame``'s viewport) when
    ``hide(True)`` hides the thing (``hide(False)`` shows it again); None when the box is
    not on the screen at all, True when it cannot be told (a frame out of reach)."""
    offset = _frame_offset(frame)
    if offset is None:
        return True
    ox, oy = ctx.browser.viewport_origin()
    sw, sh = ctx.desktop.size
    x0, y0 = max(0, ox + offset[0] + int(box[0])), max(0, oy + offset[1] + int(box[1]))
    x1 = min(sw, ox + offset[0] + int(box[2] + 0.999))
    y1 = min(sh, oy + offset[1] + int(box[3] + 0.999))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    region = (x0, y0, x1 - x0, y1 - y0)
    for quiet in (0.01, 0.15):
        before = ctx.desktop.wait_stable(quiet=quiet, timeout=0.5, region=region)
        try:
            hidden = time.monotonic()
            hide(True)  # two frames drawn: the quiet counts from the last drawing
            after = ctx.desktop.wait_stable(
                quiet=quiet * 2, timeout=1.0, region=region, since=hidden
            )
        finally:
            hide(False)
        a = before[y0:y1, x0:x1].astype(np.int16)
        b = after[y0:y1, x0:x1].astype(np.int16)
        if int((np.abs(a - b).max(axis=2) >= _INK_SPREAD).sum()) >= _INK_PIXELS:
            return True
    return False


def _frame_offset(frame: Frame) -> tuple[int, int] | None:
    """Where ``frame``'s viewport lies in the top frame's (None: it cannot be told)."""
    if frame.parent_frame is None:
        return 0, 0
    element = frame.frame_element()
    try:
        place = element.bounding_box()
        inset = element.evaluate(f"(f) => {{ {FRAME_INSET_JS} return frameInset(f); }}")
    finally:
        element.dispose()
    if place is None:
        return None
    return int(place["x"] + inset[0]), int(place["y"] + inset[1])
