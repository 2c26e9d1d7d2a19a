"""What the page says: console messages, uncaught errors, failed requests, as JSON lines
(``logs/browser-console.jsonl``), redacted; errors kept in memory for the checks."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from playwright.sync_api import BrowserContext, ConsoleMessage, Request, Response, WebError

__all__ = ("ConsoleLog",)

_QUIET = ("verbose", "debug")


def _now_iso() -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() % 1 * 1000):03d}Z"
    )


class ConsoleLog:
    """Appends page events as JSON lines; thread-safe, flushed per line.

    Errors (console errors, page errors) and failed requests are also kept in memory,
    for the checks that read them.
    """

    _KEEP = 10_000  # records kept in memory per kind
    _LIMIT = 10 * 1024 * 1024  # bytes the file keeps (a page can log without end)
    _RECENT = 2_000  # messages kept for the steps' records

    def __init__(self, path: Path, redact: Callable[[str], str] | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._redact = redact
        self._written = 0
        self._dropped = 0
        self._contexts: list[BrowserContext] = []
        self._deaf = False  # the page flooded its console: no longer listened to
        # A page's text may hold lone surrogates ('\ud800'): written as '?' then.
        self._fh: IO[str] = path.open("a", encoding="utf-8", errors="replace")
        self._lock = threading.Lock()
        self.errors: list[dict[str, Any]] = []
        self.failed_requests: list[dict[str, Any]] = []
        # The latest messages and uncaught errors, numbered, for each step's record.
        self._recent: deque[tuple[int, dict[str, Any]]] = deque(maxlen=self._RECENT)
        self._seq = 0

    def listen(self, context: BrowserContext) -> None:
        """Log what every page of ``context`` says (on the context, so that a popup's
        first console line is not missed)."""
        self._contexts.append(context)
        if not self._deaf:
            context.on("console", self._on_console)
        context.on("weberror", self._on_web_error)
        context.on("requestfailed", self._on_request_failed)
        context.on("response", self._on_response)

    def write(self, kind: str, **fields: Any) -> None:
        if kind == "console" and self._dropped:
            self._stop_listening()
            return
        if self._redact is not None:
            fields = {k: self._redact(v) if isinstance(v, str) else v for k, v in fields.items()}
        record = {"ts": _now_iso(), "type": kind, **fields}
        with self._lock:
            # DevTools' hidden levels are no step's news (and must not push errors out).
            if kind in ("console", "pageerror") and fields.get("level") not in _QUIET:
                self._seq += 1
                self._recent.append((self._seq, record))
            if kind in ("requestfailed", "response"):
                if len(self.failed_requests) < self._KEEP:
                    self.failed_requests.append(record)
            elif fields.get("level") == "error" and len(self.errors) < self._KEEP:
                self.errors.append(record)
            if self._fh.closed:
                return
            line = json.dumps(record, ensure_ascii=False) + "\n"
            if self._written + len(line) > self._LIMIT:
                self._dropped += 1
                return
            self._written += len(line)
            self._fh.write(line)
            self._fh.flush()

    def mark(self) -> int:
        """A point in the log: :meth:`since` gives what was said after it."""
        return self._seq

    def since(self, mark: int, *, limit: int = 50) -> tuple[list[dict[str, object]], int, int]:
        """Console messages and uncaught errors after ``mark`` (level, text, where; the
        first ``limit``, redacted; DevTools' hidden "verbose" level left out), how many
        more there were, and the mark to read on from."""
        with self._lock:
            now = self._seq
            found = [record for seq, record in self._recent if seq > mark]
        if len(found) > limit:  # errors first to be kept, then the rest, in their order
            errors = [r for r in found if r.get("level") == "error"][:limit]
            rest = [r for r in found if r.get("level") != "error"][: limit - len(errors)]
            kept = {id(r) for r in errors + rest}
            found = [r for r in found if id(r) in kept]
        rows: list[dict[str, object]] = [
            {
                "level": r.get("level") or r.get("type"),
                "text": str(r.get("text", ""))[:2_000],
                "url": r.get("url") or None,
                "line": r.get("line"),
            }
            for r in found
        ]
        # What did not fit, and what left the window before it was read, counts too.
        return rows, max(0, now - mark - len(rows)), now

    @property
    def flooded(self) -> bool:
        """Whether the page logged past the limit (and is no longer listened to)."""
        return self._deaf

    def _stop_listening(self) -> None:
        """A page that logs without end floods the driver's pipe, and every question to
        the page waits behind its lines: past the file's limit the console is no longer
        listened to (uncaught errors still are), and that counts as an error, since
        errors it logged after are not known."""
        if self._deaf:
            return
        self._deaf = True
        for context in self._contexts:
            context.remove_listener("console", self._on_console)
        text = (
            f"the page logged more than {self._LIMIT // (1024 * 1024)} MiB to its console: "
            "what it logged after that (errors too) was not read"
        )
        record = {"ts": _now_iso(), "type": "console", "level": "error", "text": text}
        with self._lock:
            self.errors.append(record)
            if not self._fh.closed:
                self._fh.write(json.dumps(record) + "\n")
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._dropped and not self._fh.closed:
                note = {"ts": _now_iso(), "type": "truncated", "level": "warning"}
                note["text"] = f"{self._dropped} more records past {self._LIMIT} bytes"
                self._fh.write(json.dumps(note) + "\n")
            self._fh.close()

    def _on_web_error(self, error: WebError) -> None:
        self.write("pageerror", level="error", text=str(error.error))

    def _on_console(self, msg: ConsoleMessage) -> None:
        loc = msg.location
        self.write(
            "console",
            level=msg.type,
            text=msg.text,
            url=loc.get("url", ""),
            line=loc.get("lineNumber"),
        )

    def _on_request_failed(self, request: Request) -> None:
        self.write(
            "requestfailed",
            level="error",
            url=request.url,
            method=request.method,
            text=request.failure or "failed",
        )

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.write(
                "response",
                level="error",
                url=response.url,
                status=response.status,
                text=response.status_text,
            )
