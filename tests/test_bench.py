"""`verifier bench` runs every group on a real desktop and reports ours in each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verifier.cli import main


@pytest.mark.usefixtures("no_leaks")
def test_bench_runs_and_reports_every_group(capsys: pytest.CaptureFixture[str]) -> None:
    demo = Path(__file__).resolve().parent.parent / "recipes" / "todo.yaml"
    assert main(["bench", "--rounds", "1", "--suite", "2", "--json", "--demo", str(demo)]) == 0
    records = json.loads(capsys.readouterr().out)
    groups = {r["group"] for r in records}
    assert len(groups) == 10
    ours = [r for r in records if r["name"].startswith("verifier ") and "median_ms" in r]
    assert len(ours) == 8 and all(r["median_ms"] > 0 for r in ours)
    # Recording: both recorders really ran and made a video (its size is in the note).
    recorders = [r for r in records if r["group"].startswith("recording")]
    assert [r.get("note", "").endswith("MB/min") for r in recorders] == [True, True], recorders
    # The demo recipe against the plain Playwright script: both really ran (how they
    # compare is the bench's finding, not a test's).
    plain = next(r for r in records if r["name"].startswith("plain headless Playwright"))
    assert plain.get("median_ms", 0) > 500 and plain["ratio_to_ours"] > 0, plain
    warm = next(r for r in records if "on a warm desktop" in r["name"])
    assert warm.get("median_ms", 0) > 500 and not warm.get("note"), warm
    # Every peer reaches the display (its cookie too): none is skipped for want of it.
    grab = next(r for r in records if r["name"] == "PIL ImageGrab.grab")
    assert grab.get("median_ms", 0) > 0, grab
    # Recipes in one run against tests in one script: both ran.
    suite = [r for r in records if r["group"].startswith("a suite")]
    assert len(suite) == 2 and all(r.get("median_ms", 0) > 1000 for r in suite), suite
    # Memory: the whole at its peak, and the parts (which add up to it).
    memory = [r for r in records if r["group"].startswith("memory")]
    whole, parts = memory[0], memory[1:]
    assert whole["median_mb"] > 100, memory
    assert {
        "  Chromium (every process)",
        "  Xvfb",
        "  verifier (Python)",
        "  Playwright's driver (Node.js)",
    } <= {r["name"] for r in parts}
    assert abs(sum(r["median_mb"] for r in parts) - whole["median_mb"]) < 1, memory
    floor = next(r for r in records if r["name"].startswith("memcpy"))
    assert floor["median_ms"] > 0
    cold = next(r for r in records if r["name"].startswith("cold:"))
    assert cold.get("median_ms", 0) > 0, cold
