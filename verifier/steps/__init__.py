"""Steps: the one registry of recipe actions and checks, run against a live desktop."""

from __future__ import annotations

import asyncio

from verifier.errors import BrowserError
from verifier.recipe import STEP_SCHEMAS, Step
from verifier.steps import (  # noqa: F401 - they register their runners
    _actions,
    _checks,
    _forms,
    _pages,
    _state,
    _text,
    _vision,
)
from verifier.steps._context import RUNNERS, SETTLING, StepContext, StepOutcome, no_dialog

__all__ = ("RUNNERS", "SETTLING", "StepContext", "StepOutcome", "run_step")

_missing = set(STEP_SCHEMAS) ^ set(RUNNERS)
assert not _missing, f"steps without a schema or a runner: {_missing}"


def run_step(ctx: StepContext, step: Step) -> StepOutcome:
    """Run one step; raises CheckFailed (the app is wrong) or another VerifierError."""
    try:
        return RUNNERS[step.action](ctx, step)
    except asyncio.CancelledError:
        # A call to the page was called off: a dialog opened and holds it.
        no_dialog(ctx, step.action)
        msg = f"{step.action}: a call to the browser was cancelled"
        raise BrowserError(msg) from None
