"""Owned subprocesses: own session, die with us, and stopped with their whole tree.

Every long-lived process verifier starts is an :class:`OwnedProcess` (the Temporal
activity's ``verifier run`` uses :func:`die_with_parent` directly). The child gets:

* its own session (so a terminal's Ctrl-C reaches only us, and we tear down in order);
* ``PR_SET_PDEATHSIG`` (SIGKILL by default), so it dies if the verifier is killed
  outright, even when that happens while it is being forked;
* an environment cookie (``VERIFIER_OWNER``) that its descendants inherit, so that
  grandchildren which moved to their own session or were reparented to init
  (npm 11, file watchers, daemonizing servers) are still found and stopped.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from verifier.errors import VerifierError

__all__ = (
    "OWNER_ENV",
    "OwnedProcess",
    "Owner",
    "become_subreaper",
    "die_with_parent",
    "ensure_watchdog",
    "find_tree",
    "is_private_folder",
    "is_running",
    "kill_tree",
    "new_cookie",
    "patched_environ",
    "process_identity",
    "require_binary",
    "scratch_dir",
    "scratch_moved",
    "scratch_root",
    "tail",
)

_log = logging.getLogger(__name__)

OWNER_ENV = "VERIFIER_OWNER"
# Every cookie of this verifier process starts with this token, so that the watchdog can
# find all of them after the verifier itself was killed.
_RUN_TOKEN = uuid.uuid4().hex
_state_pid = os.getpid()  # the process whose token, watchdog and scratch folder these are
_watchdog: subprocess.Popen[bytes] | None = None
_watchdog_fd: int | None = None
# The folder every temporary folder of this process lies in (and the temporary folder of
# the browser and its driver): the watchdog removes it when the process ends.
_scratch: Path | None = None
_scratch_lock = threading.Lock()
_SCRATCH_PARENT_MAX = 40  # bytes (see _scratch_parent; 44 is the most that works)
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


def new_cookie() -> str:
    """A cookie for one owned process tree: ``<this verifier's token>.<unique>``."""
    _own_state()
    return f"{_RUN_TOKEN}.{uuid.uuid4().hex}"


def _own_state() -> None:
    """In a process forked from this one, the token, the watchdog and the scratch folder
    are still the parent's: this process makes its own (its watchdog would stop the
    parent's processes by the token, and remove the parent's folder)."""
    global _state_pid, _RUN_TOKEN, _watchdog, _scratch, _scratch_lock
    if os.getpid() != _state_pid:
        _state_pid = os.getpid()
        _RUN_TOKEN = uuid.uuid4().hex
        _watchdog = None
        _scratch = None
        _scratch_lock = threading.Lock()  # (another thread of the parent's may hold it)


def ensure_watchdog() -> None:
    """Start this process's watchdog once (see ``verifier/_watchdog.py``).

    PR_SET_PDEATHSIG only reaches our direct children; the watchdog also stops the
    grandchildren that left for their own session, when the verifier is SIGKILLed, and
    then removes this process's scratch folder (:func:`scratch_root`), however it ended.
    """
    global _watchdog, _watchdog_fd
    _own_state()
    if _watchdog is not None and _watchdog.poll() is None:
        return
    read_fd, write_fd = os.pipe()  # both ends non-inheritable by default
    package_parent = str(Path(__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if k != OWNER_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    try:
        _watchdog = subprocess.Popen(
            # -P: the current folder (an app's checkout, where it may have put a package
            # named verifier) is not put first on sys.path.
            [sys.executable, "-P", "-m", "verifier._watchdog", str(read_fd), f"{_RUN_TOKEN}."],
            env=env,
            pass_fds=(read_fd,),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError as exc:
        os.close(write_fd)
        _log.warning("no watchdog (orphans may outlive a killed verifier): %s", exc)
        return
    finally:
        os.close(read_fd)
    if _watchdog_fd is not None:
        with contextlib.suppress(OSError):
            os.close(_watchdog_fd)
    else:
        atexit.register(_stop_watchdog)
    _watchdog_fd = write_fd  # held open until this process dies; then the watchdog wakes
    if _scratch is not None:
        _tell_watchdog(_scratch)


def _tell_watchdog(folder: Path) -> None:
    """Name a scratch folder to the watchdog, which removes it when we end (a write of
    less than PIPE_BUF bytes: whole, never mixed with another)."""
    if _watchdog_fd is not None:
        with contextlib.suppress(OSError):
            os.write(_watchdog_fd, os.fsencode(folder) + b"\0")


def scratch_root() -> Path:
    """The folder this process's temporary folders lie in, and the browser's and its
    driver's temporary files (their ``TMPDIR``): private (0700), and removed by the
    watchdog when this process ends, a SIGKILL included; a killed Chromium's singleton
    folder, an X cookie, openbox's configuration are not left behind. Made again when
    something removed it (a cleaner of /tmp) while this process lives on; a process
    forked from this one makes its own (see :func:`_own_state`). Its path is short:
    Chromium puts a Unix socket's path under it."""
    global _scratch
    _own_state()
    with _scratch_lock:
        ensure_watchdog()
        if _scratch is not None and is_private_folder(_scratch):
            return _scratch
        try:
            made = Path(tempfile.mkdtemp(prefix="verifier-", dir=_scratch_parent()))
        except OSError as exc:
            _log.warning("no scratch folder (temporary files may outlive a killed run): %s", exc)
            return Path(tempfile.gettempdir())
        if _scratch is not None:
            _log.warning("the scratch folder %s is gone: %s is made instead", _scratch, made)
        _scratch = made
        _tell_watchdog(made)
        return made


def scratch_dir(prefix: str) -> Path:
    """A new private folder in :func:`scratch_root` (its owner removes it when done; the
    watchdog when the process ends first)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=scratch_root()))


def _scratch_parent() -> str:
    """The system's temporary folder, unless its path is too long for Chromium: its
    singleton socket lies 63 bytes below, and a Unix socket's path holds at most 107
    (past that, Chromium does not start at all); then /tmp or another."""
    base = tempfile.gettempdir()
    if len(os.fsencode(base)) <= _SCRATCH_PARENT_MAX:
        return base
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.access(folder, os.W_OK | os.X_OK):
            return folder
    return base


def scratch_moved() -> str | None:
    """Why this process's scratch folder is not in the system's temporary folder, for a
    run's log, or None: it is."""
    base, root = tempfile.gettempdir(), scratch_root()
    if root.parent == Path(base) or root == Path(base):
        return None
    return (
        f"temporary files go to {root.parent}: the path of TMPDIR {base!r} is longer "
        f"than Chromium allows ({_SCRATCH_PARENT_MAX} bytes at most)"
    )


def is_private_folder(path: str | bytes | os.PathLike[str]) -> bool:
    """``path`` is a folder (not a link) of this user's that no one else may enter."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.geteuid()
        and not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    )


def _remove_scratch() -> None:
    """At a normal exit, when there is no watchdog to do it."""
    _own_state()
    if _scratch is not None and is_private_folder(_scratch):
        shutil.rmtree(_scratch, ignore_errors=True)


atexit.register(_remove_scratch)  # runs after _stop_watchdog, registered later


def _stop_watchdog() -> None:
    """At a normal exit: wake the watchdog (its final sweep finds nothing) and reap it."""
    global _watchdog_fd
    _own_state()
    if _watchdog_fd is not None:
        with contextlib.suppress(OSError):
            os.close(_watchdog_fd)
        _watchdog_fd = None
    if _watchdog is not None:
        try:
            _watchdog.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _watchdog.kill()
            _watchdog.wait()


def die_with_parent(signum: int, also: Callable[[], None] | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child get ``signum`` when this process dies, then
    calls ``also`` (which must not log or allocate much: the child may not exec otherwise).

    A parent that dies between fork and prctl would leave the child without it: the
    child then exits at once (128 + signum), as it would have on the signal. When
    ``also`` raises, Popen raises ``subprocess.SubprocessError`` and nothing runs.
    """
    parent = os.getpid()

    def set_it() -> None:
        # Runs in the child between fork and exec: no logging, no allocation-heavy work.
        _libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(128 + signum)
        if also is not None:
            also()

    return set_it


def become_subreaper() -> None:
    """Make orphaned descendants (daemonized helpers, crashpad) reparent to us, not init,
    so that teardown can find, stop and reap them. Idempotent."""
    if _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        _log.debug("PR_SET_CHILD_SUBREAPER failed: errno %d", ctypes.get_errno())


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, starttime) of ``pid`` from /proc, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[1]), int(fields[19])


def process_identity(pid: int | None = None) -> tuple[int, int]:
    """(pid, kernel start time) of a process (default: this one); survives pid reuse."""
    pid = os.getpid() if pid is None else pid
    st = _stat(pid)
    return pid, st[2] if st is not None else -1


def is_running(pid: int, starttime: int) -> bool:
    """Is the process that had this identity still alive (not a zombie, not a reused pid)?"""
    return _alive(pid, starttime)


def _alive(pid: int, starttime: int) -> bool:
    st = _stat(pid)
    return st is not None and st[2] == starttime and st[0] not in ("Z", "X")


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _has_cookie(pid: int, cookie: bytes) -> bool:
    try:
        return cookie in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def find_tree(root: int | None, cookie: str | None) -> dict[int, int]:
    """Live processes that descend from ``root`` or from a process carrying ``cookie``.

    Returns {pid: starttime}. Some programs scrub their children's environment (Chromium's
    zygote does), so the cookie marks the seeds and the parent links find the rest. A
    cookie ending in "." matches every cookie it prefixes.
    """
    children: dict[int, list[int]] = {}
    seeds = [root] if root is not None else []
    needle = None
    if cookie:
        needle = f"{OWNER_ENV}={cookie}".encode() + (b"" if cookie.endswith(".") else b"\0")
    me = os.getpid()
    for pid in _all_pids():
        st = _stat(pid)
        if st is None or st[0] in ("Z", "X") or pid == me:
            continue
        children.setdefault(st[1], []).append(pid)
        if needle is not None and _has_cookie(pid, needle):
            seeds.append(pid)
    found: dict[int, int] = {}
    stack = seeds
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        st = _stat(pid)
        if st is not None and st[0] not in ("Z", "X"):
            found[pid] = st[2]
        stack.extend(children.get(pid, ()))
    return found


def _reap(pids: Iterable[int]) -> None:
    """Collect the exit status of dead processes that were reparented to us."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def kill_tree(
    tree: Mapping[int, int],
    *,
    grace: float,
    keep: int | None = None,
    term_only: int | None = None,
) -> list[int]:
    """SIGTERM every process of ``tree`` (only ``term_only``, when given: a process that
    passes it on to the rest, as the app's sandbox does, so each gets it once), SIGKILL
    those alive after ``grace`` s, and reap the ones that became our children (except
    ``keep``, which its Popen reaps).

    Returns the pids that had to be killed.
    """
    for pid, start in tree.items():
        if term_only is not None and pid != term_only:
            continue
        if _alive(pid, start):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
    _wait_gone(tree, grace)
    killed = [p for p, s in tree.items() if _alive(p, s)]
    for pid in killed:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    _wait_gone({p: tree[p] for p in killed}, 2.0)
    _reap(p for p in tree if p != keep)
    return killed


def _wait_gone(tree: Mapping[int, int], timeout: float) -> None:
    """Wait (at most ``timeout`` s) until every process of ``tree`` has exited.

    Woken by the kernel (a pidfd turns readable when its process exits), not by polling;
    a zombie counts as exited. Where pidfds are missing, /proc is polled every 10 ms.
    """
    deadline = time.monotonic() + timeout
    fds: list[int] = []
    try:
        for pid, start in tree.items():
            if not _alive(pid, start):
                continue
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                continue  # gone already
            except (AttributeError, OSError):
                break  # no pidfds here: the poll below waits for the rest
            fds.append(fd)
            if not _alive(pid, start):  # the pid was reused before the open: not ours
                fds.pop()
                os.close(fd)
        while fds and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(fds, [], [], left)
            for fd in ready:
                fds.remove(fd)
                os.close(fd)
    finally:
        for fd in fds:
            os.close(fd)
    while time.monotonic() < deadline and any(_alive(p, s) for p, s in tree.items()):
        time.sleep(0.01)


class OwnedProcess:
    """A subprocess we started and must stop, with its whole tree, on every path."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        env: Mapping[str, str],
        cwd: str | os.PathLike[str] | None = None,
        stdin: int | IO[bytes] | None = subprocess.DEVNULL,
        stdout: int | IO[bytes] | None = subprocess.DEVNULL,
        stderr: int | IO[bytes] | None = subprocess.STDOUT,
        pass_fds: Sequence[int] = (),
        death_signal: int = signal.SIGKILL,
        also: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.cookie = new_cookie()
        full_env = {**env, OWNER_ENV: self.cookie}
        ensure_watchdog()
        self.popen = subprocess.Popen(
            self.argv,
            env=full_env,
            cwd=cwd,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            pass_fds=tuple(pass_fds),
            start_new_session=True,
            preexec_fn=die_with_parent(death_signal, also),
        )
        self.pid = self.popen.pid
        self._stopped = False
        _log.debug("started %s (pid %d): %s", name, self.pid, self.argv)

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float) -> int | None:
        """Wait at most ``timeout`` s for the process to exit; its code, or None.

        Woken the moment it exits (Popen.wait polls, up to 50 ms late).
        """
        if self.popen.poll() is None:
            _wait_gone({self.pid: process_identity(self.pid)[1]}, timeout)
        return self.popen.poll()

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process itself (not its tree), if it is still running."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signum)

    def stop(self, *, grace: float = 3.0, term_only: int | None = None) -> int | None:
        """Stop the process and every descendant: SIGTERM, ``grace`` seconds, SIGKILL (a
        grace of 0 kills at once, as asked, so that is not logged). With ``term_only``,
        SIGTERM goes to that process of the tree alone, which passes it on to the rest (a
        sandbox's init). Idempotent; returns the exit code."""
        if self._stopped:
            return self.popen.returncode
        self._stopped = True
        tree = find_tree(self.pid, self.cookie)
        killed = kill_tree(tree, grace=grace, keep=self.pid, term_only=term_only)
        if killed and grace > 0:
            _log.info(
                "%s: killed %d process(es) that ignored SIGTERM: %s", self.name, len(killed), killed
            )
        try:
            self.popen.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        _log.debug("stopped %s (pid %d): exit %s", self.name, self.pid, self.popen.returncode)
        return self.popen.returncode


class Owner:
    """Context-manager protocol for the owners of long-lived things: ``with X() as x``
    calls ``start()`` and always ``close()``, which must be idempotent."""

    def start(self) -> Self:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@contextlib.contextmanager
def patched_environ(changes: Mapping[str, str]) -> Iterator[None]:
    """os.environ with ``changes`` while the block runs (what a child started inside
    inherits), then as it was."""
    saved = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def require_binary(binary: str, error: type[VerifierError], hint: str = "") -> str:
    """The path of ``binary`` on PATH, or ``error`` saying how to install it."""
    path = shutil.which(binary)
    if path is None:
        msg = f"{binary!r} is not installed; run desktop-image/provision.sh{hint}"
        raise error(msg)
    return path


def tail(path: Path, lines: int = 12, *, max_bytes: int = 16_384) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").rstrip()
    return "\n".join(text.splitlines()[-lines:])
