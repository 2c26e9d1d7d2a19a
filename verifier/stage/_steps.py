"""The one way a step is recorded: a recipe's step in a run, an agent's action in a session.

A :class:`StepLog` holds a bundle's step records. :meth:`StepLog.begin` opens one: its
start, the video chapter and offset, the tab it acts on, and what the browser knew
before it (the dialogs open and shown so far, the downloads), once a tab or dialog the
last step opened is known. :meth:`StepLog.acted` closes the action: its duration, the
dialogs shown or open during it, the tabs that closed, the tab a ``switch_tab`` brought
to the front, the files it downloaded. :meth:`StepLog.ended` gives the step its status,
with what the pages said and asked since the last step, and writes the records. What
the screenshots are is the caller's (a settled capture after a recipe step, the frames
of an agent's action).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from verifier.errors import VerifierError
from verifier.evidence import BundleWriter, StepRecord, StepStatus, new_step_record, utc_now

if TYPE_CHECKING:
    from verifier.browser import Browser, DialogEvent

__all__ = ("Begun", "StepLog")

_log = logging.getLogger(__name__)

_FINISHING_S = 0.05  # how long a step's end waits for answers still coming in


@dataclass(slots=True)
class Begun:
    """A step that has begun: its record, and what the browser knew before it acted."""

    record: StepRecord
    started: float  # time.monotonic() when it began to act
    dialogs: int = 0  # dialogs shown before it
    downloads: int = 0  # downloads before it
    open_before: list[DialogEvent] = field(default_factory=list)

    @property
    def index(self) -> int:
        return self.record["index"]


class StepLog:
    """The step records of one bundle, each begun, acted and ended the same way.

    :param bundle: the bundle whose ``steps`` these are.
    :param browser: the browser the steps act in, when there is one (asked each time:
        a stage's comes once it has started).
    :param chapter: starts a video chapter and answers its offset (a stage's), if any.
    :param records: the records so far (a recipe's steps, all pending), else none.
    """

    def __init__(
        self,
        bundle: BundleWriter,
        *,
        browser: Callable[[], Browser | None],
        chapter: Callable[[str], float | None] | None = None,
        records: list[StepRecord] | None = None,
    ) -> None:
        self.bundle = bundle
        self.records: list[StepRecord] = records if records is not None else []
        self._browser = browser
        self._chapter = chapter
        self._closed_told = 0  # the closed tabs already on a step's record
        # Where the console and network logs were read up to (by the last step's record).
        self._marks = (0, 0)
        bundle.set_steps(self.records)

    def add(self, action: str, target: str) -> StepRecord:
        """A new record at the end (an agent's next action)."""
        record = new_step_record(len(self.records), action, target, "error")
        self.records.append(record)
        return record

    def begin(self, record: StepRecord, *, looks: bool = False) -> Begun:
        """Open ``record``: it reads ``error`` until it ends (written now, so that a crash
        mid-step reads so).

        :param looks: the action only looks at the screen (an agent's screenshot, zoom,
            cursor position): the browser is not asked first for a tab or dialog the
            last step opened, and the records are written once, at its end.
        """
        record["started_at"] = utc_now()
        record["status"] = "error"
        if self._chapter is not None:
            title = f"{record['index'] + 1}. {record['action']} {record['target']}".strip()
            record["video_offset_s"] = self._chapter(title)
        begun = Begun(record, 0.0)
        browser = self._browser()
        if browser is not None:
            if not looks:
                browser.sync()
            with contextlib.suppress(VerifierError):
                record["tab"] = browser.tab
            begun.dialogs, begun.open_before = browser.dialog_count(), browser.open_dialogs()
            begun.downloads = len(browser.downloads)
        if not looks:
            self.bundle.set_steps(self.records)
        begun.started = time.monotonic()  # its duration is the action's own
        return begun

    def acted(self, begun: Begun, *, events: bool = True) -> None:
        """The action is over: its duration, and what the page did besides drawing
        (``events``: not after an interruption, when nothing more is asked of it)."""
        record = begun.record
        record["duration_ms"] = round((time.monotonic() - begun.started) * 1000, 1)
        browser = self._browser()
        if browser is not None and events:
            self._page_events(begun, browser)

    def _page_events(self, begun: Begun, browser: Browser) -> None:
        """The dialogs the page showed during the step (or that were open while it
        acted), the tabs that closed and the one steps go on with, the tab a switch
        brought to the front, the files it downloaded."""
        record = begun.record
        seen = [*begun.open_before, *browser.dialogs_since(begun.dialogs)]
        if seen:
            record["dialogs"] = [d.record() for d in dict.fromkeys(seen)]
        # Tabs that closed since the last step's record (after its end, maybe).
        gone = browser.closed_tabs[self._closed_told :]
        self._closed_told += len(gone)
        if gone:
            now: int | None = None
            with contextlib.suppress(VerifierError):
                now = browser.tab
            # The one steps go on with, when they acted on the tab that closed.
            record["tab_closed"] = [{**g, "next_tab": now} if g["acted_on"] else g for g in gone]
        if record["action"] == "switch_tab":
            with contextlib.suppress(VerifierError):
                record["tab"] = browser.tab
        downloads = self.bundle.path("downloads")
        browser.save_downloads(downloads)
        for _name, path, _why in browser.downloads[begun.downloads :]:  # some saved already
            if path is None:
                continue
            rel = path.relative_to(self.bundle.root).as_posix()
            self.bundle.add_artifact(rel, "download")
            record.setdefault("downloads", []).append(rel)

    def ended(self, begun: Begun, status: StepStatus, error: str | None) -> None:
        """The step's status and error, what the pages said and asked since the last
        step's end (what comes while a screenshot settles is the step's own doing), and
        the records written."""
        record = begun.record
        record["status"] = status
        record["error"] = error
        browser = self._browser()
        if browser is not None:
            # An answer whose body is still coming has no time yet: a moment for it (a
            # 404's body came ~10 ms after its status), not for a stream that goes on.
            until = time.monotonic() + _FINISHING_S
            while (
                browser.dead is None
                and browser.network.finishing(self._marks[1])
                and time.monotonic() < until
            ):
                browser.sync(timeout=_FINISHING_S)
            said, more_said, said_at = browser.console.since(self._marks[0])
            asked, more_asked, asked_at = browser.network.since(self._marks[1])
            self._marks = (said_at, asked_at)
            record["console"], record["requests"] = said, asked
            if more_said:
                record["console_more"] = more_said
            if more_asked:
                record["requests_more"] = more_asked
        self.bundle.set_steps(self.records)
        _log.info(
            "step %d %s %r: %s%s",
            record["index"] + 1,
            record["action"],
            record["target"],
            status,
            f" ({error})" if error else "",
        )
