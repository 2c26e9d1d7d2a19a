"""Debian's bubblewrap: where it is, and whether it can make a sandbox on this machine.

The app's sandbox (``verifier/app/_sandbox.py``) and Chromium's policy namespace
(``verifier/browser/_policy.py``) both start through it. Light on purpose (no verifier imports
beyond errors): the browser imports it.
"""

from __future__ import annotations

import functools
import shutil
import subprocess

from verifier.errors import DevServerError

__all__ = ("ISOLATION", "bwrap_path", "sandbox_unavailable")

_HINT = "apt-get install bubblewrap, as desktop-image/provision.sh does"

# What an untrusted process gets: user, PID, IPC and UTS namespaces of its own, no
# capabilities, no further user namespaces, a session of its own, death with its parent.
ISOLATION = (
    "--unshare-user",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--disable-userns",
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
)


def bwrap_path() -> str:
    """The bwrap executable.

    :raises DevServerError: bubblewrap is not installed (the app cannot be sandboxed).
    """
    path = shutil.which("bwrap")
    if path is None:
        msg = f"bubblewrap ('bwrap') is not installed: the app cannot be sandboxed ({_HINT})"
        raise DevServerError(msg)
    return path


@functools.cache
def sandbox_unavailable() -> str | None:
    """Why no sandbox can be made on this machine (None when it can). Asked once.

    No user namespace can be made in a chroot (``buildah run --isolation chroot``) or
    where the kernel forbids them; bubblewrap says which.

    :raises DevServerError: bubblewrap is not installed.
    """
    argv = [bwrap_path(), *ISOLATION, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"]
    try:
        done = subprocess.run(
            [*argv, "--as-pid-1", "--", "/bin/true"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap could not run: {exc}"
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"bwrap exited with code {done.returncode}"
