"""The desktop: an X display with a window manager, OS-level input and screen capture.

Knows nothing of recipes or browsers.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from Xlib.error import ConnectionClosedError, XError

from verifier._process import Owner, scratch_root
from verifier._types import Box, Button, Image
from verifier._xauth import authority_of, display_env
from verifier.desktop._capture import PNG_PARAMS, ScreenCapture, downscale, save_png, write_png
from verifier.desktop._damage import DamageWatch
from verifier.desktop._display import (
    WindowManager,
    XServer,
    open_display,
    xvfb_screen,
)
from verifier.desktop._input import WHEEL_PIXELS, Input
from verifier.desktop._keys import MODIFIERS, key_name
from verifier.desktop._windows import Window, Windows
from verifier.errors import DisplayError, InputError

__all__ = (
    "MODIFIERS",
    "PNG_PARAMS",
    "WHEEL_PIXELS",
    "Desktop",
    "Window",
    "display_env",
    "downscale",
    "key_name",
    "save_png",
    "write_png",
)

_log = logging.getLogger(__name__)


class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class Desktop(Owner):
    """An X desktop to drive like a person: Xvfb + openbox of our own, or an existing display.

    :param screen: ``WIDTHxHEIGHT[x24]`` for our own Xvfb (default ``1280x800``).
    :param display: attach to this existing display (``":0"``) instead of starting Xvfb.
    :param window_manager: start openbox on our own Xvfb (ignored when attaching).
    :param log_dir: where Xvfb's and openbox's output go (a temporary folder if None).
    :raises DisplayError: when the display cannot be started or reached.
    """

    def __init__(
        self,
        screen: str = "1280x800",
        *,
        display: str | None = None,
        window_manager: bool = True,
        log_dir: Path | None = None,
    ) -> None:
        self._screen = xvfb_screen(screen)
        self._attach = display
        self._window_manager = window_manager
        self._log_dir = log_dir
        self._state = _State.UNOPENED
        self._stack = contextlib.ExitStack()
        self.display = display or ""
        self._input: Input | None = None
        self._capture: ScreenCapture | None = None
        self._damage: DamageWatch | None = None
        self._windows: Windows | None = None
        self._xserver: XServer | None = None
        self._wm: WindowManager | None = None
        self._launched = False

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, *, managed: bool = True) -> Desktop:
        """Start (or attach to) the display; with ``managed``, also wait until its window
        manager manages it, else :meth:`wait_managed` does (a browser can start
        meanwhile, as long as it opens no window: ~70 ms of a cold start)."""
        if self._state is _State.CLOSED:
            msg = "cannot reopen a Desktop once it has been closed; create a new one"
            raise DisplayError(msg)
        if self._state is not _State.OPENED:
            try:
                self._launch()
                self._start()
            except BaseException:
                self._stack.close()
                self._state = _State.CLOSED
                raise
            self._state = _State.OPENED
        if managed:
            self.wait_managed()
        return self

    def wait_managed(self) -> None:
        """Wait until our window manager manages the display (see :meth:`start`).

        :raises DisplayError: it exited, or did not within 10 s (the desktop is closed).
        """
        if self._wm is None:
            return
        try:
            self._wm.wait_ready()
        except BaseException:
            self.close()
            raise

    def launch(self) -> Desktop:
        """Spawn our Xvfb without waiting for it; :meth:`start` then waits and does the rest.

        Lets the caller start something slow that needs no display meanwhile (Xvfb takes
        ~60 ms to come up).
        """
        if self._state is _State.UNOPENED:
            try:
                self._launch()
            except BaseException:
                self._stack.close()
                self._state = _State.CLOSED
                raise
        return self

    def _launch(self) -> None:
        if self._launched:
            return
        self._launched = True
        if self._log_dir is None:
            tmp = self._stack.enter_context(
                tempfile.TemporaryDirectory(prefix="x-", dir=scratch_root())
            )
            self._log_dir = Path(tmp)
        self._log_dir.mkdir(parents=True, exist_ok=True)
        if self._attach is None:
            width, height, depth = self._screen
            self._xserver = XServer(
                width=width, height=height, depth=depth, log=self._log_dir / "xvfb.log"
            )
            self._stack.callback(self._xserver.close)

    def _start(self) -> None:
        assert self._log_dir is not None
        if self._xserver is not None:
            self.display = self._xserver.wait_ready()
            if self._window_manager:
                self._wm = WindowManager(self.display, log=self._log_dir / "openbox.log")
                self._stack.callback(self._wm.close)
        else:
            open_display(self._attach or "").close()  # fail early with a clear message
        self._capture = ScreenCapture(self.display)
        self._stack.callback(self._capture.close)
        self._input = Input(self.display)
        self._stack.callback(self._input.close)
        self._windows = Windows(self.display)
        self._stack.callback(self._windows.close)
        watch = DamageWatch(self.display)
        if watch.available:
            self._damage = watch
            self._stack.callback(watch.close)
        _log.info("desktop on %s, %dx%d", self.display, *self.size)

    def close(self) -> None:
        """Stop input, capture, the window manager and Xvfb (if ours); idempotent."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        self._stack.close()

    # -- queries ------------------------------------------------------------------------

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the screen in pixels."""
        return self._cap().size

    @property
    def env(self) -> dict[str, str]:
        """Environment for a process that should draw on this desktop (DISPLAY, and the
        XAUTHORITY that holds its cookie when the X server is ours)."""
        return display_env(self.display)

    @property
    def xauthority(self) -> Path | None:
        """The file holding this display's cookie (None when attached to another's)."""
        return authority_of(self.display)

    def reset(self) -> None:
        """Leave input as a fresh display has it, for another recipe on this desktop:
        keys and buttons released, Caps/Num Lock off, the pointer in the middle of the
        screen, the clipboard and every selection empty; the keymap is restored by the
        next :meth:`prepare_typing` (which the next recipe's stage calls before any step),
        but for what that recipe types and what was bound to be kept.

        :raises DisplayError: the display does not answer (it cannot be used again).
        """
        width, height = self.size
        try:
            self._in().reset((width // 2, height // 2))
        except (InputError, XError, OSError, ConnectionClosedError) as exc:
            msg = f"the display {self.display} could not be reset for the next recipe: {exc}"
            raise DisplayError(msg) from exc

    def check_alive(self) -> None:
        """Raise DisplayError if our Xvfb has died."""
        if self._xserver is not None:
            self._xserver.check_alive()

    def _cap(self) -> ScreenCapture:
        if self._capture is None:
            msg = "the Desktop is not started; use 'with Desktop() as desk:' or call start()"
            raise DisplayError(msg)
        return self._capture

    def _in(self) -> Input:
        if self._input is None:
            msg = "the Desktop is not started; use 'with Desktop() as desk:' or call start()"
            raise DisplayError(msg)
        return self._input

    # -- capture ------------------------------------------------------------------------

    def screenshot(self) -> Image:
        """The whole screen as an HxWx3 RGB ``numpy.uint8`` array."""
        return self._cap().grab()

    def wait_stable(
        self,
        *,
        quiet: float = 0.05,
        timeout: float = 1.0,
        region: Box | None = None,
        since: float | None = None,
    ) -> Image:
        """Wait until the screen has not changed for ``quiet`` seconds (at most ``timeout``).

        Returns the whole screen's last frame. Used before evidence screenshots, so a
        capture shows what the app drew in answer to a step, not a frame in flight.
        ``region`` (x, y, width, height) limits the wait to the part that matters, say a
        browser's viewport and not its loading spinner. The quiet time counts from the
        last change, and from ``since`` (a ``time.monotonic()`` value, by default the
        call) at the earliest, giving an app that time to start drawing. The X server
        reports every drawing as it happens (DAMAGE), so nothing is grabbed until the
        screen holds still, and changes before the call count; on a display without
        DAMAGE, grabs from the call on are compared instead.
        """
        return self.settle(quiet=quiet, timeout=timeout, region=region, since=since)[0]

    def settle(
        self,
        *,
        quiet: float = 0.05,
        timeout: float = 1.0,
        region: Box | None = None,
        since: float | None = None,
    ) -> tuple[Image, bool]:
        """:meth:`wait_stable`, also saying whether the screen held still in time."""
        cap = self._cap()
        if region is not None:
            region = _clip(region, cap.size)
        if self._damage is None or not self._damage.running:
            return _hold_still(cap, quiet, timeout, region)
        start = time.monotonic() if since is None else since
        still = self._damage.wait_quiet(quiet, timeout, region, start)
        return cap.grab(), still

    def changed_since(self, since: float, region: Box | None = None) -> bool:
        """Whether the screen (``region`` of it) changed after ``since`` (a
        ``time.monotonic()`` value); True when it cannot be told (no DAMAGE here)."""
        if region is not None and self._capture is not None:
            region = _clip(region, self._capture.size)
        if self._damage is None or not self._damage.running:
            return True
        return self._damage.changed_since(since, region)

    def save_screenshot(self, path: Path) -> Path:
        """Capture the screen and write it as PNG to ``path``."""
        return save_png(self.screenshot(), path)

    # -- input ---------------------------------------------------------------------------

    def _check_point(self, x: int, y: int) -> None:
        width, height = self.size
        if not (0 <= x < width and 0 <= y < height):
            msg = f"point ({x}, {y}) is outside the {width}x{height} screen"
            raise DisplayError(msg)

    @property
    def presses(self) -> int:
        """How many keys and mouse buttons were pressed so far (not the pointer's moves,
        nor the wheel): whether a step acted, when its tab closed under it."""
        return self._input.presses if self._input is not None else 0

    def move(self, x: int, y: int) -> None:
        self._check_point(x, y)
        self._in().move(x, y)

    def click(self, x: int, y: int, *, button: Button = "left", count: int = 1) -> None:
        """Click at screen point (x, y); ``count=2`` double-clicks."""
        self._check_point(x, y)
        self._in().click(x, y, button=button, count=count)

    def double_click(self, x: int, y: int) -> None:
        self.click(x, y, count=2)

    def mouse_down(self, button: Button = "left") -> None:
        self._in().button(button, down=True)

    def mouse_up(self, button: Button = "left") -> None:
        self._in().button(button, down=False)

    def drag(self, start: tuple[int, int], end: tuple[int, int]) -> None:
        self._check_point(*start)
        self._check_point(*end)
        self._in().drag(start, end)

    def scroll(self, dx: int, dy: int, *, x: int | None = None, y: int | None = None) -> None:
        """Scroll by about (dx, dy) pixels with the wheel, at (x, y) if given."""
        at = None
        if x is not None and y is not None:
            self._check_point(x, y)
            at = (x, y)
        self._in().scroll(dx, dy, at=at)

    def type(self, text: str) -> int:
        """Type any Unicode text as real key events; returns the key releases sent."""
        return self._in().type(text)

    def prepare_typing(self, text: str, *, keep: bool = False) -> None:
        """Bind now the characters ``text`` needs that the keyboard map lacks.

        Typing such a character changes the keymap, and every X client re-reads it
        (Chromium takes about 25 ms a change, holding up the input after it). Called
        before the browser starts, with everything a run will type, it costs nothing.
        With ``keep``, :meth:`reset` leaves these bound (a suite's: what all its recipes
        type, bound before its Chromium reads the keymap for its key events).
        """
        self._in().prepare(text, keep=keep)

    def key(self, combo: str) -> int:
        """Press a key or combo (``Enter``, ``Control+a``, ``ctrl+shift+t``); returns releases."""
        return self._in().key(combo)

    def key_down(self, combo: str) -> None:
        self._in().key_down(combo)

    def key_up(self, combo: str) -> None:
        self._in().key_up(combo)

    def cursor_position(self) -> tuple[int, int]:
        return self._in().position()

    # -- windows ----------------------------------------------------------------------------

    def _win(self) -> Windows:
        if self._windows is None:
            msg = "the Desktop is not started; use 'with Desktop() as desk:' or call start()"
            raise DisplayError(msg)
        return self._windows

    def window_at(self, x: int, y: int) -> Window | None:
        """The window a click at screen point (x, y) would reach: the topmost one that
        takes input there (None: the bare desktop)."""
        self._check_point(x, y)
        return self._win().at(x, y)

    def windows(self) -> list[Window]:
        """The windows on screen, topmost first."""
        return self._win().stack()

    def focused_window(self) -> Window | None:
        """The window that keys go to (None: no window has the focus)."""
        return self._win().focused()

    def activate_window(self, window: int) -> None:
        """Bring the window with X id ``window`` to the front, through the window manager."""
        self._win().activate(window)

    def wait_windows(self, ready: Callable[[list[Window]], bool], *, timeout: float) -> bool:
        """Wait until ``ready(windows())`` holds, woken by the X server whenever a window
        maps, unmaps or moves; False when ``timeout`` seconds pass first."""
        return self._win().wait(ready, timeout)


def _clip(box: Box, size: tuple[int, int]) -> Box:
    x, y, w, h = box
    x0, y0 = min(max(x, 0), size[0]), min(max(y, 0), size[1])
    return x0, y0, max(0, min(x + w, size[0]) - x0), max(0, min(y + h, size[1]) - y0)


def _hold_still(
    cap: ScreenCapture, quiet: float, timeout: float, region: Box | None
) -> tuple[Image, bool]:
    """Grab until ``quiet`` s pass without a change in ``region`` (or ``timeout``)."""
    x, y, w, h = region if region is not None else (0, 0, *cap.size)
    frame = cap.grab()
    start = last_change = time.monotonic()
    while True:
        now = time.monotonic()
        if now - last_change >= quiet:
            return frame, True
        if now - start >= timeout:
            return frame, False
        time.sleep(0.004)
        nxt = cap.grab()
        if not np.array_equal(nxt[y : y + h, x : x + w], frame[y : y + h, x : x + w]):
            last_change = time.monotonic()
        frame = nxt
