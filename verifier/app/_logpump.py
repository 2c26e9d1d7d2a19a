"""A child's output into its log file, on a thread: redacted, in bounded chunks, bounded.

The output is read in chunks of at most ``_CHUNK`` bytes, whatever it holds (a flood
without newlines included), and redacted as a stream (a secret split across chunks is
still found). The file keeps the first half of ``limit`` bytes; after that the newest
half is kept in memory, and at the end written after a line saying how much was cut.
Memory stays flat: about half the limit, whatever the child writes. A log that cannot
be written (a full disk) stops being written, but the pipe is still drained, so the
child never blocks on it.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import IO

from verifier._redact import NO_SECRETS, Redactor

__all__ = ("DEFAULT_LOG_LIMIT", "LogPump", "carry_log")

_log = logging.getLogger(__name__)

DEFAULT_LOG_LIMIT = 10 * 1024 * 1024
_CHUNK = 64 * 1024


def carry_log(held: Path, into: Path) -> None:
    """Append what ``held`` holds (an app's output between two recipes) to ``into``,
    marked as such, and remove ``held``; nothing when it is empty or cannot be read."""
    try:
        data = held.read_bytes()
    except OSError:
        return
    if data:
        try:
            into.parent.mkdir(parents=True, exist_ok=True)
            with into.open("ab") as fh:
                fh.write(b"[verifier: the app's output after the recipe before]\n")
                fh.write(data if data.endswith(b"\n") else data + b"\n")
                fh.write(b"[verifier: this recipe's time starts here]\n")
        except OSError as exc:
            _log.warning("cannot write %s: %s", into, exc)
    with contextlib.suppress(OSError):
        held.unlink()


class LogPump:
    """Copies ``stream`` into ``path`` until the writer closes it.

    :param stream: the read end of the child's stdout (and stderr).
    :param path: the log file (appended to).
    :param redactor: secrets to replace as the text goes by.
    :param limit: the most bytes the log keeps (head and tail halves).
    """

    def __init__(
        self,
        stream: IO[bytes],
        path: Path,
        *,
        redactor: Redactor = NO_SECRETS,
        limit: int = DEFAULT_LOG_LIMIT,
        name: str = "log",
    ) -> None:
        self.path = path
        self.limit = limit
        self._stream = stream
        self._redactor = redactor.stream()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._head_left = limit - limit // 2
        self._tail = bytearray()
        self._tail_limit = limit // 2  # with the head, the limit; less the note, if cut
        self._cut = 0  # bytes dropped between head and tail
        self._fh: IO[bytes] | None = None
        self._failed: OSError | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"verifier-{name}", daemon=True)

    def start(self) -> LogPump:
        self._open()
        self._thread.start()
        return self

    def _open(self) -> None:
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("ab")
        except OSError as exc:
            self._failed = exc
            _log.warning("cannot write %s: %s", path, exc)

    def switch(self, path: Path, redactor: Redactor = NO_SECRETS, *, carry: bool = False) -> None:
        """Finish the log file so far and go on in ``path`` (a new file, with its own
        limit), redacting with ``redactor`` from now on: the output of an app that
        serves one recipe after another goes into each one's bundle. With ``carry``, the
        file so far opens ``path`` (see :func:`carry_log`), nothing written meanwhile."""
        with self._lock:
            if not self._thread.is_alive():  # the process has ended: nothing more comes
                return
            self._write_locked(self._redactor.flush())
            self._close_locked()
            if carry:
                carry_log(self.path, path)
            self._head_left = self.limit - self.limit // 2
            self._cut = 0
            self._failed = None
            self.path = path
            self._redactor = redactor.stream()
            self._open()

    def _run(self) -> None:
        fd = self._stream.fileno()
        while True:
            try:
                data = os.read(fd, _CHUNK)
            except OSError:
                data = b""
            if not data:
                break
            self._take(self._decoder.decode(data))
        self._take(self._decoder.decode(b"", final=True), final=True)
        with self._lock:
            self._close_locked()

    def _take(self, text: str, *, final: bool = False) -> None:
        with self._lock:
            out = self._redactor.feed(text)
            if final:
                out += self._redactor.flush()
            self._write_locked(out)

    def _write_locked(self, text: str) -> None:
        if not text:
            return
        data = text.encode("utf-8")
        if self._head_left > 0:
            head, data = data[: self._head_left], data[self._head_left :]
            self._head_left -= len(head)
            self._emit(head)
        if data:
            self._tail += data
            over = len(self._tail) - self._tail_limit
            if over > 0:
                del self._tail[:over]
                self._cut += over

    def _emit(self, data: bytes) -> None:
        if self._fh is None:
            return
        try:
            self._fh.write(data)
            self._fh.flush()
        except OSError as exc:
            self._failed = exc
            _log.warning("stopped writing %s: %s", self.path, exc)
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None

    def _close_locked(self) -> None:
        if self._cut:
            # The note takes its room from the tail: the log stays within the limit.
            room = 0
            while (need := len(self._note(room)) + len(self._tail) - self._tail_limit) > room:
                room = need
            del self._tail[:room]
            self._emit(self._note(room))
        self._emit(bytes(self._tail))
        self._tail.clear()
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None

    def _note(self, more: int) -> bytes:
        """The line where the cut is, ``more`` bytes of the tail cut too."""
        return (
            f"\n[verifier: {self._cut + more} bytes of output cut here; the log keeps its "
            f"first and last bytes, {self.limit} in all (app.log_limit)]\n"
        ).encode()

    def join(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until the writer closed the stream and all is
        written."""
        if self._thread.is_alive():
            self._thread.join(timeout)

    def tail(self, lines: int = 12) -> str:
        """The last ``lines`` lines of output so far (for error messages)."""
        with self._lock:
            recent = bytes(self._tail[-16_384:])
        if not recent:
            try:
                with self.path.open("rb") as fh:
                    fh.seek(0, os.SEEK_END)
                    fh.seek(max(0, fh.tell() - 16_384))
                    recent = fh.read()
            except OSError:
                return ""
        text = recent.decode("utf-8", "replace").rstrip()
        return "\n".join(text.splitlines()[-lines:])
