"""Every call verifier makes to the browser has a deadline.

Playwright's sync API runs each call as a task on its event loop, while the calling
greenlet waits for it. Some calls have no timeout of their own (``evaluate``, ``title``),
and a page whose scripts never yield (``while (true) {}``) never answers them; a dialog
holds the page's calls for as long as it stays open. A task factory on Playwright's loop
(``loop.set_task_factory``, public asyncio) notes every task that the owning greenlet
creates, which are exactly the sync API's calls made by the thread that drives the
browser (Playwright's own tasks are created in its dispatcher greenlet). A deadline
(:meth:`Calls.within`) cancels those still waiting when it expires, and every one made
after, until it ends: the caller gets ``asyncio.CancelledError`` and says what it means.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import greenlet

__all__ = ("Calls", "Deadline")

_log = logging.getLogger(__name__)

TaskFactory = Callable[..., "asyncio.Task[Any]"]


@dataclass(eq=False)
class Deadline:
    """One deadline: ``why`` says what it bounds (for the log)."""

    at: float
    why: str
    expired: bool = False
    handle: asyncio.TimerHandle | None = field(default=None, repr=False)


class Calls:
    """The browser calls of one greenlet (the one that made this), and their deadlines.

    :param loop: Playwright's event loop.
    :param default: how long a call made outside any deadline may wait.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, default: float) -> None:
        self._loop = loop
        self._default = default
        self._owner = greenlet.getcurrent()
        self._pending: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self._deadlines: list[Deadline] = []
        self._previous: TaskFactory | None = loop.get_task_factory()  # type: ignore[assignment]
        loop.set_task_factory(self._factory)  # type: ignore[arg-type]
        self._closed = False

    def _factory(
        self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Task[Any]:
        if self._previous is not None:
            task = self._previous(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        if greenlet.getcurrent() is self._owner:
            self._pending.add(task)
            if any(d.expired for d in self._deadlines):
                task.cancel()  # a deadline has passed: nothing more is asked within it
            elif not self._deadlines and not self._closed:
                loop.call_later(self._default, self._late, weakref.ref(task))
        return task

    def _late(self, ref: weakref.ref[asyncio.Task[Any]]) -> None:
        task = ref()
        if task is not None and not task.done():
            _log.warning("a browser call waited %g s: called off (%r)", self._default, task)
            task.cancel()

    @contextlib.contextmanager
    def within(self, seconds: float, why: str) -> Iterator[Deadline]:
        """Bound every call made inside to ``seconds`` from now, all together."""
        deadline = Deadline(time.monotonic() + seconds, why)
        if not self._closed:
            deadline.handle = self._loop.call_later(seconds, self._expire, deadline)
        self._deadlines.append(deadline)
        try:
            yield deadline
        finally:
            self._deadlines.remove(deadline)
            if deadline.handle is not None:
                deadline.handle.cancel()

    def _expire(self, deadline: Deadline) -> None:
        if deadline in self._deadlines:
            deadline.expired = True
            self.call_off(f"past its deadline ({deadline.why})")

    @property
    def expired(self) -> bool:
        """Whether a deadline in force has passed (every call now fails at once)."""
        now = time.monotonic()
        return any(d.expired or d.at <= now for d in self._deadlines)

    def call_off(self, why: str) -> int:
        """Cancel the calls still waiting (asyncio.CancelledError in their callers);
        how many."""
        called = 0
        for task in list(self._pending):
            if not task.done():
                _log.debug("calling off a browser call %s: %r", why, task)
                task.cancel()
                called += 1
        return called

    def close(self) -> None:
        """Give the loop its task factory back; idempotent."""
        if self._closed:
            return
        self._closed = True
        if not self._loop.is_closed() and self._loop.get_task_factory() == self._factory:
            self._loop.set_task_factory(self._previous)
        for deadline in self._deadlines:
            if deadline.handle is not None:
                deadline.handle.cancel()
