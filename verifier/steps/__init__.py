"""Steps: the one registry of recipe actions and checks, run against a live desktop."""

from __future__ import annotations

from verifier.recipe import STEP_SCHEMAS, Step
from verifier.steps import _actions, _checks, _vision  # noqa: F401 - they register their runners
from verifier.steps._context import RUNNERS, SETTLING, StepContext, StepOutcome

__all__ = ("RUNNERS", "SETTLING", "StepContext", "StepOutcome", "run_step")

_missing = set(STEP_SCHEMAS) ^ set(RUNNERS)
assert not _missing, f"steps without a schema or a runner: {_missing}"


def run_step(ctx: StepContext, step: Step) -> StepOutcome:
    """Run one step; raises CheckFailed (the app is wrong) or another VerifierError."""
    return RUNNERS[step.action](ctx, step)
