"""Chromium's launch, headed on our display, and its end: closed within a deadline,
then killed with every process of its tree.

Debian's Chromium (``/usr/bin/chromium``); never a downloaded one. Its flags keep it
quiet on a closed network; ``file:`` URLs typed into it are blocked by its own policy
unless the recipe allows them (``_policy.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path

from playwright.sync_api import Browser as PWBrowser
from playwright.sync_api import BrowserContext, Page, Playwright
from playwright.sync_api import Error as PlaywrightError

from verifier._process import OWNER_ENV, find_tree, kill_tree, new_cookie, scratch_root
from verifier.browser._policy import BLOCK_FILE_URLS, policy_launcher
from verifier.browser._seen import register_engines
from verifier.errors import BrowserError

__all__ = ("CHROMIUM", "CHROMIUM_FLAGS", "CLOSE_TIMEOUT", "Chromium", "fill_screen", "new_context")

_log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
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
_WINDOW_FLAGS = (
    "--start-maximized",
    "--window-position=0,0",
    "--test-type",  # no "unsupported command-line flag" infobar over the page
    "--force-device-scale-factor=1",  # one CSS pixel is one screen pixel
    "--no-default-browser-check",
    "--password-store=basic",  # no keyring prompt
    # The omnibox's popups as web pages (chrome://omnibox-popup.top-chrome/), preloaded in
    # a renderer of their own: 40 MB of a run's memory for an address bar no step uses
    # (the native popup stands in when a person or an agent types there).
    "--disable-features=Translate,MediaRouter,WebUIOmniboxPopup,WebUIOmniboxAimPopup,"
    "WebUIOmniboxFullPopup",
    "--hide-crash-restore-bubble",
)
# How long Chromium may take to close before it is killed (it takes ~0.1 s).
CLOSE_TIMEOUT = 5.0
# How long Chromium may take to start and connect.
_LAUNCH_TIMEOUT_MS = 30_000


class Chromium:
    """One Chromium and its process tree (found by an environment cookie of ours).

    :param file_urls: let it open ``file:`` URLs (else its policy blocks them).
    """

    def __init__(
        self,
        *,
        executable: str,
        display: str,
        env: Mapping[str, str],
        file_urls: bool,
    ) -> None:
        self._executable = executable
        self._display = display
        self._env = dict(env)
        self._file_urls = file_urls
        self._cookie = new_cookie()
        self._launcher = contextlib.ExitStack()
        # How file: URLs fare: "allowed", "blocked by policy", or why they are not.
        self.file_url_policy = "allowed"
        self.browser: PWBrowser | None = None
        self._window: tuple[BrowserContext, Page] | None = None
        self._window_crashed = False
        self._closed = False
        self._killed = False

    @property
    def killed(self) -> bool:
        """Whether :meth:`kill` was called (its driver may hear of that a moment later)."""
        return self._killed

    @property
    def connected(self) -> bool:
        """Whether Chromium is up and connected (and not killed)."""
        return not self._killed and self.browser is not None and self.browser.is_connected()

    def launch(self, playwright: Playwright) -> PWBrowser:
        """Start Chromium through Playwright's driver.

        :raises BrowserError: it is not installed, or did not start (in one line).
        """
        if not (Path(self._executable).exists() or shutil.which(self._executable)):
            msg = f"Chromium not found at {self._executable!r}; run desktop-image/provision.sh"
            raise BrowserError(msg)
        env: dict[str, str | float | bool] = {
            **self._env,
            "DISPLAY": self._display,
            OWNER_ENV: self._cookie,
            # Its singleton folder (a socket, a lock) is left when it is killed: there
            # the watchdog removes it.
            "TMPDIR": str(scratch_root()),
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
        try:
            self.browser = playwright.chromium.launch(
                executable_path=executable,
                headless=False,
                args=[*CHROMIUM_FLAGS, *_WINDOW_FLAGS],
                env=env,
                timeout=_LAUNCH_TIMEOUT_MS,
            )
        except PlaywrightError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            msg = f"Chromium did not start on {self._display}: {first}"
            raise BrowserError(msg) from exc
        return self.browser

    def open_window(self, playwright: Playwright, screen: tuple[int, int]) -> None:
        """Open a fresh context's window ahead of its run (a warm desktop's, before it
        knows its recipe): in front and filling the screen, for :meth:`take_window`.
        A window opens in ~0.15 s here; the run that takes it does not wait for that.

        :raises PlaywrightError: Chromium did not open it.
        """
        assert self.browser is not None, "launch() first"
        register_engines(playwright)  # before any context is made
        context = new_context(self.browser)
        try:
            page = context.new_page()
            page.on("crash", self._on_window_crash)
            page.bring_to_front()
            fill_screen(context, page, screen)
        except BaseException:
            with contextlib.suppress(PlaywrightError, asyncio.CancelledError):
                context.close()
            raise
        self._window, self._window_crashed = (context, page), False

    def _on_window_crash(self, _page: Page) -> None:
        self._window_crashed = True

    def take_window(self) -> tuple[BrowserContext, Page] | None:
        """The window :meth:`open_window` opened, once; None when there is none, or it
        closed or crashed meanwhile (its context is closed then: the caller makes one)."""
        window, self._window = self._window, None
        if window is None:
            return None
        context, page = window
        # One question to the browser process (not the page): what Chromium said since
        # comes first (a renderer that crashed while the desktop waited).
        with contextlib.suppress(PlaywrightError, asyncio.CancelledError):
            context.cookies()
        if not (page.is_closed() or self._window_crashed):
            return window
        how = "closed" if page.is_closed() else "crashed"
        _log.warning("the window opened ahead %s meanwhile: the run opens its own", how)
        with contextlib.suppress(PlaywrightError, asyncio.CancelledError):
            context.close()
        return None

    @property
    def env(self) -> dict[str, str]:
        """The environment Chromium starts (started) with, less ours."""
        return dict(self._env)

    def pids(self) -> set[int]:
        """Chromium's processes now."""
        return set(find_tree(None, self._cookie))

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Close Chromium within ``timeout`` seconds, else kill it; then kill anything of
        its tree still alive (a wedged renderer, a crashpad handler). Idempotent."""
        if self._closed:
            return
        self._closed = True
        # Snapshot the process tree first: once Chromium's main process is gone its
        # zygotes and renderers lose their parent link (and carry no cookie).
        tree = find_tree(None, self._cookie)
        # Playwright's close waits for Chromium's answer: a wedged (stopped, hung) browser
        # would hold teardown forever. Past the deadline it is killed, and close returns.
        cut = threading.Timer(timeout, self._cut_close, args=(tree, timeout))
        cut.daemon = True
        cut.start()
        try:
            if self.browser is not None:
                # (A call cancelled because a dialog holds a page is closing too.)
                with contextlib.suppress(PlaywrightError, asyncio.CancelledError):
                    self.browser.close()
        finally:
            cut.cancel()
        tree.update(find_tree(None, self._cookie))
        kill_tree(tree, grace=1.0)
        self._launcher.close()

    def kill(self) -> None:
        """Kill Chromium and every process of its tree now (it hangs)."""
        self._killed = True
        kill_tree(find_tree(None, self._cookie), grace=0.5)

    def _cut_close(self, tree: dict[int, int], timeout: float) -> None:
        _log.warning("Chromium did not close within %g s: killing it", timeout)
        kill_tree(tree, grace=0.5)


def new_context(
    browser: PWBrowser, storage_state: Mapping[str, object] | None = None
) -> BrowserContext:
    """A browser context of ours: the page as big as its window (no viewport of its
    own), downloads kept, and the cookies and storage of ``storage_state`` (Playwright's
    format) loaded first."""
    return browser.new_context(
        no_viewport=True,
        accept_downloads=True,
        storage_state=dict(storage_state) if storage_state is not None else None,  # type: ignore[arg-type]
    )


def fill_screen(context: BrowserContext, page: Page, screen: tuple[int, int]) -> None:
    """Make the window fill the screen and wait until it does (the WM may be slow).

    Our openbox opens windows maximized. Elsewhere ``--start-maximized`` alone races with
    the window manager, so ask over CDP.
    """
    width, height = screen
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
