"""``verifier submit``: one ``VerifyRecipe`` workflow per recipe, idempotent by id.

The workflow id is ``verify:<recipe>@<key>``: the recipe as the workers will resolve it
(relative to the git checkout's root when the recipe is in one, since workers resolve
it against their ``--workdir``, the same checkout; else its absolute path, for a shared
folder) and a run key (``--key``, default the checkout's commit, else a hash of the
recipe file). Submitting the same work again attaches to the workflow already running
or finished instead of starting another; a workflow that failed or was terminated is
started afresh.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from verifier._git import git
from verifier.temporal._workflow import (
    RECIPE_ATTR,
    VERDICT_ATTR,
    VerifyRecipe,
    VerifyRequest,
    VerifyResult,
)

__all__ = ("default_key", "recipe_ref", "results", "submit")


@dataclass(frozen=True, slots=True)
class Submitted:
    recipe: str
    workflow_id: str
    run_id: str | None
    attached: bool  # the same work was already submitted: we follow that workflow


def recipe_ref(path: Path) -> str:
    """The recipe as workers resolve it against ``--workdir``."""
    full = path.resolve()
    top = git(full.parent, "rev-parse", "--show-toplevel")
    if top is not None:
        try:
            return full.relative_to(Path(top).resolve()).as_posix()
        except ValueError:
            pass
    return str(full)


def default_key(path: Path) -> str:
    """The commit of the recipe's checkout, or a hash of the recipe file outside git."""
    commit = git(path.resolve().parent, "rev-parse", "HEAD")
    if commit is not None:
        return commit[:12]
    return "sha256-" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def workflow_id(ref: str, key: str) -> str:
    return f"verify:{ref}@{key}"


async def _start(
    client: Client,
    request: VerifyRequest,
    *,
    task_queue: str,
    with_attributes: bool,
) -> WorkflowHandle[VerifyRecipe, VerifyResult]:
    attributes = (
        TypedSearchAttributes(
            [
                SearchAttributePair(RECIPE_ATTR, request.recipe),
                SearchAttributePair(VERDICT_ATTR, "running"),
            ]
        )
        if with_attributes
        else None
    )
    return await client.start_workflow(
        VerifyRecipe.run,
        request,
        id=workflow_id(request.recipe, request.key),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        memo={"recipe": request.recipe, "key": request.key},
        search_attributes=attributes,
    )


async def submit(
    client: Client, requests: Sequence[VerifyRequest], *, task_queue: str
) -> list[tuple[Submitted, WorkflowHandle[VerifyRecipe, VerifyResult]]]:
    """Start (or attach to) one workflow per request."""
    started = []
    with_attributes = True
    for request in requests:
        wid = workflow_id(request.recipe, request.key)
        try:
            try:
                handle = await _start(
                    client, request, task_queue=task_queue, with_attributes=with_attributes
                )
            except RPCError as exc:
                # A server without our search attributes registered: run without them.
                if not with_attributes or exc.status != RPCStatusCode.INVALID_ARGUMENT:
                    raise
                with_attributes = False
                handle = await _start(client, request, task_queue=task_queue, with_attributes=False)
        except WorkflowAlreadyStartedError:
            # Finished already with this key: attach to that run's result.
            attached: WorkflowHandle[VerifyRecipe, VerifyResult] = client.get_workflow_handle(
                wid, result_type=VerifyResult
            )
            started.append((Submitted(request.recipe, wid, None, True), attached))
            continue
        # USE_EXISTING returns the running workflow's run id: compare with a fresh start
        # is not possible, so "attached" is only known for finished ones.
        started.append((Submitted(request.recipe, wid, handle.result_run_id, False), handle))
    return started


async def results(
    handles: Sequence[tuple[Submitted, WorkflowHandle[VerifyRecipe, VerifyResult]]],
) -> AsyncIterator[tuple[Submitted, VerifyResult]]:
    """Each workflow's result, in the order they finish."""

    async def one(
        sub: Submitted, handle: WorkflowHandle[VerifyRecipe, VerifyResult]
    ) -> tuple[Submitted, VerifyResult]:
        try:
            return sub, await handle.result()
        except (WorkflowFailureError, RPCError) as exc:  # failed, terminated, timed out
            return sub, VerifyResult(
                recipe=sub.recipe,
                verdict="error",
                exit_code=2,
                bundle=None,
                worker=None,
                attempts=0,
                bundles=[],
                error=f"workflow {sub.workflow_id!r}: {exc}",
            )

    for next_done in asyncio.as_completed([one(sub, handle) for sub, handle in handles]):
        yield await next_done
