"""Logged-in state: ``save_storage_state`` writes the browser's cookies and localStorage."""

from __future__ import annotations

from pathlib import Path

from verifier._storage import save_state, tag_services
from verifier.recipe import Step
from verifier.recipe.step_args import SaveStorageState
from verifier.steps._context import StepContext, StepOutcome, playwright_errors, runs

__all__ = ()


@runs("save_storage_state", SaveStorageState)
def save_storage_state(ctx: StepContext, step: Step, args: SaveStorageState) -> StepOutcome:
    base = ctx.recipe_path.parent if ctx.recipe_path is not None else Path.cwd()
    with playwright_errors(ctx, f"save_storage_state {args.path!r}", step.timeout):
        state = ctx.browser.page.context.storage_state()
    path = save_state(tag_services(state, ctx.services), base, args.path)
    # Counts only: the state holds credentials, and the manifest is evidence.
    cookies, origins = state.get("cookies") or [], state.get("origins") or []
    return StepOutcome(
        details={"saved": str(path), "cookies": len(cookies), "origins": len(origins)}
    )
