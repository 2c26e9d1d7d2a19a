"""The record of a run: how it ended and where its evidence is, as ``verifier run
--json`` prints it. :meth:`RunResult.to_json` is its one writer and
:meth:`RunResult.from_json` its one reader (``--jobs``, the pool, agents' and Temporal's
callers read it back). Light to import: a caller of a pool's warm desktop needs nothing
else of verifier's to run there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from verifier.evidence import AttemptRecord

__all__ = ("EXIT_CODES", "RunResult", "RunVerdict")

EXIT_CODES = {"passed": 0, "failed": 1, "error": 2}  # a verdict's exit code
# A run's verdict, and a recipe's over its attempts: "flaky" failed (or could not verify)
# and then passed on a retry.
RunVerdict = Literal["passed", "failed", "error", "flaky"]
_RUN_VERDICTS: tuple[RunVerdict, ...] = ("passed", "failed", "error", "flaky")


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended, and where its evidence is (the last attempt's bundle; with
    retries, ``attempts`` lists every attempt's, oldest first)."""

    recipe: str
    verdict: RunVerdict
    bundle: Path | None
    exit_code: int
    failed_step: int | None = None
    error: str | None = None
    attempts: tuple[AttemptRecord, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The record ``verifier run --json`` prints (one object per recipe); with
        ``attempts`` when the recipe ran more than once (--retries)."""
        record: dict[str, object] = {
            "recipe": self.recipe,
            "verdict": self.verdict,
            "bundle": str(self.bundle) if self.bundle else None,
            "exit_code": self.exit_code,
            "failed_step": self.failed_step,
            "error": self.error,
        }
        if len(self.attempts) > 1:
            record["attempts"] = [dict(a) for a in self.attempts]
        return record

    @classmethod
    def from_json(cls, data: object) -> RunResult:
        """A record :meth:`to_json` wrote (read back from ``verifier run --json``).

        :raises ValueError: ``data`` is not such a record.
        """
        if not isinstance(data, dict) or not isinstance(data.get("recipe"), str):
            msg = "not a run record: an object with 'recipe' and 'verdict'"
            raise ValueError(msg)
        verdict = data.get("verdict")
        if verdict not in _RUN_VERDICTS:
            msg = f"not a run record: verdict {verdict!r}"
            raise ValueError(msg)
        code, step = data.get("exit_code"), data.get("failed_step")
        attempts = data.get("attempts")
        return cls(
            recipe=data["recipe"],
            verdict=verdict,
            bundle=Path(data["bundle"]) if isinstance(data.get("bundle"), str) else None,
            exit_code=code if isinstance(code, int) else EXIT_CODES.get(verdict, 0),
            failed_step=step if isinstance(step, int) else None,
            error=str(data["error"]) if data.get("error") else None,
            attempts=tuple(a for a in attempts if isinstance(a, dict))  # type: ignore[misc]
            if isinstance(attempts, list)
            else (),
        )
