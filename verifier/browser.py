"""Headed Chromium on our display, driven by Playwright for DOM queries only.

Input never goes through Playwright: steps send it through XTest at screen coordinates.
This module maps viewport coordinates to the screen, tells when the page has received
the input we sent (a handshake, not a sleep), and logs what the page says. It follows
the tabs and popups the page opens (the newest is the page steps act on), keeps the
page's alert/confirm/prompt dialogs open on screen until input or a step answers them,
and holds the files the page downloads until the run saves them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from playwright.sync_api import (
    Browser as PWBrowser,
)
from playwright.sync_api import (
    BrowserContext,
    CDPSession,
    ConsoleMessage,
    Dialog,
    Download,
    Frame,
    Page,
    Playwright,
    Request,
    Response,
    WebError,
    sync_playwright,
)
from playwright.sync_api import (
    Error as PlaywrightError,
)
from playwright.sync_api import (
    TimeoutError as PlaywrightTimeout,
)

from verifier._chromium import BLOCK_FILE_URLS, policy_launcher
from verifier._process import (
    OWNER_ENV,
    Owner,
    ensure_watchdog,
    find_tree,
    kill_tree,
    new_cookie,
)
from verifier._xauth import display_env
from verifier.errors import BrowserError, BundleError

__all__ = (
    "CHROMIUM",
    "CHROMIUM_FLAGS",
    "DIALOG_KEYS",
    "DIALOG_PAINT_S",
    "FRAME_INSET_JS",
    "ORIGIN_JS",
    "WINDOW_JS",
    "Browser",
    "DialogEvent",
    "InputKind",
    "InputMark",
    "origin_of",
    "prestart_playwright",
    "release_prestarted",
    "start_playwright",
    "stop_playwright",
)

_log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
# How long the screen must hold still after a dialog opens before it shows the dialog:
# Chromium paints it (and dims the page) 20 to 40 ms after saying it opened.
DIALOG_PAINT_S = 0.1
# The keys that answer an open dialog (lower case; the last key of a combo counts).
DIALOG_KEYS = frozenset({"enter", "return", "kp_enter", "escape", "esc", "space"})

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
# How long a download may take to finish before it is cancelled (an endless stream).
_DOWNLOAD_TIMEOUT = 60.0
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

# Counts trusted input events per kind, and tells verifier of each one through a binding
# (Playwright's expose_binding), so that after sending XTest input we wait until the page
# has seen it without asking the page anything: a question in flight when the input opens
# a dialog would wait for as long as the dialog stays open. ``doc`` changes with every
# document (navigation); every frame has its own counters. An HTML5 drag ends in dragend,
# not mouseup.
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
  for (const kind of ['mouseup', 'keyup', 'wheel', 'dragend']) {
    addEventListener(kind, (e) => { if (e.isTrusted) { s[kind]++; say(kind); } },
                     {capture: true, passive: true});
  }
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

InputKind = Literal["mouseup", "keyup", "wheel", "dragend"]
# The page's input counters at a moment: (document id, {kind: count}).
InputMark = tuple[str, dict[str, int]]
# The first wait for the page to see input: long enough for the usual answer (~7 ms), so
# that input which went elsewhere (a popup, another window) is noticed soon after.
_FIRST_LOOK_S = 0.05
# How long a call to the page may stay held up by a dialog before it is called off.
_UNSTICK_S = 0.3
# How long the browser process may take to answer a question (it answers in about 1 ms).
_ROUND_TRIP_S = 5.0
# How long a page may take to say its title before it is shown without one.
_TITLE_S = 2.0
_HERE = str(Path(__file__).resolve().parent)


def _ours(frame: Any) -> bool:
    """Whether a Playwright call was made by verifier (its caller's frames, a few up)."""
    for _ in range(6):
        if frame is None:
            return False
        if str(frame.f_code.co_filename).startswith(_HERE):
            return True
        frame = frame.f_back
    return False


@dataclass(slots=True, eq=False)
class DialogEvent:
    """An alert, confirm, prompt or beforeunload dialog the page opened."""

    type: str
    message: str
    default: str
    tab: int
    page: Page = field(repr=False)
    dialog: Dialog = field(repr=False)
    # How it ended: "accepted" / "dismissed" (by a dialog step), "closed by input" (a
    # key or click a step sent), "left open" (the run ended first); None while open.
    answer: str | None = None
    opened: float = field(default_factory=time.monotonic)  # when we heard of it

    @property
    def is_open(self) -> bool:
        return self.answer is None

    def record(self) -> dict[str, object]:
        """For the manifest's step record."""
        out: dict[str, object] = {"type": self.type, "message": self.message, "tab": self.tab}
        if self.type == "prompt" and self.default:
            out["default"] = self.default
        out["answer"] = self.answer or "open"
        return out

    def describe(self) -> str:
        return f"{self.type} {self.message!r}"


def _safe_file_name(name: str) -> str:
    """A page's suggested file name as a plain file name: no folders, no control
    characters, no leading dots, at most 120 characters (the extension kept)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch if ch.isprintable() else "_" for ch in base).strip().lstrip(".")
    if len(base) > 120:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 110 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else base[:120]
    return base or "download"


def _unique(path: Path) -> Path:
    """``path``, or ``name (2).ext`` and on when that exists."""
    if not path.exists():
        return path
    stem, suffix = path.stem, path.suffix
    n = 2
    while (candidate := path.with_name(f"{stem} ({n}){suffix}")).exists():
        n += 1
    return candidate


def _now_iso() -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() % 1 * 1000):03d}Z"
    )


class _ConsoleLog:
    """Appends page events as JSON lines; thread-safe, flushed per line.

    Errors (console errors, page errors) and failed requests are also kept in memory,
    for the checks that read them.
    """

    _KEEP = 10_000  # records kept in memory per kind
    _LIMIT = 10 * 1024 * 1024  # bytes the file keeps (a page can log without end)

    def __init__(self, path: Path, redact: Callable[[str], str] | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._redact = redact
        self._written = 0
        self._dropped = 0
        # A page's text may hold lone surrogates ('\ud800'): written as '?' then.
        self._fh: IO[str] = path.open("a", encoding="utf-8", errors="replace")
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
            if self._fh.closed:
                return
            line = json.dumps(record, ensure_ascii=False) + "\n"
            if self._written + len(line) > self._LIMIT:
                self._dropped += 1
                return
            self._written += len(line)
            self._fh.write(line)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._dropped and not self._fh.closed:
                note = {"ts": _now_iso(), "type": "truncated", "level": "warning"}
                note["text"] = f"{self._dropped} more records past {self._LIMIT} bytes"
                self._fh.write(json.dumps(note) + "\n")
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
    :param storage_state: cookies and localStorage to load first (Playwright's format).
    :param file_urls: let the browser open ``file:`` URLs (else Chromium's policy refuses
        them, where a mount namespace can be made: see ``verifier._chromium``).
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
        storage_state: Mapping[str, Any] | None = None,
        file_urls: bool = True,
    ) -> None:
        self._display = display
        self._file_urls = file_urls
        self._launcher = contextlib.ExitStack()
        # How file: URLs fare: "allowed", "blocked by policy", or why they are not.
        self.file_url_policy = "allowed"
        self._screen = screen
        self._executable = executable
        self._env = dict(env) if env is not None else display_env(display)
        self._cookie = new_cookie()
        self._console = _ConsoleLog(console_log, redact)
        self._pw = playwright
        self._storage_state = dict(storage_state) if storage_state is not None else None
        self._owns_pw = False  # a Playwright handed in is stopped by whoever started it
        self._started = False
        self._browser: PWBrowser | None = None
        self._context: BrowserContext | None = None
        # Open pages, the one steps act on last: the newest tab, or the one brought to
        # the front since (closing it goes back to the one before).
        self._pages: list[Page] = []
        self._dialogs: list[DialogEvent] = []  # every dialog, in the order they opened
        self._downloads: list[Download] = []  # not yet taken by take_downloads()
        # Each frame's input counters, as its page last told them: (document, counts).
        self._seen: dict[Frame, InputMark] = {}
        self._wake: asyncio.Event | None = None  # set when the page tells us something
        # Dialogs stay open until input or a step answers them (a run's steps, an agent's
        # actions), or are dismissed at once, as Playwright does by itself (before those
        # start, and for a Browser used on its own).
        self.hold_dialogs = False
        self._answering = False  # a dialog is being answered: its calls are not stuck
        # Tabs Chromium has opened that Playwright has not handed us yet (by target id),
        # and those it has; after a tab switch, new tabs stay behind until input is sent.
        self._opening: set[str] = set()
        self._targets: dict[Page, str] = {}
        self._known: set[Page] = set()
        self._pinned = False
        self._watch: CDPSession | None = None
        self._pids: set[int] = set()
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
        executable = self._executable
        if not self._file_urls:
            executable, why = self._launcher.enter_context(
                policy_launcher(executable, BLOCK_FILE_URLS)
            )
            self.file_url_policy = "blocked by policy" if why is None else f"not blocked: {why}"
            if why is not None:
                _log.warning("file: URLs typed into the browser are not blocked: %s", why)
        self._browser = self._pw.chromium.launch(
            executable_path=executable,
            headless=False,
            args=[*CHROMIUM_FLAGS, *_WINDOW_FLAGS],
            env=env,
            timeout=30_000,
        )
        self.version = self._browser.version
        self._browser.on("disconnected", lambda _b: self._mark_dead("Chromium disconnected"))
        context = self._browser.new_context(
            no_viewport=True,
            accept_downloads=True,
            storage_state=self._storage_state,  # type: ignore[arg-type]
        )
        self._context = context
        context.expose_binding(_BINDING, self._on_seen)
        context.add_init_script(_INPUT_PROBE)
        # On the context, so that a popup's first console line or dialog is not missed.
        context.on("console", self._on_console)
        context.on("weberror", self._on_web_error)
        context.on("requestfailed", self._on_request_failed)
        context.on("response", self._on_response)
        context.on("dialog", self._on_dialog)
        context.on("page", self._on_page)
        page = context.new_page()
        self._on_page(page)  # unless the "page" event has come already
        # Chromium says at once when a tab opens; Playwright hands us its Page once it
        # has set it up. A step waits for the tabs in between (see sync).
        self._watch = self._browser.new_browser_cdp_session()
        self._watch.on("Target.targetCreated", self._on_target)
        self._watch.on("Target.targetDestroyed", self._on_target_gone)
        self._watch.send("Target.setDiscoverTargets", {"discover": True})
        page.bring_to_front()
        self._fill_screen(context, page)
        self._pids = set(find_tree(None, self._cookie))
        # Its "page" event may still be setting the first tab up: take it in fully, or a
        # caller that asks for the page at once finds none ("its last page was closed").
        self.sync()
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
                # (A call cancelled because a dialog holds a page is closing too.)
                with contextlib.suppress(PlaywrightError, asyncio.CancelledError):
                    self._browser.close()
            if self._pw is not None and self._owns_pw:
                stop_playwright(self._pw)
        finally:
            cut.cancel()
        # Chromium's helpers carry our cookie; anything left (a wedged renderer, a crashpad
        # handler) dies here, so no browser process outlives the run.
        tree.update(find_tree(None, self._cookie))
        kill_tree(tree, grace=1.0)
        self._launcher.close()
        self._console.close()

    def _cut_close(self, tree: dict[int, int]) -> None:
        _log.warning("Chromium did not close within %g s: killing it", _CLOSE_TIMEOUT)
        kill_tree(tree, grace=0.5)

    # -- events ---------------------------------------------------------------------------

    def _mark_dead(self, why: str) -> None:
        if self._dead is None and not self._closed:
            self._dead = why
            _log.warning("browser: %s", why)

    def _on_page(self, page: Page) -> None:
        """A tab or popup opened (by the page, or ours at start): steps act on it now."""
        if page in self._known:  # told twice: the event, and new_page() at start
            return
        self._known.add(page)
        if self._pinned and self._pages:
            # A tab was switched to since the last input: one the page opened before it
            # (popups keep coming in for a while) does not take the front from it.
            self._pages.insert(0, page)
        else:
            self._pages.append(page)
        page.on("close", self._on_close)
        page.on("crash", self._on_crash)
        page.on("download", lambda download: self._downloads.append(download))
        if len(self._pages) > 1:
            _log.info("the page opened tab %d: %s", self._tab_of(page), page.url)
        # Playwright says when a dialog opens, not when input closes it: Chromium does,
        # to every DevTools client that enabled its Page domain.
        try:
            cdp = page.context.new_cdp_session(page)
            cdp.on("Page.javascriptDialogClosed", lambda _e: self._dialog_closed(page))
            cdp.send("Page.enable")
            target = str(cdp.send("Target.getTargetInfo")["targetInfo"]["targetId"])
        except (PlaywrightError, KeyError, asyncio.CancelledError) as exc:  # closed already
            _log.debug("no DevTools session for a new page: %s", exc)
            return
        self._opening.discard(target)
        self._targets[page] = target

    def _on_close(self, page: Page) -> None:
        self._targets.pop(page, None)
        if page in self._pages:
            self._pages.remove(page)
        for event in self._dialogs:
            if event.page is page and event.is_open:
                event.answer = "closed with its page"

    def _on_crash(self, page: Page) -> None:
        if self._pages and page is self._pages[-1]:
            self._mark_dead("the page crashed")
        else:
            _log.warning("a background tab crashed: %s", page.url)

    def _on_dialog(self, dialog: Dialog) -> None:
        page = dialog.page
        if page is None:  # a service worker's: nobody could see or answer it
            with contextlib.suppress(PlaywrightError):
                dialog.dismiss()
            return
        tab = self._tab_of(page)
        event = DialogEvent(
            type=dialog.type,
            message=dialog.message,
            default=dialog.default_value,
            tab=tab,
            page=page,
            dialog=dialog,
        )
        self._dialogs.append(event)
        _log.info("tab %d opened a dialog: %s", tab, event.describe())
        if not self.hold_dialogs:
            with contextlib.suppress(PlaywrightError):
                dialog.dismiss()
            event.answer = "dismissed"
            return
        if self._wake is not None:
            self._wake.set()
        # A question to the page already on its way waits for as long as the dialog is
        # open (Playwright cannot cancel it): ours are called off instead, shortly, once
        # they had their chance to finish.
        self._loop().call_later(_UNSTICK_S, self._unstick, event)

    def _loop(self) -> asyncio.AbstractEventLoop:
        assert self._context is not None
        loop: asyncio.AbstractEventLoop = self._context._loop  # Playwright's own loop
        return loop

    def _unstick(self, event: DialogEvent) -> None:
        """Cancel verifier's Playwright calls still waiting while ``event`` holds the page
        steps act on; they raise asyncio.CancelledError, which the callers turn into "a
        dialog is open" (or, waiting for time or for the dialog itself, go on). Again and
        again while the dialog stays open: nothing may wait for that page meanwhile."""
        if not event.is_open or self._closed:
            return
        loop = self._loop()
        loop.call_later(_UNSTICK_S, self._unstick, event)
        if self._answering or not self._pages or self._pages[-1] is not event.page:
            return
        self._call_off("held up by the dialog")

    def _call_off(self, why: str) -> None:
        """Cancel verifier's Playwright calls still waiting (asyncio.CancelledError)."""
        for task in asyncio.all_tasks(self._loop()):
            if not task.done() and _ours(getattr(task, "__pw_caller_frame__", None)):
                _log.debug("calling off a browser call %s: %r", why, task)
                task.cancel()

    @contextlib.contextmanager
    def answer_within(self, seconds: float) -> Iterator[None]:
        """Call off (asyncio.CancelledError) the Playwright calls made inside that still
        wait after ``seconds``. Some questions to a page have no timeout of their own, and
        a page whose scripts never yield (``while (true) {}``) or a stopped Chromium never
        answers them."""
        if self._context is None or self._closed:
            yield
            return
        handle = self._loop().call_later(seconds, self._call_off, f"unanswered after {seconds:g} s")
        try:
            yield
        finally:
            handle.cancel()

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
        if self._wake is not None:
            self._wake.set()

    def _dialog_closed(self, page: Page) -> None:
        for event in self._dialogs:
            if event.page is page and event.is_open and not self._answering:
                event.answer = "closed by input"
                _log.info("the dialog %s was closed by input", event.describe())
        if self._wake is not None:
            self._wake.set()

    def _on_web_error(self, error: WebError) -> None:
        self._console_error("pageerror", str(error.error))

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
        """The page steps act on: the newest tab or popup, or the one switched to since."""
        self.check_alive()
        return self._pages[-1]

    @property
    def tabs(self) -> list[Page]:
        """The open tabs and popup windows, in the order they opened."""
        if self._context is None:
            return []
        return [p for p in self._context.pages if not p.is_closed()]

    @property
    def tab(self) -> int:
        """The index (0 = the first) of the page steps act on, among :attr:`tabs`."""
        return self._tab_of(self.page)

    def _tab_of(self, page: Page) -> int:
        tabs = self.tabs
        return tabs.index(page) if page in tabs else -1

    def switch_tab(self, page: Page, *, timeout: float = 5.0) -> None:
        """Bring ``page`` to the front (its window raised, its tab selected); later steps
        act on it. Returns once it has painted a frame in front."""
        if page in self._pages:
            self._pages.remove(page)
        self._pages.append(page)
        self._pinned = True
        try:
            page.bring_to_front()
        except PlaywrightError as exc:
            msg = f"could not bring tab {self._tab_of(page)} to the front: {exc}"
            raise BrowserError(msg) from exc
        if self.dialog is None:
            self.next_frame(timeout=timeout)

    def sync(self, *, timeout: float = 5.0) -> None:
        """Take in what the browser has said so far (a tab that opened, a dialog): one
        round trip to the browser process, which a page's dialog does not hold up; and
        wait (up to ``timeout``) for the tabs Chromium has opened to be ready to use."""
        if self._context is None or self._dead is not None:
            return
        self._round_trip()
        deadline = time.monotonic() + timeout
        while self._opening and (remaining := deadline - time.monotonic()) > 0:
            try:
                self._context.wait_for_event("page", timeout=min(remaining, 1.0) * 1000)
            except (PlaywrightTimeout, asyncio.CancelledError):
                self._opening &= self._live_targets()
            except PlaywrightError:
                break
        if self._opening:  # never handed over (not a tab after all): wait no more
            _log.debug("tabs never handed over by Playwright: %s", sorted(self._opening))
            self._opening.clear()

    def _round_trip(self) -> None:
        """One question to the browser process: the events it sent before are in (a
        stopped Chromium never answers: then it goes on after a while)."""
        assert self._context is not None
        with (
            contextlib.suppress(PlaywrightError, asyncio.CancelledError),
            self.answer_within(_ROUND_TRIP_S),
        ):
            self._context.cookies("about:blank")

    def _live_targets(self) -> set[str]:
        if self._watch is None:
            return set()
        try:
            infos = self._watch.send("Target.getTargets")["targetInfos"]
        except (PlaywrightError, KeyError, asyncio.CancelledError):
            return set()
        return {str(t["targetId"]) for t in infos if t.get("type") == "page"}

    def _on_target(self, event: dict[str, Any]) -> None:
        info = event.get("targetInfo") or {}
        target = str(info.get("targetId", ""))
        if info.get("type") == "page" and target and target not in self._targets.values():
            self._opening.add(target)

    def _on_target_gone(self, event: dict[str, Any]) -> None:
        self._opening.discard(str(event.get("targetId", "")))

    def sent_input(self) -> None:
        """Input is on its way: tabs it opens take the front again (see switch_tab)."""
        self._pinned = False

    def check_alive(self) -> None:
        """Raise BrowserError if Chromium or the page has died."""
        if self._dead is not None:
            msg = f"browser died: {self._dead}"
            raise BrowserError(msg)
        if not self._started or self._context is None:
            msg = "the browser is not started"
            raise BrowserError(msg)
        while self._pages and self._pages[-1].is_closed():
            self._pages.pop()
        if not self._pages:  # pages Playwright knows of that we have not been told of yet
            self._pages = [p for p in self._context.pages if not p.is_closed()]
        if not self._pages:
            msg = "browser died: its last page was closed"
            raise BrowserError(msg)

    @property
    def pids(self) -> set[int]:
        """Chromium's processes, as they were once it started."""
        return set(self._pids)

    # -- dialogs and downloads ------------------------------------------------------------

    @property
    def dialog(self) -> DialogEvent | None:
        """The dialog open on the page steps act on, if any (it blocks the page's
        scripts, so nothing can be asked of the page until it is answered)."""
        return self.dialog_on(self._pages[-1]) if self._pages else None

    def answers(self, within: float = 1.0) -> bool:
        """Whether the page steps act on answers a question within ``within`` s (False:
        its scripts never yield, or Chromium hangs; a dialog holding it counts as an
        answer, it says why itself)."""
        if self._context is None or self._dead is not None or not self._pages:
            return False
        if self.dialog is not None:
            return True
        try:
            with self.answer_within(within):
                self._pages[-1].evaluate("1")
        except asyncio.CancelledError:
            return self.dialog is not None
        except PlaywrightError:
            return True  # it answered, with an error (a navigation meanwhile, say)
        return True

    def title_of(self, page: Page) -> str:
        """``page``'s title; "" when it cannot say: a dialog holds it, it is closing, or
        its scripts do not yield within a moment."""
        if self.dialog_on(page) is not None:
            return ""
        try:
            with self.answer_within(_TITLE_S):
                return page.title()
        except (PlaywrightError, asyncio.CancelledError):
            return ""

    def dialog_on(self, page: Page) -> DialogEvent | None:
        """The dialog open on ``page``, if any."""
        return next((d for d in self._dialogs if d.page is page and d.is_open), None)

    def open_dialogs(self) -> list[DialogEvent]:
        """The dialogs open now, on any tab."""
        return [d for d in self._dialogs if d.is_open]

    def new_dialog(self, since: float) -> DialogEvent | None:
        """The dialog open on the page steps act on, if it opened after ``since`` (a
        ``time.monotonic()`` value): the input just sent opened it. Takes in what the
        browser has said first. Chromium paints a dialog a few frames after it opens: wait
        for the screen to hold still for :data:`DIALOG_PAINT_S` from its ``opened``."""
        if self._context is None or self._dead is not None:
            return None
        self._round_trip()
        event = self.dialog
        return event if event is not None and event.opened >= since else None

    def dialogs_since(self, start: int) -> list[DialogEvent]:
        """The dialogs opened since :meth:`dialog_count` returned ``start``."""
        return self._dialogs[start:]

    def dialog_count(self) -> int:
        return len(self._dialogs)

    def wait_dialog(self, timeout: float) -> DialogEvent | None:
        """The dialog open on the page steps act on, waiting up to ``timeout`` seconds for
        one to open."""
        deadline = time.monotonic() + timeout
        while (event := self.dialog) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._context is None:
                return None
            # (A dialog on another tab may call this wait off: it goes on.)
            with contextlib.suppress(PlaywrightTimeout, asyncio.CancelledError):
                self._context.wait_for_event("dialog", timeout=min(remaining, 1.0) * 1000)
            self.check_alive()
        return event

    def answer_dialog(self, event: DialogEvent, *, accept: bool, text: str | None = None) -> None:
        """Accept (with ``text`` for a prompt) or dismiss ``event``'s dialog."""
        self._answering = True
        try:
            if accept:
                event.dialog.accept(text) if text is not None else event.dialog.accept()
            else:
                event.dialog.dismiss()
        except PlaywrightError as exc:
            if event.is_open:
                msg = f"could not answer the dialog {event.describe()}: {exc}"
                raise BrowserError(msg) from exc
            return  # input closed it meanwhile
        finally:
            self._answering = False
        event.answer = "accepted" if accept else "dismissed"

    def wait_dialog_closed(self, event: DialogEvent, *, timeout: float) -> bool:
        """Wait until ``event``'s dialog has closed (Chromium says so); False when it is
        still open after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while event.is_open:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._dead is not None:
                return False
            self._pump(remaining)
        return True

    def take_downloads(self) -> list[Download]:
        """The downloads the pages started since the last call."""
        taken, self._downloads = self._downloads, []
        return taken

    def save_downloads(self, folder: Path, *, timeout: float = _DOWNLOAD_TIMEOUT) -> list[Path]:
        """Save the files the pages downloaded since the last call into ``folder``, each
        under the name the page suggested (made safe, and unique); the paths saved. Waits
        for each download to finish, at most ``timeout`` seconds (a page that streams a
        download forever must not hold the run): past it, the download is cancelled."""
        saved = []
        for download in self.take_downloads():
            try:
                name = _safe_file_name(download.suggested_filename)
            except PlaywrightError:
                name = "download"
            path = _unique(folder / name)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._save_download(download, path, timeout)
            except TimeoutError:
                _log.warning("download %s took over %g s: cancelled", download.url, timeout)
                with contextlib.suppress(PlaywrightError, asyncio.CancelledError):
                    download.cancel()
                continue
            except (PlaywrightError, OSError, asyncio.CancelledError) as exc:
                failure = self._download_failure(download)
                if failure is None:  # the browser has it; we could not keep it
                    reason = exc.strerror if isinstance(exc, OSError) else _first_line(exc)
                    msg = f"the download {name!r} could not be saved in the bundle: {reason}"
                    raise BundleError(msg) from exc
                _log.warning("download %s failed in the browser: %s", download.url, failure)
                continue
            _log.info("downloaded %s from %s", path.name, download.url)
            saved.append(path)
        return saved

    def _download_failure(self, download: Download) -> str | None:
        """Why the browser's download failed (the page's doing: a network error, a
        cancel), or None when it completed (then only our saving of it failed). Asked
        within 5 s: Playwright's own call waits for the download without a limit."""

        async def failure() -> str | None:
            return await asyncio.wait_for(download._impl_obj.failure(), 5.0)

        assert self._context is not None
        try:
            return self._context._sync(failure())  # type: ignore[no-any-return]
        except TimeoutError:
            return "it did not finish"
        except (PlaywrightError, asyncio.CancelledError) as exc:
            return _first_line(exc)

    def _save_download(self, download: Download, path: Path, timeout: float) -> None:
        """``download.save_as(path)``, bounded: Playwright's own waits without a limit."""

        async def save() -> None:
            await asyncio.wait_for(download._impl_obj.save_as(path), timeout)

        assert self._context is not None
        self._context._sync(save())  # the sync API's own way to run a coroutine

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

    def window(self) -> tuple[tuple[int, int, int, int], str]:
        """The screen box (x, y, width, height) of the window showing the page steps act
        on, and the page's title (the window's title starts with it)."""
        if self.dialog is not None:
            msg = "the page cannot say where its window is: a dialog holds it"
            raise BrowserError(msg)
        try:
            x, y, w, h, title = self.page.evaluate(f"[...{WINDOW_JS}, document.title]")
        except (PlaywrightError, asyncio.CancelledError) as exc:
            msg = f"the page did not say where its window is: {exc}"
            raise BrowserError(msg) from exc
        return (int(x), int(y), int(w), int(h)), str(title)

    def viewport_origin(self) -> tuple[int, int]:
        """Screen coordinates of the viewport's top-left pixel."""
        return origin_of(self.page.evaluate(ORIGIN_JS))

    def viewport(self) -> tuple[int, int, int, int]:
        """The viewport's box on the screen: x, y, width, height."""
        if self.dialog is not None:
            msg = "the page cannot say where its viewport is: a dialog holds it"
            raise BrowserError(msg)
        try:
            values = self.page.evaluate(f"[...{ORIGIN_JS}, innerWidth, innerHeight]")
        except asyncio.CancelledError:
            msg = "the page cannot say where its viewport is: a dialog holds it"
            raise BrowserError(msg) from None
        x, y = origin_of(values[:4])
        return x, y, int(values[4]), int(values[5])

    def input_mark(self, frame: Frame | None = None) -> InputMark | None:
        """The input counters of ``frame`` (default: the page's main frame) now, to wait
        on after sending input; None when the page cannot answer (a dialog is open)."""
        if self.dialog is not None:
            return None
        where = frame or self.page.main_frame
        known = self._seen.get(where)
        if known is not None:
            return known[0], dict(known[1])
        # A frame that has not told us of itself (its probe ran before the binding was
        # there): ask it, before any input.
        with contextlib.suppress(PlaywrightError, asyncio.CancelledError):
            state = where.evaluate(_MARK_JS)
            if state:
                return str(state[0]), dict(state[1])
        return None

    def wait_input(
        self,
        mark: InputMark | None,
        kind: InputKind | tuple[InputKind, ...],
        count: int,
        *,
        timeout: float = 2.0,
        frame: Frame | None = None,
        elsewhere: Callable[[], bool] | None = None,
    ) -> bool:
        """Wait until ``frame`` (default: the page's main frame) saw ``count`` more
        trusted ``kind`` events (or navigated): the page tells us, nothing is asked.

        Gives up early, as the page will not see the input, when a dialog opens or when
        ``elsewhere()`` says the input went somewhere else (a popup list, another window).
        """
        if mark is None or count <= 0:
            return False
        kinds = (kind,) if isinstance(kind, str) else kind
        doc, counts = mark
        target = sum(counts.get(k, 0) for k in kinds) + count
        where = frame or self.page.main_frame
        start = time.monotonic()
        deadline, look = start + timeout, start + _FIRST_LOOK_S
        while True:
            known = self._seen.get(where)
            if known is not None and (
                known[0] != doc or sum(known[1].get(k, 0) for k in kinds) >= target
            ):
                return True
            now = time.monotonic()
            if self.dialog is not None or self._dead is not None or where.is_detached():
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
            self._pump(min(look, deadline) - now)

    def _pump(self, seconds: float) -> None:
        """Take in the browser's messages for up to ``seconds``, or until the page tells
        us something (an input it saw, a dialog)."""
        wake = self._wake = asyncio.Event()

        async def wait() -> None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), max(seconds, 0.001))

        assert self._context is not None
        try:
            self._context._sync(wait())  # the sync API's own way to run a coroutine
        except asyncio.CancelledError:
            pass
        finally:
            self._wake = None

    def next_frame(self, *, timeout: float = 1.0) -> tuple[int, int, int, int] | None:
        """Wait until the page has produced a frame since now (two animation frames).

        Returns the viewport's screen box then (x, y, width, height), or None when the
        page did not answer in time (or cannot: a dialog is open).
        """
        if self.dialog is not None:
            return None
        try:
            handle = self.page.wait_for_function(
                "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame("
                f"() => r([...{ORIGIN_JS}, innerWidth, innerHeight]))))",
                timeout=timeout * 1000,
            )
            values = handle.json_value()
        except (PlaywrightError, asyncio.CancelledError):
            return None
        x, y = origin_of(values[:4])
        return x, y, int(values[4]), int(values[5])

    def settle(self, *, timeout: float = 2.0, frame: Frame | None = None) -> None:
        """Wait until scrolling has stopped (the page's and every scroller's in ``frame``,
        default the main frame) and a frame has been painted."""
        if self.dialog is not None:
            return
        with contextlib.suppress(PlaywrightError, asyncio.CancelledError):
            (frame or self.page.main_frame).wait_for_function(_SETTLE_JS, timeout=timeout * 1000)

    @property
    def console_errors(self) -> list[dict[str, Any]]:
        """Console errors and uncaught page errors so far: {ts, type, level, text, url...}."""
        return list(self._console.errors)

    @property
    def failed_requests(self) -> list[dict[str, Any]]:
        """Requests that failed (network error) or answered 4xx/5xx: {ts, type, url...}."""
        return list(self._console.failed_requests)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
