"""The app's sandbox: the command line of Debian's bubblewrap that runs one service.

Whoever runs verifier (root in CI and in the image's build, a user elsewhere), each
service runs in a user namespace of its own, so it holds no capability over the
machine's namespaces (it cannot unmount its /proc, ``nsenter`` anywhere, or ptrace
ours), in new PID, mount, IPC and UTS namespaces, with no capabilities at all, no new
privileges (setuid binaries give nothing), no further user namespaces, and it dies with
us. Its network namespace is the run's: the machine's (``network: host``) or the run's
loopback-only one, which it cannot leave (``network: loopback``).

Its filesystem is built explicitly, in this order (a later mount covers an earlier one):

* the system, read-only; a new ``/proc`` (its ``sys`` read-only, the kernel's knobs
  such as ``sysrq-trigger`` covered) and a minimal ``/dev``;
* private, empty ``/tmp``, ``/var/tmp``, ``/dev/shm``, ``/run`` (the machine's daemons'
  sockets are there) and ``$TMPDIR``: where our X sockets, X cookies, the live view's
  socket and every run's temporary folders live;
* the home folder read-only, but private, empty ``~/.npm`` and ``~/.cache``, and private
  ``~/.config``, ``~/.local/share`` and ``~/.local/state`` showing what they hold
  read-only (package managers and dev servers write there);
* its checkout (the git work tree holding its folder, else the folder) writable, except
  the checkout's ``.git`` (hooks and config would run code outside) and what
  :class:`Confinement` keeps read-only (recipes, baselines, our own installation);
* what :class:`Confinement` hides (the output folder with every bundle, a token file,
  saved logins), and our scratch folder (X cookies, the browser's profile and singleton
  socket: see ``verifier._process.scratch_root``) when no private folder above already
  covers it (a ``$TMPDIR`` inside the checkout, or a warm desktop's, whose ``$TMPDIR``
  is not the run's), covered by empty folders or files.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from verifier._bwrap import ISOLATION, bwrap_path
from verifier._git import work_tree_of
from verifier._process import OWNER_ENV, scratch_root
from verifier.errors import DevServerError

__all__ = ("INIT", "Confinement", "bwrap_argv", "checkout_of")

INIT = Path(__file__).resolve().parent / "_init.py"
_PACKAGE = Path(__file__).resolve().parent.parent
# /proc files a process of root's user could use against the machine, or read the
# kernel's secrets from: covered as Docker and Podman cover them.
_PROC_MASKED = ("sysrq-trigger", "kcore", "keys", "timer_list", "sched_debug", "kallsyms")
_HOME_CACHES = (".npm", ".cache")
_HOME_STATE = (".config", ".local/share", ".local/state")
_MAX_SHOWN = 500  # entries of such a folder shown again


@dataclass(frozen=True, slots=True)
class Confinement:
    """What of ours a service's sandbox must keep from it, beyond the system's folders.

    :param hide: files and folders it must not see at all (the output folder and its
        bundles, a token file, saved logins).
    :param read_only: files and folders inside its checkout it may read but not change
        (the recipes and their baselines).
    """

    hide: tuple[Path, ...] = ()
    read_only: tuple[Path, ...] = ()


def checkout_of(cwd: Path) -> Path:
    """The folder a service may write: the git work tree holding ``cwd``, else ``cwd``.

    :raises DevServerError: that would be ``/``, the home folder or a folder holding it
        (the app would write the machine's files, or the shell's start-up files).
    """
    checkout = work_tree_of(cwd) or cwd.resolve()
    home = Path(os.environ["HOME"]).resolve() if os.environ.get("HOME") else None
    if checkout == Path("/") or (home is not None and _inside(home, checkout)):
        msg = (
            f"app.cwd {str(cwd)!r} would let the app write {str(checkout)!r} (the whole "
            "machine, or the home folder); give the app a folder of its own"
        )
        raise DevServerError(msg)
    return checkout


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def _our_installation() -> list[Path]:
    """The verifier's own code and the environment it runs in (a hostile app in our own
    checkout must not change what we import next; the sandbox's init runs from them)."""
    return [_PACKAGE, Path(sys.prefix).resolve(), Path(sys.executable).resolve()]


_PATHS = re.compile(r"""(?<![\w.~-])/[^\s'"`;&|<>(){}$*?]+""")


def _named(command: Sequence[str]) -> list[Path]:
    """The absolute paths the command line names (its program, a script, a folder, in a
    shell line too); for a file, its folder (a script reads what lies beside it)."""
    found = []
    for word in command:
        for named in _PATHS.findall(word):
            path = Path(named.rstrip(",:"))
            with contextlib.suppress(OSError):
                found.append(path.parent if path.is_file() else path)
    return found


def _path_folders_all(path: str) -> list[Path]:
    return [Path(p) for p in path.split(os.pathsep) if p.startswith("/")]


def _private_dirs(tmpdir: Path) -> list[Path]:
    dirs = [Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path("/run")]
    if tmpdir.is_dir() and not any(_inside(tmpdir, d) for d in dirs):
        dirs.append(tmpdir)
    return dirs


def _home_mounts(home: Path | None, size: Sequence[str], owner: int | None) -> list[str]:
    """The home folder stays read-only, but for a few folders that programs write: caches
    (``~/.npm``, ``~/.cache``) private and empty; ``~/.config``, ``~/.local/share`` and
    ``~/.local/state`` private too, with what they hold shown read-only (Astro's telemetry
    and pnpm's store make folders there; git and pip read their settings)."""
    if home is None or home == Path("/") or not home.is_dir():
        return []
    args: list[str] = []
    for name in (*_HOME_CACHES, *_HOME_STATE):
        folder = home / name
        try:
            made = not folder.exists()
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if made and owner is not None:
                os.chown(folder, owner, -1)
        except OSError:
            continue  # a home folder we cannot write: nothing to cover
        if not folder.is_dir() or folder.is_symlink():
            continue
        args += [*size, "--tmpfs", str(folder)]
        if name in _HOME_STATE:
            args += _shown_again(folder)
    return args


def _shown_again(folder: Path) -> list[str]:
    """What ``folder`` holds, bound read-only into the empty folder that covers it."""
    args: list[str] = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return args
    for entry in entries[:_MAX_SHOWN]:
        if entry.is_symlink():
            with contextlib.suppress(OSError):
                args += ["--symlink", os.readlink(entry), str(entry)]
        elif entry.exists():
            args += ["--ro-bind", str(entry), str(entry)]
    return args


def _kept_from_run() -> list[Path]:
    """Files under /run the app still needs: the resolver's configuration, when
    /etc/resolv.conf points there (systemd-resolved)."""
    try:
        target = Path("/etc/resolv.conf").resolve(strict=True)
    except OSError:
        return []
    return [target] if _inside(target, Path("/run")) else []


def bwrap_argv(
    command: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    confinement: Confinement,
    tmpfs_size: int,
    info_fd: int,
    owner: int | None = None,
) -> list[str]:
    """The bubblewrap command line that runs ``command`` (already wrapped by the init)
    in ``cwd`` (see the module's docstring for what it sees).

    :param env: the service's environment (its ``TMPDIR`` and ``HOME`` are made private
        and read-only as above).
    :param tmpfs_size: the most bytes each private folder may hold.
    :param info_fd: where bubblewrap writes the init's pid (JSON, ``child-pid``).
    :param owner: the user the sandbox runs as, when not us (folders made for it in its
        home folder are its own).
    """
    cwd = cwd.resolve()
    checkout = checkout_of(cwd)
    tmpdir = Path(env.get("TMPDIR") or tempfile.gettempdir()).resolve()
    home = Path(env["HOME"]).resolve() if env.get("HOME") else None
    size = ("--size", str(tmpfs_size))
    argv = [bwrap_path(), *ISOLATION, "--info-fd", str(info_fd), "--unsetenv", OWNER_ENV]
    argv += ["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"]
    argv += ["--ro-bind", "/proc/sys", "/proc/sys"]  # bwrap leaves it writable to root
    for name in _PROC_MASKED:
        if Path("/proc", name).exists():  # the same kernel: the new /proc has it too
            argv += ["--ro-bind", "/dev/null", f"/proc/{name}"]
    private = _private_dirs(tmpdir)
    for folder in private:
        argv += [*size, "--tmpfs", str(folder)]
    if home is not None and not any(_inside(home, folder) for folder in private):
        argv += _home_mounts(home, size, owner)  # (a home in a private folder is empty)
    for needed in _kept_from_run():
        argv += ["--ro-bind", str(needed), str(needed)]
    # What runs it must still be there, read-only, when it lies in a private folder (a
    # checkout of the verifier, or a virtual environment, under /tmp).
    needs = [*_our_installation(), *_named(command), *_path_folders_all(env.get("PATH", ""))]
    for path in _existing(needs):
        if any(path != d and _inside(path, d) for d in private) and not _inside(path, checkout):
            argv += ["--ro-bind", str(path), str(path)]
    argv += ["--bind", str(checkout), str(checkout)]
    kept = [
        *_git_folders(checkout),
        *confinement.read_only,
        *_our_installation(),
        *_path_folders(env.get("PATH", ""), checkout),
    ]
    read_only = [p for p in _existing(kept) if _inside(p, checkout)]
    # Ours, wherever the private folders above do not cover it (or the checkout, bound
    # over them, shows it again).
    ours = scratch_root().resolve()
    covered = any(_inside(ours, d) for d in private) and not _inside(ours, checkout)
    scratch = [] if covered else [ours]
    # (Hiding a folder that holds the checkout would hide it too.)
    hidden = [p for p in _existing([*confinement.hide, *scratch]) if not _inside(checkout, p)]
    hidden = [p for p in hidden if not any(p != o and _inside(p, o) for o in hidden)]
    # Pinned first: every folder between the checkout and what is kept or hidden is bound
    # onto itself, so that none can be renamed or replaced (a mount point cannot be):
    # else renaming a parent would carry the cover away and leave the name free.
    for folder in _pins([*read_only, *hidden], checkout):
        argv += ["--bind", str(folder), str(folder)]
    for path in read_only:
        argv += ["--ro-bind", str(path), str(path)]
    for path in hidden:
        if path.is_dir():
            argv += ["--size", "4096", "--tmpfs", str(path), "--remount-ro", str(path)]
        else:
            argv += ["--ro-bind", "/dev/null", str(path)]
    argv += ["--chdir", str(cwd), "--as-pid-1", "--", *command]
    return argv


def _pins(paths: Iterable[Path], checkout: Path) -> list[Path]:
    """The folders strictly between ``checkout`` and each of ``paths``, shallowest first."""
    found: set[Path] = set()
    for path in paths:
        if _inside(path, checkout):
            found.update(p for p in path.parents if p != checkout and _inside(p, checkout))
    return sorted(found, key=lambda p: len(p.parts))


def _git_folders(checkout: Path) -> list[Path]:
    """The checkout's ``.git`` and its submodules' (from ``.gitmodules``): git runs their
    hooks and config outside the sandbox, later."""
    found = [checkout / ".git"]
    try:
        text = (checkout / ".gitmodules").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == "path" and value.strip():
            found.append(checkout / value.strip() / ".git")
    return found


def _path_folders(path: str, checkout: Path) -> list[Path]:
    """The folders of ``PATH`` inside the checkout (an activated virtual environment,
    ``node_modules/.bin``): what is found there runs outside the sandbox too."""
    return [Path(p) for p in path.split(os.pathsep) if p and _inside(Path(p).resolve(), checkout)]


def _existing(paths: Iterable[Path]) -> list[Path]:
    found = []
    for path in paths:
        try:
            found.append(path.resolve(strict=True))
        except OSError:
            continue
    return found
