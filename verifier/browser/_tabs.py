"""The tabs and popups: which are open, which one steps act on, and taking in the ones
the page opens.

The page steps act on is the newest tab or popup, or the one brought to the front since.
When it closes (the user's Control+W, or its own ``window.close()``: an OAuth popup, a
print view), steps go on with the tab that opened it, else the newest one still open,
and the closing is kept for the step's record. Chromium says at once when a tab opens (a
DevTools target); Playwright hands us its Page once it has set it up: a step waits for
the tabs in between (:meth:`Tabs.sync`). After a tab switch, tabs the page opened before
it stay behind it until input is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Browser as PWBrowser
from playwright.sync_api import BrowserContext, CDPSession, Page
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from verifier.errors import BrowserError

__all__ = ("Tabs",)

_log = logging.getLogger(__name__)


class Tabs:
    """The open pages of one browser context.

    :param on_new: called with each page as it comes in (dialogs, downloads, crashes).
    :param round_trip: one question to the browser process (the events it sent before
        are in by its answer).
    """

    def __init__(
        self,
        context: BrowserContext,
        *,
        on_new: Callable[[Page, CDPSession | None], None],
        on_gone: Callable[[Page], None],
        round_trip: Callable[[], None],
    ) -> None:
        self._context = context
        self._on_new = on_new
        self._on_gone = on_gone
        self._round_trip = round_trip
        self._pages: list[Page] = []  # the one steps act on last
        self._openers: dict[Page, Page] = {}
        self._gone: set[Page] = set()
        self._refront = False  # the front closed: the next one is to be raised
        # The tabs that closed, in order: {"url", "acted_on"} (steps acted on it).
        self.closed: list[dict[str, object]] = []
        self._targets: dict[Page, str] = {}
        self._known: set[Page] = set()
        self._opening: set[str] = set()  # targets Chromium opened, not handed to us yet
        self._pinned = False
        self._watch: CDPSession | None = None

    def listen(self) -> None:
        """Take in every page of the context as Playwright hands it over."""
        self._context.on("page", self.take)

    def watch(self, browser: PWBrowser) -> None:
        """Hear of new tabs from Chromium itself, as soon as they open (after the first
        tab is in: its own announcement would otherwise be waited for)."""
        self._watch = browser.new_browser_cdp_session()
        self._watch.on("Target.targetCreated", self._on_target)
        self._watch.on("Target.targetDestroyed", self._on_target_gone)
        self._watch.send("Target.setDiscoverTargets", {"discover": True})

    def unwatch(self) -> None:
        """Stop hearing of Chromium's tabs (its other contexts' are not ours)."""
        if self._watch is not None:
            with contextlib.suppress(PlaywrightError, asyncio.CancelledError):
                self._watch.detach()
            self._watch = None

    def take(self, page: Page) -> None:
        """A tab or popup opened (by the page, or ours at start): steps act on it now."""
        if page in self._known:  # told twice: the event, and new_page() at start
            return
        self._known.add(page)
        # Who opened it: the page itself says (a popup), else the tab steps acted on
        # (a link with target=_blank opens without an opener).
        opener = _opener(page) or (self._pages[-1] if self._pages else None)
        if opener is not None:
            self._openers[page] = opener
        if self._pinned and self._pages:
            # A tab was switched to since the last input: one the page opened before it
            # (popups keep coming in for a while) does not take the front from it.
            self._pages.insert(0, page)
        else:
            self._pages.append(page)
        page.on("close", self._on_close)
        if len(self._pages) > 1:
            _log.info("the page opened tab %d: %s", self.index(page), page.url)
        # Playwright says when a dialog opens, not when input closes it: Chromium does,
        # to every DevTools client that enabled its Page domain.
        cdp: CDPSession | None = None
        try:
            cdp = page.context.new_cdp_session(page)
            target = str(cdp.send("Target.getTargetInfo")["targetInfo"]["targetId"])
        except (PlaywrightError, KeyError, asyncio.CancelledError) as exc:  # closed already
            _log.debug("no DevTools session for a new page: %s", exc)
            target = ""
        self._on_new(page, cdp)
        if target:
            self._opening.discard(target)
            self._targets[page] = target

    def _on_close(self, page: Page) -> None:
        self._drop(page)
        self._on_gone(page)

    def _drop(self, page: Page) -> None:
        """``page`` closed: when steps acted on it, they go on with its opener, else
        with the newest tab still open."""
        front = self.is_front(page)
        self._targets.pop(page, None)
        if page in self._pages:
            self._pages.remove(page)
        if page in self._gone:
            return
        self._gone.add(page)
        self.closed.append({"url": page.url, "acted_on": front})
        if not front:
            return
        after = self._openers.get(page)
        if after is None or after.is_closed() or after not in self._pages:
            open_pages = [p for p in self.all() if p in self._pages]
            after = open_pages[-1] if open_pages else None
        if after is not None:
            self._pages.remove(after)
            self._pages.append(after)
            self._refront = True
            _log.info("a tab closed (%s): steps go on with tab %d", page.url, self.index(after))

    def _on_target(self, event: dict[str, Any]) -> None:
        info = event.get("targetInfo") or {}
        target = str(info.get("targetId", ""))
        if info.get("type") == "page" and target and target not in self._targets.values():
            self._opening.add(target)

    def _on_target_gone(self, event: dict[str, Any]) -> None:
        self._opening.discard(str(event.get("targetId", "")))

    @property
    def opening(self) -> int:
        """How many tabs Chromium has opened that are not handed over yet."""
        return len(self._opening)

    @property
    def front(self) -> Page | None:
        """The page steps act on, as last known (None: no page)."""
        return self._pages[-1] if self._pages else None

    def is_front(self, page: Page) -> bool:
        return bool(self._pages) and self._pages[-1] is page

    def all(self) -> list[Page]:
        """The open tabs and popup windows, in the order they opened."""
        return [p for p in self._context.pages if not p.is_closed()]

    def index(self, page: Page) -> int:
        tabs = self.all()
        return tabs.index(page) if page in tabs else -1

    def current(self) -> Page:
        """The page steps act on, after dropping the closed ones.

        :raises BrowserError: no page is left.
        """
        while self._pages and self._pages[-1].is_closed():
            self._drop(self._pages[-1])
        if not self._pages:  # pages Playwright knows of that we have not been told of yet
            self._pages = [p for p in self._context.pages if not p.is_closed()]
        if not self._pages:
            last = f" ({self.closed[-1]['url']})" if self.closed else ""
            msg = f"the last tab closed{last}: no page is left to act on"
            raise BrowserError(msg)
        page = self._pages[-1]
        if self._refront:  # its window raised and its tab selected, as a person sees it
            self._refront = False
            try:
                page.bring_to_front()
            except PlaywrightError as exc:
                _log.debug("could not bring the next tab to the front: %s", exc)
        return page

    def bring_to_front(self, page: Page) -> None:
        """Steps act on ``page`` from now on; its window raised, its tab selected."""
        if page in self._pages:
            self._pages.remove(page)
        self._pages.append(page)
        self._pinned = True
        try:
            page.bring_to_front()
        except PlaywrightError as exc:
            msg = f"could not bring tab {self.index(page)} to the front: {exc}"
            raise BrowserError(msg) from exc

    def input_sent(self) -> None:
        """Input is on its way: tabs it opens take the front again."""
        self._pinned = False

    def sync(self, timeout: float) -> bool:
        """Take in what the browser has said so far (a tab that opened, a dialog), and
        wait (up to ``timeout``) for the tabs Chromium has opened to be ready to use;
        False when one was not (behind a burst of the page's console lines, Playwright
        took 8 s to hand a new tab over)."""
        self._round_trip()
        deadline = time.monotonic() + timeout
        while self._opening and (remaining := deadline - time.monotonic()) > 0:
            try:
                self._context.wait_for_event("page", timeout=min(remaining, 1.0) * 1000)
            except (PlaywrightTimeout, asyncio.CancelledError):
                self._opening &= self._live_targets()
            except PlaywrightError:
                break
        if self._opening:  # not handed over in time: wait no more
            _log.info("tabs not handed over by Playwright in time: %s", sorted(self._opening))
            self._opening.clear()
            return False
        return True

    def titles(self) -> dict[Page, str]:
        """Each open page's title as the browser process knows it (a page whose scripts
        never yield does not hold this up)."""
        if self._watch is None:
            return {}
        try:
            infos = self._watch.send("Target.getTargets")["targetInfos"]
        except (PlaywrightError, KeyError, asyncio.CancelledError):
            return {}
        by_id = {str(t.get("targetId")): str(t.get("title", "")) for t in infos}
        return {page: by_id[t] for page, t in self._targets.items() if t in by_id}

    def _live_targets(self) -> set[str]:
        if self._watch is None:
            return set()
        try:
            infos = self._watch.send("Target.getTargets")["targetInfos"]
        except (PlaywrightError, KeyError, asyncio.CancelledError):
            return set()
        return {str(t["targetId"]) for t in infos if t.get("type") == "page"}


def _opener(page: Page) -> Page | None:
    try:
        return page.opener()
    except (PlaywrightError, asyncio.CancelledError):
        return None
