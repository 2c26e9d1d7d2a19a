"""One desktop of the pool: a process that starts a rig, waits for a run, serves it, and
exits (``python -m verifier.pool worker FD SCREEN``, started by ``verifier serve``).

Talks to the server over the socket ``FD``: it says ``{"ready": ...}`` when its rig is up
(and again after a caller went elsewhere), and receives callers' connections (SCM_RIGHTS).
With a caller it speaks :mod:`verifier.pool._client`'s side: the request, ``cold`` (this
desktop does not fit the recipe: the caller starts one of its own) or ``ready``, the
caller's ``go``, then the run and its ``result``. A caller that hangs up or sends
``signal`` stops the run as SIGTERM or that signal would.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from verifier._process import OWNER_ENV
from verifier._signals import SignalGuard
from verifier.errors import Interrupted, RecipeError, VerifierError
from verifier.pool._wire import Wire, peer_is_us
from verifier.recipe import Recipe, load_recipe
from verifier.rig import Rig
from verifier.runner import recipe_files, run_attempts

__all__ = ("work",)

_REQUEST_S = 5.0  # how long a caller may take to say what to run
_GO_S = 5.0  # and to take the desktop once it is offered
_HEALTH_S = 0.5  # how often an idle desktop checks its display and browser


def work(fd: int, screen: str, pool: Path) -> int:
    """The worker's life (see the module); its exit code. ``pool`` is the server's
    socket, which no app under test may see."""
    server = socket.socket(fileno=fd)
    with SignalGuard():
        try:
            rig = Rig(screen, window=True).start()
        except VerifierError as exc:
            print(f"verifier serve: a desktop did not start: {exc.message}", file=sys.stderr)
            return 2
        except Interrupted:
            return 0
        try:
            ready = {"ready": {"pid": os.getpid(), "display": rig.display}}
            Wire(server).send(ready)
            while True:
                conn = _next_caller(server, rig)
                if conn is None:
                    return 0  # the server is gone
                with conn:
                    if _serve(conn, rig, pool):
                        return 0
                Wire(server).send(ready)
        except Interrupted:
            return 0
        except VerifierError as exc:  # the idle desktop died: the server starts another
            print(f"verifier serve: a warm desktop died: {exc.message}", file=sys.stderr)
            return 3
        finally:
            # Its run has answered (or none came): serve stopping now waits for the
            # close (Chromium's ~0.15 s), which a signal must not cut short (it would
            # leave Chromium's files behind).
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_IGN)
            rig.close()


def _next_caller(server: socket.socket, rig: Rig) -> socket.socket | None:
    """The next caller the server hands over; None when the server has gone."""
    while True:
        ready, _, _ = select.select([server], [], [], _HEALTH_S)
        if not ready:
            rig.check_alive()
            continue
        try:
            data, fds, _flags, _addr = socket.recv_fds(server, 16, 1)
        except OSError:
            return None
        if not data:
            for extra in fds:
                os.close(extra)
            return None
        if not fds:
            continue
        os.set_inheritable(fds[0], False)  # no child of the run holds the caller's line
        for extra in fds[1:]:
            os.close(extra)
        return socket.socket(fileno=fds[0])


def _serve(conn: socket.socket, rig: Rig, pool: Path) -> bool:
    """Talk with one caller; whether a run took the desktop (then it is spent)."""
    wire = Wire(conn)
    try:
        if not peer_is_us(conn):
            return False
        request = wire.recv(_REQUEST_S)
    except (OSError, ValueError):
        return False
    if request is None:
        return False
    try:
        recipe, options = _read(request)
    except RecipeError as exc:
        with contextlib.suppress(OSError):
            wire.send({"error": _error(exc)})
        return False
    except (OSError, KeyError, TypeError, ValueError) as exc:
        with contextlib.suppress(OSError):
            wire.send({"cold": f"the pool could not read the request: {exc}"})
        return False
    why = rig.refuses(
        recipe, network=options.get("network"), display=None, live=False, env=os.environ
    )
    try:
        if why is not None:
            wire.send({"cold": why})
            return False
        wire.send({"ready": {"pid": os.getpid(), "display": rig.display}})
        if wire.recv(_GO_S) != {"go": True}:
            return False
    except (OSError, ValueError):
        return False
    hangup = _Hangup(conn)
    try:
        reply = _run(recipe, options, rig, pool)
    finally:
        hangup.stop()
    if "interrupted" in reply and not hangup.asked:
        # Not the caller's Ctrl-C: the pool stopped (or someone signalled this desktop).
        reply = {
            "error": {
                "type": "VerifierError",
                "message": "the warm desktop was stopped during the run (verifier serve "
                "ended, or a signal to the desktop's process)",
                "exit_code": 2,
                "bundle": reply.get("bundle"),
            }
        }
    with contextlib.suppress(OSError):
        wire.send(reply)
    return True


def _read(request: dict[str, Any]) -> tuple[Recipe, dict[str, Any]]:
    """The caller's folder and environment taken on, its recipe loaded."""
    options = request["options"]
    env = request["env"]
    if not isinstance(options, dict) or not isinstance(env, dict):
        msg = "options and env must be objects"
        raise TypeError(msg)
    umask = request.get("umask")
    if isinstance(umask, int) and 0 <= umask <= 0o777:
        os.umask(umask)  # the caller's: its bundle's files are made as it would make them
    os.chdir(str(request["cwd"]))
    ours = os.environ.get(OWNER_ENV)  # how our own processes are found: kept
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in env.items() if k != OWNER_ENV})
    if ours is not None:
        os.environ[OWNER_ENV] = ours
    return load_recipe(Path(str(request["recipe"]))), options


def _run(recipe: Recipe, options: dict[str, Any], rig: Rig, pool: Path) -> dict[str, Any]:
    """Run the recipe on the rig as ``verifier run`` would; the reply to send."""
    try:
        protect, private = recipe_files([str(p) for p in options.get("protect", [])])
        private += [Path(str(p)) for p in options.get("private", [])]
        private.append(pool)
        result = run_attempts(
            recipe,
            retries=int(options.get("retries", 0)),
            rig=rig,
            out=str(options.get("out", "artifacts")),
            video=False if options.get("no_video") else None,
            update_baselines=bool(options.get("update_baselines")),
            network=options.get("network"),
            protect=protect,
            private=private,
        )
    except Interrupted as exc:
        return {"interrupted": exc.signum, "bundle": exc.details.get("bundle")}
    except VerifierError as exc:
        return {"error": _error(exc)}
    return {"result": result.to_json()}


def _error(exc: VerifierError) -> dict[str, Any]:
    bundle = exc.details.get("bundle")
    return {
        "type": type(exc).__name__,
        "message": exc.message,
        "exit_code": exc.exit_code,
        "bundle": str(bundle) if bundle else None,
    }


class _Hangup:
    """While a run goes on: the caller's ``{"signal": N}`` is signal N to this process,
    and a caller that hangs up is SIGTERM (nobody waits for the run any more). The
    watch waits on the caller's socket and a pipe of its own, which :meth:`stop` writes
    to: the run's reply goes out at once, not after a poll's slice."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._done = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self.asked = False  # the caller asked the run to stop (or hung up)
        self._thread = threading.Thread(target=self._watch, name="pool-hangup", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        wire = Wire(self._conn)
        while not self._done.is_set():
            try:
                ready, _, _ = select.select([self._conn.fileno(), self._wake_r], [], [])
            except (OSError, ValueError):
                return
            if self._done.is_set() or self._wake_r in ready:
                return
            try:
                message = wire.recv(1.0)  # something came: the rest of its line follows
            except TimeoutError:
                continue
            except (OSError, ValueError):
                message = None
            if self._done.is_set():
                return
            if message is None:
                self.asked = True
                os.kill(os.getpid(), signal.SIGTERM)
                return
            signum = message.get("signal")
            if signum in (signal.SIGINT, signal.SIGTERM):
                self.asked = True
                os.kill(os.getpid(), int(signum))

    def stop(self) -> None:
        self._done.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._thread.join(timeout=1.0)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
