"""What is under an action's point: the element hit, for the session's recipe.

One round trip in the frame at the point (found as a recipe step finds it: the viewport's
origin on the screen, then the deep hit test through iframes and shadow roots). A
selector that names the element uniquely replaces the point in the replay recipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Frame

from verifier.errors import VerifierError
from verifier.steps import DEEP_HIT_JS, frame_at, viewport_at

if TYPE_CHECKING:
    from verifier.steps import StepContext

__all__ = ("Target", "target_at")

# How long the page may take to say what is at the point (about 2 ms): input goes on
# without it (the screen still shows what happened).
_PROBE_S = 2.0

_log = logging.getLogger(__name__)

# The element at a point of the frame's viewport, with a selector that names it uniquely
# (for the replay recipe).
_TARGET_JS = """
([x, y, pick]) => {
  DEEP_HIT
  const hit = deepHit(x, y);
  if (!hit) return null;
  const el = hit.closest(pick) || hit;
  window[Symbol.for('verifier.pick')] = el;
  const tag = el.tagName.toLowerCase();
  const unique = (sel) => {
    try { const all = document.querySelectorAll(sel); return all.length === 1 && all[0] === el; }
    catch (e) { return false; }
  };
  const quote = (s) => '"' + s.replace(/["\\\\]/g, '\\\\$&') + '"';
  let css = null;
  if (el.id && unique('#' + CSS.escape(el.id))) css = '#' + CSS.escape(el.id);
  for (const name of ['data-testid', 'data-test', 'name', 'aria-label', 'placeholder', 'title']) {
    const value = el.getAttribute(name);
    if (css || !value || value.length > 80 || /[\\n\\r\\t]/.test(value)) continue;
    const sel = tag + '[' + name + '=' + quote(value) + ']';
    if (unique(sel)) css = sel;
  }
  const text = (el.innerText || '').trim().replace(/\\s+/g, ' ');
  const editable = el.matches('input, textarea, select, [contenteditable]');
  const value = editable ? String(el.value !== undefined ? el.value : el.textContent) : '';
  return {css, tag, id: el.id || '', text: text.slice(0, 80), full: text.length <= 80,
          interactive: el.matches(pick), filled: value.length > 0};
}
""".replace("DEEP_HIT", DEEP_HIT_JS)
_INTERACTIVE = (
    "a[href], button, input, textarea, select, label, summary, [contenteditable], "
    "[role=button], [role=link], [role=checkbox], [role=radio], [role=tab], [role=menuitem], "
    "[role=option], [role=switch]"
)
# Does the one element a text selector resolves to sit in the element picked at the point?
_SAME_JS = """
(els) => {
  const pick = window[Symbol.for('verifier.pick')];
  return els.length === 1 && !!pick && (els[0] === pick || pick.contains(els[0]));
}
"""


@dataclass(frozen=True, slots=True)
class Target:
    """The element under an action's point, before the action."""

    description: str
    selector: str | None = None  # unique, for a recipe; None when coordinates are safer
    by_ref: bool = False  # the agent named it by a snapshot's ref, not a point


def target_at(ctx: StepContext, point: tuple[int, int]) -> tuple[Target | None, Frame | None]:
    """The element at screen ``point`` and the frame that shows it; (None, None) when
    the point is not on the page (a dialog holds it, a popup or another window is
    there) or the page did not say in time."""
    browser = ctx.browser
    if browser.dead is not None or browser.dialog is not None:
        return None, None  # a page a dialog holds answers nothing; input goes to the dialog
    try:
        with browser.answer_within(_PROBE_S):  # a page whose scripts never yield: go on
            viewport = viewport_at(ctx, point)
            if viewport is None:
                return None, None
            frame, x, y = frame_at(ctx, point, origin=viewport[:2])
            info = frame.evaluate(_TARGET_JS, [x, y, _INTERACTIVE])
            top = frame is browser.page.main_frame
            return _target(frame, info, top=top), frame
    except (PlaywrightError, VerifierError, asyncio.CancelledError) as exc:
        _log.debug("what is at %s: no answer: %r", point, exc)  # a dialog, or a busy page
        return None, None


def _target(frame: Frame, info: dict[str, Any] | None, *, top: bool) -> Target | None:
    """The element the page found under the point, with a selector when one is safe.

    A selector replaces the point in the replay only for an interactive element (a
    button, link, field...) of the page's own document (not an iframe's) that it names
    uniquely, and not for a field with text in it, where the exact point decides where
    the caret lands.
    """
    if not info:
        return None
    tag, ident, text = str(info["tag"]), str(info["id"]), str(info["text"])
    description = f"<{tag}{'#' + ident if ident else ''}>" + (f' "{text}"' if text else "")
    if not top or not info["interactive"] or info["filled"]:
        return Target(description)
    if info["css"]:
        return Target(description, str(info["css"]))
    if text and info["full"] and '"' not in text and "\\" not in text:
        selector = f'text="{text}"'
        with contextlib.suppress(PlaywrightError):
            if frame.locator(selector).evaluate_all(_SAME_JS):
                return Target(description, selector)
    return Target(description)
