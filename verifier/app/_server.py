"""One process of the app under test: started, probed until ready, stopped with its tree.

The app is untrusted code. It gets only ``PATH``, ``HOME``, ``LANG``, ``TERM``,
``TMPDIR``, ``PORT``, its recipe's ``env`` and the variables named in ``pass_env``; it
runs in bubblewrap's sandbox (``_sandbox.py``) under an init of ours (``_init.py``), so
whatever it starts goes with it, within its limits (``_limits.py``), and its output
reaches ``app.log`` redacted and bounded (``_logpump.py``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import pwd
import resource
import select
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from verifier._bwrap import sandbox_unavailable
from verifier._process import OwnedProcess, Owner
from verifier._redact import NO_SECRETS, Redactor
from verifier.app._limits import DEFAULT_LIMITS, Limiter, Limits, format_bytes
from verifier.app._logpump import DEFAULT_LOG_LIMIT, LogPump
from verifier.app._probe import refuse_taken_port, wait_answering
from verifier.app._sandbox import INIT, Confinement, bwrap_argv, checkout_of
from verifier.errors import DevServerError

__all__ = ("BASE_ENV", "DevServer", "ServiceKind", "app_environment", "command_argv", "free_port")

_log = logging.getLogger(__name__)

# Characters that only mean something to a shell: a command using them runs under /bin/sh.
_SHELL_SYNTAX = frozenset("|&;<>()$`*?[]~#\n")
# What the app gets of the verifier's environment (besides PORT, its env and pass_env).
BASE_ENV = ("PATH", "HOME", "LANG", "TERM", "TMPDIR")
# How long bubblewrap and the init may take to say the sandbox is up (about 30 ms here).
_SANDBOX_START_S = 10.0
_SANDBOXED = (
    "sandbox: bubblewrap (user, PID, mount, IPC and UTS namespaces of its own; no capabilities)"
)
_NOT_CONTAINED = (
    "not contained: the app runs as the verifier's user with its view of the machine "
    "(every process, that user's files, the X cookies and sockets under TMPDIR)"
)
ServiceKind = Literal["serve", "install", "start"]


def app_environment(
    env: Mapping[str, str], pass_env: Sequence[str], environ: Mapping[str, str]
) -> dict[str, str]:
    """The whole environment of the app: an allow-list of ``environ`` (BASE_ENV and
    ``pass_env``), then ``env``. Nothing else of the verifier's (no ``VERIFIER_*``, no
    tokens) reaches it."""
    kept = {n: environ[n] for n in (*BASE_ENV, *pass_env) if n in environ}
    return {**kept, **env}


def free_port() -> int:
    """A TCP port that is free on loopback right now (the kernel picks it)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command_argv(command: str | Sequence[str]) -> list[str]:
    """argv for ``command``: split like a shell when plain, else run it with ``/bin/sh -c``."""
    if not isinstance(command, str):
        return list(command)
    try:
        words = shlex.split(command)
    except ValueError:
        words = []
    if not words or _SHELL_SYNTAX & set(command) or "=" in words[0]:
        return ["/bin/sh", "-c", command]
    return words


class DevServer(Owner):
    """One process of the app under test, started, waited for, stopped with all it spawned.

    ``kind`` says what "ready" means: ``serve`` (a dev server) keeps running, ready once
    ``url`` answers 2xx/3xx (at once when it has no url: a file watcher); ``install``
    must exit 0, and whatever it left is stopped with it; ``start`` must exit 0, and what
    it leaves running (daemons) stays up until :meth:`close`.

    :param command: a command line or an argv list (``{port}``, ``{ports.NAME}`` filled).
    :param url: the readiness probe (``{port}``, ``{ports.NAME}`` filled).
    :param cwd: the working directory.
    :param env: the app's own variables (placeholders filled).
    :param pass_env: names of the verifier's variables the app gets too.
    :param ready_timeout: seconds to wait for it to be ready.
    :param log_path: where its stdout and stderr go.
    :param port: its port (``{port}`` and ``PORT``); a free one by default; None with
        ``wants_port=False``: no port of its own.
    :param ports: the ports of the app's other services, for ``{ports.NAME}``.
    :param name: what errors call it (``dev server``, ``service 'api'``).
    :param redactor: secrets replaced in the log.
    :param log_limit: the most bytes the log keeps (its head and its tail).
    :param limits: the memory and processes its tree may use.
    :param confinement: what of ours its sandbox hides or keeps read-only.
    """

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        url: str | None,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        pass_env: Sequence[str] = (),
        ready_timeout: float = 60.0,
        log_path: Path,
        port: int | None = None,
        wants_port: bool = True,
        ports: Mapping[str, int] | None = None,
        name: str = "dev server",
        kind: ServiceKind = "serve",
        redactor: Redactor = NO_SECRETS,
        log_limit: int = DEFAULT_LOG_LIMIT,
        limits: Limits = DEFAULT_LIMITS,
        confinement: Confinement | None = None,
    ) -> None:
        self.port = port if port is not None or not wants_port else free_port()
        fill = functools.partial(_fill, port=self.port, ports=ports or {})
        self.command = fill(command) if isinstance(command, str) else [fill(w) for w in command]
        self.url = fill(url) if url is not None else None
        self._fixed_port = url is not None and "{port}" not in url and "{ports." not in url
        self.cwd = cwd
        self.name = name
        self.kind = kind
        own = {k: fill(v) for k, v in (env or {}).items()}
        self.env = app_environment(own, pass_env, os.environ)
        if self.port is not None:
            self.env["PORT"] = str(self.port)
        self.ready_timeout = ready_timeout
        self.log_path = log_path
        self.ready_s: float | None = None
        self.sandbox: str | None = None  # how it is contained, once launched
        self.exit_code: int | None = None  # once stopped (or, for install/start, done)
        self._redactor = redactor
        self._log_limit = log_limit
        self._limiter = Limiter(limits)
        self._confinement = confinement or Confinement()
        self._init_pid: int | None = None  # the sandbox's init (PID 1 inside), as seen here
        self._pump: LogPump | None = None
        self._status: _StatusPipe | None = None  # the init's lines: "started", "exit N"
        self._info: _StatusPipe | None = None  # bubblewrap's JSON: the init's pid
        self._started = 0.0
        self._proc: OwnedProcess | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> DevServer:
        """Start the server and wait until it is ready; a second call does nothing."""
        self.launch()
        return self.wait_ready()

    def launch(self) -> DevServer:
        """Spawn the server without waiting for it (call :meth:`wait_ready` next).

        Lets the caller start the desktop and browser while the server boots.
        """
        if self._proc is not None:
            return self
        if not self.cwd.is_dir():
            msg = f"app.cwd {str(self.cwd)!r} is not a directory"
            raise DevServerError(msg)
        if self._fixed_port:
            assert self.url is not None
            refuse_taken_port(self.url, self.name)
        argv = command_argv(self.command)
        program = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=self.env.get("PATH"))
        if program is None or not os.access(self.cwd / program, os.X_OK):
            msg = (
                f"{self.name} {self.command!r} could not start: {argv[0]!r} is not an "
                "executable program (on the app's PATH, or relative to app.cwd)"
            )
            raise DevServerError(msg)
        why_not = sandbox_unavailable()  # raises when bubblewrap is missing
        self._limiter.open()
        self._started = time.monotonic()
        if why_not is None:
            self._launch_sandboxed(argv)
        else:
            self.sandbox = f"no sandbox: {why_not}; {_NOT_CONTAINED}"
            self._launch_bare(argv)
        assert self._proc is not None and self._proc.popen.stdout is not None
        self._pump = LogPump(
            self._proc.popen.stdout,
            self.log_path,
            redactor=self._redactor,
            limit=self._log_limit,
            name="app-log",
        ).start()
        if why_not is None:
            self._await_sandbox()
        _log.info("%s started (pid %d, %s): %s", self.name, self._proc.pid, self.sandbox, argv)
        return self

    def _entering(self, owner: _SandboxUser | None) -> Callable[[], None]:
        """What the sandbox's first process does before it runs bubblewrap: join the
        limits' cgroups (as us), then become the checkout's owner, if it is to."""
        join = self._limiter.join
        if owner is None:
            return join

        def enter() -> None:
            join()
            os.setgroups([])
            os.setgid(owner.gid)
            os.setuid(owner.uid)

        return enter

    def _spawn(
        self,
        argv: list[str],
        pass_fds: tuple[int, ...],
        also: Callable[[], None],
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        try:
            self._proc = OwnedProcess(
                argv,
                name=self.name,
                env=self.env if env is None else env,
                cwd=self.cwd,
                stdout=subprocess.PIPE,
                pass_fds=pass_fds,
                also=also,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            self._limiter.close()
            msg = f"{self.name} {self.command!r} could not start: {exc}"
            raise DevServerError(msg) from exc

    def _launch_sandboxed(self, argv: list[str]) -> None:
        """bubblewrap, then our init as PID 1 inside, then the command.

        As root, for a checkout another user owns (a CI workspace), the sandbox runs as
        that user, with that user's home folder: without root's privileges (its user
        namespace has none over the machine), root could not write the checkout."""
        status_r, status_w = os.pipe()
        info_r, info_w = os.pipe()
        keep = ["--keep"] if self.kind == "start" else []
        # Python adds LC_CTYPE to the init's environment in the C locale, bubblewrap PWD.
        unset = [a for n in ("LC_CTYPE", "PWD") if n not in self.env for a in ("--unset", n)]
        rlimits = [a for k, v in self._limiter.rlimits.items() for a in ("--rlimit", f"{k}={v}")]
        init = [
            sys.executable, "-I", "-S", str(INIT), "--status-fd", str(status_w),
            *keep, *unset, *rlimits, "--", *argv,
        ]  # fmt: skip
        try:
            owner = _owner_of(checkout_of(self.cwd))
            env = self.env if owner is None else {**self.env, "HOME": owner.home}
            full = bwrap_argv(
                init,
                cwd=self.cwd,
                env=env,
                confinement=self._confinement,
                tmpfs_size=self._limiter.limits.memory,
                info_fd=info_w,
                owner=owner.uid if owner is not None else None,
            )
            self._spawn(full, (status_w, info_w), self._entering(owner), env=env)
        except BaseException:
            for fd in (status_r, info_r):
                os.close(fd)
            raise
        finally:
            os.close(status_w)
            os.close(info_w)
        self.sandbox = _SANDBOXED
        if owner is not None:
            self.sandbox += f"; as uid {owner.uid}, the owner of its checkout"
        self._status = _StatusPipe(status_r)
        self._info = _StatusPipe(info_r)

    def _launch_bare(self, argv: list[str]) -> None:
        """No sandbox can be made here: the command itself, with an rlimit on its memory."""
        memory = self._limiter.rlimits.get("data")

        def limit() -> None:
            self._limiter.join()
            if memory is not None:
                resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))

        self._spawn(argv, (), limit)

    def _await_sandbox(self) -> None:
        """Wait until the init runs inside the sandbox; learn its pid (it is the one told
        to stop); raise with bubblewrap's words when the sandbox could not be made."""
        status, info = self._status, self._info
        assert status is not None and info is not None
        deadline = time.monotonic() + _SANDBOX_START_S
        try:
            line = status.line(deadline)
            pid = _child_pid(info.json(deadline))
        finally:
            info.close()
        if line != "started" or pid is None:
            self.close()
            out = self._final_tail()
            msg = f"{self.name}: the app's sandbox did not start" + (
                f": {out.splitlines()[-1]!r}" if out else " (bubblewrap said nothing)"
            )
            raise DevServerError(msg, output_tail=out)
        self._init_pid = pid
        if self.kind != "start":
            status.close()  # only a start's init says more ("exit N")
            self._status = None

    def wait_ready(self) -> DevServer:
        """Wait until it is ready (see the class); stops it and raises if it never is."""
        if self.ready_s is not None:
            return self
        self.launch()
        try:
            if self.kind == "serve":
                self._wait_served(self._started + self.ready_timeout)
            else:
                self._wait_done(self._started + self.ready_timeout)
        except BaseException:
            self.close()
            raise
        self.ready_s = time.monotonic() - self._started
        _log.info("%s ready after %.2f s", self.name, self.ready_s)
        return self

    def _exited(self, code: int, when: str) -> DevServerError:
        out = self._final_tail()
        msg = f"{self.name} {self.command!r} exited with code {code} {when}{self._limit_hit()}" + (
            f"; last output: {out!r}" if out else "; it printed nothing"
        )
        return DevServerError(msg, returncode=code, output_tail=out)

    def _limit_hit(self) -> str:
        hit = self._limiter.tripped()
        if hit:
            return f": it reached {hit}"
        data = self._limiter.rlimits.get("data")
        if data is not None:  # no cgroup to tell: the process only saw an allocation fail
            return (
                f" (it ran with at most {format_bytes(data)} of memory per process, "
                "app.limits.memory: an allocation that failed may have met it)"
            )
        return ""

    def _wait_served(self, deadline: float) -> None:
        proc = self._proc
        assert proc is not None

        def alive() -> None:
            if (code := proc.poll()) is not None:
                raise self._exited(code, "before it was ready")

        alive()
        if self.url is None:
            return  # nothing to probe: started is ready
        # Probed at least once, even when starting the desktop beside the server used up
        # the whole timeout.
        last = wait_answering(self.url, deadline, alive=alive)
        if last.ok:
            return
        alive()
        out = self.log_tail()
        msg = (
            f"{self.name} {self.command!r} did not answer 2xx/3xx at {self.url} "
            f"within {self.ready_timeout:g} s (app.ready_timeout){self._limit_hit()}; "
            f"last probe: {last.detail}" + (f"; last output: {out!r}" if out else "")
        )
        raise DevServerError(msg, output_tail=out)

    def _wait_done(self, deadline: float) -> None:
        """install/start: the command runs to completion and must exit 0."""
        assert self._proc is not None
        if self._status is not None:  # a start in its sandbox, which stays up: it says when
            line = self._status.line(deadline)
            self._status.close()
            self._status = None
            code = int(line.split()[1]) if line.startswith("exit ") else None
        else:
            code = self._proc.wait(max(0.0, deadline - time.monotonic()))
        if code is None:
            out = self.log_tail()
            msg = f"{self.name} {self.command!r} did not finish within {self.ready_timeout:g} s" + (
                f"; last output: {out!r}" if out else ""
            )
            raise DevServerError(msg, output_tail=out)
        self.exit_code = code
        if code != 0:
            raise self._exited(code, "(it must exit 0)")

    def check_alive(self) -> None:
        """Raise DevServerError if a server has exited (install and start are done)."""
        if self.kind != "serve" or self._proc is None:
            return
        if (code := self._proc.poll()) is not None:
            out = self._final_tail()
            msg = (
                f"{self.name} exited with code {code} during the run{self._limit_hit()}; "
                f"last output: {out!r}"
            )
            raise DevServerError(msg, returncode=code, output_tail=out)

    def _final_tail(self) -> str:
        """The tail once the server has exited: its last output may still be in the pipe."""
        if self._pump is not None:
            self._pump.join(timeout=1.0)
        return self.log_tail()

    def switch_log(self, path: Path, redactor: Redactor, *, carry: bool = False) -> None:
        """Write the server's output from now on into ``path`` (another recipe's bundle),
        redacted with ``redactor``; with ``carry``, after what the log holds so far."""
        self.log_path = path
        if self._pump is not None:
            self._pump.switch(path, redactor, carry=carry)

    def log_tail(self, lines: int = 12) -> str:
        """The last lines the server printed (redacted), for error messages."""
        return self._pump.tail(lines) if self._pump is not None else ""

    def close(self) -> None:
        """Stop the server and every descendant (SIGTERM, grace, SIGKILL); idempotent."""
        for pipe in (self._status, self._info):
            if pipe is not None:
                pipe.close()
        self._status = self._info = None
        if self._proc is not None:
            # The sandbox's init passes SIGTERM on to every process inside, once: a server
            # that shuts down gracefully on the first and at once on a second gets one.
            # (bubblewrap itself would die of it, and take the sandbox down by SIGKILL.)
            code = self._proc.stop(grace=3.0, term_only=self._init_pid)
            if self.exit_code is None:
                self.exit_code = code
        if self._pump is not None:
            self._pump.join(timeout=2.0)
            if self._proc is not None and self._proc.popen.stdout is not None:
                self._proc.popen.stdout.close()
        self._limiter.close()

    def limits_record(self) -> dict[str, object]:
        """The limits for the manifest, and what holds them."""
        return self._limiter.record()


@dataclass(frozen=True, slots=True)
class _SandboxUser:
    """The user a sandbox runs as, when not us."""

    uid: int
    gid: int
    home: str


def _owner_of(checkout: Path) -> _SandboxUser | None:
    """As root, the owner of ``checkout`` when it is another user; else None."""
    if os.geteuid() != 0:
        return None
    info = checkout.stat()
    if info.st_uid == 0:
        return None
    try:
        entry = pwd.getpwuid(info.st_uid)
        gid, home = entry.pw_gid, entry.pw_dir
    except KeyError:  # a uid without a name (a container's workspace): its folder's group
        gid, home = info.st_gid, ""
    # Without a home folder of its own it gets a private, empty one (/tmp is its own).
    return _SandboxUser(info.st_uid, gid, home if home and Path(home).is_dir() else "/tmp")


def _child_pid(info: dict[str, object] | None) -> int | None:
    """The init's pid from bubblewrap's ``--info-fd`` JSON (``{"child-pid": N}``)."""
    pid = info.get("child-pid") if info is not None else None
    return pid if isinstance(pid, int) and pid > 0 else None


class _StatusPipe:
    """A pipe we read lines from: the init's ``started`` and ``exit N``, bubblewrap's
    JSON."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buf = b""

    def line(self, deadline: float | None) -> str:
        """The next line (waiting until ``deadline``); "" when none comes or it closes."""
        while b"\n" not in self._buf:
            if deadline is not None:
                left = max(0.0, deadline - time.monotonic())
                ready, _, _ = select.select([self.fd], [], [], left)
                if not ready:
                    return ""
            chunk = os.read(self.fd, 256)
            if not chunk:
                break
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("utf-8", "replace").strip()

    def json(self, deadline: float) -> dict[str, object] | None:
        """The JSON object written to it (None when the writer closes it without one, or
        at ``deadline``)."""
        while (left := deadline - time.monotonic()) > 0:
            try:
                value = json.loads(self._buf)
                return value if isinstance(value, dict) else None
            except ValueError:
                pass
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                break
            chunk = os.read(self.fd, 4096)
            if not chunk:
                break
            self._buf += chunk
        return None

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def _fill(text: str, *, port: int | None, ports: Mapping[str, int]) -> str:
    """``{port}`` and ``{ports.NAME}`` filled in."""
    if port is not None:
        text = text.replace("{port}", str(port))
    for name, number in ports.items():
        text = text.replace(f"{{ports.{name}}}", str(number))
    return text
