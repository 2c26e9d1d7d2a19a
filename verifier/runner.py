"""One run of a recipe: its steps, one after another, on the stage, with evidence.

The :class:`~verifier.stage.Stage` sets up and tears down what the run stands on (display,
app, video, browser, bundle, signals, log); this module runs the steps on it, captures a
settled screenshot after each, and turns how they ended into the verdict.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from playwright.sync_api import Error as PlaywrightError

from verifier._types import Image
from verifier.browser import DIALOG_PAINT_S
from verifier.errors import CheckFailed, Interrupted, RecipeError, VerifierError
from verifier.evidence import (
    AttemptRecord,
    StepRecord,
    StepStatus,
    Verdict,
    mark_points,
    new_step_record,
)
from verifier.live import LiveOptions
from verifier.recipe import Recipe, Step, load_recipe
from verifier.result import EXIT_CODES as _EXIT
from verifier.result import RunResult, RunVerdict
from verifier.rig import Rig
from verifier.stage import Begun, Stage, error_info
from verifier.steps import SETTLING, StepContext, StepOutcome, run_step
from verifier.suite import Suite

__all__ = ("RunResult", "RunVerdict", "recipe_files", "run_attempts", "run_recipe")

_log = logging.getLogger(__name__)

_SNAPSHOT_S = 2.0  # how long a page may take to give its aria snapshot
_SNAPSHOT_BYTES = 1_000_000


def _pending(step: Step) -> StepRecord:
    return new_step_record(step.index, step.action, step.target, "skipped")


class _Run:
    """The steps of one run, on its stage, while they go."""

    def __init__(self, recipe: Recipe, stage: Stage, *, update_baselines: bool) -> None:
        self.recipe = recipe
        self.stage = stage
        self.bundle = stage.bundle
        self.update_baselines = update_baselines
        # One entry per recipe step from the start, each recorded as an agent's action is.
        self.steps = stage.step_log([_pending(s) for s in recipe.steps])
        self.records = self.steps.records
        self.verdict: Verdict = "passed"
        self.failed_step: int | None = None

    def capture(
        self,
        step: Step,
        suffix: str,
        outcome: StepOutcome,
        started: float,
        *,
        ended: bool,
    ) -> tuple[list[str], str | None]:
        """Screenshot after a step, plus a marked copy when it acted at screen points, and
        the page's aria snapshot then (when it ``ended`` as a step does, passed or
        failed; not after an error or a signal, when the browser may not answer at all).

        The screen is grabbed once the page has painted and the screen holds still (and
        shows the dialog the step opened, when it ended). The snapshot is asked while the
        screen is given its time to hold still, and asked again if the screen changed
        after it was asked: it is not older than the screenshot. When a dialog the step
        opened comes meanwhile, which holds the page, there is none. PNG encoding happens
        on the writer thread. Returns the bundle paths, the one to show first, and the
        snapshot's.
        """
        desktop, browser = self.stage.desktop, self.stage.browser
        if desktop is None:
            return [], None
        rel = self.bundle.screenshot_rel(step.index, step.action, suffix)
        snapshot: str | None = None
        try:
            page = None
            drew = True
            if browser is not None and browser.dead is None:
                page = browser.next_frame()
                drew = page is not None or browser.dialog is not None
            asked = time.monotonic()
            if ended and not drew:
                # Its scripts held it for a second (or its flood held up the news): it
                # would not give a snapshot in time either, and a run on a page that stops
                # answering ends seconds sooner.
                why = (
                    "the browser's news is behind"
                    if browser and browser.behind
                    else "the page drew no frame"
                )
                _log.info("no aria snapshot after step %d: %s", step.index + 1, why)
            elif ended:
                snapshot = self._aria_snapshot(step)
            # An action changes the page: wait until it holds still (the browser's own UI,
            # a tab's loading spinner say, may go on). A check changed nothing; the frame
            # it waited for is painted once one frame passes quietly.
            quiet = 0.035 if step.action in SETTLING else 0.017
            frame = desktop.wait_stable(quiet=quiet, region=page, since=started)
            dialog = browser.new_dialog(started) if browser is not None and ended else None
            if dialog is not None:  # the step opened it: the screenshot shows it
                frame = desktop.wait_stable(quiet=DIALOG_PAINT_S, since=dialog.opened)
                if dialog.opened >= asked:
                    # The page may have changed before it opened the dialog, which now
                    # holds it: a snapshot asked before would contradict the screenshot.
                    snapshot = None
            elif snapshot is not None and desktop.changed_since(asked, page):
                snapshot = self._aria_snapshot(step)
        except VerifierError as exc:
            _log.warning("screenshot after step %d failed: %s", step.index, exc)
            return [], self._write_snapshot(step, snapshot)
        paths = [rel]
        self.stage.shots.write(self.bundle.path(rel), frame)
        if outcome.points:
            marked = self.bundle.screenshot_rel(
                step.index, step.action, f"{suffix}-marked" if suffix else "marked"
            )
            draw = functools.partial(mark_points, frame, outcome.points, path=outcome.path)
            self.stage.shots.write(self.bundle.path(marked), draw)
            paths.insert(0, marked)
        return paths, self._write_snapshot(step, snapshot)

    def _aria_snapshot(self, step: Step) -> str | None:
        """The page's aria snapshot now (the tab in front, redacted), or None when the
        page did not give one in time (a dialog holds it, its scripts do not yield)."""
        browser = self.stage.browser
        if browser is None or browser.dead is not None or browser.dialog is not None:
            return None
        try:
            text = browser.ask(
                lambda page: page.locator(":root").aria_snapshot(timeout=_SNAPSHOT_S * 1000),
                within=_SNAPSHOT_S + 1,
            )
        except (VerifierError, PlaywrightError) as exc:
            _log.info("no aria snapshot after step %d: %s", step.index + 1, exc)
            return None
        return self.stage.redactor.text(text)

    def _write_snapshot(self, step: Step, text: str | None) -> str | None:
        """``text`` (cut at ``_SNAPSHOT_BYTES``) written to the bundle; its path."""
        if text is None:
            return None
        data = text.encode("utf-8", "replace")
        if len(data) > _SNAPSHOT_BYTES:
            cut = data[:_SNAPSHOT_BYTES].decode("utf-8", "ignore")
            data = f"{cut}\n# ... cut: {len(data):,} bytes in all\n".encode()
        rel = self.bundle.snapshot_rel(step.index, step.action)
        path = self.bundle.path(rel)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        self.bundle.add_artifact(rel, "snapshot")
        return rel

    def run_steps(self) -> None:
        stage = self.stage
        assert stage.desktop is not None and stage.browser is not None
        ctx = StepContext(
            desktop=stage.desktop,
            browser=stage.browser,
            base_url=stage.base_url,
            recipe_path=self.recipe.path,
            update_baselines=self.update_baselines,
            infra_check=stage.check_alive,
            allow_file_urls=self.recipe.allow_file_urls,
            services=stage.services,
            downloads_dir=self.bundle.path("downloads"),
        )
        browser = stage.browser
        browser.hold_dialogs = True  # on screen until input or a dialog step answers them
        for step in self.recipe.steps:
            record = self.records[step.index]
            ctx.attach_fn = functools.partial(self._attach, step, record)
            begun = self.steps.begin(record)
            outcome = StepOutcome()
            try:
                outcome = run_step(ctx, step)
            except CheckFailed as exc:
                self.steps.acted(begun)
                if exc.details:
                    record["details"] = exc.details
                message = "; ".join([exc.message, *(f"note: {n}" for n in stage.notes)])
                self._step_ended(step, begun, "failed", message, "failed", outcome)
                stage.check_alive()  # a dead app or browser explains the failure: error
                self.verdict = "failed"
                self.failed_step = step.index
                return
            except (VerifierError, Interrupted) as exc:
                self.steps.acted(begun, events=isinstance(exc, VerifierError))
                self._step_ended(step, begun, "error", exc.message, "error", outcome)
                raise
            self.steps.acted(begun)
            record["points"] = [list(p) for p in outcome.points]
            if outcome.details:
                record["details"] = outcome.details
            self._step_ended(step, begun, "passed", None, outcome.label, outcome)
            stage.check_alive()

    def _attach(self, step: Step, record: StepRecord, name: str, image: Image) -> str:
        rel = self.bundle.screenshot_rel(step.index, step.action, name)
        self.stage.shots.write(self.bundle.path(rel), image)
        record.setdefault("attachments", []).append({"name": name, "path": rel})
        return rel

    def _step_ended(
        self,
        step: Step,
        begun: Begun,
        status: StepStatus,
        error: str | None,
        suffix: str,
        outcome: StepOutcome,
    ) -> None:
        """The step's settled screenshot and aria snapshot, then its end."""
        record = begun.record
        ended = status != "error"  # after an error the page may not answer at all
        shots, snapshot = self.capture(step, suffix, outcome, begun.started, ended=ended)
        if shots:
            record["screenshot"] = shots[0]
            record["raw_screenshot"] = shots[-1]
            record["screenshots"].extend(shots)
        if ended:
            record["snapshot"] = snapshot
        self.steps.ended(begun, status, error)

    def running_step(self) -> int | None:
        """The step that ended the run (failed, or was running when it broke)."""
        for record in self.records:
            if record["status"] in ("error", "failed"):
                return record["index"]
        return None


def recipe_files(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], list[Path]]:
    """What the recipes at ``paths`` read as they run (themselves, their baselines,
    pictures, uploads, environment files), and the saved logins they load or save: one
    recipe's app must not change what another will read, nor see its logins."""
    inputs: list[Path] = []
    private: list[Path] = []
    for path in map(Path, paths):
        try:
            recipe = load_recipe(path)
        except RecipeError:
            inputs += [path, path.with_name(f"{path.stem}.baselines")]  # it fails on its own
            continue
        inputs += recipe.inputs()
        private += recipe.private_files()
    return inputs, private


def run_recipe(
    recipe: str | os.PathLike[str] | Recipe,
    *,
    out: str | os.PathLike[str] = "artifacts",
    display: str | None = None,
    video: bool | None = None,
    update_baselines: bool = False,
    network: str | None = None,
    live: LiveOptions | None = None,
    protect: Sequence[Path] = (),
    private: Sequence[Path] = (),
    previous: Sequence[AttemptRecord] = (),
    will_retry: bool = False,
    rig: Rig | None = None,
    suite: Suite | None = None,
) -> RunResult:
    """Run a recipe on a desktop and write its evidence bundle under ``out/<run-id>/``.

    :param recipe: a recipe file path, or a loaded :class:`Recipe`.
    :param out: the folder that receives the bundle.
    :param display: attach to this X display (``":0"``) instead of starting Xvfb.
    :param video: record the screen (default: the recipe's ``video``).
    :param update_baselines: (re)write screenshot baselines instead of comparing.
    :param network: ``"loopback"`` confines the app and browser to loopback (default: the
        recipe's ``network``).
    :param live: serve a live view of the desktop while it runs (see ``verifier.live``).
    :param protect: more files the app may read but not change (see :func:`recipe_files`).
    :param private: more files the app must not see.
    :param previous: the earlier attempts of this recipe, when this run is a retry (see
        :func:`run_attempts`): listed in the manifest's ``attempts``, this one last.
    :param will_retry: a run that does not pass will be run again: its bundle says so
        (``retried``) and writes no junit.xml (the last attempt's reports the test).
    :param rig: a warm desktop to run on (see ``verifier.rig``), instead of starting one.
    :param suite: the desktop, browser and app start shared with the recipes run before
        and after this one (see ``verifier.suite``).
    :returns: the verdict, exit code and bundle path.
    :raises RecipeError: the recipe is invalid (no bundle is written).
    :raises Interrupted: on SIGINT/SIGTERM, after teardown; ``details["bundle"]`` says where.
    """
    loaded = recipe if isinstance(recipe, Recipe) else load_recipe(Path(recipe))
    stage = Stage(
        loaded,
        out=out,
        display=display,
        video=video,
        network=network,
        live=live,
        protect=protect,
        private=private,
        rig=rig,
        suite=suite,
    )
    bundle = stage.bundle
    run = _Run(loaded, stage, update_baselines=update_baselines)
    this = AttemptRecord(
        attempt=len(previous) + 1,
        run_id=bundle.run_id,
        bundle=str(bundle.root),
        verdict=None,
        exit_code=None,
        failed_step=None,
        error=None,
    )
    if previous:
        bundle.manifest["attempts"] = [*previous, this]
    interrupted: Interrupted | None = None
    crash: Exception | None = None
    error = None
    with stage:
        _log.info("run %s: %s", bundle.run_id, loaded.name)
        try:
            try:
                stage.start()
                run.run_steps()
                stage.start_preview()
            finally:
                stage.close()
        except Interrupted as exc:
            interrupted = exc
        except KeyboardInterrupt:
            interrupted = Interrupted(signal.SIGINT)
        except VerifierError as exc:
            run.verdict, error = "error", error_info(exc, run.running_step())
        except Exception as exc:  # noqa: BLE001 - a bug of ours: leave the bundle, then re-raise
            crash = exc
            run.verdict, error = "error", error_info(exc, run.running_step())
            _log.exception("internal error")
        if interrupted is not None:
            run.verdict, error = "error", error_info(interrupted, run.running_step())
        _log.info("run %s: %s", bundle.run_id, run.verdict)
        failed_msg = run.records[run.failed_step]["error"] if run.failed_step is not None else None
        this["verdict"], this["exit_code"] = run.verdict, _EXIT[run.verdict]
        this["failed_step"] = run.failed_step if run.verdict == "failed" else run.running_step()
        this["error"] = stage.redactor.text(error["message"] if error else failed_msg or "") or None
        if previous:
            bundle.manifest["flaky"] = run.verdict == "passed"
        if will_retry and run.verdict != "passed":
            bundle.manifest["retried"] = True
        stage.finish(run.verdict, error)
    if crash is not None:
        raise crash
    if interrupted is not None:
        interrupted.details["bundle"] = str(bundle.root)
        raise interrupted
    return RunResult(
        recipe=str(loaded.path or loaded.name),
        verdict="flaky" if previous and run.verdict == "passed" else run.verdict,
        bundle=bundle.root,
        exit_code=_EXIT[run.verdict],
        failed_step=this["failed_step"],
        error=this["error"],
        attempts=(*previous, this),
    )


def run_attempts(
    recipe: str | os.PathLike[str] | Recipe,
    *,
    retries: int = 0,
    rig: Rig | None = None,
    suite: Suite | None = None,
    **options: Any,
) -> RunResult:
    """:func:`run_recipe`, and again while it fails or cannot verify, up to ``retries``
    more times. A pass after a failure is ``flaky`` (exit 0); otherwise the last attempt's
    verdict stands. Every attempt keeps its bundle; the last lists them all.

    ``options`` are :func:`run_recipe`'s. An invalid recipe or an interruption is not
    retried (it raises as :func:`run_recipe` does). A ``rig`` serves the first attempt
    only (and is stopped before a retry, which starts a desktop and an app anew: its
    driver is of this thread); in a ``suite``, a retry starts them anew and the suite
    goes on with them.
    """
    loaded = recipe if isinstance(recipe, Recipe) else load_recipe(Path(recipe))
    previous: list[AttemptRecord] = []
    while True:
        if previous and rig is not None:
            rig.close()
        if previous and suite is not None:
            suite.close()  # a retry starts anew: the suite's next desktop and app are its
        result = run_recipe(
            loaded,
            previous=previous,
            will_retry=len(previous) < retries,
            rig=None if previous else rig,
            suite=suite,
            **options,
        )
        if result.verdict in ("passed", "flaky") or len(previous) >= retries:
            return result
        previous = list(result.attempts)
        _log.info("%s: attempt %d %s; retrying", loaded.name, len(previous), result.verdict)
