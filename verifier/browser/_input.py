"""The input handshake: after XTest input, wait until the page has seen it.

A script in every frame counts trusted input events per kind and tells verifier of each
one through a binding (Playwright's ``expose_binding``), so that after sending input we
wait until the page has seen it without asking the page anything: a question in flight
when the input opens a dialog would wait for as long as the dialog stays open. ``doc``
changes with every document (navigation); every frame has its own counters. An HTML5
drag ends in ``dragend``, not ``mouseup``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from playwright.sync_api import BrowserContext, Frame

__all__ = ("InputKind", "InputMark", "InputWatch")

_log = logging.getLogger(__name__)

_BINDING = "__verifierSeen"
_INPUT_PROBE = """
(() => {
  if (window.__verifier) return;
  const tell = globalThis.BINDING;
  const s = {doc: Math.random().toString(36).slice(2), mouseup: 0, keyup: 0, wheel: 0,
             dragend: 0};
  Object.defineProperty(window, '__verifier', {value: s, enumerable: false});
  const say = (kind) => {
    try { (tell || globalThis.BINDING)(s.doc, kind, s[kind] || 0); } catch (e) {}
  };
  for (const kind of ['keyup', 'wheel', 'dragend']) {
    addEventListener(kind, (e) => { if (e.isTrusted) { s[kind]++; say(kind); } },
                     {capture: true, passive: true});
  }
  // A button's release is its pointerup: a page that prevents pointerdown's default
  // (Headless UI's menus) gets no mouseup at all.
  addEventListener('pointerup', (e) => {
    if (e.isTrusted && e.pointerType === 'mouse') { s.mouseup++; say('mouseup'); }
  }, {capture: true, passive: true});
  say('doc');
})();
""".replace("BINDING", _BINDING)
# The counters of a frame that has not told us of itself yet.
_MARK_JS = """
() => { const v = window.__verifier;
  return v ? [v.doc, {mouseup: v.mouseup, keyup: v.keyup, wheel: v.wheel, dragend: v.dragend}]
           : null; }
"""
_KINDS = ("mouseup", "keyup", "wheel", "dragend")
# The first wait for the page to see input: long enough for the usual answer (~7 ms), so
# that input which went elsewhere (a popup, another window) is noticed soon after.
_FIRST_LOOK_S = 0.05

InputKind = Literal["mouseup", "keyup", "wheel", "dragend"]
# The page's input counters at a moment: (document id, {kind: count}).
InputMark = tuple[str, dict[str, int]]


class InputWatch:
    """Each frame's input counters, as its page last told them.

    :param wake: called when a frame tells us something (the browser's waits wake up).
    """

    def __init__(self, wake: Callable[[], None]) -> None:
        self._seen: dict[Frame, InputMark] = {}
        self._wake = wake

    def install(self, context: BrowserContext) -> None:
        """Put the probe into every frame of ``context``, and hear it."""
        context.expose_binding(_BINDING, self._on_seen)
        context.add_init_script(_INPUT_PROBE)

    def _on_seen(self, source: dict[str, Any], doc: str, kind: str, count: int) -> None:
        """The page's input probe: ``frame`` saw its ``count``-th trusted ``kind`` event."""
        frame = source.get("frame")
        if not isinstance(frame, Frame) or not isinstance(doc, str):
            return
        known = self._seen.get(frame)
        counts = dict(known[1]) if known is not None and known[0] == doc else {}
        if kind in _KINDS and isinstance(count, int):
            counts[kind] = max(count, counts.get(kind, 0))
        self._seen[frame] = (doc, counts)
        self._wake()

    def mark(self, frame: Frame) -> InputMark | None:
        """The counters of ``frame`` now; a frame that has not told us of itself (its
        probe ran before the binding was there) is asked, before any input."""
        known = self._seen.get(frame)
        if known is not None:
            return known[0], dict(known[1])
        state = frame.evaluate(_MARK_JS)
        return (str(state[0]), dict(state[1])) if state else None

    def wait(
        self,
        mark: InputMark,
        kinds: tuple[InputKind, ...],
        count: int,
        *,
        frame: Frame,
        timeout: float,
        cannot_see: Callable[[], bool],
        elsewhere: Callable[[], bool] | None,
        pump: Callable[[float], None],
    ) -> bool:
        """Wait until ``frame`` saw ``count`` more trusted ``kinds`` events (or
        navigated): the page tells us, nothing is asked. Gives up early when
        ``cannot_see()`` (a dialog opened, the browser died, the frame went) or
        ``elsewhere()`` says the input went somewhere else (a popup list, a window).

        :param pump: takes in the browser's messages for up to the seconds given.
        """
        doc, counts = mark
        target = sum(counts.get(k, 0) for k in kinds) + count
        start = time.monotonic()
        deadline, look = start + timeout, start + _FIRST_LOOK_S
        while True:
            known = self._seen.get(frame)
            if known is not None and (
                known[0] != doc or sum(known[1].get(k, 0) for k in kinds) >= target
            ):
                return True
            now = time.monotonic()
            if cannot_see():
                _log.debug("input handshake (%s x%d): the page cannot see it", kinds, count)
                return False
            if now >= deadline:
                _log.debug("input handshake (%s x%d) not seen in %g s", kinds, count, timeout)
                return False
            if now >= look:
                if elsewhere is not None and elsewhere():
                    _log.debug("input handshake (%s x%d): the input went elsewhere", kinds, count)
                    return False
                look = now + 0.2
            pump(min(look, deadline) - now)
