"""The X display: our own Xvfb and openbox, or an existing display we attach to."""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import re
import secrets
import select
import shutil
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

from Xlib import X, Xatom
from Xlib import display as xdisplay
from Xlib.error import DisplayError as XlibDisplayError

from verifier import _types
from verifier._process import OwnedProcess, require_binary, scratch_dir, tail
from verifier._xauth import (
    connecting_to,
    display_env,
    forget_authority,
    register_authority,
    write_authority,
)
from verifier.errors import DisplayError

__all__ = ("WindowManager", "XServer", "open_display", "xvfb_screen")

_log = logging.getLogger(__name__)


def xvfb_screen(screen: str) -> tuple[int, int, int]:
    """``"1280x800"`` or ``"1280x800x24"`` -> (width, height, depth)."""
    try:
        return _types.parse_screen(screen)
    except ValueError as exc:
        raise DisplayError(str(exc)) from None


def _require(binary: str) -> str:
    return require_binary(binary, DisplayError)


def _check_identity(display: str, *, env: Mapping[str, str] | None = None) -> None:
    """libxcb clients (Chromium, ffmpeg, mss) try a display's abstract socket first,
    python-xlib its socket file: both must lead to our Xvfb (a display we attach to may
    listen on either). A token set on the root window through the one is read back
    through the other (xprop)."""
    token = secrets.token_hex(8)
    conn = open_display(display)
    try:
        root = conn.screen().root
        atom = conn.intern_atom("_VERIFIER_IDENTITY")
        root.change_property(atom, Xatom.STRING, 8, token.encode())
        conn.sync()
    finally:
        conn.close()
    try:
        done = subprocess.run(
            [_require("xprop"), "-display", display, "-root", "-notype", "_VERIFIER_IDENTITY"],
            capture_output=True,
            text=True,
            timeout=10,
            env=dict(env) if env is not None else display_env(display),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        msg = f"cannot check which X server display {display} reaches: {exc}"
        raise DisplayError(msg) from exc
    if token not in done.stdout:
        msg = (
            f"display {display} leads libxcb clients (Chromium, ffmpeg) to another X server "
            "than our Xvfb: something else holds its abstract socket; stop it"
        )
        raise DisplayError(msg)


def _read_display_number(fd: int, proc: OwnedProcess, log: Path, timeout: float) -> str:
    """Read the display number Xvfb writes to ``-displayfd`` once it accepts clients."""
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            msg = f"Xvfb did not become ready within {timeout:.0f} s; last output: {tail(log)!r}"
            raise DisplayError(msg)
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.1))
        if ready:
            chunk = os.read(fd, 64)
            if not chunk:
                break
            buf += chunk
        elif proc.poll() is not None:
            break
    if not buf.strip().isdigit():
        code = proc.poll()
        msg = f"Xvfb exited (code {code}) before it was ready; last output: {tail(log)!r}"
        raise DisplayError(msg)
    return f":{int(buf)}"


# Held from spawning an Xvfb until it is ready, by every verifier on the machine: two
# servers starting at once both try display :0, and the loser unlinks the winner's socket
# file on its way to :1 (xtrans clears the path before it binds). The winner then serves
# only its abstract socket, which python-xlib cannot reach.
_START_LOCK = Path("/tmp/.verifier-xvfb-start.lock")
_MAX_DISPLAY = 1000


def _open_start_lock() -> int:
    """The machine-wide start lock, shared by every user (flock needs no write access).

    Never through a link (another user could point it at a file of ours), and its mode
    is set only on the file we have just made."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            fd = os.open(_START_LOCK, flags | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            fd = os.open(_START_LOCK, flags)
        else:
            with contextlib.suppress(OSError):
                os.fchmod(fd, 0o666)  # the umask took others' write access: no harm
    except OSError as exc:
        msg = f"cannot open the Xvfb start lock {str(_START_LOCK)!r}: {exc.strerror or exc}"
        raise DisplayError(msg) from exc
    return fd


def _in_use(number: int) -> bool:
    """Is display ``number`` taken: a lock file of a live server, or a socket file that
    accepts connections?"""
    lock = Path(f"/tmp/.X{number}-lock")
    if lock.exists():
        try:
            os.kill(int(lock.read_text().strip()), 0)
            return True
        except ProcessLookupError:
            pass  # a stale lock file: Xvfb replaces it
        except (OSError, ValueError):
            return True  # unreadable, or the server runs as another user
    path = Path(f"/tmp/.X11-unix/X{number}")
    if path.exists():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(str(path))
                return True
            except ConnectionRefusedError:
                pass  # left by a server that was killed: Xvfb takes the number over
            except OSError:
                return True
    return False


def _hold_abstract(number: int) -> socket.socket | None:
    """Bind display ``number``'s abstract socket name without listening on it, or None
    when something already holds it.

    libxcb clients (Chromium, ffmpeg, openbox, mss) try a display's abstract socket
    before its socket file. Our Xvfb does not listen there (``-nolisten local``: the
    abstract namespace belongs to the network namespace, which the app shares, not to
    the mount namespace that hides the socket file from it); held by us, the name cannot
    be taken by anyone else, and a connection to it is refused, so clients go on to the
    socket file.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(f"\0/tmp/.X11-unix/X{number}")
    except OSError:
        sock.close()
        return None
    return sock


def _claim_display() -> tuple[int, socket.socket]:
    """The lowest display number nothing holds, its abstract name held (called under
    _START_LOCK)."""
    for number in range(_MAX_DISPLAY):
        if _in_use(number):
            continue
        held = _hold_abstract(number)
        if held is not None:
            return number, held
    msg = f"no free X display number below {_MAX_DISPLAY}"
    raise DisplayError(msg)


class XServer:
    """An Xvfb we own, on a free display number (chosen under a machine-wide lock; Xvfb
    refuses a number another server has locked meanwhile), ready when it says so
    (``-displayfd``).

    Constructing it spawns Xvfb; :meth:`wait_ready` waits for it, so a caller can start
    something else while it comes up (a thread reads the display number meanwhile).
    """

    def __init__(self, *, width: int, height: int, depth: int, log: Path) -> None:
        self.log = log
        # The cookie every client must present; the file lives in a folder of its own.
        self._auth_dir = scratch_dir("xauth-")
        self.authority = self._auth_dir / "Xauthority"
        write_authority(self.authority, secrets.token_bytes(16))
        argv = [
            _require("Xvfb"),
            "-screen",
            "0",
            f"{width}x{height}x{depth}",
            "-auth",
            str(self.authority),
            "-nolisten",
            "tcp",
            "-nolisten",
            "local",  # no abstract socket: see _hold_abstract
            "-noreset",  # keep the server up between clients
            # No GLX: Chromium draws without the GPU, and Mesa's GL costs Xvfb 20 MB.
            "-extension",
            "GLX",
            "+extension",
            "XTEST",
            "+extension",
            "MIT-SHM",
        ]
        self.display = ""
        self._error: DisplayError | None = None
        self._abstract: socket.socket | None = None
        lock = _open_start_lock()
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another verifier's Xvfb is starting
            # Our own number, not -displayfd's pick, which looks at socket files only: a
            # number whose abstract name someone holds is skipped too (clients would
            # reach it first), and ours is held before the server starts.
            number, self._abstract = _claim_display()
            read_fd, write_fd = os.pipe()
            try:
                with log.open("ab") as out:
                    self.proc = OwnedProcess(
                        [argv[0], f":{number}", *argv[1:], "-displayfd", str(write_fd)],
                        name="Xvfb",
                        env=dict(os.environ),
                        stdout=out,
                        pass_fds=(write_fd,),
                    )
            except BaseException:
                os.close(read_fd)
                raise
            finally:
                os.close(write_fd)
        except BaseException:
            os.close(lock)  # also releases it
            if self._abstract is not None:
                self._abstract.close()
            shutil.rmtree(self._auth_dir, ignore_errors=True)
            raise
        self._reader = threading.Thread(
            target=self._read_display, args=(read_fd, lock), name="verifier-xvfb", daemon=True
        )
        self._reader.start()

    def _read_display(self, read_fd: int, lock: int) -> None:
        try:
            self.display = _read_display_number(read_fd, self.proc, self.log, timeout=15.0)
        except DisplayError as exc:
            self._error = exc
        finally:
            os.close(read_fd)
            os.close(lock)

    def wait_ready(self) -> str:
        """Wait until Xvfb accepts clients; returns its display (``":1"``)."""
        self._reader.join()
        if self._error is None:
            register_authority(self.display, self.authority)
            try:
                _check_identity(self.display)
            except DisplayError as exc:
                self._error = exc
        if self._error is not None:
            self.proc.stop(grace=1.0)
            forget_authority(self.display, self.authority)
            raise self._error
        _log.info("Xvfb ready on %s (pid %d)", self.display, self.proc.pid)
        return self.display

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            out = tail(self.log)
            msg = f"Xvfb on {self.display} exited (code {code})" + (
                f"; last output: {out!r}" if out else ""
            )
            raise DisplayError(msg)

    def close(self) -> None:
        self.proc.stop(grace=2.0)
        self._reader.join()  # ends once the pipe closes with the server
        forget_authority(self.display, self.authority)
        shutil.rmtree(self._auth_dir, ignore_errors=True)
        if self._abstract is not None:
            self._abstract.close()


_OPENBOX_RC = Path("/etc/xdg/openbox/rc.xml")
# Every application window opens maximized, so a browser fills the screen as it maps
# (asking afterwards costs a resize, ~40 ms).
_MAXIMIZED = """<application class="*" type="normal"><maximized>yes</maximized></application>"""


def _openbox_config(path: Path) -> Path:
    """openbox's own defaults (key and mouse bindings...) plus the maximize rule."""
    try:
        text = _OPENBOX_RC.read_text(encoding="utf-8")
    except OSError:
        text = ""
    if "</applications>" in text:
        text = text.replace("</applications>", _MAXIMIZED + "</applications>", 1)
    else:
        text = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<openbox_config xmlns="http://openbox.org/3.4/rc">'
            f"<applications>{_MAXIMIZED}</applications></openbox_config>\n"
        )
    path.write_text(text, encoding="utf-8")
    return path


class WindowManager:
    """openbox on our display; ready once it has claimed the root window (EWMH handshake),
    which :meth:`wait_ready` waits for: a client that maps no window yet (a browser
    starting) may start meanwhile."""

    def __init__(self, display: str, *, log: Path) -> None:
        self.log = log
        self._display = display
        self._ready = False
        # Its configuration lives beside it, not in the (evidence) log folder.
        self._config_dir = str(scratch_dir("openbox-"))
        try:
            config = _openbox_config(Path(self._config_dir) / "rc.xml")
            with log.open("ab") as out:
                self.proc = OwnedProcess(
                    [_require("openbox"), "--sm-disable", "--config-file", str(config)],
                    name="openbox",
                    env=display_env(display),
                    stdout=out,
                )
        except BaseException:
            shutil.rmtree(self._config_dir, ignore_errors=True)
            raise

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until openbox manages the display (once; ~70 ms after its start).

        :raises DisplayError: it exited, or did not within ``timeout`` seconds.
        """
        if not self._ready:
            self._wait_ready(self._display, timeout)
            self._ready = True

    def _wait_ready(self, display: str, timeout: float) -> None:
        conn = open_display(display)
        try:
            root = conn.screen().root
            atom = conn.intern_atom("_NET_SUPPORTING_WM_CHECK")
            root.change_attributes(event_mask=X.PropertyChangeMask)
            conn.sync()
            deadline = time.monotonic() + timeout
            while root.get_full_property(atom, X.AnyPropertyType) is None:
                if self.proc.poll() is not None:
                    msg = f"openbox exited (code {self.proc.returncode}): {tail(self.log)!r}"
                    raise DisplayError(msg)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    msg = f"openbox did not manage the display within {timeout:.0f} s"
                    raise DisplayError(msg)
                # Wake on the next property change of the root window (or re-check soon).
                select.select([conn.fileno()], [], [], min(remaining, 0.05))
                while conn.pending_events():
                    conn.next_event()
        finally:
            conn.close()

    def close(self) -> None:
        # openbox keeps nothing worth saving, yet after managing a browser window it takes
        # ~0.3 s to honour SIGTERM: SIGKILL at once.
        self.proc.stop(grace=0.0)
        shutil.rmtree(self._config_dir, ignore_errors=True)


def open_display(display: str) -> xdisplay.Display:
    """An Xlib connection to ``display``, or a DisplayError that says what to check."""
    local = re.match(r"^:(\d+)(?:\.\d+)?$", display)
    if local and not Path(f"/tmp/.X11-unix/X{local[1]}").exists():
        # Checked first: python-xlib leaks its sockets when a connection attempt fails.
        msg = f"cannot open X display {display!r}: no X server is listening there"
        raise DisplayError(msg)
    try:
        # python-xlib reads the Xauthority file with open().read() and never closes it, and
        # print()s a warning to stdout when it holds no cookie: stdout is for --json.
        with (
            connecting_to(display),
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore", ResourceWarning)
            return xdisplay.Display(display)
    except (XlibDisplayError, OSError, ValueError) as exc:
        msg = f"cannot open X display {display!r}: {exc}; is an X server running there?"
        raise DisplayError(msg) from exc
