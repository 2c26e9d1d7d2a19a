"""PID 1 of the app's sandbox: ``python3 -I -S _init.py --status-fd N -- COMMAND...``.

Bubblewrap makes the sandbox (``_sandbox.py``); this script (standard library only, no
verifier) is what it runs inside, as PID 1 of the new PID namespace (``--as-pid-1``). It
forks the app and reaps orphans; a SIGTERM/SIGINT/SIGHUP it gets is passed, once, to every
process of the namespace; when the app's first process exits it exits with its status,
and the kernel kills whatever is left inside. With ``--keep`` (Cursor's ``start``, which
leaves daemons behind) it writes ``exit CODE`` to the status fd when the command exits and
keeps the namespace (and what the command left running) until it is told to stop.

The first line written to ``--status-fd`` is ``started``: bubblewrap built the sandbox
and the command is about to run.

``--unset NAME`` takes a variable out of the app's environment (Python itself puts
``LC_CTYPE`` into this script's when the locale is C, PEP 538). ``--rlimit NAME=VALUE``
(``data``, ``nproc``) sets a resource limit on the app's processes, where the verifier
could not give it a cgroup of its own.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
import sys
from types import FrameType

__all__ = ("main",)

# The variable by which the verifier finds the processes it owns: the app does not get it.
_OWNER_ENV = "VERIFIER_OWNER"
_RLIMITS = {"data": resource.RLIMIT_DATA, "nproc": resource.RLIMIT_NPROC}
_STOP = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _exec(argv: list[str], env: dict[str, str]) -> None:
    for sig in _STOP:
        signal.signal(sig, signal.SIG_DFL)
    # Python ignores SIGPIPE and SIGXFSZ; a program it starts expects the defaults.
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        print(f"cannot run {argv[0]!r}: {exc.strerror}", file=sys.stderr, flush=True)
        os._exit(127)


def _serve(argv: list[str], env: dict[str, str], status_fd: int, keep: bool) -> None:
    """Fork the app, pass stop signals on to the whole namespace, reap, exit with it."""
    app = os.fork()
    if app == 0:
        os.close(status_fd)
        _exec(argv, env)
    if not keep:
        os.close(status_fd)
        status_fd = -1
    stopping: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        if signum in stopping:
            return  # passed on once: a second SIGTERM would cut a graceful stop short
        stopping.append(signum)
        os.kill(-1, signum)  # from PID 1: every other process of the namespace

    for sig in _STOP:
        signal.signal(sig, forward)
    app_status: int | None = None
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            if keep and not stopping:
                signal.pause()  # the command left nothing: stay until told to stop
                continue
            os._exit(_code(app_status) if app_status is not None else 0)
        except InterruptedError:
            continue
        if pid != app:
            continue
        app_status = status
        if not keep:
            os._exit(_code(status))  # the kernel now kills what is left inside
        if status_fd >= 0:
            os.write(status_fd, f"exit {_code(status)}\n".encode())
            os.close(status_fd)
            status_fd = -1  # written: keep the namespace until told to stop


def _parse(args: list[str]) -> tuple[int, bool, set[str], dict[int, int], list[str]]:
    """``--status-fd N [--keep] [--unset NAME]... [--rlimit NAME=N]... -- COMMAND...``."""
    status_fd, keep, unset, limits = -1, False, set(), {}
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
            elif flag == "--rlimit":
                name, _, value = rest.pop(0).partition("=")
                limits[_RLIMITS[name]] = int(value)
            else:
                raise ValueError(flag)
    except (IndexError, ValueError, KeyError):
        rest = []
    if status_fd < 0 or len(rest) < 2:
        print(
            "usage: _init.py --status-fd N [--keep] [--unset NAME]... [--rlimit NAME=N]... "
            "-- COMMAND...",
            file=sys.stderr,
        )
        os._exit(2)
    return status_fd, keep, unset, limits, rest[1:]


# keyctl(2) by machine (glibc has no wrapper): a keyring of the app's own.
_KEYCTL = {"x86_64": 250, "aarch64": 219}
_KEYCTL_JOIN_SESSION_KEYRING = 1


def _own_keyring() -> None:
    """Join a new, empty session keyring: the one inherited from the verifier may hold
    its keys (the kernel's keyrings are not namespaced)."""
    number = _KEYCTL.get(os.uname().machine)
    if number is None:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, _KEYCTL_JOIN_SESSION_KEYRING, None) < 0:
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EPERM):  # no keyrings here: nothing to keep
            print(
                f"the app's sandbox could not make a keyring: {os.strerror(err)}",
                file=sys.stderr,
                flush=True,
            )
            os._exit(126)


def main(args: list[str]) -> None:
    status_fd, keep, unset, limits, argv = _parse(args)
    _own_keyring()
    env = {k: v for k, v in os.environ.items() if k not in unset and k != _OWNER_ENV}
    for which, value in limits.items():
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError) as exc:
            print(f"the app's sandbox could not set a limit: {exc}", file=sys.stderr, flush=True)
            os._exit(126)
    os.write(status_fd, b"started\n")
    _serve(argv, env, status_fd, keep)


if __name__ == "__main__":
    main(sys.argv[1:])
