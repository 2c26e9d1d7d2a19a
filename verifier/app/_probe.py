"""Is a service up: one HTTP GET of its URL, and a fixed port that is already taken."""

from __future__ import annotations

import http.client
import socket
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from verifier.errors import DevServerError

__all__ = ("Probe", "probe", "refuse_taken_port", "wait_answering")

# Between probes: 10 ms in the first second while nothing listens yet (a refused
# connection costs the app nothing), else 50 ms: a server that answers, but not yet 2xx,
# renders a page for each probe.
_POLL_FIRST_S, _POLL_INTERVAL_S, _POLL_FAST_FOR_S = 0.01, 0.05, 1.0


@dataclass(frozen=True, slots=True)
class Probe:
    ok: bool
    detail: str
    answered: bool = False  # an HTTP answer came (else nothing listens, or it hung up)


def _hosts_and_port(url: str) -> tuple[list[str], int]:
    """The addresses to try for ``url`` (127.0.0.1 and ::1 for ``localhost``), its port."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return (["127.0.0.1", "::1"] if host == "localhost" else [host]), port


def probe(url: str, timeout: float) -> Probe:
    """GET ``url`` once; ok on 2xx/3xx. Tries 127.0.0.1 and ::1 for ``localhost``."""
    parts = urllib.parse.urlsplit(url)
    hosts, port = _hosts_and_port(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    detail = "no answer"
    answered = False
    for candidate in hosts:
        conn_cls = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_cls(candidate, port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": parts.netloc, "User-Agent": "verifier"})
            status = conn.getresponse().status
        except (OSError, http.client.HTTPException) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            continue
        finally:
            conn.close()
        if 200 <= status < 400:
            return Probe(True, f"HTTP {status}", answered=True)
        detail, answered = f"HTTP {status}", True
    return Probe(False, detail, answered=answered)


def refuse_taken_port(url: str, who: str) -> None:
    """A fixed port that already answers would make the probe pass on the wrong server.

    :raises DevServerError: something already listens there.
    """
    hosts, port = _hosts_and_port(url)
    for candidate in hosts:
        try:
            with socket.create_connection((candidate, port), timeout=0.5):
                pass
        except OSError:
            continue
        msg = (
            f"port {port} of {url} is already in use by another process before {who} "
            "started; stop that process, or use {port} in app.command and app.url to get a "
            "free port"
        )
        raise DevServerError(msg)


def wait_answering(url: str, deadline: float, *, alive: Callable[[], None]) -> Probe:
    """Probe ``url`` until it answers 2xx/3xx or ``deadline`` (``time.monotonic()``)
    passes, and at least once: what is up is ready, and what is not says how. ``alive()``
    raises when what should answer has died. Returns the last probe."""
    fast_until = time.monotonic() + _POLL_FAST_FOR_S
    while True:
        alive()
        remaining = deadline - time.monotonic()
        last = probe(url, timeout=min(2.0, max(0.2, remaining)))
        now = time.monotonic()
        if last.ok or deadline - now <= 0:
            return last
        fast = now < fast_until and not last.answered
        interval = _POLL_FIRST_S if fast else _POLL_INTERVAL_S
        time.sleep(min(interval, max(0.0, deadline - now)))
