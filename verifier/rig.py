"""A warm desktop: what a run stands on before it knows its recipe, started ahead of it.

A :class:`Rig` is Xvfb, openbox, Playwright's driver and a headed Chromium with
nothing of any app (a pool's has a fresh context's window open already, for its run),
with ``network: loopback`` all of it in a network namespace of its own. ``verifier
serve`` keeps rigs ready (see ``verifier.pool``); a :class:`~verifier.stage.Stage`
given one takes its parts (:meth:`~Rig.take`) instead of starting its own: they serve
that one run, and the rig stops them once the run has answered. A suite of recipes
(``verifier.suite``) instead lends them (:meth:`~Rig.lend`) to one stage after
another, each making a browser context of its own, and resets the desktop's input
between them.

::

    rig = Rig("1280x800").start()        # ~1 s: display, driver and browser
    why = rig.refuses(recipe, network="host", display=None, live=False)
    stage = Stage(recipe, out=..., rig=rig)   # takes the rig's parts at start()
    ...
    rig.close()                          # stops them (after the run has answered)
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Playwright

from verifier._netns import loopback_only
from verifier._process import scratch_dir
from verifier._types import parse_screen
from verifier.app import sandbox_unavailable
from verifier.browser import (
    CHROMIUM,
    Chromium,
    release_prestarted,
    start_playwright,
    stop_playwright,
)
from verifier.desktop import Desktop
from verifier.errors import BrowserError, NetworkError, VerifierError
from verifier.recipe import Recipe

__all__ = ("Rig", "RigParts", "enter_loopback", "require_sandbox")

_log = logging.getLogger(__name__)
_LOGS = ("xvfb.log", "openbox.log")


# What Chromium takes from its environment when it starts (time zone, language, proxies,
# fonts): a warm browser started with the pool's, so a caller whose differ starts cold.
_BROWSER_ENV = frozenset(
    {
        "TZ",
        "LANG",
        "LANGUAGE",
        "HOME",
        "FONTCONFIG_FILE",
        "FONTCONFIG_PATH",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_DATA_DIRS",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    }
)


def _browser_reads(name: str) -> bool:
    return (
        name in _BROWSER_ENV
        or name.startswith("LC_")
        or name.lower() in ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "ftp_proxy")
    )


def require_sandbox() -> None:
    """``network: loopback`` holds only when the app cannot leave the namespace: where
    no sandbox can be made, an app with our privileges could (``nsenter``).

    :raises NetworkError: no sandbox can be made here.
    """
    why_not = sandbox_unavailable()
    if why_not is not None:
        msg = (
            f"network: loopback needs the app's sandbox, which cannot be made here "
            f"({why_not}): without it the app could leave the namespace; run where "
            "user namespaces are allowed, or use network: host"
        )
        raise NetworkError(msg)


def enter_loopback(stack: contextlib.ExitStack) -> None:
    """Put this thread, and what it starts from now on, in a network namespace where only
    loopback exists, left when ``stack`` closes (``network: loopback``).

    :raises NetworkError: no sandbox can be made here for the app, or no namespace.
    """
    require_sandbox()
    # A driver started before the namespace existed (verifier run starts one during its
    # imports) lives outside it, and so would the browser it starts.
    release_prestarted()
    stack.enter_context(loopback_only())


@dataclass(frozen=True, slots=True)
class RigParts:
    """What a stage uses of a rig (the rig stops them)."""

    desktop: Desktop
    playwright: Playwright
    chromium: Chromium
    ready_s: float  # how long the rig took to start


class Rig:
    """A desktop started before its run (see the module).

    :param screen: the display's ``WIDTHxHEIGHT``: recipes of another screen start cold.
    :param file_urls: whether the browser may open ``file:`` URLs (recipes that say
        otherwise start cold).
    :param typing: what the recipes it will serve type (a suite's): bound before
        Chromium starts and kept for them all (see :meth:`Desktop.prepare_typing`).
    :param window: open a fresh browser context's window ahead, for the one run the
        rig serves (a pool's): that run does not wait for it (unless it loads a login,
        which needs a context of its own). Not for a suite: a window opened ahead of a
        recipe would be on the screen during the recipe before.
    """

    def __init__(
        self,
        screen: str = "1280x800",
        *,
        file_urls: bool = False,
        network: str = "host",
        display: str | None = None,
        typing: str = "",
        window: bool = False,
    ) -> None:
        self.network = network
        self._typing = typing
        self._window = window
        self._attach = display
        try:
            self.screen = parse_screen(screen, what="--screen")[:2]
        except ValueError as exc:
            raise VerifierError(str(exc)) from None
        self._screen = screen
        self.file_urls = file_urls
        self._logs = scratch_dir("rig-")
        self._stack = contextlib.ExitStack()
        self._stack.callback(shutil.rmtree, self._logs, ignore_errors=True)
        self._parts: RigParts | None = None
        self._taken = False
        self._entered = False

    def enter(self) -> Rig:
        """With ``network: loopback``, enter the rig's network namespace (what this
        thread starts from now on runs in it: the app, before :meth:`start`)."""
        if self.network == "loopback" and not self._entered:
            self._entered = True
            try:
                enter_loopback(self._stack)
            except BaseException:
                self.close()
                raise
        return self

    def start(self) -> Rig:
        """Start the display, the driver and Chromium; stops what started when one fails.

        :raises VerifierError: a part did not start (DisplayError, BrowserError).
        """
        if self._parts is not None:
            return self
        self.enter()
        t0 = time.monotonic()
        try:
            desktop = Desktop(self._screen, display=self._attach, log_dir=self._logs)
            self._stack.callback(desktop.close)
            desktop.launch()
            playwright = start_playwright()
            self._stack.callback(stop_playwright, playwright)
            desktop.start(managed=False)  # openbox comes up while Chromium starts
            desktop.prepare_typing(self._typing, keep=True)
            chromium = Chromium(
                executable=CHROMIUM,
                display=desktop.display,
                env=desktop.env,
                file_urls=self.file_urls,
            )
            self._stack.callback(chromium.close)
            chromium.launch(playwright)
            desktop.wait_managed()
            if self._window:
                chromium.open_window(playwright, desktop.size)
        except PlaywrightError as exc:
            self.close()
            msg = f"the warm desktop's browser window did not open: {exc.message.splitlines()[0]}"
            raise BrowserError(msg) from exc
        except BaseException:
            self.close()
            raise
        self._parts = RigParts(desktop, playwright, chromium, round(time.monotonic() - t0, 3))
        _log.info("warm desktop on %s in %.2f s", desktop.display, self._parts.ready_s)
        return self

    def refuses(
        self,
        recipe: Recipe,
        *,
        network: str | None,
        display: str | None,
        live: bool,
        env: Mapping[str, str] | None = None,
    ) -> str | None:
        """Why a run of ``recipe`` with these options (and, from another process, its
        environment ``env``) cannot use this rig (then it starts cold), or None when it
        can."""
        if display != self._attach:
            return "--display attaches to another display"
        if live:
            return "--live serves a view of a desktop of its own"
        if (network or recipe.network) != self.network:
            return f"network: {network or recipe.network} is not the desktop's {self.network}"
        screen = parse_screen(recipe.screen, what="screen")[:2]
        if screen != self.screen:
            return f"the recipe's screen {recipe.screen} is not the pool's {self._screen}"
        if recipe.allow_file_urls != self.file_urls:
            return "the recipe allows file: URLs, which the pool's browsers block"
        if env is not None and self._parts is not None:
            ours = self._parts.chromium.env
            for name in sorted({*ours, *env}):
                if _browser_reads(name) and ours.get(name) != env.get(name):
                    return (
                        f"the caller's {name} is not the pool's (Chromium read it when it "
                        "started): start verifier serve with the same environment"
                    )
        return None

    @property
    def log_dir(self) -> Path:
        """The rig's own folder (its display's logs)."""
        return self._logs

    @property
    def display(self) -> str:
        """The rig's X display (``":3"``); "" before it started."""
        return self._parts.desktop.display if self._parts is not None else ""

    def check_alive(self) -> None:
        """Raise if the display or the browser has died while the rig waited."""
        if self._parts is None:
            msg = "the warm desktop is not started"
            raise VerifierError(msg)
        self._parts.desktop.check_alive()
        # (A window opened ahead that crashed meanwhile is heard of when a run takes it:
        # an idle desktop asks Playwright nothing, so nothing of it would be heard here.)
        chromium = self._parts.chromium
        if not chromium.connected:
            msg = "the warm desktop's Chromium is gone"
            raise BrowserError(msg)

    def lend(self) -> RigParts:
        """The parts, for one stage to use and not stop (see :meth:`give_back`)."""
        if self._parts is None or self._taken:
            msg = "this warm desktop is not ready, or was taken"
            raise VerifierError(msg)
        return self._parts

    def give_back(self, logs: Path) -> None:
        """A stage is done with the lent parts: the desktop's input is reset for the
        next (see :meth:`Desktop.reset`) and its logs so far copied into ``logs``.

        :raises VerifierError: the display or the browser cannot serve another recipe.
        """
        self.copy_logs(logs)
        self.check_alive()
        assert self._parts is not None
        self._parts.desktop.reset()

    def take(self) -> RigParts:
        """Hand the parts to the one run the rig serves (once). The rig still stops them
        at :meth:`close`, which its owner calls once that run has answered: the run's
        caller does not wait for Chromium, the driver and the display to close."""
        if self._parts is None or self._taken:
            msg = "a warm desktop serves one run: this one is not ready or already taken"
            raise VerifierError(msg)
        self._taken = True
        return self._parts

    def copy_logs(self, folder: Path) -> None:
        """Copy the display's and window manager's logs into ``folder`` (a bundle's)."""
        for name in _LOGS:
            src = self._logs / name
            if src.is_file():
                with contextlib.suppress(OSError):
                    shutil.copyfile(src, folder / name)

    def close(self) -> None:
        """Stop whatever no stage took (LIFO), and remove the log folder. Idempotent."""
        self._stack.close()
