"""The options of ``verifier mcp`` (kept apart so the CLI need not import the MCP SDK)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from verifier.computer._image import ImageFormat
from verifier.errors import InputError

__all__ = ("McpOptions", "TOKEN_ENV", "parse_listen")

TOKEN_ENV = "VERIFIER_MCP_TOKEN"


@dataclass(frozen=True, slots=True)
class McpOptions:
    """What ``verifier mcp`` serves, and how."""

    recipe: Path | None = None
    url: str | None = None
    out: Path = Path("artifacts")
    http: tuple[str, int] | None = None  # None: stdio
    token: str | None = None
    allow_remote: bool = False
    screen: str | None = None
    scale: tuple[int, int] | None = None
    image_format: ImageFormat = "auto"
    video: bool | None = None
    display: str | None = None


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
