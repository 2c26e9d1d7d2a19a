"""What the pages asked of the network: each request with its response and timings, in
memory (bounded), for each step's record and the run's ``network.har`` (HAR 1.2, no
bodies). Everything is read from Playwright's events: no call into the browser."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from playwright.sync_api import BrowserContext, Request, Response

__all__ = ("NetworkLog",)

# Header values never written: the app's logins (the bundle is shared, HAR files leak).
_HIDDEN_HEADERS = frozenset({"cookie", "set-cookie", "authorization", "proxy-authorization"})
_HIDDEN = "(not recorded)"
_URL_CHARS = 8_000
_VALUE_CHARS = 8_000  # of one header's value
_ENTRY_CHARS = 64_000  # of one request's and its response's headers together
_BUDGET_CHARS = 64_000_000  # of all the kept requests: a page can make many, and big


def _iso(epoch_s: float) -> str:
    ms = int(epoch_s * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s)) + f".{ms:03d}Z"


def _span(start: float, end: float) -> float:
    return round(end - start, 3) if start >= 0 and end >= start else -1


def _capped(headers: Mapping[str, str], redact: Callable[[str], str]) -> tuple[dict[str, str], int]:
    """Headers redacted and cut to the limits; and how many characters they hold."""
    kept: dict[str, str] = {}
    size = 0
    for name, value in headers.items():
        name, value = redact(name)[:200], redact(value)
        if len(value) > _VALUE_CHARS:
            value = value[:_VALUE_CHARS] + f"… ({len(value):,} characters)"
        if size + len(name) + len(value) > _ENTRY_CHARS:
            kept["x-verifier-cut"] = f"{len(headers) - len(kept)} more headers not kept"
            break
        kept[name] = value
        size += len(name) + len(value)
    return kept, size


class _Entry:
    __slots__ = ("failure", "headers", "method", "reply", "seq", "size", "started", "timing", "url")

    def __init__(self, seq: int, request: Request, redact: Callable[[str], str]) -> None:
        self.seq = seq
        self.started = time.time()
        # Redacted as it comes, before anything is cut: a secret across a cut is whole.
        self.method = redact(request.method)[:100]
        self.url = redact(request.url)[:_URL_CHARS]
        self.headers, size = _capped(request.headers, redact)
        self.size = size + len(self.url)
        self.reply: dict[str, Any] | None = None
        self.timing: dict[str, float] | None = None
        self.failure: str | None = None

    @property
    def ms(self) -> float | None:
        timing = self.timing
        if timing is None:
            return None
        end = timing.get("responseEnd", -1)
        return round(end, 1) if end >= 0 else None


class NetworkLog:
    """The requests of every page of the contexts it listens to; thread-safe."""

    _KEEP = 20_000  # requests kept; later ones are counted, not kept

    def __init__(self, redact: Callable[[str], str] | None = None) -> None:
        self._redact = redact or (lambda text: text)
        self._lock = threading.Lock()
        self._entries: dict[Request, _Entry] = {}
        self._seq = 0
        self._size = 0
        self.dropped = 0

    def listen(self, context: BrowserContext) -> None:
        context.on("request", self._on_request)
        context.on("response", self._on_response)
        context.on("requestfinished", self._on_finished)
        context.on("requestfailed", self._on_failed)

    def mark(self) -> int:
        """A point in the log: :meth:`since` gives the requests started after it."""
        return self._seq

    def finishing(self, mark: int) -> bool:
        """Whether a request started after ``mark`` has its answer but not all of it yet
        (its time is known once its body is in)."""
        with self._lock:
            for entry in reversed(self._entries.values()):
                if entry.seq <= mark:
                    return False
                if entry.reply is not None and entry.timing is None:
                    return True
        return False

    def since(self, mark: int, *, limit: int = 100) -> tuple[list[dict[str, object]], int, int]:
        """The requests started after ``mark`` (method, URL, status, ms; the first
        ``limit``), redacted, how many more there were, and the mark to read on from."""
        found: list[_Entry] = []
        with self._lock:
            now = self._seq
            for entry in reversed(self._entries.values()):  # kept in the order they came
                if entry.seq <= mark:
                    break
                found.append(entry)
        found.reverse()
        rows: list[dict[str, object]] = []
        for entry in found[:limit]:
            status: object = entry.reply["status"] if entry.reply else None
            if entry.failure is not None:
                status = f"failed: {entry.failure}"
            rows.append(
                {"method": entry.method, "url": entry.url, "status": status, "ms": entry.ms}
            )
        # Requests past the limit, and those not kept at all (past the budget), count too.
        return rows, max(0, now - mark - len(rows)), now

    def har(self, *, creator: str, version: str, browser: str) -> dict[str, Any]:
        """The log as HAR 1.2: no bodies, cookie and authorization headers left out, every
        text redacted (as it was recorded; the query strings it decodes here)."""
        with self._lock:
            entries = list(self._entries.values())
        return {
            "log": {
                "version": "1.2",
                "creator": {"name": creator, "version": version},
                "browser": {"name": "Chromium", "version": browser},
                "entries": [self._har_entry(e) for e in entries],
                "comment": f"{self.dropped} more requests not kept" if self.dropped else "",
            }
        }

    # -- events (on Playwright's dispatcher) -------------------------------------------------

    def _on_request(self, request: Request) -> None:
        with self._lock:
            self._seq += 1
            seq = self._seq
            full = len(self._entries) >= self._KEEP or self._size > _BUDGET_CHARS
            if full:
                self.dropped += 1
                return
        entry = _Entry(seq, request, self._redact)
        with self._lock:
            self._entries[request] = entry
            self._size += entry.size

    def _on_response(self, response: Response) -> None:
        with self._lock:
            entry = self._entries.get(response.request)
        if entry is not None:
            headers, size = _capped(response.headers, self._redact)
            entry.reply = {
                "status": response.status,
                "status_text": self._redact(response.status_text)[:1_000],
                "headers": headers,
            }
            with self._lock:
                self._size += size

    def _on_finished(self, request: Request) -> None:
        with self._lock:
            entry = self._entries.get(request)
        if entry is not None:
            entry.timing = dict(request.timing)  # type: ignore[arg-type]

    def _on_failed(self, request: Request) -> None:
        with self._lock:
            entry = self._entries.get(request)
        if entry is not None:
            entry.timing = dict(request.timing)  # type: ignore[arg-type]
            entry.failure = self._redact(request.failure or "failed")[:1_000]

    # -- HAR ---------------------------------------------------------------------------------

    def _headers(self, headers: Mapping[str, str]) -> list[dict[str, str]]:
        return [
            {
                "name": name,
                "value": _HIDDEN if name.lower() in _HIDDEN_HEADERS else value,
            }
            for name, value in headers.items()
        ]

    def _har_entry(self, entry: _Entry) -> dict[str, Any]:
        t = entry.timing or {}
        dns = _span(t.get("domainLookupStart", -1), t.get("domainLookupEnd", -1))
        connect = _span(t.get("connectStart", -1), t.get("connectEnd", -1))
        ssl = _span(t.get("secureConnectionStart", -1), t.get("connectEnd", -1))
        wait = _span(t.get("requestStart", -1), t.get("responseStart", -1))
        receive = _span(t.get("responseStart", -1), t.get("responseEnd", -1))
        timings = {
            "blocked": -1,
            "dns": dns,
            "connect": connect,
            "ssl": ssl,
            "send": 0,
            "wait": max(wait, 0),
            "receive": max(receive, 0),
        }
        total = sum(v for k, v in timings.items() if k != "ssl" and v > 0)
        url = entry.url
        query = [
            {"name": self._redact(k), "value": self._redact(v)}
            for k, v in parse_qsl(urlsplit(entry.url).query, keep_blank_values=True)
        ]
        reply = entry.reply or {"status": 0, "status_text": "", "headers": {}}
        headers = reply["headers"]
        mime = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        location = next((v for k, v in headers.items() if k.lower() == "location"), "")
        har: dict[str, Any] = {
            "startedDateTime": _iso(entry.started),
            "time": round(total, 3),
            "request": {
                "method": entry.method,
                "url": url,
                "httpVersion": "HTTP/1.1",
                "cookies": [],
                "headers": self._headers(entry.headers),
                "queryString": query,
                "headersSize": -1,
                "bodySize": -1,
            },
            "response": {
                "status": reply["status"],
                "statusText": reply["status_text"],
                "httpVersion": "HTTP/1.1",
                "cookies": [],
                "headers": self._headers(headers),
                "content": {"size": -1, "mimeType": mime or "x-unknown"},
                "redirectURL": location,
                "headersSize": -1,
                "bodySize": -1,
            },
            "cache": {},
            "timings": timings,
        }
        if entry.failure is not None:
            har["_failure"] = entry.failure
        return har
