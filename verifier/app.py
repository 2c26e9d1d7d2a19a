"""The app under test: its dev server, started, probed until ready, and stopped with its tree.

The app is untrusted code. It gets only ``PATH``, ``HOME``, ``LANG``, ``TERM``,
``TMPDIR``, ``PORT``, its recipe's ``env`` and the variables named in ``pass_env``; it
runs in PID and mount namespaces of its own (``_sandbox.py``), so whatever it starts
goes with it, and its output reaches ``app.log`` redacted and bounded (``_logpump.py``).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from verifier._logpump import DEFAULT_LOG_LIMIT, LogPump
from verifier._process import OwnedProcess, Owner
from verifier._redact import NO_SECRETS, Redactor
from verifier.errors import DevServerError

__all__ = ("DevServer", "free_port")

_log = logging.getLogger(__name__)

# Characters that only mean something to a shell: a command using them runs under /bin/sh.
_SHELL_SYNTAX = frozenset("|&;<>()$`*?[]~#\n")
_POLL_INTERVAL_S = 0.05
# What the app gets of the verifier's environment (besides PORT, its env and pass_env).
BASE_ENV = ("PATH", "HOME", "LANG", "TERM", "TMPDIR")
_SANDBOX = Path(__file__).with_name("_sandbox.py")


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


@dataclass(frozen=True, slots=True)
class _Probe:
    ok: bool
    detail: str


def _probe(url: str, timeout: float) -> _Probe:
    """GET ``url`` once; ok on 2xx/3xx. Tries 127.0.0.1 and ::1 for ``localhost``."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    hosts = ["127.0.0.1", "::1"] if host == "localhost" else [host]
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    detail = "no answer"
    for candidate in hosts:
        conn_cls = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_cls(candidate, port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": parts.netloc, "User-Agent": "verifier"})
            status = conn.getresponse().status
        except (OSError, http.client.HTTPException) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            continue
        finally:
            conn.close()
        if 200 <= status < 400:
            return _Probe(True, f"HTTP {status}")
        detail = f"HTTP {status}"
    return _Probe(False, detail)


class DevServer(Owner):
    """A dev server we start, wait for, and stop with every process it spawned.

    :param command: a command line (``{port}`` is replaced) or an argv list.
    :param url: the readiness probe and base URL (``{port}`` is replaced).
    :param cwd: the working directory.
    :param env: the app's own variables (``{port}`` is replaced).
    :param pass_env: names of the verifier's variables the app gets too.
    :param ready_timeout: seconds to wait for ``url`` to answer 2xx/3xx.
    :param log_path: where the server's stdout and stderr go.
    :param redactor: secrets replaced in the log.
    :param log_limit: the most bytes the log keeps (its head and its tail).
    :param sandbox: run it in PID and mount namespaces of its own (when the OS allows).
    """

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        url: str,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        pass_env: Sequence[str] = (),
        ready_timeout: float = 60.0,
        log_path: Path,
        port: int | None = None,
        redactor: Redactor = NO_SECRETS,
        log_limit: int = DEFAULT_LOG_LIMIT,
        sandbox: bool = True,
    ) -> None:
        self.port = port if port is not None else free_port()

        def fill(text: str) -> str:
            return text.replace("{port}", str(self.port))

        self.command = (
            fill(command) if isinstance(command, str) else [fill(word) for word in command]
        )
        self.url = fill(url)
        self._fixed_port = "{port}" not in url
        self.cwd = cwd
        own = {k: fill(v) for k, v in (env or {}).items()}
        self.env = {**app_environment(own, pass_env, os.environ), "PORT": str(self.port)}
        self.ready_timeout = ready_timeout
        self.log_path = log_path
        self.ready_s: float | None = None
        self.sandbox: str | None = None  # how it is contained, once launched
        self._redactor = redactor
        self._log_limit = log_limit
        self._use_sandbox = sandbox
        self._pump: LogPump | None = None
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
            self._refuse_taken_port()
        argv = command_argv(self.command)
        program = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=self.env.get("PATH"))
        if program is None or not os.access(self.cwd / program, os.X_OK):
            msg = (
                f"dev server {self.command!r} could not start: {argv[0]!r} is not an "
                "executable program (on the app's PATH, or relative to app.cwd)"
            )
            raise DevServerError(msg)
        self._started = time.monotonic()
        status_r = status_w = -1
        if self._use_sandbox:
            status_r, status_w = os.pipe()
            argv = [
                sys.executable, "-I", "-S", str(_SANDBOX), "--status-fd", str(status_w), "--",
                *argv,
            ]  # fmt: skip
        try:
            self._proc = OwnedProcess(
                argv,
                name="dev server",
                env=self.env,
                cwd=self.cwd,
                stdout=subprocess.PIPE,
                pass_fds=(status_w,) if status_w >= 0 else (),
            )
        except OSError as exc:
            msg = f"dev server {self.command!r} could not start: {exc}"
            raise DevServerError(msg) from exc
        finally:
            if status_w >= 0:
                os.close(status_w)
        try:
            self.sandbox = _read_status(status_r) if status_r >= 0 else "no sandbox: not asked"
        finally:
            if status_r >= 0:
                os.close(status_r)
        assert self._proc.popen.stdout is not None
        self._pump = LogPump(
            self._proc.popen.stdout,
            self.log_path,
            redactor=self._redactor,
            limit=self._log_limit,
            name="app-log",
        ).start()
        _log.info("dev server started (pid %d, %s): %s", self._proc.pid, self.sandbox, argv)
        return self

    def _refuse_taken_port(self) -> None:
        """A fixed port that already answers would make the probe pass on the wrong server."""
        parts = urllib.parse.urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname or "127.0.0.1"
        for candidate in ["127.0.0.1", "::1"] if host == "localhost" else [host]:
            try:
                with socket.create_connection((candidate, port), timeout=0.5):
                    pass
            except OSError:
                continue
            msg = (
                f"port {port} of {self.url} is already in use by another process before the "
                "dev server started; stop that process, or use {port} in app.command and "
                "app.url to get a free port"
            )
            raise DevServerError(msg)

    def wait_ready(self) -> DevServer:
        """Wait until ``url`` answers 2xx/3xx; stops the server and raises if it never does."""
        if self.ready_s is not None:
            return self
        self.launch()
        try:
            self._wait_ready(self._started)
        except BaseException:
            self.close()
            raise
        self.ready_s = time.monotonic() - self._started
        _log.info("dev server ready at %s after %.2f s", self.url, self.ready_s)
        return self

    def _wait_ready(self, started: float) -> None:
        assert self._proc is not None
        deadline = started + self.ready_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                out = self._final_tail()
                msg = f"dev server {self.command!r} exited with code {code} before it was ready" + (
                    f"; last output: {out!r}" if out else "; it printed nothing"
                )
                raise DevServerError(msg, returncode=code, output_tail=out)
            # Probe at least once, even when starting the desktop beside the server used up
            # the whole timeout: a server that is up is ready, and one that is not says how.
            remaining = deadline - time.monotonic()
            last = _probe(self.url, timeout=min(2.0, max(0.2, remaining)))
            if last.ok:
                return
            if deadline - time.monotonic() <= 0 and self._proc.poll() is None:
                out = self.log_tail()
                msg = (
                    f"dev server {self.command!r} did not answer 2xx/3xx at {self.url} within "
                    f"{self.ready_timeout:g} s (app.ready_timeout); last probe: {last.detail}"
                    + (f"; last output: {out!r}" if out else "")
                )
                raise DevServerError(msg, output_tail=out)
            time.sleep(min(_POLL_INTERVAL_S, max(0.0, deadline - time.monotonic())))

    def check_alive(self) -> None:
        """Raise DevServerError if the server has exited."""
        if self._proc is not None and (code := self._proc.poll()) is not None:
            out = self._final_tail()
            msg = f"dev server exited with code {code} during the run; last output: {out!r}"
            raise DevServerError(msg, returncode=code, output_tail=out)

    def _final_tail(self) -> str:
        """The tail once the server has exited: its last output may still be in the pipe."""
        if self._pump is not None:
            self._pump.join(timeout=1.0)
        return self.log_tail()

    def log_tail(self, lines: int = 12) -> str:
        """The last lines the server printed (redacted), for error messages."""
        return self._pump.tail(lines) if self._pump is not None else ""

    def close(self) -> None:
        """Stop the server and every descendant (SIGTERM, grace, SIGKILL); idempotent."""
        if self._proc is not None:
            self._proc.stop(grace=3.0)
        if self._pump is not None:
            self._pump.join(timeout=2.0)
            if self._proc is not None and self._proc.popen.stdout is not None:
                self._proc.popen.stdout.close()


def _read_status(fd: int) -> str:
    """The sandbox's status line (it writes one before it runs the app)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 256)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace").strip() or "no sandbox: the launcher said nothing"
