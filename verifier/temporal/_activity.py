"""The activity: one attempt of ``python3 -m verifier run`` in a subprocess, heartbeating.

Why a subprocess: ``run_recipe`` must own the main thread of its process (signal
handlers, PR_SET_PDEATHSIG, Playwright's sync API), and a run that crashes must not take
the worker down. The subprocess

* gets ``PR_SET_PDEATHSIG(SIGTERM)`` from the worker's main thread (the event loop's,
  which lives as long as the worker), so a SIGKILLed worker still stops its runs, and the
  run's own watchdog stops what the run started;
* starts its own session, so a Ctrl-C on the worker's terminal reaches only the worker,
  which then stops its runs in order;
* writes its bundle under the worker's ``--out``; the manifest names the process that
  writes it, which is how the activity finds the bundle while the run is going and puts
  it in its heartbeat details, for the next attempt to list if this worker dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from verifier._process import die_with_parent
from verifier.errors import BundleError
from verifier.evidence import read_manifest
from verifier.result import RunResult
from verifier.temporal._workflow import (
    ACTIVITY_NAME,
    AttemptOutcome,
    Verdict,
    VerifyRequest,
    bundles_in,
)

__all__ = ("RunActivity",)

_log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 2.0
_VERDICTS: dict[int, Verdict] = {0: "passed", 1: "failed", 2: "error"}
# How long a stopped run may take to tear down (browser, recorder, app, display).
_STOP_GRACE = 15.0


def _find_bundle(out: Path, pid: int, known: set[str]) -> Path | None:
    """The bundle under ``out`` whose manifest says process ``pid`` writes it."""
    try:
        entries = list(out.iterdir())
    except OSError:
        return None
    for entry in entries:
        if entry.name in known:
            continue
        try:
            data = read_manifest(entry)
        except BundleError:
            continue  # not a bundle, or its manifest is not written yet: look again later
        runner = data.get("runner")
        if isinstance(runner, dict) and runner.get("pid") == pid:
            return entry.resolve()
        known.add(entry.name)
    return None


def _steps_started(bundle: Path | None) -> int | None:
    """How far the run got, for the heartbeat details the Temporal UI shows."""
    if bundle is None:
        return None
    try:
        steps = read_manifest(bundle)["steps"]
        return sum(1 for step in steps if step.get("started_at"))
    except (BundleError, KeyError, TypeError, AttributeError):
        return None  # mid-rewrite or not a manifest we know: the next beat tells


def _how(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with {code} without a verdict"


def _with(bundles: list[str], bundle: Path | None) -> list[str]:
    return [*bundles, str(bundle)] if bundle is not None else list(bundles)


@dataclass(slots=True)
class RunActivity:
    """The activity with the worker's settings: where recipes are and bundles go."""

    workdir: Path
    out: Path
    identity: str

    def argv(self, request: VerifyRequest) -> list[str]:
        # -P: the current folder (an app's checkout, where it may have put a package
        # named verifier) is not put first on sys.path.
        argv = [
            sys.executable,
            "-P",
            "-m",
            "verifier",
            "run",
            request.recipe,
            "--out",
            str(self.out),
        ]
        argv.append("--json")
        if request.no_video:
            argv.append("--no-video")
        return argv

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        package_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
        return env

    @activity.defn(name=ACTIVITY_NAME)
    async def run(self, request: VerifyRequest) -> AttemptOutcome:
        info = activity.info()
        interrupted = bundles_in(info.heartbeat_details)
        self.out.mkdir(parents=True, exist_ok=True)
        known = {entry.name for entry in self.out.iterdir()}
        proc = await asyncio.create_subprocess_exec(
            *self.argv(request),
            cwd=self.workdir,
            env=self.env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        _log.info(
            "attempt %d of %s: %s (pid %d)",
            info.attempt,
            info.workflow_id,
            request.recipe,
            proc.pid,
        )
        talk = asyncio.ensure_future(proc.communicate())
        bundle: Path | None = None
        try:
            # Look for the bundle often at first and hold the first heartbeat until it is
            # found (or a few seconds passed): the SDK sends the first heartbeat at once
            # and throttles the next ones to a fraction of the heartbeat timeout.
            loop = asyncio.get_running_loop()
            started, last_beat, beat_bundle = loop.time(), -1.0, False
            while not talk.done():
                if bundle is None:
                    bundle = _find_bundle(self.out, proc.pid, known)
                now = loop.time()
                due = now - last_beat >= HEARTBEAT_EVERY if last_beat >= 0 else now - started >= 3
                if due or (bundle is not None and not beat_bundle):
                    activity.heartbeat(
                        {
                            "bundles": _with(interrupted, bundle),
                            "worker": self.identity,
                            "steps_started": _steps_started(bundle),
                        }
                    )
                    last_beat, beat_bundle = now, bundle is not None
                await asyncio.wait({talk}, timeout=HEARTBEAT_EVERY if beat_bundle else 0.2)
        except asyncio.CancelledError:
            await self._stop(proc, talk)
            if activity.is_worker_shutdown():
                # Hand the run back: a failure is retried on another worker.
                msg = f"worker {self.identity} shut down during the run"
                details = {"bundles": _with(interrupted, bundle)}
                raise ApplicationError(
                    msg,
                    details,
                    type="WorkerShutdown",
                    category=ApplicationErrorCategory.BENIGN,  # expected: no traceback in logs
                ) from None
            raise
        stdout, stderr = talk.result()
        bundle = bundle or _find_bundle(self.out, proc.pid, known)
        return self._outcome(proc.returncode, stdout, stderr, bundle, interrupted)

    async def _stop(self, proc: asyncio.subprocess.Process, talk: asyncio.Future[Any]) -> None:
        """SIGTERM the run (it tears down and finalizes its bundle), SIGKILL if it hangs."""
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        done, _ = await asyncio.wait({talk}, timeout=_STOP_GRACE)
        if not done:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.wait({talk})

    def _outcome(
        self,
        code: int | None,
        stdout: bytes,
        stderr: bytes,
        bundle: Path | None,
        interrupted: list[str],
    ) -> AttemptOutcome:
        report: RunResult | None = None
        for line in reversed(stdout.decode("utf-8", "replace").splitlines()):
            with contextlib.suppress(ValueError):
                report = RunResult.from_json(json.loads(line))
                break
        verdict = _VERDICTS.get(code if code is not None else -1)
        if verdict is None or report is None:
            tail = stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
            msg = f"verifier run {_how(code)} on {self.identity}: " + " | ".join(tail)
            # Not a verdict (killed, crashed, out of memory): let the retry policy act.
            details = {"bundles": _with(interrupted, bundle)}
            raise ApplicationError(msg, details, type="RunCrashed")
        found = report.bundle or bundle
        return AttemptOutcome(
            verdict=verdict,
            exit_code=code if code is not None else 2,
            bundle=str(found) if found else None,
            worker=self.identity,
            attempt=activity.info().attempt,
            failed_step=report.failed_step,
            error=report.error,
            interrupted=interrupted,
        )
