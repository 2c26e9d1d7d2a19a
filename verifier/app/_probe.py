"""Is a service up: one HTTP GET of its URL, and a fixed port that is already taken."""

from __future__ import annotations

import http.client
import socket
import urllib.parse
from dataclasses import dataclass

from verifier.errors import DevServerError

__all__ = ("Probe", "probe", "refuse_taken_port")


@dataclass(frozen=True, slots=True)
class Probe:
    ok: bool
    detail: str


def probe(url: str, timeout: float) -> Probe:
    """GET ``url`` once; ok on 2xx/3xx. Tries 127.0.0.1 and ::1 for ``localhost``."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    hosts = ["127.0.0.1", "::1"] if host == "localhost" else [host]
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    detail = "no answer"
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
            return Probe(True, f"HTTP {status}")
        detail = f"HTTP {status}"
    return Probe(False, detail)


def refuse_taken_port(url: str, who: str) -> None:
    """A fixed port that already answers would make the probe pass on the wrong server.

    :raises DevServerError: something already listens there.
    """
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "127.0.0.1"
    for candidate in ["127.0.0.1", "::1"] if host == "localhost" else [host]:
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
