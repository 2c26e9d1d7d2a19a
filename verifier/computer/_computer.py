"""The computer a model drives: screenshots at model size, OS-level input at model points.

Every action answers with the screen once it has settled: the page has seen the input
(a handshake with the browser, when there is one) and the screen has held still for a
quiet spell, within a bound. Never a blind sleep. Input goes out as a recipe step's does
(``verifier.steps``: the same frame at the point, the same waits for the page), so an
agent's click is a recipe's click.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from verifier._types import Button
from verifier.browser import DIALOG_KEYS, DIALOG_PAINT_S
from verifier.computer._image import (
    JPEG_QUALITY,
    EncodedImage,
    ImageFormat,
    ScreenScale,
    encode,
    fit_within,
)
from verifier.computer._keys import held_keys, xdotool_keys
from verifier.computer._page import Target, target_at
from verifier.errors import InputError
from verifier.steps import StepContext, click_at, drag_between, keys, pointer_input, wheel_at

if TYPE_CHECKING:
    from playwright.sync_api import Frame

    from verifier._types import Image
    from verifier.browser import Browser
    from verifier.desktop import Desktop

__all__ = (
    "Button",
    "Computer",
    "MAX_DURATION_S",
    "Op",
    "Outcome",
    "SCROLL_DIRECTIONS",
    "ScrollDirection",
)

# Actions that send no input (a tab the page opens meanwhile does not take the front
# from one switched to).
_LOOKS = frozenset({"wait", "goto", "switch_tab"})


ScrollDirection = Literal["up", "down", "left", "right"]
SCROLL_DIRECTIONS: tuple[ScrollDirection, ...] = ("up", "down", "left", "right")
NOTCH_PIXELS = 120  # Chromium on X11 scrolls 120 CSS px a wheel notch (Desktop.scroll)
MAX_DURATION_S = 100.0
_DRAG_STEP_S = 0.016  # pacing of drag motions, so the page sees a gesture (as Desktop.drag)


@dataclass(frozen=True, slots=True)
class Op:
    """What an action did, in screen pixels: for evidence and for the replay recipe."""

    kind: str
    points: tuple[tuple[int, int], ...] = ()
    button: Button = "left"
    count: int = 1
    text: str | None = None
    keys: tuple[str, ...] = ()
    modifiers: str | None = None
    delta: tuple[int, int] = (0, 0)
    duration: float | None = None
    box: tuple[int, int, int, int] | None = None
    target: Target | None = None
    check: Mapping[str, Any] | None = None  # an ``expect``: the recipe step it ran
    failed: str | None = None  # ... and why it failed (None: it passed)


@dataclass(slots=True)
class Outcome:
    """An action's result: the settled screen (full size), what to show the model, timings."""

    op: Op
    frame: Image
    view: Image  # what the model sees: ``frame`` at model size, or a zoomed crop
    before: Image | None = None
    settled: bool = True
    cursor: tuple[int, int] | None = None  # model coordinates, for cursor_position
    note: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    image_format: ImageFormat = "auto"
    quality: int = JPEG_QUALITY
    _image: EncodedImage | None = None

    def image(self) -> EncodedImage:
        """``view`` encoded for the model (once)."""
        if self._image is None:
            t0 = time.perf_counter()
            self._image = encode(self.view, self.image_format, quality=self.quality)
            self.timings["encode_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        return self._image


def _coerce_modifiers(modifiers: str | None) -> str | None:
    return held_keys(modifiers) if modifiers else None


class Computer:
    """A desktop as a computer-use model sees and drives it.

    Coordinates are in screenshot (model) pixels; with ``scale`` the screenshots are the
    screen shrunk to fit inside that size, and every point is mapped back exactly.

    :param desktop: a started :class:`~verifier.desktop.Desktop`.
    :param browser: the browser on it, if any: actions then wait until the page has seen
        their input, and clicks learn which element they hit (for the replay recipe).
    :param scale: (width, height) to fit screenshots inside, or None for the screen size.
    :param image_format: ``auto`` (fast PNG, JPEG when much smaller), ``png``, ``jpeg``, ``webp``.
    :param settle_quiet: seconds the screen must hold still for a screenshot to be settled.
    :param settle_timeout: the most seconds to wait for that after an action.
    """

    def __init__(
        self,
        desktop: Desktop,
        *,
        browser: Browser | None = None,
        scale: tuple[int, int] | None = None,
        image_format: ImageFormat = "auto",
        quality: int = JPEG_QUALITY,
        settle_quiet: float = 0.05,
        settle_timeout: float = 1.0,
        handshake_timeout: float = 1.0,
    ) -> None:
        self.desktop = desktop
        self.browser = browser
        self.scale = ScreenScale.fit(desktop.size, scale)
        self.image_format: ImageFormat = image_format
        self.quality = quality
        self.settle_quiet = settle_quiet
        self.settle_timeout = settle_timeout
        self.handshake_timeout = handshake_timeout

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the screenshots, the space model coordinates live in."""
        return self.scale.model

    # -- observing ---------------------------------------------------------------------

    def screenshot(self) -> Outcome:
        """The screen now (no waiting: the last action already waited for it to settle)."""
        frame = self.desktop.screenshot()
        return self._outcome(Op("screenshot"), frame, None, True, {})

    def cursor_position(self) -> Outcome:
        """Where the pointer is, in model coordinates (``Outcome.cursor``)."""
        sx, sy = self.desktop.cursor_position()
        frame = self.desktop.screenshot()
        out = self._outcome(Op("cursor_position", points=((sx, sy),)), frame, None, True, {})
        out.cursor = self.scale.to_model(sx, sy)
        return out

    def zoom(self, region: tuple[int, int, int, int]) -> Outcome:
        """A region [x0, y0, x1, y1] of the screen at full resolution (shrunk only to fit)."""
        box = self.scale.region_to_screen(region)
        frame = self.desktop.screenshot()
        x0, y0, x1, y1 = box
        crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
        op = Op("zoom", box=box)
        return self._outcome(op, frame, None, True, {}, view=fit_within(crop, self.size))

    def wait(self, duration: float = 1.0) -> Outcome:
        """Let ``duration`` seconds pass (the model asked to), then the settled screen."""
        seconds = _duration(duration, "wait")

        def do(_ctx: StepContext | None, _frame: Frame | None) -> None:
            time.sleep(seconds)

        return self._act(Op("wait", duration=seconds), do)

    # -- the browser -------------------------------------------------------------------

    def goto(self, url: str, *, replay: str | None = None) -> Outcome:
        """Load ``url`` in the browser's active tab; the settled screen once it loaded.

        :param replay: what the session's recipe should ``goto`` (default: ``url``).
        """
        browser = self.require_browser("open a URL")

        def do(_ctx: StepContext | None, _frame: Frame | None) -> None:
            browser.open(url)

        return self._act(Op("goto", text=replay or url), do)

    def switch_tab(self, index: int) -> Outcome:
        """Bring tab ``index`` (0 = the first) to the front; the settled screen then."""
        browser = self.require_browser("switch tabs")

        def do(_ctx: StepContext | None, _frame: Frame | None) -> None:
            tabs = browser.tabs
            if not 0 <= index < len(tabs):
                msg = f"there is no tab {index}; the tabs are 0 to {len(tabs) - 1}"
                raise InputError(msg)
            browser.switch_tab(tabs[index])

        return self._act(Op("switch_tab", count=index), do)

    def require_browser(self, what: str) -> Browser:
        """The browser, or an InputError saying ``what`` cannot be done without one."""
        if self.browser is None:
            msg = f"cannot {what}: this desktop has no browser"
            raise InputError(msg)
        return self.browser

    # -- mouse -------------------------------------------------------------------------

    def _point(self, coordinate: Sequence[int] | None, what: str = "coordinate") -> tuple[int, int]:
        if coordinate is None:
            return self.desktop.cursor_position()
        return self.scale.to_screen(int(coordinate[0]), int(coordinate[1]), what=what)

    def click(
        self,
        coordinate: Sequence[int] | None = None,
        *,
        button: Button = "left",
        count: int = 1,
        modifiers: str | None = None,
    ) -> Outcome:
        """Click (``count`` 2 or 3: double, triple) at a point, or where the pointer is."""
        if count not in (1, 2, 3):
            msg = f"click count must be 1, 2 or 3 (got {count!r})"
            raise InputError(msg)
        point = self._point(coordinate)
        mods = _coerce_modifiers(modifiers)
        op = Op("click", points=(point,), button=button, count=count, modifiers=mods)

        def do(ctx: StepContext | None, frame: Frame | None) -> None:
            with self._holding(mods):
                if ctx is None:
                    self.desktop.click(*point, button=button, count=count)
                else:
                    timeout = self.handshake_timeout
                    click_at(ctx, point, button=button, count=count, frame=frame, timeout=timeout)

        return self._act(op, do, aim=point)

    def move(self, coordinate: Sequence[int]) -> Outcome:
        point = self._point(coordinate)

        def do(_ctx: StepContext | None, _frame: Frame | None) -> None:
            self.desktop.move(*point)

        return self._act(Op("move", points=(point,)), do)

    def mouse_down(
        self, coordinate: Sequence[int] | None = None, *, button: Button = "left"
    ) -> Outcome:
        point = self._point(coordinate)

        def do(_ctx: StepContext | None, _frame: Frame | None) -> None:
            if coordinate is not None:
                self.desktop.move(*point)
            self.desktop.mouse_down(button)

        return self._act(Op("mouse_down", points=(point,), button=button), do)

    def mouse_up(
        self, coordinate: Sequence[int] | None = None, *, button: Button = "left"
    ) -> Outcome:
        point = self._point(coordinate)

        def send() -> int:
            if coordinate is not None:
                self.desktop.move(*point)
            self.desktop.mouse_up(button)
            return 1

        def do(ctx: StepContext | None, _frame: Frame | None) -> None:
            if ctx is None:
                send()
            else:
                pointer_input(ctx, point, send, timeout=self.handshake_timeout)

        return self._act(Op("mouse_up", points=(point,), button=button), do)

    def drag(
        self, path: Sequence[Sequence[int] | None], *, modifiers: str | None = None
    ) -> Outcome:
        """Press at the first point, move through the others, release at the last.

        A None point is where the pointer is now.
        """
        if len(path) < 2:
            msg = f"a drag needs at least 2 points (got {len(path)})"
            raise InputError(msg)
        points = tuple(self._point(p, f"drag point {i + 1}") for i, p in enumerate(path))
        mods = _coerce_modifiers(modifiers)

        def send() -> None:
            if len(points) == 2:
                self.desktop.drag(points[0], points[1])
            else:
                self._drag_path(points)

        def do(ctx: StepContext | None, _frame: Frame | None) -> None:
            with self._holding(mods):
                if ctx is None:
                    send()
                else:
                    timeout = self.handshake_timeout
                    drag_between(ctx, points[0], points[-1], timeout=timeout, send=send)

        return self._act(Op("drag", points=points, modifiers=mods), do)

    def _drag_path(self, points: Sequence[tuple[int, int]]) -> None:
        self.desktop.move(*points[0])
        self.desktop.mouse_down("left")
        try:
            for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
                steps = max(1, min(12, max(abs(x1 - x0), abs(y1 - y0)) // 20))
                for i in range(1, steps + 1):
                    time.sleep(_DRAG_STEP_S)
                    self.desktop.move(
                        round(x0 + (x1 - x0) * i / steps), round(y0 + (y1 - y0) * i / steps)
                    )
            time.sleep(_DRAG_STEP_S)
        finally:
            self.desktop.mouse_up("left")

    def scroll(
        self,
        direction: ScrollDirection,
        amount: int = 3,
        *,
        coordinate: Sequence[int] | None = None,
        modifiers: str | None = None,
    ) -> Outcome:
        """Turn the wheel ``amount`` notches (120 px each) ``direction``, at a point."""
        if direction not in SCROLL_DIRECTIONS:
            choices = ", ".join(SCROLL_DIRECTIONS)
            msg = f"scroll direction must be one of {choices} (got {direction!r})"
            raise InputError(msg)
        if not 0 <= amount <= 1000:
            msg = f"scroll amount must be 0..1000 wheel notches (got {amount!r})"
            raise InputError(msg)
        px = amount * NOTCH_PIXELS
        dx, dy = {"up": (0, -px), "down": (0, px), "left": (-px, 0), "right": (px, 0)}[direction]
        return self._scroll_screen(dx, dy, coordinate, modifiers)

    def scroll_by(
        self,
        dx: int,
        dy: int,
        *,
        coordinate: Sequence[int] | None = None,
        modifiers: str | None = None,
    ) -> Outcome:
        """Scroll by about (dx, dy) model pixels (rounded to wheel notches) at a point."""
        sdx, sdy = self.scale.length_to_screen(int(dx), int(dy))
        return self._scroll_screen(sdx, sdy, coordinate, modifiers)

    def _scroll_screen(
        self, dx: int, dy: int, coordinate: Sequence[int] | None, modifiers: str | None
    ) -> Outcome:
        point = self._point(coordinate)
        mods = _coerce_modifiers(modifiers)

        def do(ctx: StepContext | None, _frame: Frame | None) -> None:
            with self._holding(mods):
                if ctx is None:
                    self.desktop.scroll(dx, dy, x=point[0], y=point[1])
                elif dx or dy:  # a notch at a time, each seen by the page (as a step turns it)
                    notches = _notches(dx), _notches(dy)
                    wheel_at(ctx, point, *notches, timeout=self.handshake_timeout)

        op = Op("scroll", points=(point,), delta=(dx, dy), modifiers=mods)
        return self._act(op, do)

    # -- keyboard ----------------------------------------------------------------------

    def type(self, text: str) -> Outcome:
        """Type any Unicode text as real key events."""
        if not isinstance(text, str) or not text:
            msg = "type: 'text' must be a non-empty string"
            raise InputError(msg)
        return self._act(Op("type", text=text), self._keys(lambda: self.desktop.type(text)))

    def key(self, keys: str | Sequence[str]) -> Outcome:
        """Press keys: xdotool syntax (``"ctrl+a BackSpace"``) or a list of combos in turn."""
        combos = (
            xdotool_keys(keys)
            if isinstance(keys, str)
            else [c for k in keys for c in xdotool_keys(k)]
        )

        def send() -> int:
            return sum(self.desktop.key(combo) for combo in combos)

        # A key that answers a dialog waits until it closed; a key the page never sees
        # (the browser's own shortcuts) costs at most 0.3 s.
        answers = next((c for c in combos if _answers_dialog(c)), combos[-1] if combos else "")
        timeout = min(self.handshake_timeout, 0.3)
        return self._act(Op("key", keys=tuple(combos)), self._keys(send, answers, timeout))

    def hold_key(self, keys: str, duration: float) -> Outcome:
        """Hold a key or combo down for ``duration`` seconds, then release it."""
        combos = xdotool_keys(keys)
        seconds = _duration(duration, "hold_key")

        def send() -> int:
            for combo in combos:
                self.desktop.key_down(combo)
            try:
                time.sleep(seconds)
            finally:
                for combo in reversed(combos):
                    self.desktop.key_up(combo)
            return len(combos)

        op = Op("hold_key", keys=tuple(combos), duration=seconds)
        return self._act(op, self._keys(send, combos[-1] if combos else ""))

    def _keys(
        self, send: Callable[[], int], names: str = "", timeout: float | None = None
    ) -> Callable[[StepContext | None, Frame | None], None]:
        """Keys sent as a recipe step sends them (to whatever has the focus; waiting
        until the page saw them, or a dialog they answer closed)."""

        def do(ctx: StepContext | None, _frame: Frame | None) -> None:
            if ctx is None:
                send()
            else:
                wait = self.handshake_timeout if timeout is None else timeout
                keys(ctx, send, timeout=wait, names=names)

        return do

    @contextlib.contextmanager
    def _holding(self, combo: str | None) -> Iterator[None]:
        if combo is None:
            yield
            return
        self.desktop.key_down(combo)
        try:
            yield
        finally:
            self.desktop.key_up(combo)

    # -- the action cycle --------------------------------------------------------------

    def _context(self) -> StepContext | None:
        """What the steps' input layer acts with, while there is a browser to ask."""
        browser = self.browser
        if browser is None or browser.dead is not None:
            return None
        return StepContext(desktop=self.desktop, browser=browser, base_url=None)

    def _act(
        self,
        op: Op,
        do: Callable[[StepContext | None, Frame | None], None],
        *,
        aim: tuple[int, int] | None = None,
    ) -> Outcome:
        """Send ``op``'s input (``do``) and answer with the settled screen; ``aim``: the
        point whose element the action names (found first, with its frame)."""
        t0 = time.perf_counter()
        started = time.monotonic()
        before = self.desktop.screenshot()
        ctx = self._context()
        frame = None
        if aim is not None and ctx is not None:
            target, frame = target_at(ctx, aim)
            if target is not None:
                op = replace(op, target=target)
        if ctx is not None and op.kind not in _LOOKS:
            ctx.browser.sent_input()  # a tab this input opens takes the front
        t1 = time.perf_counter()
        do(ctx, frame)  # the input, and the wait until the page saw it
        t2 = time.perf_counter()
        shot, settled = self.settle()
        opened = self.browser.new_dialog(started) if self.browser is not None else None
        if opened is not None:  # the action opened it: the screenshot shows it
            shot, settled = self.desktop.settle(
                quiet=DIALOG_PAINT_S, timeout=self.settle_timeout, since=opened.opened
            )
        t3 = time.perf_counter()
        timings = {
            "probe_ms": (t1 - t0) * 1000,
            "input_ms": (t2 - t1) * 1000,
            "settle_ms": (t3 - t2) * 1000,
        }
        return self._outcome(op, shot, before, settled, timings)

    def settle(self) -> tuple[Image, bool]:
        """The screen once it held still for ``settle_quiet`` s; False if it never did in time."""
        return self.desktop.settle(quiet=self.settle_quiet, timeout=self.settle_timeout)

    def _outcome(
        self,
        op: Op,
        frame: Image,
        before: Image | None,
        settled: bool,
        timings: dict[str, float],
        *,
        view: Image | None = None,
    ) -> Outcome:
        return Outcome(
            op=op,
            frame=frame,
            view=self.scale.image(frame) if view is None else view,
            before=before,
            settled=settled,
            timings={k: round(v, 2) for k, v in timings.items()},
            image_format=self.image_format,
            quality=self.quality,
        )


def _answers_dialog(combo: str) -> bool:
    """Whether a key combo accepts or dismisses a dialog."""
    return combo.lower().rsplit("+", 1)[-1] in DIALOG_KEYS


def _notches(pixels: int) -> int:
    """Wheel notches for about ``pixels`` (at least one for any), signed."""
    n = round(abs(pixels) / NOTCH_PIXELS) or (1 if pixels else 0)
    return n if pixels >= 0 else -n


def _duration(value: float, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= MAX_DURATION_S
    ):
        msg = f"{what}: 'duration' must be 0 to {MAX_DURATION_S:g} seconds (got {value!r})"
        raise InputError(msg)
    return float(value)
