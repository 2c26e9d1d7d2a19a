"""The runs under an output folder, with their verdicts, for `verifier runs`."""

from __future__ import annotations

import dataclasses
import socket
from dataclasses import dataclass
from pathlib import Path

from verifier._process import is_running
from verifier.errors import BundleError
from verifier.evidence._manifest import read_manifest

__all__ = ("RunRecord", "list_runs")


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One bundle as `verifier runs` shows it."""

    run_id: str
    path: Path
    recipe: str
    # passed | flaky | failed | error | running | error: interrupted | unreadable; an
    # attempt that a later one retried ends in " (retried)".
    status: str
    started_at: str
    duration_s: float | None
    error: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "bundle": str(self.path),
            "recipe": self.recipe,
            "status": self.status,
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "error": self.error,
        }


def _status(data: dict[str, object]) -> str:
    if data.get("finished"):
        verdict = str(data.get("verdict", "error"))
        return "flaky" if verdict == "passed" and data.get("flaky") is True else verdict
    runner = data.get("runner")
    if isinstance(runner, dict) and runner.get("host") == socket.gethostname():
        pid, start = runner.get("pid"), runner.get("starttime")
        if isinstance(pid, int) and isinstance(start, int) and is_running(pid, start):
            return "running"
    # No verdict and no verifier behind it: it died (SIGKILL, power loss, OOM).
    return "error: interrupted"


def _failure(data: dict[str, object]) -> str | None:
    """The failed step's message (a failed run has no run error)."""
    steps = data.get("steps")
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict) and step.get("status") == "failed" and step.get("error"):
            return str(step["error"])
    return None


def list_runs(out: Path) -> list[RunRecord]:
    """Every bundle directly under ``out``, oldest first."""
    records = []
    retried: set[str] = set()
    for manifest in sorted(out.glob("*/manifest.json")):
        try:
            data = read_manifest(manifest.parent)
        except BundleError as exc:
            records.append(
                RunRecord(
                    manifest.parent.name,
                    manifest.parent,
                    "?",
                    "unreadable",
                    "",
                    None,
                    f"manifest.json: {exc}",
                )
            )
            continue
        tries = data.get("attempts")
        if isinstance(tries, list):  # the attempts before the last were retried
            retried |= {str(a.get("run_id")) for a in tries[:-1] if isinstance(a, dict)}
        if data.get("retried") is True:
            retried.add(str(data.get("run_id", manifest.parent.name)))
        recipe = data.get("recipe") if isinstance(data.get("recipe"), dict) else {}
        error = data.get("error") if isinstance(data.get("error"), dict) else None
        duration = data.get("duration_s")
        records.append(
            RunRecord(
                run_id=str(data.get("run_id", manifest.parent.name)),
                path=manifest.parent,
                recipe=str(recipe.get("name", "?")),  # type: ignore[union-attr]
                status=_status(data),
                started_at=str(data.get("started_at", "")),
                duration_s=float(duration) if isinstance(duration, int | float) else None,
                error=str(error.get("message")) if error else _failure(data),
            )
        )
    records = [
        dataclasses.replace(r, status=f"{r.status} (retried)") if r.run_id in retried else r
        for r in records
    ]
    return sorted(records, key=lambda r: (r.started_at, r.run_id))
