"""The ``VerifyRecipe`` workflow and the records it exchanges with its activity and client.

Deterministic code only: this module is re-imported inside the workflow sandbox, so it
imports nothing but the standard library and temporalio.

Retries happen at two levels. The activity's retry policy covers the worker side
failing (a SIGKILLed worker is noticed by the heartbeat timeout, a worker shut down
hands its run back): the next attempt reads the interrupted attempt's bundle from the
heartbeat details. The workflow itself retries a run that could not verify (exit 2),
with backoff, and returns the last one as verdict ``error``; a failed check (exit 1) is
final at once, since running it again would only hide a flaky app.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

__all__ = (
    "ACTIVITY_NAME",
    "AttemptOutcome",
    "RECIPE_ATTR",
    "VERDICT_ATTR",
    "Verdict",
    "VerifyRecipe",
    "VerifyRequest",
    "VerifyResult",
    "bundles_in",
)

Verdict = Literal["passed", "failed", "error"]

WORKFLOW_NAME = "VerifyRecipe"
ACTIVITY_NAME = "verifier.run"
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# Attempts per run on the worker side (worker killed, shut down, run crashed).
WORKER_ATTEMPTS = 5
# Search attributes: registered by ``verifier temporal-dev``; used only when the server
# knows them (see _submit.py), so that an unprepared server still runs everything.
RECIPE_ATTR = SearchAttributeKey.for_keyword("VerifierRecipe")
VERDICT_ATTR = SearchAttributeKey.for_keyword("VerifierVerdict")


@dataclass(frozen=True, slots=True)
class VerifyRequest:
    """What to verify: a recipe path, resolved against the worker's ``--workdir``."""

    recipe: str
    key: str
    max_attempts: int = 3
    timeout_s: float = 1800.0
    no_video: bool = False


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """How one activity attempt's ``verifier run`` ended (exit 0, 1 or 2)."""

    verdict: Verdict
    exit_code: int
    bundle: str | None
    worker: str
    attempt: int
    failed_step: int | None = None
    error: str | None = None
    # Bundles of earlier attempts of this activity that a dying worker left behind.
    interrupted: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The workflow's result: the final verdict and every attempt's evidence."""

    recipe: str
    verdict: Verdict
    exit_code: int
    bundle: str | None
    worker: str | None
    attempts: int
    bundles: list[str]
    failed_step: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "recipe": self.recipe,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "bundle": self.bundle,
            "failed_step": self.failed_step,
            "error": self.error,
            "worker": self.worker,
            "attempts": self.attempts,
            "bundles": list(self.bundles),
        }


def bundles_in(details: Sequence[Any]) -> list[str]:
    """The bundle list of heartbeat (or failure) details: ``[{"bundles": [...]}]``."""
    if details and isinstance(details[0], dict):
        bundles = details[0].get("bundles")
        if isinstance(bundles, list):
            return [str(bundle) for bundle in bundles]
    return []


def _bundles_of(exc: ActivityError) -> list[str]:
    """Bundles of the attempts behind a failed activity, from its last failure."""
    if isinstance(exc.cause, ApplicationError):
        return bundles_in(exc.cause.details)
    if isinstance(exc.cause, ActivityTimeoutError):
        return bundles_in(exc.cause.last_heartbeat_details)
    return []


@workflow.defn(name=WORKFLOW_NAME)
class VerifyRecipe:
    """Run a recipe on some worker until it passes, fails, or could not verify N times."""

    @workflow.run
    async def run(self, request: VerifyRequest) -> VerifyResult:
        attempts = 0
        bundles: list[str] = []
        outcome: AttemptOutcome | None = None
        error: str | None = None
        for round_ in range(max(1, request.max_attempts)):
            if round_:
                await workflow.sleep(timedelta(seconds=min(2.0**round_, 60.0)))
            try:
                outcome = await workflow.execute_activity(
                    ACTIVITY_NAME,
                    request,
                    result_type=AttemptOutcome,
                    start_to_close_timeout=timedelta(seconds=request.timeout_s),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(seconds=1),
                        backoff_coefficient=2.0,
                        maximum_interval=timedelta(seconds=30),
                        maximum_attempts=WORKER_ATTEMPTS,
                    ),
                )
            except ActivityError as exc:
                # Every worker-side attempt failed (or timed out): nothing verified it.
                outcome = None
                error = f"no worker completed the run: {exc.cause or exc}"
                bundles.extend(_bundles_of(exc))
                maxed = exc.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
                attempts += WORKER_ATTEMPTS if maxed else 1
                break
            attempts += outcome.attempt
            bundles.extend(outcome.interrupted)
            if outcome.bundle:
                bundles.append(outcome.bundle)
            if outcome.exit_code in (0, 1):
                break
        result = (
            VerifyResult(
                recipe=request.recipe,
                verdict=outcome.verdict,
                exit_code=outcome.exit_code,
                bundle=outcome.bundle,
                worker=outcome.worker,
                attempts=attempts,
                bundles=bundles,
                failed_step=outcome.failed_step,
                error=outcome.error,
            )
            if outcome is not None
            else VerifyResult(
                recipe=request.recipe,
                verdict="error",
                exit_code=2,
                bundle=bundles[-1] if bundles else None,
                worker=None,
                attempts=attempts,
                bundles=bundles,
                error=error,
            )
        )
        workflow.upsert_memo({"verdict": result.verdict})
        if workflow.info().typed_search_attributes.get(RECIPE_ATTR) is not None:
            workflow.upsert_search_attributes([VERDICT_ATTR.value_set(result.verdict)])
        return result
