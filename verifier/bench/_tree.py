"""What a process tree costs: its CPU time and its proportional memory, from /proc."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from verifier._process import find_tree

__all__ = ("cpu_seconds", "tree_of", "tree_pss_kb")

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
