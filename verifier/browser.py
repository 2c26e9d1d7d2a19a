"""Headed Chromium on our display, driven by Playwright for DOM queries only.

Input never goes through Playwright: steps send it through XTest at screen coordinates.
This module maps viewport coordinates to the screen, tells when the page has received
the input we sent (a handshake, not a sleep), and logs what the page says.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal

from playwright.sync_api import (
    Browser as PWBrowser,
)
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Response,
    sync_playwright,
)
from playwright.sync_api import (
    Error as PlaywrightError,
)

from verifier._process import (
    OWNER_ENV,
    Owner,
    ensure_watchdog,
    find_tree,
    kill_tree,
    new_cookie,
)
from verifier._xauth import display_env
from verifier.errors import BrowserError

__all__ = (
    "CHROMIUM",
    "CHROMIUM_FLAGS",
    "ORIGIN_JS",
    "Browser",
    "InputKind",
    "origin_of",
    "prestart_playwright",
    "release_prestarted",
    "start_playwright",
    "stop_playwright",
)

_log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"

# What the page knows of where its viewport is on the screen; see origin_of().
ORIGIN_JS = "[screenX, screenY, outerWidth - innerWidth, outerHeight - innerHeight]"


def origin_of(values: Sequence[float]) -> tuple[int, int]:
    """The screen point of the viewport's top-left pixel, from ORIGIN_JS's values."""
    sx, sy, dw, dh = values
    # Browser UI (tabs, toolbar, infobars) sits above the page; side borders are equal.
    return int(sx) + int(dw) // 2, int(sy) + int(dh)


# Flags for Debian's Chromium in a closed network (see DEVELOPERS.md): without the
# networking ones it floods the network with refused connections.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# How long Chromium may take to close before it is killed (it takes ~0.1 s).
_CLOSE_TIMEOUT = 5.0
_WINDOW_FLAGS = (
    "--start-maximized",
    "--window-position=0,0",
    "--test-type",  # no "unsupported command-line flag" infobar over the page
    "--force-device-scale-factor=1",  # one CSS pixel is one screen pixel
    "--no-default-browser-check",
    "--password-store=basic",  # no keyring prompt
    "--disable-features=Translate,MediaRouter",
    "--hide-crash-restore-bubble",
)

# Counts trusted input events per kind, so that after sending XTest input we can wait
# until the page has seen it. ``doc`` changes with every document (navigation).
_INPUT_PROBE = """
(() => {
  if (window.__verifier) return;
  const s = {doc: Math.random().toString(36).slice(2), mouseup: 0, keyup: 0, wheel: 0};
  Object.defineProperty(window, '__verifier', {value: s, enumerable: false});
  for (const kind of ['mouseup', 'keyup', 'wheel']) {
    addEventListener(kind, (e) => { if (e.isTrusted) s[kind]++; }, {capture: true, passive: true});
  }
})();
"""

InputKind = Literal["mouseup", "keyup", "wheel"]


def _now_iso() -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() % 1 * 1000):03d}Z"
    )


class _ConsoleLog:
    """Appends page events as JSON lines; thread-safe, flushed per line.

    Errors (console errors, page errors) and failed requests are also kept in memory,
    for the checks that read them.
    """

    _KEEP = 10_000  # records kept in memory per kind; the file has them all

    def __init__(self, path: Path, redact: Callable[[str], str] | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._redact = redact
        self._fh: IO[str] = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self.errors: list[dict[str, Any]] = []
        self.failed_requests: list[dict[str, Any]] = []

    def write(self, kind: str, **fields: Any) -> None:
        if self._redact is not None:
            fields = {k: self._redact(v) if isinstance(v, str) else v for k, v in fields.items()}
        record = {"ts": _now_iso(), "type": kind, **fields}
        with self._lock:
            if kind in ("requestfailed", "response"):
                if len(self.failed_requests) < self._KEEP:
                    self.failed_requests.append(record)
            elif fields.get("level") == "error" and len(self.errors) < self._KEEP:
                self.errors.append(record)
            if not self._fh.closed:
                self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


_prestarted: Playwright | None = None  # from prestart_playwright(), not yet taken


def prestart_playwright() -> None:
    """Start the driver now for the next :func:`start_playwright` on this thread to take
    (the CLI does, while Python imports the rest of verifier)."""
    global _prestarted
    if _prestarted is None:
        _prestarted = _start_driver()


def release_prestarted() -> None:
    """Stop a prestarted driver that nobody took."""
    global _prestarted
    if _prestarted is not None:
        stop_playwright(_prestarted)
        _prestarted = None


def start_playwright() -> Playwright:
    """Start Playwright's driver (~0.3 s of Node.js starting), or take the prestarted one.

    It needs no display, so a caller can start it while Xvfb comes up and hand it to
    :class:`Browser`.
    """
    global _prestarted
    if _prestarted is not None:
        playwright, _prestarted = _prestarted, None
        return playwright
    return _start_driver()


def _start_driver() -> Playwright:
    """Start Playwright's driver.

    Node compiles the driver's JavaScript on every start; with a compile cache the driver
    is up in ~200 ms instead of ~270 (measured here). The driver inherits os.environ, so
    the variable is set around its start and then restored. A cache that cannot be
    written is skipped by Node, silently. A driver that does not start is a
    :class:`BrowserError` in one line; a missing system library (Playwright's node needs
    libatomic.so.1) names the Debian package to install.
    """
    from verifier._syslibs import DriverStderr

    ensure_watchdog()
    cache = "NODE_COMPILE_CACHE" not in os.environ
    if cache:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        os.environ["NODE_COMPILE_CACHE"] = str(Path(base) / "verifier" / "node-compile-cache")
    try:
        with DriverStderr() as stderr:
            try:
                return sync_playwright().start()
            except Exception as exc:  # Playwright raises a bare Exception when node dies
                raise BrowserError(stderr.failure(exc)) from exc
    finally:
        if cache:
            os.environ.pop("NODE_COMPILE_CACHE", None)


def stop_playwright(playwright: Playwright) -> None:
    """Stop a driver from :func:`start_playwright`; one already gone is stopped."""
    with contextlib.suppress(PlaywrightError):
        playwright.stop()


class Browser(Owner):
    """Chromium, headed on ``display``, its window filling the screen.

    :param display: the X display to draw on (``":1"``).
    :param console_log: JSON-lines file for console messages, page errors and failed requests.
    :param env: base environment (``DISPLAY`` is set from ``display``).
    :param playwright: a driver from :func:`start_playwright` to use (and leave running);
        by default the browser starts and stops its own.
    """

    def __init__(
        self,
        *,
        display: str,
        screen: tuple[int, int],
        console_log: Path,
        env: Mapping[str, str] | None = None,
        executable: str = CHROMIUM,
        redact: Callable[[str], str] | None = None,
        playwright: Playwright | None = None,
    ) -> None:
        self._display = display
        self._screen = screen
        self._executable = executable
        self._env = dict(env) if env is not None else display_env(display)
        self._cookie = new_cookie()
        self._console = _ConsoleLog(console_log, redact)
        self._pw = playwright
        self._owns_pw = False  # a Playwright handed in is stopped by whoever started it
        self._started = False
        self._browser: PWBrowser | None = None
        self._page: Page | None = None
        self._dead: str | None = None
        self._closed = False
        self.version = ""

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Browser:
        """Launch Chromium; a second call does nothing."""
        if self._started:
            return self
        self._started = True
        if not (Path(self._executable).exists() or shutil.which(self._executable)):
            msg = f"Chromium not found at {self._executable!r}; run desktop-image/provision.sh"
            raise BrowserError(msg)
        try:
            self._start()
        except PlaywrightError as exc:
            self.close()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            msg = f"Chromium did not start on {self._display}: {first}"
            raise BrowserError(msg) from exc
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        if self._pw is None:
            self._pw = start_playwright()
            self._owns_pw = True
        env: dict[str, str | float | bool] = {
            **self._env,
            "DISPLAY": self._display,
            OWNER_ENV: self._cookie,
        }
        env.pop("WAYLAND_DISPLAY", None)
        self._browser = self._pw.chromium.launch(
            executable_path=self._executable,
            headless=False,
            args=[*CHROMIUM_FLAGS, *_WINDOW_FLAGS],
            env=env,
            timeout=30_000,
        )
        self.version = self._browser.version
        self._browser.on("disconnected", lambda _b: self._mark_dead("Chromium disconnected"))
        context = self._browser.new_context(no_viewport=True)
        context.add_init_script(_INPUT_PROBE)
        page = context.new_page()
        page.on("console", self._on_console)
        page.on("pageerror", lambda err: self._console_error("pageerror", str(err)))
        page.on("requestfailed", self._on_request_failed)
        page.on("response", self._on_response)
        page.on("crash", lambda _p: self._mark_dead("the page crashed"))
        page.bring_to_front()
        self._fill_screen(context, page)
        self._page = page
        _log.info("Chromium %s on %s", self.version, self._display)

    def _fill_screen(self, context: BrowserContext, page: Page) -> None:
        """Make the window fill the screen and wait until it does (the WM may be slow).

        Our openbox opens windows maximized. Elsewhere ``--start-maximized`` alone races
        with the window manager, so ask over CDP.
        """
        width, height = self._screen
        fills = "([w, h]) => outerWidth >= w && outerHeight >= h && screenX <= 0 && screenY <= 0"
        if page.evaluate(fills, [width, height]):
            return  # the window manager opened it maximized
        cdp = context.new_cdp_session(page)
        window = cdp.send("Browser.getWindowForTarget")["windowId"]
        for bounds in (
            {"windowState": "maximized"},
            {"windowState": "normal", "left": 0, "top": 0, "width": width, "height": height},
        ):
            with contextlib.suppress(PlaywrightError):
                cdp.send("Browser.setWindowBounds", {"windowId": window, "bounds": bounds})
            try:
                page.wait_for_function(fills, arg=[width, height], timeout=3000)
                return
            except PlaywrightError:
                continue
        size = page.evaluate("[screenX, screenY, outerWidth, outerHeight]")
        _log.warning("the browser window does not fill the screen: %s", size)
        cdp.detach()

    def close(self) -> None:
        """Close Chromium and Playwright, then kill anything of theirs still alive."""
        if self._closed:
            return
        self._closed = True
        # Snapshot the process tree first: once Chromium's main process is gone its
        # zygotes and renderers lose their parent link (and carry no cookie).
        tree = find_tree(None, self._cookie)
        # Playwright's close waits for Chromium's answer: a wedged (stopped, hung) browser
        # would hold teardown forever. Past the deadline it is killed, and close returns.
        cut = threading.Timer(_CLOSE_TIMEOUT, self._cut_close, args=(tree,))
        cut.daemon = True
        cut.start()
        try:
            if self._browser is not None:
                with contextlib.suppress(PlaywrightError):
                    self._browser.close()
            if self._pw is not None and self._owns_pw:
                stop_playwright(self._pw)
        finally:
            cut.cancel()
        # Chromium's helpers carry our cookie; anything left (a wedged renderer, a crashpad
        # handler) dies here, so no browser process outlives the run.
        tree.update(find_tree(None, self._cookie))
        kill_tree(tree, grace=1.0)
        self._console.close()

    def _cut_close(self, tree: dict[int, int]) -> None:
        _log.warning("Chromium did not close within %g s: killing it", _CLOSE_TIMEOUT)
        kill_tree(tree, grace=0.5)

    # -- events ---------------------------------------------------------------------------

    def _mark_dead(self, why: str) -> None:
        if self._dead is None and not self._closed:
            self._dead = why
            _log.warning("browser: %s", why)

    def _on_console(self, msg: ConsoleMessage) -> None:
        loc = msg.location
        level = msg.type
        self._console.write(
            "console",
            level=level,
            text=msg.text,
            url=loc.get("url", ""),
            line=loc.get("lineNumber"),
        )

    def _console_error(self, kind: str, text: str) -> None:
        self._console.write(kind, level="error", text=text)

    def _on_request_failed(self, request: Request) -> None:
        self._console.write(
            "requestfailed",
            level="error",
            url=request.url,
            method=request.method,
            text=request.failure or "failed",
        )

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            self._console.write(
                "response",
                level="error",
                url=response.url,
                status=response.status,
                text=response.status_text,
            )

    # -- queries ------------------------------------------------------------------------

    @property
    def page(self) -> Page:
        self.check_alive()
        assert self._page is not None
        return self._page

    def check_alive(self) -> None:
        """Raise BrowserError if Chromium or the page has died."""
        if self._dead is not None:
            msg = f"browser died: {self._dead}"
            raise BrowserError(msg)
        if self._page is None:
            msg = "the browser is not started"
            raise BrowserError(msg)
        if self._page.is_closed():
            msg = "browser died: the page was closed"
            raise BrowserError(msg)

    def process_ids(self) -> list[int]:
        """The processes of this browser now (Chromium and its helpers)."""
        return sorted(find_tree(None, self._cookie))

    @property
    def dead(self) -> str | None:
        return self._dead

    def open(self, url: str, *, timeout: float = 30.0) -> None:
        """Load ``url`` in the page and wait for its load event.

        :raises BrowserError: the page could not be loaded (an HTTP error status is only
            logged: the page shows it).
        """
        try:
            response = self.page.goto(url, wait_until="load", timeout=timeout * 1000)
        except PlaywrightError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            msg = f"the browser could not open {url}: {first}"
            raise BrowserError(msg) from exc
        if response is not None and response.status >= 400:
            _log.warning("%s answered HTTP %d", url, response.status)

    def viewport_origin(self) -> tuple[int, int]:
        """Screen coordinates of the viewport's top-left pixel."""
        return origin_of(self.page.evaluate(ORIGIN_JS))

    def input_mark(self) -> tuple[str, dict[str, int]] | None:
        """The page's input counters now, to wait on after sending input."""
        with contextlib.suppress(PlaywrightError):
            state = self.page.evaluate(
                "window.__verifier ? [window.__verifier.doc,"
                " {mouseup: __verifier.mouseup, keyup: __verifier.keyup, wheel: __verifier.wheel}]"
                " : null"
            )
            if state:
                return str(state[0]), dict(state[1])
        return None

    def wait_input(
        self,
        mark: tuple[str, dict[str, int]] | None,
        kind: InputKind,
        count: int,
        *,
        timeout: float = 2.0,
    ) -> bool:
        """Wait until the page saw ``count`` more trusted ``kind`` events (or navigated)."""
        if mark is None or count <= 0:
            return False
        doc, counts = mark
        target = counts.get(kind, 0) + count
        try:
            self.page.wait_for_function(
                "([doc, kind, n]) => !window.__verifier || window.__verifier.doc !== doc"
                " || window.__verifier[kind] >= n",
                arg=[doc, kind, target],
                # A timer, not animation frames: a check at the next frame would make
                # the screenshot's own two-frame wait start a frame later.
                polling=4,
                timeout=timeout * 1000,
            )
        except PlaywrightError as exc:
            _log.debug("input handshake (%s x%d) not seen: %s", kind, count, exc)
            return False
        return True

    def next_frame(self, *, timeout: float = 1.0) -> tuple[int, int, int, int] | None:
        """Wait until the page has produced a frame since now (two animation frames).

        Returns the viewport's screen box then (x, y, width, height), or None when the
        page did not answer in time.
        """
        try:
            handle = self.page.wait_for_function(
                "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame("
                f"() => r([...{ORIGIN_JS}, innerWidth, innerHeight]))))",
                timeout=timeout * 1000,
            )
            values = handle.json_value()
        except PlaywrightError:
            return None
        x, y = origin_of(values[:4])
        return x, y, int(values[4]), int(values[5])

    def settle(self, *, timeout: float = 2.0) -> None:
        """Wait until scrolling has stopped and a frame has been painted."""
        with contextlib.suppress(PlaywrightError):
            self.page.wait_for_function(
                """() => new Promise((resolve) => {
                  let last = null, same = 0;
                  const tick = () => {
                    const now = scrollX + ',' + scrollY;
                    same = now === last ? same + 1 : 0; last = now;
                    if (same >= 2) resolve(true); else requestAnimationFrame(tick);
                  };
                  requestAnimationFrame(tick);
                })""",
                timeout=timeout * 1000,
            )

    @property
    def console_errors(self) -> list[dict[str, Any]]:
        """Console errors and uncaught page errors so far: {ts, type, level, text, url...}."""
        return list(self._console.errors)

    @property
    def failed_requests(self) -> list[dict[str, Any]]:
        """Requests that failed (network error) or answered 4xx/5xx: {ts, type, url...}."""
        return list(self._console.failed_requests)
