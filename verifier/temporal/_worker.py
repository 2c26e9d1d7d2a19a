"""``verifier worker``: a Temporal worker that runs verifications, at most N at once.

SIGTERM or SIGINT shuts it down gracefully: it stops taking work, lets running runs
finish for ``grace`` seconds, then stops them (each tears down and finalizes its bundle)
and hands them back to the server, which retries them on another worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from verifier.temporal._activity import RunActivity
from verifier.temporal._workflow import VerifyRecipe

__all__ = ("WorkerOptions", "serve_worker")

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    target: str
    task_queue: str
    namespace: str = "default"
    jobs: int = 1
    out: Path = Path("artifacts")
    workdir: Path = Path(".")
    grace: float = 30.0
    identity: str | None = None


def default_identity(task_queue: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}@{task_queue}"


async def serve_worker(options: WorkerOptions, *, ready: asyncio.Event | None = None) -> None:
    """Run the worker until SIGTERM/SIGINT, then shut down gracefully."""
    identity = options.identity or default_identity(options.task_queue)
    client = await Client.connect(options.target, namespace=options.namespace, identity=identity)
    runs = RunActivity(
        workdir=options.workdir.resolve(), out=options.out.resolve(), identity=identity
    )
    worker = Worker(
        client,
        task_queue=options.task_queue,
        workflows=[VerifyRecipe],
        # The workflow module is deterministic, but importing it imports the verifier
        # package (Playwright, numpy...), which has no business being re-imported in
        # the sandbox: pass it through.
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("verifier")
        ),
        activities=[runs.run],
        max_concurrent_activities=options.jobs,
        graceful_shutdown_timeout=timedelta(seconds=options.grace),
        identity=identity,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        running = asyncio.ensure_future(worker.run())
        _log.info("worker %s polling %s on %s", identity, options.task_queue, options.target)
        if ready is not None:
            ready.set()
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            _log.info("worker %s: shutting down (grace %.0f s)", identity, options.grace)
            await worker.shutdown()
        stopping.cancel()
        await running  # re-raises a fatal worker error
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
