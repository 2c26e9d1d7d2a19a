"""The live view: a person watches a run's desktop in a browser, or takes it over.

``x11vnc`` serves the display on a Unix socket in a private folder (mode 0700; no TCP
port at all), read-only unless ``take_over``. ``websockify`` serves Debian's noVNC and a
small page of ours on 127.0.0.1 at a free port, and forwards a WebSocket to that socket
only when the WebSocket's URL carries the view's token (websockify's token plugin, fed
from a 0600 file: the token is never on a command line, where any process could read
it). The URL handed out (:attr:`LiveView.url`) holds the token in its query string; the
page passes it on to the WebSocket. Without the token the page shows a note and
websockify refuses the WebSocket before a byte of the desktop is sent.

What it protects against: the app under test (or anything else on the machine) reaching
the desktop through the live view's port. What it does not: a process of the same user
that reads our private folder (as with the X cookie, out of scope for now).

The listening socket can be bound before the run enters its network namespace
(:func:`live_socket`), so a person's browser outside it still reaches the view.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from verifier._process import OwnedProcess, Owner, require_binary, scratch_root, tail
from verifier._term import say
from verifier.errors import DisplayError

__all__ = ("NOVNC", "LiveOptions", "LiveView", "add_live_arguments", "live_options", "live_socket")

_log = logging.getLogger(__name__)

NOVNC = Path("/usr/share/novnc")
_READY_TIMEOUT_S = 15.0
_VNC_READY = re.compile(rb"listening on unix socket")
_HINT = " (apt-get install x11vnc novnc websockify, as desktop-image/provision.sh does)"

# The page a person opens: noVNC's own RFB client, pointed at our WebSocket with the
# token from this page's URL. Without a token it connects nowhere.
_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>verifier live view</title>
<link rel="icon" href="data:,">
<style>
  html, body { margin: 0; height: 100%; background: #1d1f21; color: #ddd;
               font: 14px/1.4 sans-serif; }
  #bar { position: fixed; top: 0; left: 0; right: 0; height: 24px; padding: 2px 8px;
         background: #000a; z-index: 1; }
  #screen { position: absolute; top: 28px; left: 0; right: 0; bottom: 0; }
</style></head>
<body>
<div id="bar"><b>verifier live view</b> (@MODE@): <span id="status">starting</span></div>
<div id="screen"></div>
<script type="module">
import RFB from './core/rfb.js';
const status = document.getElementById('status');
const token = new URLSearchParams(location.search).get('token');
const say = (text, state) => { status.textContent = text; document.body.dataset.state = state; };
if (!token) {
  say('this link has no token: open the whole URL verifier printed', 'no-token');
} else {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const url = `${scheme}://${location.host}/websockify?token=${encodeURIComponent(token)}`;
  const rfb = new RFB(document.getElementById('screen'), url);
  rfb.viewOnly = @VIEW_ONLY@;
  rfb.scaleViewport = true;
  rfb.background = '#1d1f21';
  window.rfb = rfb;
  say('connecting', 'connecting');
  rfb.addEventListener('connect', () => say('connected', 'connected'));
  rfb.addEventListener('disconnect', (e) => say(
    e.detail.clean ? 'the run ended' : 'refused or lost (a wrong token, or the run ended)',
    'disconnected'));
}
</script>
</body></html>
"""


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """Ask a stage for a live view.

    :param take_over: let the person use the mouse and keyboard (default: view only).
    :param announce: gets the URL to open, token included, once the view is up.
    """

    take_over: bool = False
    announce: Callable[[str], None] | None = None


def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    """``--live`` and ``--take-over``, for ``verifier run`` and ``verifier mcp``."""
    parser.add_argument(
        "--live",
        action="store_true",
        help="serve a view of the desktop to a browser (loopback; the URL, with its token, "
        "is printed on stderr)",
    )
    parser.add_argument(
        "--take-over",
        action="store_true",
        help="like --live, and the person watching may use the mouse and keyboard",
    )


def live_options(args: argparse.Namespace, prog: str) -> LiveOptions | None:
    """What ``--live``/``--take-over`` ask for; the URL is printed on stderr (stdout may
    be MCP's wire or ``--json``'s records)."""
    if not (args.live or args.take_over):
        return None

    def announce(url: str) -> None:
        say(sys.stderr, f"{prog}: live view at {url}")

    return LiveOptions(take_over=args.take_over, announce=announce)


def live_socket() -> socket.socket:
    """A listening TCP socket on 127.0.0.1 at a free port, for :class:`LiveView`.

    Bound in the calling thread's network namespace: bind it before entering a run's
    namespace (``network: loopback``) so a browser outside that namespace reaches it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # websockify --inetd: IPv4
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
    except OSError as exc:
        sock.close()
        msg = f"the live view cannot listen on 127.0.0.1: {exc.strerror or exc}"
        raise DisplayError(msg) from exc
    return sock


class _Pump:
    """Copies a child's output into a log file on a thread, the token replaced; sets
    ``ready`` when a line matches ``ready_line``."""

    def __init__(
        self, stream: IO[bytes], path: Path, token: str, ready_line: re.Pattern[bytes] | None
    ) -> None:
        self.ready = threading.Event()
        self._stream = stream
        self._path = path
        self._token = token.encode()
        self._ready_line = ready_line
        self._thread = threading.Thread(target=self._run, name="verifier-live-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._path.open("ab") as log:
                for line in self._stream:
                    if self._ready_line is not None and self._ready_line.search(line):
                        self.ready.set()
                    log.write(line.replace(self._token, b"[live-token]"))
                    log.flush()
        except (OSError, ValueError) as exc:
            _log.debug("live view log %s: %s", self._path.name, exc)
        finally:
            self._stream.close()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


_STAMP = re.compile(r"^\d\d/\d\d/\d{4} \d\d:\d\d:\d\d ")
_TROUBLE = re.compile(r"failed|unable|error|cannot|refused", re.IGNORECASE)


def _why(output: str) -> str:
    """The line of a child's output that says what went wrong (else its last line)."""
    lines = [_STAMP.sub("", line).strip(" *") for line in output.splitlines()]
    lines = [line for line in lines if line]
    return next(
        (line for line in lines if _TROUBLE.search(line)), lines[-1] if lines else "no output"
    )


class _State(enum.Enum):
    CREATED = 1
    STARTED = 2
    CLOSED = 3


class LiveView(Owner):
    """x11vnc and websockify serving ``display`` to a browser (see the module docstring).

    :param display: the X display to show (``":1"``).
    :param xauthority: the file holding its cookie (None: the environment's, if any).
    :param take_over: the person may use the mouse and keyboard (default: view only).
    :param log_dir: where ``x11vnc.log`` and ``websockify.log`` go (a temporary folder if
        None).
    :param listen: a socket from :func:`live_socket` to serve on (default: a new one).
    :raises DisplayError: x11vnc, websockify or noVNC is missing, or x11vnc did not start.
    """

    def __init__(
        self,
        display: str,
        *,
        xauthority: Path | None = None,
        take_over: bool = False,
        log_dir: Path | None = None,
        listen: socket.socket | None = None,
    ) -> None:
        self.display = display
        self.xauthority = xauthority
        self.take_over = take_over
        self._log_dir = log_dir
        self._listen = listen
        self._token = secrets.token_urlsafe(32)
        self._stack = contextlib.ExitStack()
        self._procs: list[tuple[OwnedProcess, _Pump]] = []
        self._state = _State.CREATED
        self.port = 0

    # -- where to look ------------------------------------------------------------------

    @property
    def public_url(self) -> str:
        """The view's address without its token (for the manifest: it shows nothing)."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def url(self) -> str:
        """The address to open, token included: whoever has it sees the desktop."""
        return f"{self.public_url}?token={self._token}"

    @property
    def token(self) -> str:
        return self._token

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> LiveView:
        """Start x11vnc, wait until it listens, then start websockify; idempotent."""
        if self._state is _State.CLOSED:
            msg = "cannot restart a LiveView once it has been closed; create a new one"
            raise DisplayError(msg)
        if self._state is _State.STARTED:
            return self
        self._state = _State.STARTED
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        _log.info("live view of %s on %s (%s)", self.display, self.public_url, self._mode)
        return self

    @property
    def _mode(self) -> str:
        return "take-over" if self.take_over else "view only"

    def _start(self) -> None:
        x11vnc = require_binary("x11vnc", DisplayError, _HINT)
        websockify = require_binary("websockify", DisplayError, _HINT)
        if not (NOVNC / "core" / "rfb.js").is_file():
            msg = f"noVNC is not installed at {NOVNC}{_HINT}"
            raise DisplayError(msg)
        private = Path(
            self._stack.enter_context(
                tempfile.TemporaryDirectory(prefix="live-", dir=scratch_root())
            )
        )
        os.chmod(private, 0o700)
        if self._log_dir is None:
            self._log_dir = private / "logs"
        self._log_dir.mkdir(parents=True, exist_ok=True)
        vnc_socket = private / "vnc.sock"
        tokens = private / "tokens"
        fd = os.open(tokens, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"{self._token}: unix_socket:{vnc_socket}\n")
        web = private / "web"
        web.mkdir()
        for entry in NOVNC.iterdir():
            (web / entry.name).symlink_to(entry)
        page = _PAGE.replace("@VIEW_ONLY@", "false" if self.take_over else "true")
        (web / "index.html").write_text(page.replace("@MODE@", self._mode), encoding="utf-8")

        if self._listen is None:
            self._listen = self._stack.enter_context(live_socket())
        self.port = self._listen.getsockname()[1]
        base_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/"),
            "LANG": "C.UTF-8",
        }
        vnc_env = {**base_env, "DISPLAY": self.display}
        authority = self.xauthority or os.environ.get("XAUTHORITY")
        vnc_argv = [x11vnc, "-display", self.display]
        if authority:
            vnc_env["XAUTHORITY"] = str(authority)
            vnc_argv += ["-auth", str(authority)]
        vnc_argv += [
            "-unixsock",
            str(vnc_socket),
            # No TCP listener at all (without these, x11vnc listens on [::]:5900).
            "-rfbport",
            "0",
            "-rfbportv6",
            "-1",
            "-norc",  # no ~/.x11vncrc
            "-nopw",
            "-shared",
            "-forever",
            "-nolookup",
            "-noxrecord",
            "-noscr",
            "-nowf",
            "-nobell",
            # The keymap is the run's: verifier binds the characters it types to spare
            # keycodes, and a keymap change stalls Chromium's next input.
            "-noadd_keysyms",
        ]
        if not self.take_over:
            vnc_argv += ["-viewonly", "-nosel"]  # no input, and no clipboard either way
        vnc = self._spawn(vnc_argv, "x11vnc", vnc_env, _VNC_READY)
        self._wait_ready(vnc)
        web_argv = [
            websockify,
            "--inetd",  # serve the socket handed in as stdin
            "--web",
            str(web),
            "--token-plugin",
            "ReadOnlyTokenFile",
            "--token-source",
            str(tokens),
        ]
        self._spawn(web_argv, "websockify", base_env, None, stdin=self._listen.fileno())
        self._listen.close()  # websockify holds it now

    def _spawn(
        self,
        argv: list[str],
        name: str,
        env: dict[str, str],
        ready_line: re.Pattern[bytes] | None,
        *,
        stdin: int = subprocess.DEVNULL,
    ) -> OwnedProcess:
        assert self._log_dir is not None
        proc = OwnedProcess(
            argv,
            name=name,
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            death_signal=signal.SIGTERM,
        )
        assert proc.popen.stdout is not None
        pump = _Pump(proc.popen.stdout, self._log_dir / f"{name}.log", self._token, ready_line)
        self._procs.append((proc, pump))
        return proc

    def _wait_ready(self, proc: OwnedProcess) -> None:
        pump = next(p for o, p in self._procs if o is proc)
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while not pump.ready.wait(0.1):
            if proc.poll() is not None or time.monotonic() > deadline:
                assert self._log_dir is not None
                pump.join(1.0)
                why = (
                    "exited" if proc.poll() is not None else f"not ready in {_READY_TIMEOUT_S:g} s"
                )
                last = _why(tail(self._log_dir / f"{proc.name}.log", lines=400))
                msg = f"the live view's {proc.name} on {self.display} {why}: {last}"
                raise DisplayError(msg)

    def check_alive(self) -> None:
        """Raise DisplayError if x11vnc or websockify has exited."""
        for proc, _pump in self._procs:
            if proc.poll() is not None:
                msg = f"the live view's {proc.name} exited with code {proc.returncode}"
                raise DisplayError(msg)

    def close(self) -> None:
        """Stop websockify and x11vnc (their whole trees) and remove the private folder."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        try:
            for proc, pump in reversed(self._procs):
                proc.stop(grace=2.0)
                pump.join(2.0)
        finally:
            if self._listen is not None:
                self._listen.close()
            self._stack.close()
