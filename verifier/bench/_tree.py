"""What a process tree costs: its CPU time and its proportional memory, from /proc."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from verifier._process import find_tree

__all__ = ("cpu_seconds", "parts_pss_kb", "tree_of", "tree_pss_kb")

_TICK = os.sysconf("SC_CLK_TCK")


def tree_of(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    return sorted({pid, *find_tree(pid, None)})


def cpu_seconds(pids: Iterable[int]) -> float:
    """User plus system CPU time of ``pids`` so far (the ones still alive)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def tree_pss_kb(pid: int) -> int:
    """The proportional set size of ``pid``'s whole tree now, in KiB."""
    total = 0
    for member in tree_of(pid):
        try:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total


def parts_pss_kb(pid: int) -> dict[str, int]:
    """``pid``'s tree now, its proportional memory by part (KiB): "verifier" (the
    process and its helpers), "driver" (Playwright's Node.js), "chromium", "xvfb",
    "openbox", "ffmpeg", and "app" (what the app's sandbox holds), "other" the rest."""
    members = tree_of(pid)
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for member in members:
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        names[member] = stat[stat.index("(") + 1 : stat.rindex(")")]
        parents[member] = int(stat.rsplit(")", 1)[1].split()[1])
    browsers = {p for p, n in names.items() if n.startswith(("chrom", "chrome_crashpad"))}
    totals: dict[str, int] = {}
    for member, name in names.items():
        part = _part(member, name, pid, parents, names, browsers)
        totals[part] = totals.get(part, 0) + _pss_kb(member)
    return totals


def _part(
    member: int,
    name: str,
    root: int,
    parents: dict[int, int],
    names: dict[int, str],
    browsers: set[int],
) -> str:
    if name.startswith(("chrom", "chrome_crashpad")):
        return "chromium"
    if name.startswith("node"):  # "node", or its main thread's name ("node-MainThread")
        return "driver"
    simple = {"Xvfb": "xvfb", "openbox": "openbox", "ffmpeg": "ffmpeg"}
    if name in simple:
        return simple[name]
    # Under a sandbox: Chromium's (its policy's) or the app's.
    up = member
    while up in parents and up != root:
        if names.get(up) == "bwrap":
            below = {p for p in browsers if _under(p, up, parents)}
            return "chromium" if below else "app"
        up = parents[up]
    return "verifier" if member == root or name.startswith(("python", "verifier")) else "other"


def _under(member: int, ancestor: int, parents: dict[int, int]) -> bool:
    while member in parents:
        member = parents[member]
        if member == ancestor:
            return True
    return False


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
