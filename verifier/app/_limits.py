"""The memory and process limits of one service of the app: a cgroup of its own where the
machine lets us make one, else resource limits on each of its processes.

A cgroup (v2, or v1's ``memory`` and ``pids`` controllers, as on this project's
machines) holds the whole tree: a fork bomb stops at ``pids`` processes and a memory
eater is killed by the kernel at ``memory`` bytes (tmpfs files it writes count too),
while the verifier, outside the group, goes on. Where no cgroup can be written (a user
without delegation, a container), ``RLIMIT_DATA`` bounds each process's memory and
``RLIMIT_NPROC`` the processes of the sandbox's user namespace (the kernel exempts root
from the latter: then nothing bounds the processes, and :attr:`Limiter.how` says so).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ("DEFAULT_LIMITS", "Limiter", "Limits", "format_bytes")

_log = logging.getLogger(__name__)

_GIB = 1024**3
_PREFIX = "verifier-app-"


@dataclass(frozen=True, slots=True)
class Limits:
    """What one service may use: ``memory`` bytes and ``pids`` processes (threads count)."""

    memory: int = 2 * _GIB
    pids: int = 1024


DEFAULT_LIMITS = Limits()


def format_bytes(size: int) -> str:
    """``2147483648`` -> ``"2GiB"`` (as a recipe writes it)."""
    for unit, scale in (("GiB", _GIB), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"


def _mounts() -> dict[str, Path]:
    """Where each cgroup hierarchy is mounted: ``"2"`` for v2, else a v1 controller."""
    found: dict[str, Path] = {}
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, extra = left.split(), right.split()
        if len(fields) < 5 or len(extra) < 3:
            continue
        point = Path(fields[4].replace("\\040", " "))
        if extra[0] == "cgroup2":
            found.setdefault("2", point)
        elif extra[0] == "cgroup":
            for option in extra[2].split(","):
                found.setdefault(option, point)
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup in each hierarchy (``/proc/self/cgroup``)."""
    found: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and not parts[1]:
            found["2"] = parts[2]
        for controller in parts[1].split(","):
            if controller:
                found[controller] = parts[2]
    return found


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _counter(path: Path, key: str) -> int:
    """``key N`` from a cgroup file of such lines (0 when absent)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def _sweep(parent: Path) -> None:
    """Remove our groups left by a verifier that was killed (empty once it died)."""
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            if not entry.name.startswith(_PREFIX):
                continue
            owner = entry.name[len(_PREFIX) :].split("-", 1)[0]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                with contextlib.suppress(OSError):
                    entry.rmdir()


class _Group:
    """One cgroup we made: its folder, and the files that set and report a limit."""

    def __init__(self, parent: Path) -> None:
        _sweep(parent)
        self.path = parent / f"{_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.path.mkdir(mode=0o755)

    def set(self, name: str, value: str) -> None:
        _write(self.path / name, value)

    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    def close(self) -> None:
        try:
            self.path.rmdir()
        except FileNotFoundError:
            pass
        except OSError as exc:
            _log.warning("cannot remove the cgroup %s: %s", self.path, exc.strerror or exc)


class Limiter:
    """The limits of one service: made by :meth:`open`, joined by the service's first
    process (:meth:`join`, between fork and exec), read by :meth:`tripped` when it dies,
    removed by :meth:`close`.

    :attr:`how` says what holds them: ``cgroup v2``, ``cgroup v1``, or ``rlimit`` (each
    process; with a note when a limit could not be set at all).
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.how = "not set"
        self._groups: dict[str, _Group] = {}  # by controller: "memory", "pids"
        self._procs: list[bytes] = []  # cgroup.procs files to join, as bytes for preexec
        self.rlimits: dict[str, int] = {}  # for the sandbox's init: "data", "nproc"

    def open(self) -> Limiter:
        """Make the cgroup(s), or fall back to rlimits; never raises."""
        mounts, own = _mounts(), _own_paths()
        try:
            if "2" in mounts and "2" in own and self._open_v2(mounts["2"] / own["2"].lstrip("/")):
                self.how = "cgroup v2"
            elif self._open_v1(mounts, own):
                self.how = "cgroup v1"
        except OSError as exc:
            _log.debug("no cgroup for the app (%s): rlimits instead", exc.strerror or exc)
            self._close_groups()
        if not self._groups:
            self.rlimits = {"data": self.limits.memory, "nproc": self.limits.pids}
            self.how = "rlimit (memory per process" + (
                "; processes not bounded: the kernel exempts root)" if os.geteuid() == 0 else ")"
            )
        return self

    def _open_v2(self, own: Path) -> bool:
        wanted = {"memory", "pids"}
        try:
            available = set((own / "cgroup.controllers").read_text().split())
            enabled = set((own / "cgroup.subtree_control").read_text().split())
        except OSError:
            return False
        if not wanted <= available:
            return False
        if not wanted <= enabled:
            # Refused when our own group holds processes ("no internal processes"): a
            # group delegated to us for this (systemd's Delegate=yes) has none.
            try:
                _write(own / "cgroup.subtree_control", "+memory +pids")
            except OSError:
                return False
        group = _Group(own)
        self._groups["memory"] = self._groups["pids"] = group
        group.set("memory.max", str(self.limits.memory))
        if group.has("memory.swap.max"):
            group.set("memory.swap.max", "0")
        group.set("pids.max", str(self.limits.pids))
        self._procs = [bytes(group.path / "cgroup.procs")]
        return True

    def _open_v1(self, mounts: dict[str, Path], own: dict[str, str]) -> bool:
        for controller in ("memory", "pids"):
            if controller not in mounts or controller not in own:
                raise OSError(0, f"no v1 {controller} hierarchy")
        memory = _Group(mounts["memory"] / own["memory"].lstrip("/"))
        self._groups["memory"] = memory
        memory.set("memory.limit_in_bytes", str(self.limits.memory))
        if memory.has("memory.memsw.limit_in_bytes"):  # no swapping past the limit
            memory.set("memory.memsw.limit_in_bytes", str(self.limits.memory))
        pids = _Group(mounts["pids"] / own["pids"].lstrip("/"))
        self._groups["pids"] = pids
        pids.set("pids.max", str(self.limits.pids))
        self._procs = [bytes(memory.path / "cgroup.procs"), bytes(pids.path / "cgroup.procs")]
        return True

    def join(self) -> None:
        """Move the calling process into the group(s): run in the child, before exec."""
        for procs in self._procs:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)

    def tripped(self) -> str | None:
        """Which limit stopped the service, if one did: for the message when it dies."""
        memory = self._groups.get("memory")
        if memory is not None:
            events = "memory.events" if self.how == "cgroup v2" else "memory.oom_control"
            if _counter(memory.path / events, "oom_kill") > 0:
                return f"its memory limit (app.limits.memory: {format_bytes(self.limits.memory)})"
        pids = self._groups.get("pids")
        if pids is not None and _counter(pids.path / "pids.events", "max") > 0:
            return f"its process limit (app.limits.pids: {self.limits.pids})"
        return None

    def record(self) -> dict[str, object]:
        """For the manifest: the limits and what holds them."""
        return {
            "memory": format_bytes(self.limits.memory),
            "pids": self.limits.pids,
            "by": self.how,
        }

    def close(self) -> None:
        """Remove the group(s) (once the service's processes are gone); idempotent."""
        self._close_groups()

    def _close_groups(self) -> None:
        for group in {id(g): g for g in self._groups.values()}.values():
            group.close()
        self._groups.clear()
        self._procs = []
