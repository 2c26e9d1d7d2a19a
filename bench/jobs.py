"""Scale on one machine: `verifier run --jobs N` throughput and memory per desktop.

    python3 bench/jobs.py [--runs 4]

Runs the demo recipe `--runs` times with --jobs 1, 2 and 4 (wall time, runs per minute),
and samples the proportional memory (PSS) of one run's whole process tree (verifier,
Xvfb, openbox, Chromium, ffmpeg, dev server) at its peak.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from verifier.bench import tree_pss_kb

ROOT = Path(__file__).resolve().parent.parent

DEMO = ROOT / "recipes" / "todo.yaml"


def peak_memory_mb(tmp: str) -> float:
    proc = subprocess.Popen(
        [sys.executable, "-m", "verifier", "run", str(DEMO), "--out", tmp],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_pss_kb(proc.pid))
        time.sleep(0.1)
    return peak / 1024


def throughput(jobs: int, runs: int, tmp: str) -> float:
    t0 = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "verifier",
            "run",
            *[str(DEMO)] * runs,
            "--jobs",
            str(jobs),
            "--out",
            tmp,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"memory of one run's process tree at its peak (PSS): {peak_memory_mb(tmp):.0f} MB")
        for jobs in (1, 2, 4):
            wall = throughput(jobs, args.runs, tmp)
            print(
                f"--jobs {jobs}: {args.runs} runs in {wall:5.1f} s = "
                f"{args.runs / wall * 60:5.1f} runs/min"
            )


if __name__ == "__main__":
    main()
