"""A run's log: verifier's (and Playwright's) log records into the bundle's
logs/verifier.log, redacted, and never a traceback on stderr when it cannot be written."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

from verifier._redact import Redactor

__all__ = ("capture_logs",)


class _RedactFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redactor.text(record.getMessage())
        record.args = None
        return True


class _QuietFileHandler(logging.FileHandler):
    """A log file that, once it cannot be written (a full disk), drops records: logging
    would print a traceback to stderr for each, where the run's one line belongs."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        pass

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the last flush on a full disk
            super().close()


@contextlib.contextmanager
def capture_logs(path: Path, redactor: Redactor, levels: Mapping[str, int]) -> Iterator[None]:
    """Send the log records of ``levels``' loggers to the bundle's logs/verifier.log,
    redacted, each logger at least at its level (0: left as it is). Playwright logs an
    error in its event dispatch (say, once a signal cut a message short) and, with no
    handler, Python would print it to stderr, which holds the run's one-line verdict."""
    handler = _QuietFileHandler(path, encoding="utf-8")
    if redactor:
        handler.addFilter(_RedactFilter(redactor))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    saved = []
    for name, level in levels.items():
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.addHandler(handler)
        if level and (logger.level == logging.NOTSET or logger.level > level):
            logger.setLevel(level)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)
        handler.close()
