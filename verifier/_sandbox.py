"""Runs the app under test in PID and mount namespaces of its own: ``python3 -I -S
_sandbox.py --status-fd N -- COMMAND...`` (a script: standard library only, no verifier).

Why: the app is untrusted. In its own PID namespace it sees only its own processes (its
/proc is new), so it cannot read the verifier's environment or command line, and every
process it starts, however it detaches (double fork, setsid, a scrubbed environment),
dies when the namespace's first process does: the kernel kills the rest. X sockets are
hidden from it (an empty /tmp/.X11-unix), so it cannot draw on or type into any display.

Shape: this process (outside) makes the namespaces and forks ``init`` (PID 1 inside),
which forks the app and reaps orphans. A SIGTERM/SIGINT to either is passed to every
process inside; when the app's first process exits, init exits with its status and the
namespace goes. As root this needs nothing; as another user it maps that user into a new
user namespace. Where neither works (a chroot, a kernel without user namespaces), the
app runs without the sandbox and the status line says why.

``--unset NAME`` takes a variable out of the app's environment: Python itself puts
``LC_CTYPE`` into this script's when the locale is C (PEP 538), and the app gets only
what the verifier gave it.

The first line written to ``--status-fd`` is ``sandbox: pid mount`` or ``no sandbox: WHY``.
With ``--keep`` (Cursor's ``start``, which leaves daemons behind), init stays up when the
app's first process exits: it writes ``exit CODE`` to the status pipe and keeps the
namespace (and what the command left running) until it is told to stop.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import sys
from types import FrameType

__all__ = ("main",)

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x2, 0x4, 0x8
_MS_REC, _MS_PRIVATE = 0x4000, 0x40000
_PR_SET_PDEATHSIG = 1
# The variable by which the verifier finds the processes it owns: the launcher keeps it
# (it is the verifier's), the app does not get it.
_OWNER_ENV = "VERIFIER_OWNER"
_libc = ctypes.CDLL(None, use_errno=True)


def _fail(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


def _unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        raise _fail("unshare")


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as fh:
        fh.write(text)


def _enter_namespaces() -> str:
    """Make the PID and mount namespaces (and a user namespace when not root)."""
    try:
        _unshare(_CLONE_NEWPID | _CLONE_NEWNS)
        return "pid mount"
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EINVAL) or os.geteuid() == 0:
            raise
    uid, gid = os.geteuid(), os.getegid()
    _unshare(_CLONE_NEWUSER | _CLONE_NEWPID | _CLONE_NEWNS)
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    return "user pid mount"


def _mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    src = source.encode() if source is not None else None
    kind = fstype.encode() if fstype is not None else None
    if _libc.mount(src, target.encode(), kind, flags, None) != 0:
        raise _fail(f"mount {target}")


def _init(argv: list[str], env: dict[str, str], keep_fd: int) -> None:
    """PID 1 of the namespace: a private /proc, no X sockets, the app, the reaping.
    With ``keep_fd`` >= 0, the app's exit is written there and the namespace stays."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    if os.path.isdir("/tmp/.X11-unix"):
        _mount("tmpfs", "/tmp/.X11-unix", "tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    app = os.fork()
    if app == 0:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        if keep_fd >= 0:
            os.close(keep_fd)
        _exec(argv, env)
    stopping: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        if signum in stopping:
            return  # passed on once: a second SIGTERM would cut a graceful stop short
        stopping.append(signum)
        os.kill(-1, signum)  # from PID 1: every other process of the namespace

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    app_status: int | None = None
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            if keep_fd >= 0 and not stopping:
                signal.pause()  # the command left nothing: stay until told to stop
                continue
            os._exit(_code(app_status) if app_status is not None else 0)
        except InterruptedError:
            continue
        if pid != app:
            continue
        app_status = status
        if keep_fd < 0:
            os._exit(_code(status))  # the kernel now kills what is left inside
        os.write(keep_fd, f"exit {_code(status)}\n".encode())
        os.close(keep_fd)
        keep_fd = -2  # written: keep the namespace until told to stop


def _code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _exec(argv: list[str], env: dict[str, str]) -> None:
    # Python ignores SIGPIPE and SIGXFSZ; a program it starts expects the defaults.
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        print(f"cannot run {argv[0]!r}: {exc.strerror}", file=sys.stderr, flush=True)
        os._exit(127)


def _parse(args: list[str]) -> tuple[int, bool, set[str], list[str]]:
    """``--status-fd N [--keep] [--unset NAME]... -- COMMAND...``."""
    status_fd, keep, unset = -1, False, set()
    rest = list(args)
    try:
        while rest and rest[0] != "--":
            flag = rest.pop(0)
            if flag == "--status-fd":
                status_fd = int(rest.pop(0))
            elif flag == "--unset":
                unset.add(rest.pop(0))
            elif flag == "--keep":
                keep = True
            else:
                raise ValueError(flag)
    except (IndexError, ValueError):
        rest = []
    if status_fd < 0 or len(rest) < 2:
        print(
            "usage: _sandbox.py --status-fd N [--keep] [--unset NAME]... -- COMMAND...",
            file=sys.stderr,
        )
        os._exit(2)
    return status_fd, keep, unset, rest[1:]


def main(args: list[str]) -> None:
    status_fd, keep, unset, argv = _parse(args)
    env = {k: v for k, v in os.environ.items() if k not in unset}
    try:
        how = _enter_namespaces()
    except OSError as exc:
        os.write(status_fd, f"no sandbox: {exc.strerror or exc}\n".encode())
        os.close(status_fd)
        _exec(argv, env)  # without a namespace the verifier needs its cookie to find them
    env.pop(_OWNER_ENV, None)
    os.write(status_fd, f"sandbox: {how}\n".encode())  # before init can write its exit
    init = os.fork()
    if init == 0:
        if not keep:
            os.close(status_fd)
        try:
            _init(argv, env, status_fd if keep else -1)
        except OSError as exc:
            print(f"the app's sandbox failed: {exc}", file=sys.stderr, flush=True)
            os._exit(126)
    os.close(status_fd)

    forwarded: set[int] = set()

    def forward(signum: int, _frame: FrameType | None) -> None:
        if signum in forwarded:
            return
        forwarded.add(signum)
        try:
            os.kill(init, signum)
        except ProcessLookupError:
            pass  # init is gone already: its status is on its way

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            _pid, status = os.waitpid(init, 0)
        except InterruptedError:
            continue
        os._exit(_code(status))


if __name__ == "__main__":
    main(sys.argv[1:])
