"""The queue of work for the thread that owns the desktop and the browser.

That thread (the main one) owns the X connections and Playwright, whose sync API refuses
to run in a thread with an event loop, and the processes' PR_SET_PDEATHSIG follows it.
The MCP server runs on another thread and hands each tool call over through this queue.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from verifier.errors import BrowserError, Interrupted, VerifierError

__all__ = ("OwnerQueue",)

_T = TypeVar("_T")
_HELD = (
    "the page did not answer: a dialog opened (answer it with computer: key Return "
    "accepts, Escape dismisses), or its scripts are busy"
)


class OwnerQueue:
    """Tool calls, run one at a time on the thread that owns the desktop and browser."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._queue = queue.SimpleQueue()
        self.closed = False

    def submit(self, fn: Callable[[], _T]) -> concurrent.futures.Future[_T]:
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        if self.closed:
            future.set_exception(VerifierError("the server is shutting down"))
        else:
            self._queue.put((fn, future))
        return future

    def run(self, done: threading.Event) -> None:
        """Run jobs until ``done`` is set. A signal's Interrupted ends it (and the job)."""
        while not done.is_set():
            try:
                fn, future = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except asyncio.CancelledError:
                # Browser calls off what a dialog or a busy page holds up.
                future.set_exception(BrowserError(_HELD))
            except (Interrupted, KeyboardInterrupt) as exc:
                future.set_exception(VerifierError("the server was interrupted"))
                raise exc
            except Exception as exc:  # noqa: BLE001 - the caller gets it, whatever it is
                future.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        while True:
            try:
                _fn, future = self._queue.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(VerifierError("the server is shutting down"))
