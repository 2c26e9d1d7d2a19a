"""Recent log lines for an agent: the app's output, the page's console, failed requests.

They are read from the session's bundle (``logs/app.log`` or ``logs/app-NAME.log`` per
service, ``logs/browser-console.jsonl``), which are redacted as they are written, and
redacted again on the way out. Console and network records carry their time. The app's
output does not: the reader notes each log's size at every tool call, and ``since``
starts at the last note taken before that moment (so it may return a little more than
asked, never less).
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

__all__ = ("LOG_SOURCES", "LogLines", "LogReader", "LogSource")

LogSource = Literal["app", "console", "network"]
LOG_SOURCES: tuple[LogSource, ...] = ("app", "console", "network")
CONSOLE_LOG = "browser-console.jsonl"
_NETWORK = frozenset({"request", "response", "requestfailed", "requestfinished"})
_READ_LIMIT = 2 * 1024 * 1024  # bytes read from the end of a log at most
_LINE_LIMIT = 2000  # characters kept of one line
_NOTES_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class LogLines:
    """What :meth:`LogReader.read` found."""

    source: LogSource
    lines: tuple[str, ...]
    omitted: int  # earlier lines left out (over the limit)
    files: tuple[str, ...]  # the logs read, relative to the bundle

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "lines": list(self.lines),
            "omitted": self.omitted,
            "files": list(self.files),
        }


class LogReader:
    """Reads the session's logs in ``logs`` (a bundle's logs/ folder)."""

    def __init__(self, logs: Path, *, redact: Callable[[str], str] | None = None) -> None:
        self._logs = logs
        self._redact = redact
        self._notes: dict[Path, tuple[list[float], list[int]]] = {}
        self._lock = threading.Lock()  # notes are taken on the server's thread, read on the owner's

    def app_logs(self) -> list[Path]:
        return sorted(p for p in self._logs.glob("app*.log") if p.is_file())

    def note(self) -> None:
        """Remember how long each app log is now (``since`` counts from these notes)."""
        now = time.monotonic()
        for path in self.app_logs():
            try:
                size = path.stat().st_size
            except OSError:
                continue
            with self._lock:
                times, sizes = self._notes.setdefault(path, ([], []))
                if sizes and size < sizes[-1]:  # rewritten (cut to its limit): start over
                    times.clear()
                    sizes.clear()
                if len(times) >= _NOTES_KEPT:
                    del times[: _NOTES_KEPT // 2], sizes[: _NOTES_KEPT // 2]
                times.append(now)
                sizes.append(size)

    def read(self, source: LogSource, *, since: float | None, limit: int) -> LogLines:
        """The last ``limit`` lines of ``source`` from the last ``since`` seconds (all
        when None)."""
        if source == "app":
            lines, files = self._app(since)
        else:
            lines, files = self._console(source, since)
        omitted = max(0, len(lines) - limit)
        kept = lines[omitted:]
        if self._redact is not None:
            kept = [self._redact(line) for line in kept]
        return LogLines(source, tuple(kept), omitted, tuple(files))

    def _rel(self, path: Path) -> str:
        return f"{self._logs.name}/{path.name}"

    def _app(self, since: float | None) -> tuple[list[str], list[str]]:
        logs = self.app_logs()
        lines: list[str] = []
        for path in logs:
            start = 0
            with self._lock:
                if since is not None and path in self._notes:
                    times, sizes = self._notes[path]
                    at = bisect.bisect_right(times, time.monotonic() - since) - 1
                    start = sizes[at] if at >= 0 else 0
            prefix = f"[{path.stem.removeprefix('app-')}] " if len(logs) > 1 else ""
            lines += [prefix + line for line in _tail_lines(path, start)]
        return lines, [self._rel(p) for p in logs]

    def _console(self, source: LogSource, since: float | None) -> tuple[list[str], list[str]]:
        path = self._logs / CONSOLE_LOG
        if not path.is_file():
            return [], []
        cutoff = None
        if since is not None:
            cutoff = datetime.now(UTC) - timedelta(seconds=since)
        lines = []
        for raw in _tail_lines(path, 0):
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(record, dict) or (record.get("type") in _NETWORK) != (
                source == "network"
            ):
                continue
            stamp = _when(record.get("ts"))
            if cutoff is not None and (stamp is None or stamp < cutoff):
                continue
            lines.append(_format(record, stamp))
        return lines, [self._rel(path)]


def _tail_lines(path: Path, start: int) -> Iterator[str]:
    """The lines of ``path`` from byte ``start`` (at most its last ``_READ_LIMIT`` bytes)."""
    try:
        with path.open("rb") as fh:
            end = fh.seek(0, 2)
            begin = max(start, end - _READ_LIMIT)
            fh.seek(begin)
            data = fh.read(end - begin)
    except OSError:
        return
    text = data.decode("utf-8", "replace")
    parts = text.splitlines()
    if begin > start and parts:
        parts = parts[1:]  # cut mid-line
    for line in parts:
        if line.strip():
            yield line if len(line) <= _LINE_LIMIT else line[: _LINE_LIMIT - 1] + "…"


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _format(record: dict[str, Any], stamp: datetime | None) -> str:
    """One record as a line: ``12:00:01.123 error Uncaught TypeError... (url:12)``."""
    when = stamp.strftime("%H:%M:%S.%f")[:-3] if stamp else "--:--:--"
    kind = str(record.get("type", "?"))
    text = str(record.get("text", "")).replace("\n", "\\n")
    url = str(record.get("url", ""))
    if kind == "console":
        where = f" ({url}:{record['line']})" if url and record.get("line") is not None else ""
        where = where or (f" ({url})" if url else "")
        return f"{when} {record.get('level', 'log')} {text}{where}"
    if kind == "requestfailed":
        return f"{when} failed {record.get('method', '')} {url}: {text}".replace("  ", " ")
    if kind == "response":
        return f"{when} {record.get('status', '?')} {url} {text}".rstrip()
    rest = {k: v for k, v in record.items() if k not in ("ts", "type", "text", "level")}
    extra = f" {json.dumps(rest, ensure_ascii=False)}" if rest else ""
    return f"{when} {kind} {text}{extra}".rstrip()
