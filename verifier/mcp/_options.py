"""The options of ``verifier mcp`` (kept apart so the CLI need not import the MCP SDK)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from verifier import _types
from verifier._types import IMAGE_FORMATS, ImageFormat
from verifier.errors import InputError
from verifier.live import LiveOptions

__all__ = (
    "IMAGE_FORMATS",
    "MIN_TOKEN",
    "TOKEN_ENV",
    "ImageFormat",
    "McpOptions",
    "check_token",
    "parse_listen",
    "size_option",
    "read_token",
)


def size_option(text: str, *, what: str = "size") -> tuple[int, int]:
    """``"1280x800"`` -> (1280, 800); InputError naming ``what`` when it is not."""
    try:
        return _types.parse_size(text, what=what)
    except ValueError as exc:
        raise InputError(str(exc)) from None


TOKEN_ENV = "VERIFIER_MCP_TOKEN"
# A token anyone could guess in a run's time is no token: 32 characters of
# secrets.token_urlsafe are 192 bits.
MIN_TOKEN = 32


@dataclass(frozen=True, slots=True)
class McpOptions:
    """What ``verifier mcp`` serves, and how."""

    recipe: Path | None = None
    url: str | None = None
    out: Path = Path("artifacts")
    http: tuple[str, int] | None = None  # None: stdio
    token: str | None = None
    token_file: Path | None = None  # where the token came from: hidden from the app
    allow_remote: bool = False
    screen: str | None = None
    scale: tuple[int, int] | None = None
    image_format: ImageFormat = "auto"
    # "always": every computer action answers with a screenshot (the computer-use
    # convention); "on-request": only those that ask (screenshot: true).
    screenshots: str = "always"
    video: bool | None = None
    display: str | None = None
    live: LiveOptions | None = None  # serve a live view of the desktop


def parse_listen(text: str, *, allow_remote: bool = False) -> tuple[str, int]:
    """``127.0.0.1:8765`` or ``[::1]:8765`` -> (host, port); loopback only unless allowed."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        msg = f"--http {text!r} is not HOST:PORT, like 127.0.0.1:8765 (port 0 picks a free one)"
        raise InputError(msg)
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        msg = (
            f"--http {text!r} is not a loopback address; the desktop would be reachable from "
            "the network. Use 127.0.0.1, or pass --allow-remote if you mean it"
        )
        raise InputError(msg)
    return host, int(port_text)


def check_token(token: str, where: str) -> str:
    """``token``, unless it is too short to be a secret (``where`` names its source).

    :raises InputError: it has fewer than 32 characters.
    """
    if len(token) < MIN_TOKEN:
        msg = (
            f"{where}: the token has {len(token)} characters; use at least {MIN_TOKEN} "
            "(for example: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
        raise InputError(msg)
    return token


def read_token(path: str | Path) -> str:
    """The bearer token in the file ``path`` (surrounding whitespace stripped).

    :raises InputError: it cannot be read, holds more than a token, or is too short.
    """
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        msg = f"--token-file {str(path)!r}: cannot read it: {reason}"
        raise InputError(msg) from None
    if not token or any(c.isspace() for c in token):
        msg = (
            f"--token-file {str(path)!r} must hold one token: a single line without spaces "
            "(for example: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
        raise InputError(msg)
    return check_token(token, f"--token-file {str(path)!r}")
