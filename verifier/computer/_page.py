"""What the page says about an action's point: input counters, focus, the element there.

One round trip before acting. The counters (kept by Browser's init script) let the
computer wait until the page has seen the input it sends; the element under the point
gives the replay recipe a selector where one names it uniquely.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from verifier.errors import BrowserError

if TYPE_CHECKING:
    from verifier.browser import Browser

__all__ = ("Target",)

# How long the page may take to answer the probe (it takes about 2 ms): input goes on
# without it (the screen still shows what happened).
_PROBE_S = 2.0

_log = logging.getLogger(__name__)

# One round trip before acting: the page's input counters (to wait on afterwards), whether
# it has the keyboard focus, and what element is under the point, with a selector that
# names it uniquely (for the replay recipe). Browser's init script keeps the counters.
_PROBE_JS = """
([sx, sy, pick]) => {
  const v = window.__verifier;
  const out = {doc: v ? v.doc : null, mouseup: v ? v.mouseup : 0, keyup: v ? v.keyup : 0,
               wheel: v ? v.wheel : 0, focus: document.hasFocus(), inside: false, target: null};
  if (sx === null) return out;
  const x = sx - (screenX + Math.floor((outerWidth - innerWidth) / 2));
  const y = sy - (screenY + outerHeight - innerHeight);
  out.inside = x >= 0 && y >= 0 && x < innerWidth && y < innerHeight;
  const hit = out.inside ? document.elementFromPoint(x, y) : null;
  if (!hit) return out;
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
  out.target = {css, tag, id: el.id || '', text: text.slice(0, 80), full: text.length <= 80,
                interactive: el.matches(pick), filled: value.length > 0};
  return out;
}
"""
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


@dataclass(frozen=True, slots=True)
class Probe:
    """The page just before an action."""

    mark: tuple[str, dict[str, int]] | None
    focus: bool
    inside: bool
    target: Target | None


def probe(
    browser: Browser | None, at: tuple[int, int] | None, *, want_target: bool
) -> Probe | None:
    """Ask the page (one round trip) for its input counters and the element at ``at``."""
    if browser is None or browser.dead is not None or browser.dialog is not None:
        return None  # a page a dialog holds answers nothing; input goes to the dialog
    try:
        page = browser.page
        with browser.answer_within(_PROBE_S):  # a page whose scripts never yield: go on
            state = page.evaluate(
                _PROBE_JS, [at[0] if at else None, at[1] if at else None, _INTERACTIVE]
            )
            target = _target(page, state.get("target")) if want_target else None
    except (PlaywrightError, BrowserError, asyncio.CancelledError) as exc:
        _log.debug("page probe failed: %r", exc)  # cancelled: a dialog, or a busy page
        return None
    mark = None
    if state.get("doc"):
        counts = {k: int(state[k]) for k in ("mouseup", "keyup", "wheel")}
        mark = (str(state["doc"]), counts)
    return Probe(mark, bool(state.get("focus")), bool(state.get("inside")), target)


def _target(page: Page, info: dict[str, Any] | None) -> Target | None:
    """The element the page found under the point, with a selector when one is safe.

    A selector replaces the point in the replay only for an interactive element (a
    button, link, field...) that it names uniquely, and not for a field with text in it,
    where the exact point decides where the caret lands.
    """
    if not info:
        return None
    tag, ident, text = str(info["tag"]), str(info["id"]), str(info["text"])
    description = f"<{tag}{'#' + ident if ident else ''}>" + (f' "{text}"' if text else "")
    if not info["interactive"] or info["filled"]:
        return Target(description)
    if info["css"]:
        return Target(description, str(info["css"]))
    if text and info["full"] and '"' not in text and "\\" not in text:
        selector = f'text="{text}"'
        with contextlib.suppress(PlaywrightError):
            if page.locator(selector).evaluate_all(_SAME_JS):
                return Target(description, selector)
    return Target(description)
