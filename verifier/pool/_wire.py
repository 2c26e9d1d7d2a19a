"""The pool's wire: JSON objects, one a line, over a Unix stream socket, each read
within a deadline."""

from __future__ import annotations

import json
import os
import socket
import struct
import time
from typing import Any

__all__ = ("Wire", "peer_is_us", "peer_uid")

_MAX_LINE = 4 << 20  # a request carries the caller's environment
_SEND_S = 10.0  # how long a line may take to go out (the peer reads as it comes)


def _peer(sock: socket.socket) -> tuple[int, int]:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    return int(pid), int(uid)


def peer_uid(sock: socket.socket) -> int:
    """The user id of the process at the other end of ``sock`` (SO_PEERCRED)."""
    return _peer(sock)[1]


def peer_is_us(sock: socket.socket) -> bool:
    """Whether the process at the other end of ``sock`` is our user, in our user
    namespace: an app under test runs as our user id too, but in a namespace of its own
    (its sandbox's), and must never hand the pool a run (it would choose what the run
    reads and where it writes)."""
    pid, uid = _peer(sock)
    if uid != os.getuid() or pid <= 0:
        return False
    try:
        theirs = os.stat(f"/proc/{pid}/ns/user").st_ino
        ours = os.stat("/proc/self/ns/user").st_ino
    except OSError:
        return False
    return theirs == ours


class Wire:
    """One end of a conversation: :meth:`send` a dict, :meth:`recv` the next one."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    def send(self, message: dict[str, Any]) -> None:
        """Send ``message``; raises OSError (TimeoutError) when the peer is gone or stuck."""
        data = json.dumps(message, ensure_ascii=False).encode() + b"\n"
        self.sock.settimeout(_SEND_S)
        self.sock.sendall(data)

    def recv(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None when the peer closed its end.

        :raises TimeoutError: nothing whole came within ``timeout`` seconds.
        :raises ValueError: what came is not a JSON object on a line, or is too long.
        """
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self._buffer += chunk
            if len(self._buffer) > _MAX_LINE:
                msg = "a message longer than 4 MiB"
                raise ValueError(msg)
        line, _, self._buffer = self._buffer.partition(b"\n")
        message = json.loads(line)
        if not isinstance(message, dict):
            msg = "a message that is not a JSON object"
            raise ValueError(msg)
        return message
