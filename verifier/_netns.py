"""Loopback-only networking for a run: a fresh network namespace with only ``lo`` up.

The run's thread moves into a new network namespace (``unshare(CLONE_NEWNET)``); every
process it then starts (dev server, Xvfb, ffmpeg, Chromium through Playwright's driver)
inherits it, and so does the readiness probe. Only 127.0.0.1/::1 of that namespace are
reachable: any other address fails at once with "network unreachable". Afterwards the
thread returns to its original namespace, so a caller (a test runner) keeps its network.
X still works: Xvfb listens on a filesystem socket that every namespace can reach.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Iterator, Mapping

from verifier.errors import NetworkError

__all__ = ("check_contained", "loopback_only", "namespace_of")

_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_libc = ctypes.CDLL(None, use_errno=True)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, _SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Run the body in a new network namespace where only loopback exists.

    :raises NetworkError: without the privilege to create a network namespace.
    """
    if threading.current_thread() is not threading.main_thread():
        msg = "network: loopback must be set up from the main thread"
        raise NetworkError(msg)
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if _libc.unshare(_CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            hint = " (needs root or CAP_SYS_ADMIN)" if err in (errno.EPERM, errno.EACCES) else ""
            msg = f"network: loopback: cannot create a network namespace: {os.strerror(err)}{hint}"
            raise NetworkError(msg)
        try:
            try:
                _loopback_up()
            except OSError as exc:
                msg = (
                    f"network: loopback: cannot bring up the namespace's loopback: "
                    f"{exc.strerror or exc} (needs CAP_NET_ADMIN)"
                )
                raise NetworkError(msg) from exc
            yield
        finally:
            if _libc.setns(original, _CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                msg = f"cannot return to the original network namespace: {os.strerror(err)}"
                raise NetworkError(msg)
    finally:
        os.close(original)


def namespace_of(pid: int | None = None) -> int:
    """The network namespace (its inode) of process ``pid``; of this thread by default."""
    where = "thread-self" if pid is None else str(pid)
    return os.stat(f"/proc/{where}/ns/net").st_ino


def check_contained(processes: Mapping[str, int]) -> None:
    """Raise unless every process (``what -> pid``) is in this thread's namespace, the
    run's loopback-only one: a browser or an app outside it could reach the network.

    :raises NetworkError: naming the first process found outside.
    """
    ours = namespace_of()
    for what, pid in processes.items():
        try:
            theirs = namespace_of(pid)
        except OSError:
            continue  # gone: nothing of it is outside
        if theirs != ours:
            msg = (
                f"network: loopback does not hold: {what} (pid {pid}) runs outside the "
                "run's network namespace"
            )
            raise NetworkError(msg)
