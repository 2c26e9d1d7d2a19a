"""``verifier serve``: keep N warm desktops ready, hand each caller one, replace it.

The server listens on a Unix socket (0600, in a folder of ours): a caller of another
user is refused. It starts each desktop as a worker process of its own
(:mod:`verifier.pool._worker`); a caller's connection goes to a ready worker (passed
with SCM_RIGHTS), which serves that one run and exits. Whenever fewer than N desktops
are starting, ready or serving a run, another starts: a run's desktop is replaced when
the run ends (warming one beside it would take the CPU from it), one that dies while it
waits at once, and one that keeps failing to start less and less often. SIGINT/SIGTERM stop
every worker (each tears its run and desktop down) before the server exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import signal
import socket
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from verifier._process import OwnedProcess
from verifier._signals import SignalGuard
from verifier._types import parse_screen
from verifier.errors import VerifierError
from verifier.pool._wire import Wire, peer_is_us

__all__ = ("default_socket", "serve_pool")

_QUEUE_S = 30.0  # a caller no desktop took within this is let go (it has gone cold)
_STOP_S = 20.0  # how long a worker may take to tear its run and desktop down
_BACKOFF_S = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)


def default_socket() -> Path:
    """Where ``verifier serve`` listens by default: in $XDG_RUNTIME_DIR, else ~/.cache."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime else Path.home() / ".cache"
    return base / "verifier" / "pool.sock"


@dataclass(eq=False)
class _Worker:
    proc: OwnedProcess
    chan: socket.socket
    wire: Wire
    ready: bool = False
    taken: bool = False  # a caller has it
    started: float = field(default_factory=time.monotonic)


class _Server:
    def __init__(self, path: Path, *, size: int, screen: str, say: TextIO) -> None:
        self.path = path
        self.size = size
        self.screen = screen
        self.say = say
        self.sel = selectors.DefaultSelector()
        self.workers: list[_Worker] = []
        self.queue: list[tuple[socket.socket, float]] = []
        self.failures = 0  # desktops in a row that died before they were ready
        self.next_start = 0.0
        self.announced = False
        self.listener, self._lock = _listen(path)
        self.inode = os.stat(path).st_ino
        self.sel.register(self.listener, selectors.EVENT_READ, None)

    def loop(self) -> None:
        while True:
            self._top_up()
            for key, _ in self.sel.select(timeout=0.5):
                if key.data is None:
                    self._accept()
                else:
                    self._hear(key.data)
            self._hand_over()

    def _top_up(self) -> None:
        # A desktop whose run goes on still counts: warming another beside it would take
        # the CPU from the run (measured: 0.3 s of a 3 s run on two cores).
        if len(self.workers) >= self.size or time.monotonic() < self.next_start:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with theirs:
            proc = OwnedProcess(
                # -P: the current folder is not first on sys.path (see _jobs.py).
                [sys.executable, "-P", "-m", "verifier.pool", "worker"]
                + [str(theirs.fileno()), self.screen, str(self.path)],
                name="verifier serve: desktop",
                env=dict(os.environ),
                stdout=None,
                stderr=None,
                pass_fds=(theirs.fileno(),),
                death_signal=signal.SIGTERM,
            )
        worker = _Worker(proc, ours, Wire(ours))
        self.workers.append(worker)
        self.sel.register(ours, selectors.EVENT_READ, worker)

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        if not peer_is_us(conn):
            # Another user (the socket's mode keeps them out: this is the second lock),
            # or an app under test that can see the socket from its sandbox.
            conn.close()
            return
        if not any(not w.taken for w in self.workers):
            # Every desktop is busy with a run (or closing after one, to be replaced):
            # starting cold beats waiting for one.
            _refuse(conn, "every warm desktop is busy with a run or being replaced after one")
            return
        self.queue.append((conn, time.monotonic()))

    def _hear(self, worker: _Worker) -> None:
        try:
            message = worker.wire.recv(1.0)
        except (OSError, ValueError, TimeoutError):
            message = None
        if message is None:
            self._gone(worker)
            return
        if "ready" in message:
            if not worker.ready:
                self.failures = 0
            worker.ready, worker.taken = True, False  # (again, when its caller went cold)
            if not self.announced and sum(w.ready for w in self.workers) >= self.size:
                self.announced = True
                print(f"ready: {self.size} warm desktop(s) at {self.path}", file=self.say)
                self.say.flush()

    def _gone(self, worker: _Worker) -> None:
        """A worker exited (its run is over, or its desktop died or never started)."""
        self.sel.unregister(worker.chan)
        worker.chan.close()
        code = worker.proc.stop(grace=_STOP_S, term_only=worker.proc.pid)
        self.workers.remove(worker)
        if not worker.ready and not worker.taken:
            self.failures += 1
            wait = _BACKOFF_S[min(self.failures, len(_BACKOFF_S) - 1)]
            self.next_start = time.monotonic() + wait
            print(
                f"verifier serve: a desktop did not start (exit {code}); "
                f"trying again in {wait:g} s",
                file=sys.stderr,
            )

    def _hand_over(self) -> None:
        now = time.monotonic()
        for conn, since in [q for q in self.queue if now - q[1] > _QUEUE_S]:
            self.queue.remove((conn, since))
            conn.close()
        while self.queue:
            free = next((w for w in self.workers if w.ready and not w.taken), None)
            if free is None:
                return
            conn, _ = self.queue.pop(0)
            with conn:
                try:
                    socket.send_fds(free.chan, [b"c"], [conn.fileno()])
                except OSError:
                    continue  # the worker is going: its end is heard next
            free.taken, free.ready = True, False

    def close(self) -> None:
        """Stop every worker (each tears down), let queued callers go, remove the socket."""
        for conn, _ in self.queue:
            conn.close()
        self.queue.clear()
        for worker in self.workers:
            worker.proc.signal(signal.SIGTERM)
        for worker in self.workers:
            worker.proc.stop(grace=_STOP_S, term_only=worker.proc.pid)
            worker.chan.close()
        self.workers.clear()
        self.sel.close()
        self.listener.close()
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.inode:
                self.path.unlink()
        os.close(self._lock)


def _refuse(conn: socket.socket, why: str) -> None:
    """Tell a caller to start cold, and let it go."""
    with conn:
        with contextlib.suppress(OSError):
            Wire(conn).send({"cold": why})
            conn.shutdown(socket.SHUT_WR)


def _listen(path: Path) -> tuple[socket.socket, int]:
    """A listening socket at ``path`` that only our user can open, and the lock (a file
    descriptor) held while it serves.

    :raises VerifierError: the folder cannot be made ours, or a pool already serves there.
    """
    folder = path.parent
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.stat(folder)
    except OSError as exc:
        msg = f"--socket {path}: its folder cannot be made ({exc.strerror})"
        raise VerifierError(msg) from None
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        msg = (
            f"--socket {path}: its folder {folder} must be ours and not writable by others "
            f"(owner uid {info.st_uid}, mode {info.st_mode & 0o777:o})"
        )
        raise VerifierError(msg)
    # Held while the pool serves: a second serve starting on the same stale socket could
    # otherwise replace the first one's, which would then serve at a path nobody reaches.
    try:
        lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        msg = f"--socket {path}: cannot make its lock file ({exc.strerror})"
        raise VerifierError(msg) from None
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            msg = f"--socket {path}: a pool already serves there"
            raise VerifierError(msg) from None
        return _bind(path), lock
    except BaseException:
        os.close(lock)
        raise


def _bind(path: Path) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            msg = f"--socket {path}: a file that is not a socket is there"
            raise VerifierError(msg)
        path.unlink()  # a socket of a pool that is gone (we hold the lock)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(str(path))
    except OSError as exc:
        listener.close()
        msg = f"--socket {path}: cannot listen there ({exc.strerror})"
        raise VerifierError(msg) from None
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    listener.listen(64)
    return listener


def serve_pool(path: Path, *, size: int, screen: str, say: TextIO) -> None:
    """Serve warm desktops at ``path`` until SIGINT/SIGTERM (raised as Interrupted, once
    every worker has stopped).

    :raises VerifierError: the socket cannot be made, or the screen is not WxH.
    """
    try:
        parse_screen(screen, what="--screen")
    except ValueError as exc:
        raise VerifierError(str(exc)) from None
    with SignalGuard() as guard:
        server = _Server(path, size=size, screen=screen, say=say)
        print(f"serving at {path}: VERIFIER_POOL={path} (or --pool) uses it", file=say)
        say.flush()
        try:
            server.loop()
        finally:
            guard.quiet = True
            server.close()
