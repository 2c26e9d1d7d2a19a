"""A run on the pool's warm desktop, as seen from ``verifier run``.

The caller sends what to run (the recipe, its folder, its environment, the run's
options); a desktop of the pool answers ``ready`` (or ``cold``: it does not fit, then
the caller starts its own), the caller says ``go``, and the run's ``result`` (or
``error``, or ``interrupted``) comes back. Ctrl-C or SIGTERM here is sent on and the run
tears down there, as it would here.

Only a socket of our own user's, that no one else may open (0600), is spoken to: the
request carries the caller's environment (its secrets).
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from pathlib import Path
from typing import Any

from verifier import errors
from verifier._signals import SignalGuard
from verifier.errors import Interrupted, VerifierError
from verifier.pool._wire import Wire, peer_uid
from verifier.result import RunResult

__all__ = ("POOL_ENV", "PoolUnavailable", "run_in_pool")

POOL_ENV = "VERIFIER_POOL"
_CONNECT_S = 2.0
_WAIT_S = 5.0  # how long to wait for a desktop still warming (a cold start costs ~1 s)
_TEARDOWN_S = 60.0  # how long an interrupted run may take to tear down there


class PoolUnavailable(Exception):
    """The pool cannot take this run (why, in one line): the caller starts it cold."""


def run_in_pool(pool: Path, recipe: str, *, options: dict[str, Any]) -> RunResult:
    """Run ``recipe`` on a warm desktop of the pool at ``pool``.

    :raises PoolUnavailable: no pool answers there, none of its desktops fits, or none
        is free within 10 s.
    :raises VerifierError: the run could not be made (an invalid recipe: RecipeError),
        or the desktop died under it.
    :raises Interrupted: SIGINT/SIGTERM here; the run was stopped there first.
    """
    _check_socket(pool)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(_CONNECT_S)
        try:
            sock.connect(str(pool))
            if peer_uid(sock) != os.getuid():
                msg = f"the pool at {pool} runs as another user"
                raise PoolUnavailable(msg)
        except OSError as exc:
            msg = f"nothing answers at {pool} ({exc.strerror or exc})"
            raise PoolUnavailable(msg) from None
        wire = Wire(sock)
        umask = os.umask(0o077)
        os.umask(umask)
        request = {
            "recipe": os.path.abspath(recipe),
            "cwd": os.getcwd(),
            "env": dict(os.environ),
            "umask": umask,
            "options": options,
        }
        try:
            wire.send(request)
            offer = wire.recv(_WAIT_S)
        except TimeoutError:
            msg = f"no warm desktop was free within {_WAIT_S:g} s"
            raise PoolUnavailable(msg) from None
        except (OSError, ValueError) as exc:
            msg = f"the pool at {pool} did not take the run ({exc})"
            raise PoolUnavailable(msg) from None
        if offer is None:
            msg = f"the pool at {pool} closed the connection"
            raise PoolUnavailable(msg)
        if "cold" in offer:
            raise PoolUnavailable(str(offer["cold"]))
        if "error" in offer:
            raise _error(offer["error"])
        if "ready" not in offer:
            msg = f"the pool at {pool} answered {sorted(offer)}"
            raise PoolUnavailable(msg)
        pid = offer["ready"].get("pid") if isinstance(offer["ready"], dict) else None
        try:
            wire.send({"go": True})
        except OSError as exc:
            msg = f"the warm desktop went away ({exc})"
            raise PoolUnavailable(msg) from None
        return _outcome(wire, pid)


def _check_socket(pool: Path) -> None:
    try:
        info = os.stat(pool)
    except OSError as exc:
        msg = f"no pool at {pool} ({exc.strerror})"
        raise PoolUnavailable(msg) from None
    if not stat.S_ISSOCK(info.st_mode):
        msg = f"{pool} is not a socket"
        raise PoolUnavailable(msg)
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        msg = f"{pool} is not ours alone (owner uid {info.st_uid}, mode {info.st_mode & 0o777:o})"
        raise PoolUnavailable(msg)


def _outcome(wire: Wire, pid: object) -> RunResult:
    """Wait for the run's end; Ctrl-C and SIGTERM are passed on and waited out."""
    guard = SignalGuard()
    interrupted: Interrupted | None = None
    with guard:
        try:
            end = _until_end(wire, None)
        except Interrupted as exc:
            interrupted = exc
            with contextlib.suppress(OSError):
                wire.send({"signal": exc.signum})
            end = _until_end(wire, _TEARDOWN_S)
    if end is None:
        if interrupted is not None:
            raise interrupted
        msg = f"the warm desktop (pid {pid}) ended before its run did: see its bundle, if any"
        raise VerifierError(msg)
    if "result" in end:
        try:
            result = RunResult.from_json(end["result"])
        except ValueError as exc:
            raise VerifierError(str(exc)) from None
        if interrupted is not None:
            raise interrupted
        return result
    if "interrupted" in end:
        stopped = interrupted or Interrupted(int(end["interrupted"]))
        stopped.details["bundle"] = end.get("bundle")
        raise stopped
    if "error" in end:
        raise _error(end["error"])
    msg = f"the warm desktop answered {sorted(end)}"
    raise VerifierError(msg)


def _until_end(wire: Wire, timeout: float | None) -> dict[str, Any] | None:
    """The run's last message (None: the desktop went away); with ``timeout``, at most
    that long. A run bounds itself (every step has its deadline); the wait is in slices so
    that a signal lands between them."""
    waited = 0.0
    while timeout is None or waited < timeout:
        try:
            return wire.recv(1.0)
        except TimeoutError:
            waited += 1.0
        except (OSError, ValueError):
            return None
    return None


def _error(data: object) -> VerifierError:
    """The error the run raised there, as its own type (its exit code with it)."""
    info = data if isinstance(data, dict) else {}
    kind = getattr(errors, str(info.get("type")), None)
    if not (isinstance(kind, type) and issubclass(kind, VerifierError)):
        kind = VerifierError
    bundle = info.get("bundle")
    return kind(str(info.get("message")), details={"bundle": bundle} if bundle else None)
