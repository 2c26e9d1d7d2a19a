"""X authority: the cookie each of our displays requires, and who presents it.

Each Xvfb we start requires a cookie of its own (``-auth``); the file holding it lives in
a private folder (0700, the file 0600). Our own connections (python-xlib, mss) and every
process we start on the display (openbox, ffmpeg, Chromium, the live view) present it;
the app under test never gets it. Light on purpose (no Xlib): the browser imports it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = (
    "authority_of",
    "connecting_to",
    "display_env",
    "forget_authority",
    "register_authority",
    "write_authority",
)

_FAMILY_LOCAL, _FAMILY_WILD = 256, 65535
# The X authority file of each display we started, by display name: our own
# connections (python-xlib, mss) and every process we start on it (openbox, ffmpeg,
# Chromium, the live view) present its cookie. The app under test never gets it.
_AUTHORITY: dict[str, Path] = {}
_ENV_LOCK = threading.Lock()


def register_authority(display: str, path: Path) -> None:
    _AUTHORITY[display] = path


def forget_authority(display: str, path: Path) -> None:
    if _AUTHORITY.get(display) == path:
        del _AUTHORITY[display]


def authority_of(display: str) -> Path | None:
    """The Xauthority file that holds the cookie of ``display``, if we started it."""
    return _AUTHORITY.get(display)


def display_env(display: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a process that should draw on ``display``: ``base`` (default: ours)
    with DISPLAY and, for a display we started, XAUTHORITY set; never WAYLAND_DISPLAY."""
    env = {k: v for k, v in (os.environ if base is None else base).items()}
    env.pop("WAYLAND_DISPLAY", None)
    env["DISPLAY"] = display
    authority = authority_of(display)
    if authority is not None:
        env["XAUTHORITY"] = str(authority)
    return env


@contextlib.contextmanager
def connecting_to(display: str) -> Iterator[None]:
    """While an in-process client connects (python-xlib, mss's libxcb read $XAUTHORITY
    then), present the cookie of ``display``; one connection at a time."""
    authority = authority_of(display)
    with _ENV_LOCK:
        if authority is None:
            with _xauthority_fallback():
                yield
            return
        saved = os.environ.get("XAUTHORITY")
        os.environ["XAUTHORITY"] = str(authority)
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("XAUTHORITY", None)
            else:
                os.environ["XAUTHORITY"] = saved


def write_authority(path: Path, cookie: bytes) -> None:
    """An Xauthority file whose MIT-MAGIC-COOKIE-1 serves every display number: one
    FamilyLocal entry for this host (what python-xlib looks for) and one FamilyWild."""

    def field(data: bytes) -> bytes:
        return struct.pack(">H", len(data)) + data

    host = socket.gethostname().encode()
    name = b"MIT-MAGIC-COOKIE-1"
    entries = b"".join(
        struct.pack(">H", family) + field(address) + field(b"") + field(name) + field(cookie)
        for family, address in ((_FAMILY_LOCAL, host), (_FAMILY_WILD, b""))
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(entries)


@contextlib.contextmanager
def _xauthority_fallback() -> Iterator[None]:
    """Give python-xlib an (empty) Xauthority file when there is none at all.

    python-xlib refuses to connect when neither $XAUTHORITY nor ~/.Xauthority exists,
    where libxcb (Chromium, ffmpeg, mss) just connects without a cookie, which our Xvfb
    accepts. A fresh machine or container has no ~/.Xauthority.
    """
    current = os.environ.get("XAUTHORITY")
    if (current and Path(current).is_file()) or (
        not current and (Path.home() / ".Xauthority").is_file()
    ):
        yield
        return
    os.environ["XAUTHORITY"] = os.devnull
    try:
        yield
    finally:
        if current is None:
            os.environ.pop("XAUTHORITY", None)
        else:
            os.environ["XAUTHORITY"] = current
