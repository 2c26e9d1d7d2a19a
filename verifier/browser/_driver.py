"""Playwright's driver (a Node.js process): started early, taken once, stopped.

``verifier run`` starts the driver while Python imports the rest of verifier
(:func:`prestart_playwright`, from ``verifier/_entry.py``); the stage takes it
(:func:`start_playwright`) instead of starting its own.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Playwright, sync_playwright

from verifier._process import patched_environ, scratch_root
from verifier.errors import BrowserError

__all__ = ("prestart_playwright", "release_prestarted", "start_playwright", "stop_playwright")

_SEMI_SPACE = "--max-semi-space-size=2"  # MB
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
    :class:`~verifier.browser.Browser`.
    """
    global _prestarted
    if _prestarted is not None:
        playwright, _prestarted = _prestarted, None
        return playwright
    return _start_driver()


def _start_driver() -> Playwright:
    """Start Playwright's driver.

    Node compiles the driver's JavaScript on every start; with a compile cache the driver
    is up in ~200 ms instead of ~270 (measured here). Its young generation is kept small
    (``--max-semi-space-size``: 16 MB of its ~90 MB, for messages that live a moment).
    The driver inherits os.environ, so the variables are set around its start and then
    restored (``TMPDIR`` too: see :func:`~verifier._process.scratch_root`). A cache that
    cannot be written is skipped by Node, silently. A driver that does not start is a
    :class:`BrowserError` in one line; a missing system library (Playwright's node needs
    libatomic.so.1) names the Debian package to install.
    """
    from verifier.browser._syslibs import DriverStderr

    # Its temporary files (the browser's profile, downloads) go where the watchdog
    # removes them, should the driver be killed before it does.
    changes = {"TMPDIR": str(scratch_root())}
    if "NODE_COMPILE_CACHE" not in os.environ:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        changes["NODE_COMPILE_CACHE"] = str(Path(base) / "verifier" / "node-compile-cache")
    options = os.environ.get("NODE_OPTIONS", "")
    if "--max-semi-space-size" not in options:
        changes["NODE_OPTIONS"] = f"{options} {_SEMI_SPACE}".strip()
    with patched_environ(changes), DriverStderr() as stderr:
        try:
            return sync_playwright().start()
        except Exception as exc:  # Playwright raises a bare Exception when node dies
            raise BrowserError(stderr.failure(exc)) from exc


def stop_playwright(playwright: Playwright) -> None:
    """Stop a driver from :func:`start_playwright`; one already gone is stopped."""
    with contextlib.suppress(PlaywrightError):
        playwright.stop()
