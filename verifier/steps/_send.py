"""Sending OS input for a step, and waiting until the page has seen it when it can.

The page counts the trusted events it receives (Browser's input probe, in every frame),
so after a click or keys a step waits until the frame they went to has counted them. It
does not wait for what cannot come: input into a dialog (which holds the page), into a
popup of the browser (a select's list, a menu), into another window (a file chooser), or
a click outside the page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Frame

from verifier._types import Button
from verifier.browser import DIALOG_KEYS, FRAME_INSET_JS, InputKind
from verifier.desktop import WHEEL_PIXELS
from verifier.steps._aim import DEEP_HIT_JS, keys_elsewhere, pointer_elsewhere, popup_open
from verifier.steps._context import StepContext

__all__ = ("click_at", "drag_between", "frame_at", "keys", "pointer_input", "wheel_at")

# The iframe at a viewport point of a frame (null when something else is there).
_IFRAME_AT_JS = """
([x, y]) => {
  DEEP_HIT
  const hit = deepHit(x, y);
  return hit && (hit.localName === 'iframe' || hit.localName === 'frame') ? hit : null;
}
""".replace("DEEP_HIT", DEEP_HIT_JS)
# Whether an iframe is there (one round trip, where a handle takes two: most points show
# the page's own document).
_IFRAME_THERE_JS = _IFRAME_AT_JS.replace(
    "return hit && (hit.localName", "return !!hit && (hit.localName"
)
# Where a point of the frame around an iframe is in the iframe's viewport.
_INSIDE_JS = """
(el, [x, y]) => {
  INSET
  const r = el.getBoundingClientRect(), [insetX, insetY] = frameInset(el);
  return [x - r.x - insetX, y - r.y - insetY];
}
""".replace("INSET", FRAME_INSET_JS)
_FOCUSED_FRAME_JS = """
() => {
  let a = document.activeElement;
  while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
  return a && (a.localName === 'iframe' || a.localName === 'frame') ? a : null;
}
"""


def frame_at(
    ctx: StepContext, point: tuple[int, int], *, origin: tuple[int, int] | None = None
) -> tuple[Frame, float, float]:
    """The frame that shows screen ``point``, and the point in its viewport (``origin``:
    the viewport's top-left on the screen, when the caller knows it already)."""
    page = ctx.browser.page
    frame = page.main_frame
    ox, oy = origin if origin is not None else ctx.browser.place().viewport[:2]
    x, y = float(point[0] - ox), float(point[1] - oy)
    try:
        for _ in range(10):  # frames nest; ten deep is plenty
            if not frame.evaluate(_IFRAME_THERE_JS, [x, y]):
                break
            handle = frame.evaluate_handle(_IFRAME_AT_JS, [x, y])
            element = handle.as_element()
            child = element.content_frame() if element is not None else None
            if element is None or child is None:
                handle.dispose()
                break
            inner = element.evaluate(_INSIDE_JS, [x, y])
            handle.dispose()
            frame, x, y = child, float(inner[0]), float(inner[1])
    except (PlaywrightError, asyncio.CancelledError):
        pass  # the page changed under us (or a dialog holds it): the outer frame will do
    return frame, x, y


def _focused_frame(ctx: StepContext) -> Frame:
    frame = ctx.browser.page.main_frame
    try:
        for _ in range(10):
            handle = frame.evaluate_handle(_FOCUSED_FRAME_JS)
            element = handle.as_element()
            child = element.content_frame() if element is not None else None
            handle.dispose()
            if child is None:
                break
            frame = child
    except (PlaywrightError, asyncio.CancelledError):
        pass
    return frame


def _after_dialog(ctx: StepContext, timeout: float) -> None:
    """Input was sent while a dialog was open: wait (briefly) until it has closed."""
    event = ctx.browser.dialog
    if event is not None:
        ctx.browser.wait_dialog_closed(event, timeout=min(timeout, 1.0))


def click_at(
    ctx: StepContext,
    point: tuple[int, int],
    *,
    button: Button = "left",
    count: int = 1,
    frame: Frame | None = None,
    timeout: float,
) -> None:
    """Click at a screen point; wait until the page saw it (``frame``: the frame aimed
    at, found from the point when not given)."""

    def send() -> int:
        ctx.desktop.click(*point, button=button, count=count)
        return count

    pointer_input(ctx, point, send, timeout=timeout, frame=frame)


def pointer_input(
    ctx: StepContext,
    point: tuple[int, int],
    send: Callable[[], int],
    *,
    timeout: float,
    frame: Frame | None = None,
) -> None:
    """Send pointer input that ends in button releases at a screen ``point`` (``send``
    returns how many); wait until the page saw them (``frame``: the frame aimed at,
    found from the point when not given)."""
    ctx.browser.sent_input()
    if ctx.browser.dialog is not None:
        send()
        _after_dialog(ctx, timeout)
        return
    if frame is None:
        # A point, not an element the step aimed at: the page sees the input only when
        # its window is there (not a popup list, a chooser, the browser's own bar).
        if pointer_elsewhere(ctx, point):
            send()
            ctx.browser.sync()
            return
        frame = frame_at(ctx, point)[0]
    mark = ctx.browser.input_mark(frame)
    releases = send()
    if releases:
        ctx.browser.wait_input(
            mark,
            "mouseup",
            releases,
            timeout=min(timeout, 2.0),
            frame=frame,
            elsewhere=lambda: pointer_elsewhere(ctx, point),
        )
    ctx.browser.sync()  # a dialog or tab the input opened is known before anything asks


def drag_between(
    ctx: StepContext,
    start: tuple[int, int],
    stop: tuple[int, int],
    *,
    timeout: float,
    send: Callable[[], object] | None = None,
) -> None:
    """Press at ``start``, move, release at ``stop``; an HTML5 drag ends in dragend
    (``send``: how the pointer goes, when not straight there)."""
    ctx.browser.sent_input()
    frame = frame_at(ctx, start)[0] if ctx.browser.dialog is None else None
    mark = ctx.browser.input_mark(frame) if frame is not None else None
    if send is None:
        ctx.desktop.drag(start, stop)
    else:
        send()
    ctx.browser.wait_input(
        mark,
        ("mouseup", "dragend"),
        1,
        timeout=min(timeout, 2.0),
        frame=frame,
        elsewhere=lambda: pointer_elsewhere(ctx, stop),
    )


def keys(ctx: StepContext, send: Callable[[], int], *, timeout: float, names: str = "") -> None:
    """Send keys (``send()`` returns the key releases it sent) to whatever has the focus;
    wait until the page saw them when they went to it (``names``: the key pressed, to
    tell whether it answers an open dialog)."""
    ctx.browser.sent_input()
    if ctx.browser.dialog is not None:
        send()
        if names.lower().rsplit("+", 1)[-1] in DIALOG_KEYS:
            _after_dialog(ctx, timeout)
        return
    if popup_open(ctx):  # the keys go to the browser's list or menu, never to the page
        send()
        ctx.browser.sync()
        return
    frame = _focused_frame(ctx)
    mark = ctx.browser.input_mark(frame)
    releases = send()
    kind: InputKind = "keyup"
    ctx.browser.wait_input(
        mark, kind, releases, timeout=timeout, frame=frame, elsewhere=lambda: keys_elsewhere(ctx)
    )
    ctx.browser.sync()  # a dialog or tab the keys opened is known before anything asks


def wheel_at(
    ctx: StepContext,
    point: tuple[int, int],
    notches_x: int,
    notches_y: int,
    *,
    timeout: float,
    frame: Frame | None = None,
) -> None:
    """Turn the wheel at ``point`` by whole notches, one at a time, each seen by the page
    before the next (in ``frame``, the one at the point: found when not given).

    Chromium merges wheel events that come in together and scrolls a merged one by at
    most a page: ten notches sent at once scrolled 713 px, not 1200 (measured here).
    """
    ctx.browser.sent_input()
    frame = frame or frame_at(ctx, point)[0]
    seen = True
    for dx, dy in [(0, 1 if notches_y > 0 else -1)] * abs(notches_y) + [
        (1 if notches_x > 0 else -1, 0)
    ] * abs(notches_x):
        mark = ctx.browser.input_mark(frame) if seen else None
        ctx.desktop.scroll(dx * WHEEL_PIXELS, dy * WHEEL_PIXELS, x=point[0], y=point[1])
        if mark is not None:
            seen = ctx.browser.wait_input(
                mark,
                "wheel",
                1,
                timeout=min(timeout, 2.0),
                frame=frame,
                elsewhere=lambda: pointer_elsewhere(ctx, point),
            )
