"""The browser layer: headed Chromium on our display, asked only within deadlines.

One job a module: Playwright's driver (``_driver``), Chromium's launch and end
(``_launch``, its policies ``_policy``), the deadlines of every call (``_calls``), the
tabs (``_tabs``), dialogs (``_dialogs``), the input handshake (``_input``), downloads
(``_downloads``), the page's console (``_console``) and where the page is on the screen
(``_geometry``), what a person sees (``_seen``); :class:`Browser` (``_browser``) puts them together.
"""

from __future__ import annotations

from verifier.browser._browser import ASK_S, DEFAULT_CALL_S, Browser, Unanswered
from verifier.browser._dialogs import DIALOG_KEYS, DIALOG_PAINT_S, DialogEvent
from verifier.browser._driver import (
    prestart_playwright,
    release_prestarted,
    start_playwright,
    stop_playwright,
)
from verifier.browser._geometry import FRAME_INSET_JS, NODE_PATH_JS, Place
from verifier.browser._input import InputKind, InputMark
from verifier.browser._launch import CHROMIUM, CHROMIUM_FLAGS, Chromium
from verifier.browser._seen import SEEN_ENGINE, SEEN_JS

__all__ = (
    "ASK_S",
    "CHROMIUM",
    "CHROMIUM_FLAGS",
    "DEFAULT_CALL_S",
    "DIALOG_KEYS",
    "DIALOG_PAINT_S",
    "FRAME_INSET_JS",
    "NODE_PATH_JS",
    "Place",
    "SEEN_ENGINE",
    "SEEN_JS",
    "Browser",
    "Chromium",
    "DialogEvent",
    "InputKind",
    "InputMark",
    "Unanswered",
    "prestart_playwright",
    "release_prestarted",
    "start_playwright",
    "stop_playwright",
)
