"""Where the page is on the screen: its window, its viewport, its frames, and waiting
until it has painted or stopped scrolling.

Where the page is (:class:`Places`) is asked in an isolated world of verifier's own, out
of the page scripts' reach; ``FRAME_INSET_JS`` is shared with the steps
(``steps/_aim.py`` maps an element through frames with it). The questions here are asked
within the browser's deadlines. (The viewport :func:`next_frame` answers only bounds where
a screenshot waits for the screen to hold still.)
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import BrowserContext, CDPSession, Frame, Page
from playwright.sync_api import Error as PlaywrightError

__all__ = (
    "FRAME_INSET_JS",
    "NODE_PATH_JS",
    "ORIGIN_JS",
    "WINDOW_JS",
    "Place",
    "Places",
    "next_frame",
    "origin_of",
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
# Two animation frames, then where the viewport is; null past ``ms`` milliseconds.
_NEXT_FRAME_JS = (
    "(ms) => new Promise((r) => { requestAnimationFrame(() => requestAnimationFrame("
    f"() => r([...{ORIGIN_JS}, innerWidth, innerHeight]))); setTimeout(() => r(null), ms); }})"
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
# A script fragment: ``nodePath(node)``, where a node is in its document ("0/1/s/3": each
# node's place among its siblings on the way down, "s" into a shadow root), by the DOM's
# own getters as they were when it ran: in the page's world, before any of its scripts
# (see Places.install), a page that redefines ``id``, ``parentNode`` or
# ``Array.prototype.join`` does not change the answer. The same node has the same path in
# every world.
NODE_PATH_JS = """
const nodePath = ((own, call) => {
  const get = (proto, name) => own(proto, name).get;
  const parent = get(Node.prototype, 'parentNode'), prev = get(Node.prototype, 'previousSibling');
  const type = get(Node.prototype, 'nodeType'), host = get(ShadowRoot.prototype, 'host');
  // (Built of strings alone: the page may redefine Array.prototype.join and the like.)
  return (n) => {
    let out = '';
    for (let depth = 0; n && depth < 4096; depth++) {
      let step = 's';
      if (call(type, n, []) === 11) {
        let h = null;
        try { h = call(host, n, []); } catch (e) { /* a fragment, not a shadow root */ }
        if (!h) break;
        n = h;
      } else {
        let i = 0;
        for (let m = call(prev, n, []); m; m = call(prev, m, [])) i++;
        step = '' + i;
        n = call(parent, n, []);
      }
      out = out === '' ? step : step + '/' + out;
    }
    return out;
  };
})(Object.getOwnPropertyDescriptor, Reflect.apply);
"""


class Places:
    """Where pages are on the screen, asked in a world of verifier's own.

    A page's scripts can redefine ``screenX``, ``innerWidth``, ``document.title``... in
    their own JavaScript world: a page that shrank its ``innerWidth`` moved every aimed
    click 200 px aside onto another button, and the step passed. The question is asked
    in an isolated world (DevTools' ``Page.createIsolatedWorld``, as an extension's
    content script runs), where the page's definitions do not reach: the browser's own
    values. One world per page, made again when its document is replaced.
    """

    def __init__(self) -> None:
        self._worlds: dict[Page, tuple[CDPSession, int]] = {}
        # The page-world name of ``nodePath``, one no page can guess or replace.
        self.node_path = "__verifier_path_" + secrets.token_hex(8)

    def install(self, context: BrowserContext) -> None:
        """Give every document of ``context``, before its own scripts run, ``nodePath``
        (see NODE_PATH_JS) under :attr:`node_path`, where the page cannot replace it."""
        context.add_init_script(
            f"(() => {{ {NODE_PATH_JS} Object.defineProperty(globalThis, "
            f"{self.node_path!r}, {{ value: nodePath }}); }})();"
        )

    def place(self, page: Page) -> Place:
        """Where ``page`` is (three questions the first time, one after)."""
        sx, sy, ow, oh, iw, ih, title = self.evaluate(page, _PLACE_JS)
        x, y = origin_of((sx, sy, ow - iw, oh - ih))
        return Place((int(sx), int(sy), int(ow), int(oh)), str(title), (x, y, int(iw), int(ih)))

    def evaluate(self, page: Page, expression: str) -> Any:
        """The value (as JSON) of ``expression`` in this world of ``page``'s top frame."""
        try:
            return self._evaluate(page, expression, fresh=False)
        except PlaywrightError:  # its document was replaced: a new world
            return self._evaluate(page, expression, fresh=True)

    def _evaluate(self, page: Page, expression: str, *, fresh: bool) -> Any:
        cdp, world = self._world(page, fresh=fresh)
        got = cdp.send(
            "Runtime.evaluate",
            {"expression": expression, "contextId": world, "returnByValue": True},
        )
        if "exceptionDetails" in got:
            msg = f"verifier's world: {got['exceptionDetails'].get('text', 'no answer')}"
            raise PlaywrightError(msg)
        return got["result"].get("value")

    def _world(self, page: Page, *, fresh: bool) -> tuple[CDPSession, int]:
        known = self._worlds.get(page)
        if known is not None and not fresh:
            return known
        cdp = known[0] if known is not None else page.context.new_cdp_session(page)
        frame = cdp.send("Page.getFrameTree")["frameTree"]["frame"]["id"]
        made = cdp.send("Page.createIsolatedWorld", {"frameId": frame, "worldName": "verifier"})
        self._worlds = {p: w for p, w in self._worlds.items() if not p.is_closed()}
        self._worlds[page] = (cdp, int(made["executionContextId"]))
        return self._worlds[page]


def next_frame(page: Page, timeout: float) -> Box:
    """Wait until ``page`` has produced a frame since now (two animation frames); its
    viewport's screen box then.

    One question (~4 ms less than waiting for a function, which takes a second call for
    its value); when its document is replaced meanwhile (a step that navigates), the new
    document's frames are waited for.

    :raises PlaywrightError: no frame within ``timeout`` seconds, or no page.
    """
    ms = int(timeout * 1000)
    try:
        values = page.evaluate(_NEXT_FRAME_JS, ms)
    except PlaywrightError as exc:
        if "context was destroyed" not in str(exc):
            raise
        handle = page.wait_for_function(_NEXT_FRAME_JS, arg=ms, timeout=ms)
        try:
            values = handle.json_value()
        finally:
            handle.dispose()
    if not values:
        msg = f"the page drew no frame within {timeout:g} s"
        raise PlaywrightError(msg)
    x, y = origin_of(values[:4])
    return x, y, int(values[4]), int(values[5])


def settle(frame: Frame, timeout: float) -> None:
    """Wait until scrolling has stopped in ``frame`` (its own and every scroller's) and a
    frame has been painted."""
    frame.wait_for_function(_SETTLE_JS, timeout=timeout * 1000)
