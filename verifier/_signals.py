"""SIGINT and SIGTERM as :class:`~verifier.errors.Interrupted`, raised where they land.

A run, a session and ``--jobs`` stop on the first signal and tear down in order; a repeat
during teardown is only logged, so Ctrl-C pressed twice cannot cut teardown short.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any, Self

from verifier.errors import Interrupted

__all__ = ("SignalGuard",)

_log = logging.getLogger(__name__)
_AGAIN_S = 0.005  # how soon a signal that landed amid logging's locking comes again


class SignalGuard:
    """While entered (on the main thread), SIGINT/SIGTERM raise Interrupted; once one has
    fired, or once ``quiet`` is set (teardown has begun), they are only logged. On any
    other thread it does nothing: Python delivers signals to the main thread only."""

    def __init__(self) -> None:
        self.quiet = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.quiet:
            _log.warning("%s again: still tearing down", signal.Signals(signum).name)
            return
        if _in_logging(frame):
            # Amid logging's own locking (its hooks run around every process we spawn):
            # raised there, the exception is dropped and logging's lock left taken, and
            # the run went on and hung at its next log line. Again once out of there (a
            # moment later: raised now, it would land here again).
            again = threading.Timer(_AGAIN_S, os.kill, (os.getpid(), signum))
            again.daemon = True
            again.start()
            return
        self.quiet = True
        raise Interrupted(signum)

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()


def _in_logging(frame: FrameType | None) -> bool:
    """Whether ``frame`` or a caller of it runs logging's code."""
    while frame is not None:
        if frame.f_globals.get("__name__") == "logging":
            return True
        frame = frame.f_back
    return False
