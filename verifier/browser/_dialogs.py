"""The page's alert, confirm, prompt and beforeunload dialogs.

A dialog stays on screen, as for a person, until input answers it (Enter, a click on
its button) or a step does; meanwhile it holds the page's scripts, so a call to the page
already on its way waits for as long as it stays open (Playwright cannot cancel it):
ours are called off instead, shortly, once they had their chance to finish, and again
while the dialog stays open. Before steps run (and for a Browser used on its own) a
dialog is dismissed at once, as Playwright does by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from playwright.sync_api import Dialog, Page
from playwright.sync_api import Error as PlaywrightError

from verifier.browser._calls import Calls
from verifier.errors import BrowserError

__all__ = ("DIALOG_KEYS", "DIALOG_PAINT_S", "DialogEvent", "Dialogs")

_log = logging.getLogger(__name__)

# How long the screen must hold still after a dialog opens before it shows the dialog:
# Chromium paints it (and dims the page) 20 to 40 ms after saying it opened.
DIALOG_PAINT_S = 0.1
# The keys that answer an open dialog (lower case; the last key of a combo counts).
DIALOG_KEYS = frozenset({"enter", "return", "kp_enter", "escape", "esc", "space"})
# How long a call to the page may stay held up by a dialog before it is called off.
_UNSTICK_S = 0.3


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


class Dialogs:
    """Every dialog the pages opened, in order, and what became of it.

    :param calls: the browser's calls (called off while a dialog holds the front page).
    :param front: the page steps act on, if any.
    :param tab_of: a page's tab index.
    :param wake: called when a dialog opens or closes (the browser's waits wake up).
    """

    def __init__(
        self,
        *,
        calls: Calls,
        loop: asyncio.AbstractEventLoop,
        front: Callable[[], Page | None],
        tab_of: Callable[[Page], int],
        wake: Callable[[], None],
    ) -> None:
        self._calls = calls
        self._loop = loop
        self._front = front
        self._tab_of = tab_of
        self._wake = wake
        self.events: list[DialogEvent] = []
        self.hold = False  # keep them open until input or a step answers them
        self._answering = False  # a dialog is being answered: its calls are not stuck
        self._closed = False

    def close(self) -> None:
        self._closed = True

    def on_dialog(self, dialog: Dialog) -> None:
        """A page opened a dialog (Playwright's event)."""
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
        self.events.append(event)
        _log.info("tab %d opened a dialog: %s", tab, event.describe())
        if not self.hold:
            with contextlib.suppress(PlaywrightError):
                dialog.dismiss()
            event.answer = "dismissed"
            return
        self._wake()
        self._loop.call_later(_UNSTICK_S, self._unstick, event)

    def _unstick(self, event: DialogEvent) -> None:
        """Call off the calls still waiting while ``event`` holds the page steps act on;
        they raise asyncio.CancelledError, which the callers turn into "a dialog is open"
        (or, waiting for time or for the dialog itself, go on). Again and again while the
        dialog stays open: nothing may wait for that page meanwhile."""
        if not event.is_open or self._closed:
            return
        self._loop.call_later(_UNSTICK_S, self._unstick, event)
        if self._answering or self._front() is not event.page:
            return
        self._calls.call_off("held up by the dialog")

    def closed_on(self, page: Page) -> None:
        """Chromium says the dialog on ``page`` closed: input answered it."""
        for event in self.events:
            if event.page is page and event.is_open and not self._answering:
                event.answer = "closed by input"
                _log.info("the dialog %s was closed by input", event.describe())
        self._wake()

    def page_closed(self, page: Page) -> None:
        for event in self.events:
            if event.page is page and event.is_open:
                event.answer = "closed with its page"

    def on(self, page: Page) -> DialogEvent | None:
        """The dialog open on ``page``, if any."""
        return next((d for d in self.events if d.page is page and d.is_open), None)

    def open(self) -> list[DialogEvent]:
        """The dialogs open now, on any tab."""
        return [d for d in self.events if d.is_open]

    def answer(self, event: DialogEvent, *, accept: bool, text: str | None = None) -> None:
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
