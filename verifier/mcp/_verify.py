"""The ``verify`` tool: run the project's recipes as ``verifier run`` does, each on a
desktop of its own, and report each verdict.

Each recipe is a ``verifier run RECIPE --json`` process (as ``--jobs`` runs them): a run
owns its process's main thread (signals, PR_SET_PDEATHSIG, Playwright's sync API), and
the session's desktop, browser and app stay as the agent left them. The child dies with
us, and a signal stops it in order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifier._jobs import run_jobs
from verifier.errors import BundleError, InputError
from verifier.evidence import read_manifest

__all__ = ("MAX_RECIPES", "RecipeVerdict", "check_recipes", "run_recipes")

MAX_RECIPES = 20


@dataclass(frozen=True, slots=True)
class RecipeVerdict:
    """How one recipe ran."""

    recipe: str
    verdict: str  # passed | failed | error
    exit_code: int
    bundle: Path | None
    failed_step: int | None  # 1-based, as people count
    message: str | None
    screenshot: Path | None  # the failed step's screenshot, when there is one

    def line(self) -> str:
        """One line, like ``verifier run`` prints it."""
        where = f" -> {self.bundle}" if self.bundle else ""
        if self.verdict == "passed":
            return f"PASSED {self.recipe}{where}"
        step = f" at step {self.failed_step}" if self.failed_step is not None else ""
        return f"{self.verdict.upper()} {self.recipe}{step}: {self.message}{where}"

    def to_json(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "bundle": str(self.bundle) if self.bundle else None,
            "failed_step": self.failed_step,
            "message": self.message,
            "screenshot": str(self.screenshot) if self.screenshot else None,
        }


def check_recipes(recipes: object) -> list[str]:
    """``recipes`` as a list of existing files; InputError saying what is wrong."""
    if (
        not isinstance(recipes, list)
        or not recipes
        or not all(isinstance(r, str) and r for r in recipes)
    ):
        msg = "verify: 'recipes' is a list of recipe files, like [\"recipes/todo.yaml\"]"
        raise InputError(msg)
    if len(recipes) > MAX_RECIPES:
        msg = f"verify: at most {MAX_RECIPES} recipes a call (got {len(recipes)}); split them"
        raise InputError(msg)
    for recipe in recipes:
        if not Path(recipe).is_file():
            msg = (
                f"verify: no recipe file at {recipe!r} (relative paths start in {os.getcwd()}); "
                "give the path of a recipe YAML file"
            )
            raise InputError(msg)
    return list(recipes)


def run_recipes(recipes: Sequence[str], *, run_args: Sequence[str]) -> list[RecipeVerdict]:
    """Run each recipe, one at a time, with ``verifier run RECIPE --json *run_args``."""
    results = []
    for job in run_jobs(list(recipes), jobs=1, run_args=run_args):
        record = job.result
        bundle = record.bundle if record is not None else None
        failed = record.failed_step if record is not None else None
        said = record.error if record is not None else None
        message = said or (None if job.exit_code == 0 else job.stderr_tail)
        results.append(
            RecipeVerdict(
                recipe=job.recipe,
                verdict=record.verdict if record is not None else "error",
                exit_code=job.exit_code if job.exit_code in (0, 1, 2) else 2,
                bundle=bundle,
                failed_step=failed + 1 if failed is not None else None,
                message=str(message) if message else None,
                screenshot=_failure_shot(bundle, failed),
            )
        )
    return results


def _failure_shot(bundle: Path | None, step: int | None) -> Path | None:
    """The screenshot of the failed step: ``NN-action-failed.png`` when there is one."""
    if bundle is None or step is None:
        return None
    try:
        record = read_manifest(bundle)["steps"][step]
    except (BundleError, KeyError, IndexError, TypeError):
        return None
    shots = [s for s in record.get("screenshots") or [] if isinstance(s, str)]
    if isinstance(record.get("screenshot"), str):
        shots.append(record["screenshot"])
    shots.sort(key=lambda s: not s.endswith("-failed.png"))
    for shot in shots:
        if (bundle / shot).is_file():
            return bundle / shot
    return None
