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
* private, empty ``~/.npm`` and ``~/.cache`` (package managers write there; the rest of
  the home folder is read-only);
* its checkout (the git work tree holding its folder, else the folder) writable, except
  the checkout's ``.git`` (hooks and config would run code outside) and what
  :class:`Confinement` keeps read-only (recipes, baselines, our own installation);
* what :class:`Confinement` hides (the output folder with every bundle, a token file,
  saved logins), covered by empty folders or files.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from verifier._bwrap import ISOLATION, bwrap_path
from verifier._git import work_tree_of
from verifier._process import OWNER_ENV

__all__ = ("INIT", "Confinement", "bwrap_argv", "checkout_of")

INIT = Path(__file__).resolve().parent / "_init.py"
_PACKAGE = Path(__file__).resolve().parent.parent
# /proc files a process of root's user could use against the machine, or read the
# kernel's secrets from: covered as Docker and Podman cover them.
_PROC_MASKED = ("sysrq-trigger", "kcore", "keys", "timer_list", "sched_debug", "kallsyms")
_HOME_CACHES = (".npm", ".cache")


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
    """The folder a service may write: the git work tree holding ``cwd``, else ``cwd``."""
    return work_tree_of(cwd) or cwd.resolve()


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def _our_installation() -> list[Path]:
    """The verifier's own code and the environment it runs in (a hostile app in our own
    checkout must not change what we import next)."""
    return [_PACKAGE, Path(sys.prefix).resolve()]


def _private_dirs(tmpdir: Path, home: Path | None) -> list[Path]:
    dirs = [Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path("/run")]
    if tmpdir.is_dir() and not any(_inside(tmpdir, d) for d in dirs):
        dirs.append(tmpdir)
    if home is not None and home != Path("/"):
        for name in _HOME_CACHES:
            cache = home / name
            try:
                cache.mkdir(mode=0o700, exist_ok=True)
            except OSError:
                continue  # a home folder we cannot write: nothing to cover
            if cache.is_dir():
                dirs.append(cache)
    return dirs


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
) -> list[str]:
    """The bubblewrap command line that runs ``command`` (already wrapped by the init)
    in ``cwd`` (see the module's docstring for what it sees).

    :param env: the service's environment (its ``TMPDIR`` and ``HOME`` are made private
        and read-only as above).
    :param tmpfs_size: the most bytes each private folder may hold.
    :param info_fd: where bubblewrap writes the init's pid (JSON, ``child-pid``).
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
    for folder in _private_dirs(tmpdir, home):
        argv += [*size, "--tmpfs", str(folder)]
    for kept in _kept_from_run():
        argv += ["--ro-bind", str(kept), str(kept)]
    argv += ["--bind", str(checkout), str(checkout)]
    for path in _existing([checkout / ".git", *confinement.read_only, *_our_installation()]):
        if _inside(path, checkout):
            argv += ["--ro-bind", str(path), str(path)]
    hidden = [p for p in _existing(confinement.hide) if not _inside(checkout, p)]
    for path in hidden:  # (hiding a folder that holds the checkout would hide it too)
        if any(path != other and _inside(path, other) for other in hidden):
            continue  # a folder hidden already holds it
        if path.is_dir():
            argv += ["--size", "4096", "--tmpfs", str(path), "--remount-ro", str(path)]
        else:
            argv += ["--ro-bind", "/dev/null", str(path)]
    argv += ["--chdir", str(cwd), "--as-pid-1", "--", *command]
    return argv


def _existing(paths: Iterable[Path]) -> list[Path]:
    found = []
    for path in paths:
        try:
            found.append(path.resolve(strict=True))
        except OSError:
            continue
    return found
