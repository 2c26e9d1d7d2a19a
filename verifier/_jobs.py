"""`verifier run --jobs N`: several recipes at once, each a `verifier run` process of its own.

A run owns its process (signal handlers, PR_SET_PDEATHSIG follows the thread that forks,
Playwright's sync API wants the main thread), so parallel runs are child processes, each
on its own Xvfb. A child gets SIGTERM if this process dies (and tears down cleanly);
on Ctrl-C or SIGTERM here, every running child is stopped the same way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from verifier._process import OwnedProcess, scratch_root, tail
from verifier.result import RunResult

__all__ = ("run_jobs",)


@dataclass(frozen=True, slots=True)
class JobResult:
    """How one child run ended: its --json record (read back), or why there is none."""

    recipe: str
    exit_code: int
    result: RunResult | None
    stderr_tail: str


def run_jobs(recipes: Sequence[str], *, jobs: int, run_args: Sequence[str]) -> Iterator[JobResult]:
    """Run ``verifier run RECIPE --json *run_args`` for each recipe, ``jobs`` at a time;
    yields each result as it finishes. Stopping the iteration stops the children."""
    pending = list(recipes)
    running: dict[OwnedProcess, tuple[str, Path]] = {}
    with tempfile.TemporaryDirectory(prefix="jobs-", dir=scratch_root()) as tmp:
        try:
            while pending or running:
                while pending and len(running) < jobs:
                    recipe = pending.pop(0)
                    err = Path(tmp) / f"{len(pending)}-{os.getpid()}.err"
                    with err.open("wb") as err_fh:
                        proc = OwnedProcess(
                            # -P: the current folder (an app's checkout, where it may
                            # have put a package named verifier) is not first on sys.path.
                            [
                                sys.executable,
                                "-P",
                                "-m",
                                "verifier",
                                "run",
                                recipe,
                                "--json",
                                *run_args,
                            ],
                            name=f"verifier run {recipe}",
                            env=dict(os.environ),
                            stdout=subprocess.PIPE,
                            stderr=err_fh,
                            death_signal=signal.SIGTERM,
                        )
                    running[proc] = (recipe, err)
                done = [p for p in running if p.poll() is not None]
                if not done:
                    time.sleep(0.05)  # polling for a child's exit, not a fixed wait
                    continue
                for proc in done:
                    recipe, err = running.pop(proc)
                    yield _result(proc, recipe, err)
        finally:
            for proc in running:  # interrupted: let each child tear down and say so
                proc.stop(grace=15.0)


def _result(proc: OwnedProcess, recipe: str, err: Path) -> JobResult:
    out = proc.popen.stdout.read().decode("utf-8", "replace") if proc.popen.stdout else ""
    proc.stop(grace=1.0)  # reaps it (and anything it left, which should be nothing)
    if proc.popen.stdout is not None:
        proc.popen.stdout.close()
    result = None
    for line in out.splitlines():
        try:
            result = RunResult.from_json(json.loads(line))
        except ValueError:
            continue
    return JobResult(recipe, proc.returncode or 0, result, tail(err, lines=3))
