"""The files pages download: held until the run saves them into its bundle, each under a
safe, unique name; a download that never ends is cancelled; one that cannot be saved
is the bundle's failure (exit 2), one that failed in the browser the page's."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import Download
from playwright.sync_api import Error as PlaywrightError

from verifier.errors import BundleError

__all__ = ("DOWNLOAD_TIMEOUT", "Downloads")

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

# How long the downloads a step started may take to finish before they are cancelled
# (an endless stream): less than a browser call's own limit (DEFAULT_CALL_S), which
# would call the wait off first and leave the stream running.
DOWNLOAD_TIMEOUT = 45.0
# How long the browser may take to say whether a finished download failed.
_FAILURE_S = 5.0

# Runs a coroutine on Playwright's loop from the driving thread, and returns its result.
RunAsync = Callable[[Awaitable[Any]], Any]


def _safe_file_name(name: str) -> str:
    """A page's suggested file name as a plain file name: no folders, no control
    characters, no leading dots, at most 120 characters (the extension kept)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch if ch.isprintable() else "_" for ch in base).strip().lstrip(".")
    if len(base.encode()) > 120:  # bytes: a file name holds 255 of them, not characters
        stem, dot, ext = base.rpartition(".")
        if not dot or len(ext.encode()) > 10:
            stem, dot, ext = base, "", ""
        while stem and len((stem + dot + ext).encode()) > 120:
            stem = stem[:-1]
        base = stem + dot + ext
    return base or "download"


def _unique(path: Path) -> Path:
    """``path``, or ``name (2).ext`` and on when that exists."""
    if not path.exists():
        return path
    stem, suffix = path.stem, path.suffix
    n = 2
    while (candidate := path.with_name(f"{stem} ({n}){suffix}")).exists():
        n += 1
    return candidate


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Downloads:
    """The downloads the pages started and nobody has taken yet.

    :param run: runs a coroutine on Playwright's loop (Playwright's own waits on a
        download have no limit; ours are bounded with ``asyncio.wait_for``).
    :param redact: the run's redaction: a page's name for a file may carry a secret,
        and it becomes the file's name in the bundle.
    """

    def __init__(self, run: RunAsync, redact: Callable[[str], str] | None = None) -> None:
        self._pending: list[Download] = []
        self._run = run
        self._redact = redact or (lambda text: text)
        # Every download that ended so far, in the order they were taken: the page's
        # name for it (made safe), where it was saved, or why it was not (failed in the
        # browser, not finished in time).
        self.ended: list[tuple[str, Path | None, str]] = []

    def add(self, download: Download) -> None:
        self._pending.append(download)

    def take(self) -> list[Download]:
        """The downloads the pages started since the last call."""
        taken, self._pending = self._pending, []
        return taken

    def save(self, folder: Path, *, timeout: float = DOWNLOAD_TIMEOUT) -> list[Path]:
        """Save the downloads since the last call into ``folder`` (see the module),
        waiting at most ``timeout`` for them all; the paths saved.

        :raises BundleError: a download the browser finished could not be saved.
        """
        saved = []
        deadline = time.monotonic() + timeout
        for download in self.take():
            timeout = max(0.5, deadline - time.monotonic())
            try:
                name = _safe_file_name(self._redact(download.suggested_filename))
            except PlaywrightError:
                name = "download"
            path = _unique(folder / name)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._run(asyncio.wait_for(download._impl_obj.save_as(path), timeout))
            except (TimeoutError, asyncio.CancelledError):  # ours, or the call's deadline
                _log.warning("download %s was not done in time: cancelled", download.url)
                with contextlib.suppress(PlaywrightError, asyncio.CancelledError):
                    download.cancel()
                self.ended.append((name, None, "it did not finish in time (cancelled)"))
                continue
            except (PlaywrightError, OSError) as exc:
                failure = self._failure(download)
                if failure is None:  # the browser has it; we could not keep it
                    reason = exc.strerror if isinstance(exc, OSError) else _first_line(exc)
                    msg = f"the download {name!r} could not be saved in the bundle: {reason}"
                    raise BundleError(msg) from exc
                _log.warning("download %s failed in the browser: %s", download.url, failure)
                self.ended.append((name, None, f"it failed in the browser: {failure}"))
                continue
            _log.info("downloaded %s from %s", path.name, download.url)
            saved.append(path)
            self.ended.append((name, path, ""))
        return saved

    def _failure(self, download: Download) -> str | None:
        """Why the browser's download failed (the page's doing: a network error, a
        cancel), or None when it completed (then only our saving of it failed)."""
        try:
            failure = self._run(asyncio.wait_for(download._impl_obj.failure(), _FAILURE_S))
        except TimeoutError:
            return f"its end was not told within {_FAILURE_S:g} s"
        except (PlaywrightError, asyncio.CancelledError) as exc:
            return _first_line(exc)
        return str(failure) if failure is not None else None
