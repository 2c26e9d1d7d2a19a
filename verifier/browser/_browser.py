"""Headed Chromium on our display, driven by Playwright for DOM queries only.

Input never goes through Playwright: steps send it through XTest at screen coordinates.
:class:`Browser` puts together what the other modules of this package do (launch, tabs,
dialogs, the input handshake, downloads, the console, geometry) and answers for one
rule: every question to the browser has a deadline (``_calls.py``). One-shot questions
go through :meth:`Browser.ask` (5 s by default); a step or a tool bounds everything it
asks with :meth:`Browser.deadline`; any other call is called off after
:data:`DEFAULT_CALL_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import BrowserContext, CDPSession, Download, Frame, Page, Playwright
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from verifier._process import Owner
from verifier._xauth import display_env
from verifier.browser import _geometry as geometry
from verifier.browser._calls import Calls, Deadline
from verifier.browser._console import ConsoleLog
from verifier.browser._dialogs import DialogEvent, Dialogs
from verifier.browser._downloads import DOWNLOAD_TIMEOUT, Downloads
from verifier.browser._driver import start_playwright, stop_playwright
from verifier.browser._input import InputKind, InputMark, InputWatch
from verifier.browser._launch import CHROMIUM, CLOSE_TIMEOUT, Chromium, fill_screen, new_context
from verifier.browser._network import NetworkLog
from verifier.browser._seen import register_engines
from verifier.browser._tabs import Tabs
from verifier.errors import BrowserError

__all__ = ("ASK_S", "DEFAULT_CALL_S", "Browser", "Unanswered")

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

# How long a one-shot question to the page may take (it answers in about a millisecond).
ASK_S = 5.0
# How long any other call may wait, outside a step's or a tool's deadline.
DEFAULT_CALL_S = 60.0
# How long the browser process may take to answer a question (it answers in about 1 ms);
# how long one that left the last round trip unanswered (stopped, or its pipe jammed by a
# page's console flood) may take to close before it is killed.
_ROUND_TRIP_S = 5.0
_JAMMED_CLOSE_S = 1.0
# How long a page may take to say its title before it is shown without one.
_TITLE_S = 2.0


class Unanswered(BrowserError):
    """The page (or Chromium) did not answer a question within its deadline: its scripts
    never yield, or the browser is wedged."""


class Browser(Owner):
    """Chromium, headed on ``display``, its window filling the screen.

    :param display: the X display to draw on (``":1"``).
    :param console_log: JSON-lines file for console messages, page errors and failed requests.
    :param env: base environment (``DISPLAY`` is set from ``display``).
    :param playwright: a driver from :func:`start_playwright` to use (and leave running);
        by default the browser starts and stops its own.
    :param storage_state: cookies and localStorage to load first (Playwright's format).
    :param file_urls: let the browser open ``file:`` URLs (else Chromium's policy refuses
        them, where a mount namespace can be made: see ``_policy.py``).
    :param chromium: a Chromium launched already on ``display`` (a warm desktop's, see
        ``verifier.rig``), with no context of ours: the browser uses it instead of
        launching one (``executable`` and ``file_urls`` are then its own) and closes it,
        unless ``keep_chromium``: then only this browser's context (its cookies, storage,
        cache, permissions, pages and windows) is closed, for the next recipe to make its
        own, or for the warm desktop to close Chromium once its run has answered. A
        context that does not close within its deadline takes Chromium with it.
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
        chromium: Chromium | None = None,
        keep_chromium: bool = False,
    ) -> None:
        self._display = display
        self._keep_chromium = keep_chromium and chromium is not None
        self._screen = screen
        self._chromium = chromium or Chromium(
            executable=executable,
            display=display,
            env=env if env is not None else display_env(display),
            file_urls=file_urls,
        )
        self._console = ConsoleLog(console_log, redact)
        self.network = NetworkLog(redact)  # every request, for the steps and network.har
        self._pw = playwright
        self._storage_state = dict(storage_state) if storage_state is not None else None
        self._owns_pw = False  # a Playwright handed in is stopped by whoever started it
        self._started = False
        self._context: BrowserContext | None = None
        self._calls: Calls | None = None
        self._tabs: Tabs | None = None
        self._dialogs: Dialogs | None = None
        self._input = InputWatch(self._wake_up)
        self._downloads = Downloads(self._run_async, redact)
        self._places = geometry.Places()
        self._wake: asyncio.Event | None = None  # set when the page tells us something
        self._hold_dialogs = False
        self._pids: set[int] = set()
        self._dead: str | None = None
        self._closed = False
        self._jammed = False  # the last round trip to the browser was not answered
        self._missed = 0  # round trips that went unanswered for their whole time
        self.version = ""

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Browser:
        """Launch Chromium; a second call does nothing."""
        if self._started:
            return self
        self._started = True
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
        register_engines(self._pw)  # before any context is made
        browser = self._chromium.browser or self._chromium.launch(self._pw)
        self.version = browser.version
        browser.on("disconnected", lambda _b: self._mark_dead("Chromium disconnected"))
        # A warm desktop's window, opened ahead: fresh, with nothing of any app. Not for
        # a run that loads a login first (its context must be made with it).
        ahead = self._chromium.take_window()
        if ahead is not None and self._storage_state is not None:
            with contextlib.suppress(PlaywrightError, asyncio.CancelledError):
                ahead[0].close()
            ahead = None
        context = ahead[0] if ahead is not None else new_context(browser, self._storage_state)
        self._context = context
        loop: asyncio.AbstractEventLoop = context._loop  # Playwright's own loop
        self._calls = Calls(loop, default=DEFAULT_CALL_S)
        tabs = self._tabs = Tabs(
            context, on_new=self._on_page, on_gone=self._on_page_gone, round_trip=self._round_trip
        )
        self._dialogs = Dialogs(
            calls=self._calls,
            loop=loop,
            front=lambda: tabs.front,
            tab_of=tabs.index,
            wake=self._wake_up,
        )
        self._dialogs.hold = self._hold_dialogs
        self._input.install(context)
        self._places.install(context)
        self._console.listen(context)
        self.network.listen(context)
        context.on("dialog", self._dialogs.on_dialog)
        tabs.listen()
        page = ahead[1] if ahead is not None else context.new_page()
        tabs.take(page)  # unless the "page" event has come already
        tabs.watch(browser)
        if ahead is None:
            page.bring_to_front()
        fill_screen(context, page, self._screen)  # (one question, when it does already)
        self._pids = self._chromium.pids()
        # Its "page" event may still be setting the first tab up: take it in fully, or a
        # caller that asks for the page at once finds none ("its last page was closed").
        self.sync()
        _log.info("Chromium %s on %s", self.version, self._display)

    def close(self) -> None:
        """Close Chromium and Playwright (each within its deadline), then kill anything of
        theirs still alive."""
        if self._closed:
            return
        self._closed = True
        if self._dialogs is not None:
            self._dialogs.close()
        # A browser that left its last round trip unanswered gets a second to close.
        limit = _JAMMED_CLOSE_S if self._jammed else CLOSE_TIMEOUT
        if self._keep_chromium:
            self._close_context(limit)
        else:
            self._chromium.close(limit)
        if self._pw is not None and self._owns_pw:
            stop_playwright(self._pw)
        if self._calls is not None:
            self._calls.close()
        self._console.close()

    def _close_context(self, timeout: float) -> None:
        """Close this browser's context and everything of it, leaving Chromium running;
        past ``timeout`` Chromium is killed (its next user sees it gone). Hearing of its
        tabs ends first, within that time too: behind a page's console flood, that alone
        took 44 s."""
        cut = threading.Timer(timeout, self._cut_context, args=(timeout,))
        cut.daemon = True
        cut.start()
        # (self.deadline() no longer applies: the browser counts as closed already.)
        bound = (
            self._calls.within(timeout, "closing the context")
            if self._calls is not None
            else contextlib.nullcontext()
        )
        closed = False
        try:
            with contextlib.suppress(PlaywrightError, asyncio.CancelledError), bound:
                if self._tabs is not None:
                    self._tabs.unwatch()
                if self._context is not None:
                    self._context.close()
                closed = True
        finally:
            cut.cancel()
        if not closed:  # called off: what is left of it must not serve another run
            self._cut_context(timeout)

    def _cut_context(self, timeout: float) -> None:
        if self._chromium.killed:  # (the timer, and the close called off, both come here)
            return
        _log.warning("the context did not close within %g s: killing Chromium", timeout)
        self._chromium.kill()

    @property
    def file_url_policy(self) -> str:
        """How ``file:`` URLs fare: "allowed", "blocked by policy", or why they are not."""
        return self._chromium.file_url_policy

    # -- deadlines ----------------------------------------------------------------------

    @contextlib.contextmanager
    def deadline(self, seconds: float, why: str) -> Iterator[Deadline]:
        """Everything asked of the browser inside is called off (asyncio.CancelledError)
        once ``seconds`` have passed, and so is anything asked after, until the block
        ends: a step, an agent's tool, a teardown."""
        if self._calls is None or self._closed:
            yield Deadline(time.monotonic() + seconds, why)
            return
        with self._calls.within(seconds, why) as limit:
            yield limit

    def silence(self) -> str:
        """Why the page answers nothing, as far as we can tell: its console flood holds up
        every question to it, or (the rest) its scripts never yield."""
        return _FLOOD if self._console.flooded else _NO_ANSWER

    def lag(self) -> str:
        """Why the browser's news is behind (see :attr:`behind`), as far as we can tell."""
        if self._console.flooded:
            return _FLOOD
        return (
            f"the browser left a round trip unanswered for {_ROUND_TRIP_S:g} s: it is "
            "stopped, or a burst of the page's console lines or requests holds its news up"
        )

    def ask(self, question: Callable[[Page], _T], *, within: float = ASK_S) -> _T:
        """``question(page)`` on the page steps act on, answered within ``within`` s.

        :raises Unanswered: no answer in time (a dialog holding the page says so itself:
            see :attr:`dialog`).
        :raises BrowserError: the browser died, or the page could not answer.
        """
        page = self.page
        try:
            with self.deadline(within, "a question to the page"):
                return question(page)
        except asyncio.CancelledError:
            event = self.dialog
            why = f"a dialog holds it ({event.describe()})" if event else self.silence()
            msg = f"the page did not answer within {within:g} s: {why}"
            raise Unanswered(msg) from None

    @contextlib.contextmanager
    def answer_within(self, seconds: float) -> Iterator[None]:
        """Call off (asyncio.CancelledError) the calls made inside that still wait after
        ``seconds``."""
        with self.deadline(seconds, f"an answer within {seconds:g} s"):
            yield

    def _run_async(self, awaitable: Awaitable[_T]) -> _T:
        """Run a coroutine on Playwright's loop from this thread (the sync API's own way)."""
        assert self._context is not None
        return self._context._sync(awaitable)  # type: ignore[no-any-return]

    # -- events ---------------------------------------------------------------------------

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _mark_dead(self, why: str) -> None:
        if self._dead is None and not self._closed:
            self._dead = why
            _log.warning("browser: %s", why)

    def _on_page(self, page: Page, cdp: CDPSession | None) -> None:
        """A tab came in: hear its crash, downloads, and the closing of its dialogs."""
        page.on("crash", self._on_crash)
        page.on("download", self._downloads.add)
        if cdp is None or self._dialogs is None:
            return
        dialogs = self._dialogs
        try:
            cdp.on("Page.javascriptDialogClosed", lambda _e: dialogs.closed_on(page))
            cdp.send("Page.enable")
        except (PlaywrightError, asyncio.CancelledError) as exc:  # closed already
            _log.debug("no dialog events for a new page: %s", exc)

    def _on_page_gone(self, page: Page) -> None:
        if self._dialogs is not None:
            self._dialogs.page_closed(page)

    def _on_crash(self, page: Page) -> None:
        if self._tabs is not None and self._tabs.is_front(page):
            self._mark_dead("the page crashed")
        else:
            _log.warning("a background tab crashed: %s", page.url)

    # -- tabs -----------------------------------------------------------------------------

    @property
    def page(self) -> Page:
        """The page steps act on: the newest tab or popup, or the one switched to since.
        Every call on it is bounded by the deadline in force (see the module)."""
        self.check_alive()
        assert self._tabs is not None
        return self._tabs.current()

    @property
    def tabs(self) -> list[Page]:
        """The open tabs and popup windows, in the order they opened."""
        return self._tabs.all() if self._tabs is not None else []

    @property
    def tab(self) -> int:
        """The index (0 = the first) of the page steps act on, among :attr:`tabs`."""
        page = self.page
        assert self._tabs is not None
        return self._tabs.index(page)

    def switch_tab(self, page: Page, *, timeout: float = 5.0) -> None:
        """Bring ``page`` to the front (its window raised, its tab selected); later steps
        act on it. Returns once it has painted a frame in front."""
        assert self._tabs is not None
        self._tabs.bring_to_front(page)
        if self.dialog is None:
            self.next_frame(timeout=timeout)

    def sync(self, *, timeout: float = 5.0) -> None:
        """Take in what the browser has said so far (a tab that opened, a dialog): one
        round trip to the browser process, which a page's dialog does not hold up; and
        wait (up to ``timeout``) for the tabs Chromium has opened to be ready to use."""
        if self._tabs is None or self._dead is not None:
            return
        with self.deadline(timeout + _ROUND_TRIP_S, "taking in the browser's news"):
            with contextlib.suppress(asyncio.CancelledError):
                if not self._tabs.sync(timeout):  # a tab it opened is not in yet
                    self._jammed = True
                    self._missed += 1

    def _round_trip(self) -> None:
        """One question to the browser process: the events it sent before are in (a
        stopped Chromium never answers: then it goes on after a while).

        Each waits its full time, also after one went unanswered: a shorter wait behind
        a page's console flood let a step act before the tab or navigation that came
        before it was in (a check passed on the tab before)."""
        assert self._context is not None
        asked = time.monotonic()
        try:
            with self.deadline(_ROUND_TRIP_S, "a round trip to the browser"):
                self._context.cookies("about:blank")
        except asyncio.CancelledError:
            # Unanswered for all its time (a step's deadline that passed says nothing).
            if time.monotonic() - asked >= _ROUND_TRIP_S:
                self._jammed = True
                self._missed += 1
            return
        except PlaywrightError:
            return
        self._jammed = False

    @property
    def behind(self) -> bool:
        """Whether the last round trip to the browser went unanswered for its whole time:
        what it said since (a tab, a navigation, a dialog) may not be in yet."""
        return self._jammed

    def news(self) -> tuple[object, ...]:
        """What the browser has said so far that a check stands on (no question asked):
        the tab in front and its URL, how many tabs are open, opening (Chromium said so,
        Playwright has not handed them over) and closed, the dialogs."""
        tabs = self._tabs
        if tabs is None:
            return ()
        front = tabs.front
        url = front.url if front is not None else ""
        opened = (len(tabs.all()), tabs.opening, len(tabs.closed))
        return id(front), url, *opened, self.dialog_count()

    @property
    def missed(self) -> int:
        """How many round trips to the browser went unanswered for their whole time."""
        return self._missed

    @property
    def closed_tabs(self) -> list[dict[str, object]]:
        """The tabs and popups that closed so far, in order: ``{"url", "acted_on"}``
        (``acted_on``: steps acted on it; they went on with its opener)."""
        return list(self._tabs.closed) if self._tabs is not None else []

    def lost_tab(self) -> bool:
        """Whether Chromium lives on after a call on the page failed because its target
        closed: then the tab closed (itself, or by input), not the browser."""
        if self._dead is not None or self._closed or self._context is None:
            return False
        browser = self._context.browser
        if browser is None or not browser.is_connected():
            return False
        try:  # its death may not have reached us yet: ask it
            with self.deadline(_ROUND_TRIP_S, "a round trip to the browser"):
                self._context.cookies("about:blank")
        except (PlaywrightError, asyncio.CancelledError, Unanswered):
            return False
        return self._dead is None

    def sent_input(self) -> None:
        """Input is on its way: tabs it opens take the front again (see switch_tab)."""
        if self._tabs is not None:
            self._tabs.input_sent()

    def check_alive(self) -> None:
        """Raise BrowserError if Chromium or the page has died."""
        if self._dead is not None:
            msg = f"browser died: {self._dead}"
            raise BrowserError(msg)
        if not self._started or self._tabs is None:
            msg = "the browser is not started"
            raise BrowserError(msg)
        try:
            self._tabs.current()
        except BrowserError:  # no tab left: closed by the page, or Chromium is gone
            if not self.lost_tab():
                msg = f"browser died: {self._dead or 'Chromium is gone'}"
                raise BrowserError(msg) from None
            raise

    @property
    def pids(self) -> set[int]:
        """Chromium's processes, as they were once it started."""
        return set(self._pids)

    @property
    def dead(self) -> str | None:
        return self._dead

    # -- dialogs --------------------------------------------------------------------------

    @property
    def hold_dialogs(self) -> bool:
        """Keep dialogs on screen until input or a step answers them (a run's steps, an
        agent's actions); else they are dismissed at once, as Playwright does."""
        return self._hold_dialogs

    @hold_dialogs.setter
    def hold_dialogs(self, hold: bool) -> None:
        self._hold_dialogs = hold
        if self._dialogs is not None:
            self._dialogs.hold = hold

    @property
    def dialog(self) -> DialogEvent | None:
        """The dialog open on the page steps act on, if any (it blocks the page's
        scripts, so nothing can be asked of the page until it is answered)."""
        if self._tabs is None or self._dialogs is None or self._tabs.front is None:
            return None
        return self._dialogs.on(self._tabs.front)

    def dialog_on(self, page: Page) -> DialogEvent | None:
        """The dialog open on ``page``, if any."""
        return self._dialogs.on(page) if self._dialogs is not None else None

    def open_dialogs(self) -> list[DialogEvent]:
        """The dialogs open now, on any tab."""
        return self._dialogs.open() if self._dialogs is not None else []

    def dialogs_since(self, start: int) -> list[DialogEvent]:
        """The dialogs opened since :meth:`dialog_count` returned ``start``."""
        return self._dialogs.events[start:] if self._dialogs is not None else []

    def dialog_count(self) -> int:
        return len(self._dialogs.events) if self._dialogs is not None else 0

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

    def wait_dialog(self, timeout: float) -> DialogEvent | None:
        """The dialog open on the page steps act on, waiting up to ``timeout`` seconds for
        one to open."""
        deadline = time.monotonic() + timeout
        last = False
        while (event := self.dialog) is None:
            remaining = deadline - time.monotonic()
            if self._context is None:
                return None
            if remaining <= 0:
                if last:
                    return None
                # One opened in time may still be on its way (behind a page's flood of
                # console lines it came 0.3 s late): what the browser said is taken in.
                last = True
                self._round_trip()
                continue
            # (A dialog on another tab may call this wait off: it goes on.)
            with contextlib.suppress(PlaywrightTimeout, asyncio.CancelledError):
                self._context.wait_for_event("dialog", timeout=min(remaining, 1.0) * 1000)
            self.check_alive()
        return event

    def answer_dialog(self, event: DialogEvent, *, accept: bool, text: str | None = None) -> None:
        """Accept (with ``text`` for a prompt) or dismiss ``event``'s dialog."""
        assert self._dialogs is not None
        self._dialogs.answer(event, accept=accept, text=text)

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

    # -- questions ------------------------------------------------------------------------

    def answers(self, within: float = 1.0) -> bool:
        """Whether the page steps act on answers a question within ``within`` s (False:
        its scripts never yield, or Chromium hangs; a dialog holding it counts as an
        answer, it says why itself)."""
        if self._context is None or self._dead is not None or self._tabs is None:
            return False
        if self._tabs.front is None:
            return False
        if self.dialog is not None:
            return True
        try:
            self.ask(lambda page: page.evaluate("1"), within=within)
        except Unanswered:
            return self.dialog is not None
        except PlaywrightError:
            return True  # it answered, with an error (a navigation meanwhile, say)
        except BrowserError:
            return False
        return True

    def browser_title(self, page: Page) -> str | None:
        """``page``'s title as Chromium's browser process has it (no call into the page,
        so a busy page answers too); None when it cannot say."""
        if self._tabs is None or self._dead is not None:
            return None
        try:
            with self.deadline(_ROUND_TRIP_S, "the tabs' titles"):
                return self._tabs.titles().get(page)
        except (PlaywrightError, asyncio.CancelledError, Unanswered):
            return None

    def title_of(self, page: Page) -> str:
        """``page``'s title; "" when it cannot say: a dialog holds it, it is closing, or
        its scripts do not yield within a moment."""
        if self.dialog_on(page) is not None:
            return ""
        try:
            with self.deadline(_TITLE_S, "the page's title"):
                return page.title()
        except (PlaywrightError, asyncio.CancelledError):
            return ""

    def open(self, url: str, *, timeout: float = 30.0) -> None:
        """Load ``url`` in the page and wait for its load event.

        :raises BrowserError: the page could not be loaded (an HTTP error status is only
            logged: the page shows it).
        """
        try:
            with self.deadline(timeout + _ROUND_TRIP_S, f"opening {url}"):
                response = self.page.goto(url, wait_until="load", timeout=timeout * 1000)
        except PlaywrightError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            msg = f"the browser could not open {url}: {first}"
            raise BrowserError(msg) from exc
        except asyncio.CancelledError:
            msg = f"the browser could not open {url}: {self.silence()}"
            raise Unanswered(msg) from None
        if response is not None and response.status >= 400:
            _log.warning("%s answered HTTP %d", url, response.status)

    def window(self) -> tuple[tuple[int, int, int, int], str]:
        """The screen box (x, y, width, height) of the window showing the page steps act
        on, and the page's title (the window's title starts with it)."""
        place = self.place()
        return place.window, place.title

    def place(self) -> geometry.Place:
        """Where the page steps act on is on the screen: its window's box, its title and
        its viewport's box, from one question."""
        if self.dialog is not None:
            msg = "the page cannot say where it is: a dialog holds it"
            raise BrowserError(msg)
        try:
            return self.ask(self._places.place)
        except PlaywrightError as exc:
            msg = f"the page did not say where it is: {exc}"
            raise BrowserError(msg) from exc

    @property
    def node_path(self) -> str:
        """The name, in the page's world, of ``nodePath`` (see ``NODE_PATH_JS``): where a
        node is, by the DOM's own getters, which the page's scripts cannot redefine."""
        return self._places.node_path

    def ask_aside(self, expression: str) -> Any:
        """The value (as JSON) of ``expression``, asked of the page steps act on (its top
        frame) in a world of verifier's own: what it uses, the page's scripts cannot
        redefine (``elementFromPoint``, ``getComputedStyle``...)."""
        if self.dialog is not None:
            msg = "the page cannot be asked: a dialog holds it"
            raise BrowserError(msg)
        try:
            return self.ask(lambda page: self._places.evaluate(page, expression))
        except PlaywrightError as exc:
            msg = f"the page did not answer: {exc}"
            raise BrowserError(msg) from exc

    def viewport_origin(self) -> tuple[int, int]:
        """Screen coordinates of the viewport's top-left pixel."""
        x, y, _w, _h = self.viewport()
        return x, y

    def viewport(self) -> tuple[int, int, int, int]:
        """The viewport's box on the screen: x, y, width, height."""
        return self.place().viewport

    def next_frame(self, *, timeout: float = 1.0) -> tuple[int, int, int, int] | None:
        """Wait until the page has produced a frame since now (two animation frames).

        Returns the viewport's screen box then (x, y, width, height), or None when the
        page did not answer in time (or cannot: a dialog is open).
        """
        if self.dialog is not None:
            return None
        try:
            return self.ask(lambda page: geometry.next_frame(page, timeout), within=timeout + 1)
        except (PlaywrightError, BrowserError):
            return None

    def settle(self, *, timeout: float = 2.0, frame: Frame | None = None) -> None:
        """Wait until scrolling has stopped (the page's and every scroller's in ``frame``,
        default the main frame) and a frame has been painted."""
        if self.dialog is not None:
            return
        with contextlib.suppress(PlaywrightError, BrowserError):
            self.ask(
                lambda page: geometry.settle(frame or page.main_frame, timeout), within=timeout + 1
            )

    # -- input ----------------------------------------------------------------------------

    def input_mark(self, frame: Frame | None = None) -> InputMark | None:
        """The input counters of ``frame`` (default: the page's main frame) now, to wait
        on after sending input; None when the page cannot answer (a dialog is open)."""
        if self.dialog is not None:
            return None
        try:
            return self.ask(lambda page: self._input.mark(frame or page.main_frame))
        except (PlaywrightError, BrowserError):
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
        where = frame or self.page.main_frame

        def cannot_see() -> bool:
            return self.dialog is not None or self._dead is not None or where.is_detached()

        return self._input.wait(
            mark,
            (kind,) if isinstance(kind, str) else kind,
            count,
            frame=where,
            timeout=timeout,
            cannot_see=cannot_see,
            elsewhere=elsewhere,
            pump=self._pump,
        )

    def _pump(self, seconds: float) -> None:
        """Take in the browser's messages for up to ``seconds``, or until the page tells
        us something (an input it saw, a dialog)."""
        wake = self._wake = asyncio.Event()

        async def wait() -> None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), max(seconds, 0.001))

        try:
            self._run_async(wait())
        except asyncio.CancelledError:
            pass
        finally:
            self._wake = None

    # -- downloads and the console ----------------------------------------------------------

    def take_downloads(self) -> list[Download]:
        """The downloads the pages started since the last call."""
        return self._downloads.take()

    @property
    def downloads(self) -> list[tuple[str, Path | None, str]]:
        """Every download that ended so far, oldest first: the page's name for it (made
        safe), where it was saved (None: it was not), and why not."""
        return list(self._downloads.ended)

    def save_downloads(self, folder: Path, *, timeout: float = DOWNLOAD_TIMEOUT) -> list[Path]:
        """Save the files the pages downloaded since the last call into ``folder``, each
        under the name the page suggested (made safe, and unique), waiting at most
        ``timeout`` for them all; the paths saved (see ``_downloads.py``)."""
        return self._downloads.save(folder, timeout=timeout)

    @property
    def console(self) -> ConsoleLog:
        """What the pages said (all of it in logs/browser-console.jsonl)."""
        return self._console

    @property
    def console_errors(self) -> list[dict[str, Any]]:
        """Console errors and uncaught page errors so far: {ts, type, level, text, url...}."""
        return list(self._console.errors)

    @property
    def failed_requests(self) -> list[dict[str, Any]]:
        """Requests that failed (network error) or answered 4xx/5xx: {ts, type, url...}."""
        return list(self._console.failed_requests)


_NO_ANSWER = "the page answers nothing at all (its scripts never yield?)"
_FLOOD = (
    "the page floods its console (more than 10 MiB logged): its lines hold up every question to it"
)
