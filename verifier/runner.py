"""One run, start to finish: the only place that wires recipe, desktop, app, browser,
steps and evidence together.

Teardown is LIFO on every path (pass, fail, error, Ctrl-C, SIGTERM): browser, dev server,
display. The bundle is written as the run goes, so a crash leaves what was captured.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import platform
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TypeVar

from verifier import __version__
from verifier._netns import loopback_only
from verifier._process import become_subreaper
from verifier._redact import NO_SECRETS, Redactor
from verifier.app import DevServer
from verifier.browser import Browser, start_playwright, stop_playwright
from verifier.desktop import Desktop, Frame, downscale, save_png
from verifier.errors import CheckFailed, Interrupted, VerifierError, message_of
from verifier.evidence import BundleWriter, ErrorInfo, StepRecord, Verdict, utc_now
from verifier.evidence._manifest import new_step_record
from verifier.evidence._marks import mark_points
from verifier.recipe import Recipe, Step, load_recipe
from verifier.recorder import Recorder
from verifier.steps import StepContext, StepOutcome, run_step

__all__ = ("RunResult", "raise_on_signals", "run_recipe")

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

_EXIT = {"passed": 0, "failed": 1, "error": 2}
# Steps that change what is on screen (the others only look).
# Steps whose screenshot waits for the page to hold still over two frames (a check's waits
# for one): actions, and the screenshot step, which is there to show a settled page.
_SETTLING = frozenset(
    {"goto", "click", "double_click", "drag", "hover", "type", "press", "scroll", "screenshot"}
)


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended, and where its evidence is."""

    recipe: str
    verdict: Verdict
    bundle: Path | None
    exit_code: int
    failed_step: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "recipe": self.recipe,
            "verdict": self.verdict,
            "bundle": str(self.bundle) if self.bundle else None,
            "exit_code": self.exit_code,
            "failed_step": self.failed_step,
            "error": self.error,
        }


@contextlib.contextmanager
def raise_on_signals() -> Iterator[None]:
    """Turn the first SIGINT/SIGTERM into Interrupted; ignore repeats during teardown."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        if fired:
            _log.warning("%s again: still tearing down", signal.Signals(signum).name)
            return
        fired.append(signum)
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, prev in previous.items():
            signal.signal(sig, prev)


class _RedactFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redactor.text(record.getMessage())
        record.args = None
        return True


@contextlib.contextmanager
def _run_log(path: Path, redactor: Redactor) -> Iterator[None]:
    """Send verifier's log records, and Playwright's, to the bundle's logs/verifier.log,
    redacted. Playwright logs an error in its event dispatch (say, once a signal cut a
    message short) and, with no handler, Python would print it to stderr, which holds the
    run's one-line verdict."""
    handler = logging.FileHandler(path, encoding="utf-8")
    if redactor:
        handler.addFilter(_RedactFilter(redactor))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    ours = logging.getLogger("verifier")
    playwright = logging.getLogger("playwright")
    old_level = ours.level
    ours.addHandler(handler)
    playwright.addHandler(handler)
    if ours.level == logging.NOTSET or ours.level > logging.DEBUG:
        ours.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        ours.removeHandler(handler)
        playwright.removeHandler(handler)
        ours.setLevel(old_level)
        handler.close()


def _git_commit(where: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _pending(step: Step) -> StepRecord:
    return new_step_record(step.index, step.action, step.target, "skipped")


# Screenshots kept in memory, downscaled, for the preview GIF (~0.75 MB each): reading
# them back from PNG and scaling them took ~0.15 s of CPU in teardown. Past this many,
# the preview reads the rest from their files.
_PREVIEW_KEEP = 80
_PREVIEW_WIDTH = 640


class _ShotWriter:
    """Encodes screenshots to PNG on one background thread (cv2 releases the GIL), then,
    once the steps are done, the preview GIF from them while teardown goes on."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="verifier-png")
        self._pending: list[Future[Path]] = []
        self.written: list[Path] = []
        self.small: dict[Path, Frame] = {}  # for the preview, by path

    def write(
        self,
        frame: Frame,
        path: Path,
        points: list[tuple[int, int]] | None = None,
        path_mode: bool = False,
    ) -> None:
        def job() -> Path:
            image = mark_points(frame, points, path=path_mode) if points else frame
            saved = save_png(image, path)
            if len(self.small) < _PREVIEW_KEEP:
                self.small[saved] = downscale(image, _PREVIEW_WIDTH)
            return saved

        self._pending.append(self._pool.submit(job))

    def submit(self, job: Callable[[], _T]) -> Future[_T]:
        """Run ``job`` after every write submitted so far."""
        return self._pool.submit(job)

    def drain(self) -> list[Path]:
        """Wait for every pending write; the files written, in order."""
        for future in self._pending:
            try:
                self.written.append(future.result())
            except VerifierError as exc:
                _log.warning("screenshot not written: %s", exc)
        self._pending.clear()
        return self.written

    def close(self) -> None:
        self.drain()
        self._pool.shutdown(wait=True)


class _Run:
    """State of one run while it goes."""

    def __init__(
        self, recipe: Recipe, bundle: BundleWriter, display: str | None, video: bool
    ) -> None:
        self.recipe = recipe
        self.bundle = bundle
        self.display = display
        self.video = video
        self.records = [_pending(s) for s in recipe.steps]
        bundle.set_steps(self.records)  # one entry per recipe step from the start
        self.verdict: Verdict = "passed"
        self.error: ErrorInfo | None = None
        self.failed_step: int | None = None
        self.desktop: Desktop | None = None
        self.app: DevServer | None = None
        self.browser: Browser | None = None
        self.recorder: Recorder | None = None
        self.shots = _ShotWriter()
        self.preview: Callable[[], Path | None] | None = None
        self.update_baselines = False
        self.redactor = NO_SECRETS
        self.network = "host"

    def setup(self, stack: contextlib.ExitStack) -> None:
        """Start the desktop, app, recorder and browser, overlapping their waits.

        The dev server boots while the desktop and browser start, and ffmpeg grabs its
        first frame while Chromium launches. Every process is still spawned from this
        thread: PR_SET_PDEATHSIG follows the thread that forks, so a worker thread's exit
        would kill its children. Teardown ends the video, then closes the browser, the
        dev server and the display while the video is finalized, and waits for that.
        """
        logs = self.bundle.root / "logs"
        # Asked on the (still idle) writer thread while the desktop starts: git is a
        # subprocess, and platform() reads the Python binary for its libc version.
        git_commit = self.shots.submit(functools.partial(_git_commit, self.recipe.base_dir))
        host = self.shots.submit(platform.platform)
        # Registered first, so it runs last: the video's chapters and its check go on
        # while the browser, dev server and display close.
        stack.callback(self._stop_recorder)
        if self.recipe.app is not None:
            spec = self.recipe.app
            self.app = DevServer(
                spec.command,
                url=spec.url,
                cwd=(self.recipe.base_dir / spec.cwd).resolve(),
                env=spec.env,
                ready_timeout=spec.ready_timeout,
                log_path=logs / "app.log",
                redact=self.redactor.text if self.redactor else None,
            )
            self.app.launch()
        t0 = time.monotonic()
        desktop = Desktop(self.recipe.screen, display=self.display, log_dir=logs)
        try:
            # Playwright's driver needs no display: it starts while Xvfb comes up.
            desktop.launch()
            try:
                playwright = start_playwright()
            except BaseException:
                desktop.close()
                raise
            stack.callback(stop_playwright, playwright)
            driver_s = time.monotonic() - t0
            self.desktop = stack.enter_context(desktop)
        except BaseException:
            if self.app is not None:
                self.app.close()
            raise
        if self.app is not None:
            stack.callback(self.app.close)
        self.desktop.prepare_typing(self.recipe.typed_text())
        width, height = self.desktop.size
        self.bundle.set_setup(
            "desktop",
            {
                "display": self.desktop.display,
                "own_xvfb": self.display is None,
                "ready_s": round(time.monotonic() - t0, 3),
            },
        )
        self.bundle.set_environment(
            {
                "screen": f"{width}x{height}",
                "display": self.desktop.display,
                "verifier": __version__,
                "python": platform.python_version(),
                "platform": host.result(),
                "network": self.network,
                "git_commit": git_commit.result(),
            }
        )
        if self.video:
            spec_v = self.recipe.video
            self.recorder = Recorder(
                display=self.desktop.display,
                size=self.desktop.size,
                path=self.bundle.path("video.mp4"),
                log=logs / "ffmpeg.log",
                fps=spec_v.fps,
                crf=spec_v.crf,
            )
            stack.callback(self.recorder.end)  # before the display goes
            self.recorder.launch()
        t0 = time.monotonic()
        self.browser = stack.enter_context(
            Browser(
                display=self.desktop.display,
                screen=self.desktop.size,
                console_log=logs / "browser-console.jsonl",
                env=self.desktop.env,
                redact=self.redactor.text if self.redactor else None,
                playwright=playwright,
            )
        )
        if self.recorder is not None:
            # Teardown ends the video first, so it closes on the page, not on the browser
            # closing; ffmpeg finalizes while the browser closes.
            stack.callback(self.recorder.end)
        self.bundle.set_setup(
            "browser",
            {"ready_s": round(time.monotonic() - t0, 3), "driver_s": round(driver_s, 3)},
        )
        self.bundle.set_environment({"chromium": self.browser.version})
        if self.recorder is not None:
            self.recorder.wait_ready()
            self.bundle.set_setup("recorder", {"fps": self.recorder.fps, "crf": self.recorder.crf})
        if self.app is not None:
            self.app.wait_ready()
            self.bundle.set_setup(
                "app",
                {
                    "command": self.app.command,
                    "url": self.app.url,
                    "port": self.app.port,
                    "pid": self.app.pid,
                    "ready_s": round(self.app.ready_s or 0.0, 3),
                },
            )

    def _stop_recorder(self) -> None:
        if self.recorder is not None:
            self.recorder.stop()

    def check_infra(self) -> None:
        """Raise if something the run stands on has died (exit 2, not a failed check)."""
        for part in (self.desktop, self.app, self.recorder, self.browser):
            if part is not None:
                part.check_alive()

    def capture(self, step: Step, suffix: str, outcome: StepOutcome, started: float) -> list[str]:
        """Screenshot after a step, plus a marked copy when it acted at screen points.

        The screen is grabbed here, once the page has painted and the screen holds still;
        PNG encoding happens on the writer thread. Returns the bundle paths, the one to
        show first.
        """
        if self.desktop is None:
            return []
        rel = self.bundle.screenshot_rel(step.index, step.action, suffix)
        try:
            page = None
            if self.browser is not None and self.browser.dead is None:
                page = self.browser.next_frame()
            # An action changes the page: wait until it holds still (the browser's own UI,
            # a tab's loading spinner say, may go on). A check changed nothing; the frame
            # it waited for is painted once one frame passes quietly.
            quiet = 0.035 if step.action in _SETTLING else 0.017
            frame = self.desktop.wait_stable(quiet=quiet, region=page, since=started)
        except VerifierError as exc:
            _log.warning("screenshot after step %d failed: %s", step.index, exc)
            return []
        paths = [rel]
        self.shots.write(frame, self.bundle.path(rel))
        if outcome.points:
            marked = self.bundle.screenshot_rel(
                step.index, step.action, f"{suffix}-marked" if suffix else "marked"
            )
            self.shots.write(frame, self.bundle.path(marked), outcome.points, outcome.path)
            paths.insert(0, marked)
        return paths

    def finish_evidence(self) -> None:
        """After teardown: list the screenshots and the finalized video (if playable)."""
        for path in self.shots.drain():
            self.bundle.add_artifact(path.relative_to(self.bundle.root).as_posix(), "screenshot")
        self.shots.close()
        if self.recorder is None or self.recorder.info is None:
            return
        info = self.recorder.info
        self.bundle.add_artifact("video.mp4", "video")
        self.bundle.manifest["video"] = {
            "path": "video.mp4",
            "duration_s": round(info.duration_s, 3),
            "fps": self.recorder.fps,
            "codec": info.codec,
            "pix_fmt": info.pix_fmt,
            "chapters": len(info.chapters),
        }

    def start_preview(self) -> None:
        """Render preview.gif on the writer thread while teardown goes on (about 0.25 s
        that would otherwise follow it); the steps are final by now."""
        self.preview = self.shots.submit(self.bundle.preview_job(self.shots.small)).result

    def run_steps(self) -> None:
        assert self.desktop is not None and self.browser is not None
        ctx = StepContext(
            desktop=self.desktop,
            browser=self.browser,
            base_url=self.app.url if self.app else self.recipe.url,
            recipe_path=self.recipe.path,
            update_baselines=self.update_baselines,
            infra_check=self.check_infra,
        )
        for step in self.recipe.steps:
            record = self.records[step.index]
            ctx.attach_fn = functools.partial(self._attach, step, record)
            record["started_at"] = utc_now()
            record["status"] = "error"  # until it ends: a crash mid-step reads as error
            if self.recorder is not None:
                title = f"{step.index + 1}. {step.action} {step.target}".strip()
                record["video_offset_s"] = self.recorder.chapter(title)
            self.bundle.set_steps(self.records)
            t0 = time.monotonic()
            outcome = StepOutcome()
            try:
                outcome = run_step(ctx, step)
            except CheckFailed as exc:
                record["duration_ms"] = round((time.monotonic() - t0) * 1000, 1)
                if exc.details:
                    record["details"] = exc.details
                self._step_ended(step, record, "failed", exc.message, "failed", outcome, t0)
                self.check_infra()  # a dead app or browser explains the failure: error
                self.verdict = "failed"
                self.failed_step = step.index
                return
            except (VerifierError, Interrupted) as exc:
                record["duration_ms"] = round((time.monotonic() - t0) * 1000, 1)
                self._step_ended(step, record, "error", exc.message, "error", outcome, t0)
                raise
            record["duration_ms"] = round((time.monotonic() - t0) * 1000, 1)
            record["points"] = [list(p) for p in outcome.points]
            if outcome.details:
                record["details"] = outcome.details
            self._step_ended(step, record, "passed", None, outcome.label, outcome, t0)
            self.check_infra()

    def _attach(self, step: Step, record: StepRecord, name: str, image: Frame) -> str:
        rel = self.bundle.screenshot_rel(step.index, step.action, name)
        self.shots.write(image, self.bundle.path(rel))
        record.setdefault("attachments", []).append({"name": name, "path": rel})
        return rel

    def _step_ended(
        self,
        step: Step,
        record: StepRecord,
        status: str,
        error: str | None,
        suffix: str,
        outcome: StepOutcome,
        started: float,
    ) -> None:
        record["status"] = status  # type: ignore[typeddict-item]
        record["error"] = error
        shots = self.capture(step, suffix, outcome, started)
        if shots:
            record["screenshot"] = shots[0]
            record["raw_screenshot"] = shots[-1]
            record["screenshots"].extend(shots)
        self.bundle.set_steps(self.records)
        _log.info(
            "step %d %s %r: %s%s",
            step.index + 1,
            step.action,
            step.target,
            status,
            f" ({error})" if error else "",
        )


def _error_info(exc: BaseException, step: int | None) -> ErrorInfo:
    return {"type": type(exc).__name__, "message": message_of(exc), "step": step}


def run_recipe(
    recipe: str | os.PathLike[str] | Recipe,
    *,
    out: str | os.PathLike[str] = "artifacts",
    display: str | None = None,
    video: bool | None = None,
    update_baselines: bool = False,
    network: str | None = None,
) -> RunResult:
    """Run a recipe on a desktop and write its evidence bundle under ``out/<run-id>/``.

    :param recipe: a recipe file path, or a loaded :class:`Recipe`.
    :param out: the folder that receives the bundle.
    :param display: attach to this X display (``":0"``) instead of starting Xvfb.
    :param video: record the screen (default: the recipe's ``video``).
    :param update_baselines: (re)write screenshot baselines instead of comparing.
    :param network: ``"loopback"`` confines the app and browser to loopback (default: the
        recipe's ``network``).
    :returns: the verdict, exit code and bundle path.
    :raises RecipeError: the recipe is invalid (no bundle is written).
    :raises Interrupted: on SIGINT/SIGTERM, after teardown; ``details["bundle"]`` says where.
    """
    loaded = recipe if isinstance(recipe, Recipe) else load_recipe(Path(recipe))
    become_subreaper()
    redactor = Redactor.collect(
        declared=loaded.secret_names,
        environ=os.environ,
        app_env=loaded.app.env if loaded.app else {},
    )
    bundle = BundleWriter(
        Path(out),
        recipe={
            "name": loaded.name,
            "path": str(loaded.path) if loaded.path else None,
            "sha256": loaded.sha256,
        },
        redact=redactor.obj if redactor else None,
    )
    run = _Run(loaded, bundle, display, loaded.video.enabled if video is None else video)
    run.update_baselines = update_baselines
    run.network = network or loaded.network
    run.redactor = redactor
    interrupted: Interrupted | None = None
    crash: Exception | None = None
    with raise_on_signals():
        with _run_log(bundle.root / "logs" / "verifier.log", redactor):
            _log.info("run %s: %s", bundle.run_id, loaded.name)
            try:
                with contextlib.ExitStack() as stack:
                    if run.network == "loopback":
                        stack.enter_context(loopback_only())
                    run.setup(stack)
                    run.run_steps()
                    run.start_preview()
            except Interrupted as exc:
                interrupted = exc
            except KeyboardInterrupt:
                interrupted = Interrupted(signal.SIGINT)
            except VerifierError as exc:
                run.verdict, run.error = "error", _error_info(exc, _running_step(run))
            except Exception as exc:  # a bug of ours: still leave the bundle, then re-raise
                crash = exc
                run.verdict, run.error = "error", _error_info(exc, _running_step(run))
                _log.exception("internal error")
            if interrupted is not None:
                run.verdict, run.error = "error", _error_info(interrupted, _running_step(run))
            run.finish_evidence()
            _log.info("run %s: %s", bundle.run_id, run.verdict)
        bundle.finish(run.verdict, run.error, preview=run.preview)
    if crash is not None:
        raise crash
    failed_msg = run.records[run.failed_step]["error"] if run.failed_step is not None else None
    if interrupted is not None:
        interrupted.details["bundle"] = str(bundle.root)
        raise interrupted
    return RunResult(
        recipe=str(loaded.path or loaded.name),
        verdict=run.verdict,
        bundle=bundle.root,
        exit_code=_EXIT[run.verdict],
        failed_step=run.failed_step if run.verdict == "failed" else _running_step(run),
        error=redactor.text(run.error["message"] if run.error else failed_msg or "") or None,
    )


def _running_step(run: _Run) -> int | None:
    for record in run.records:
        if record["status"] in ("error", "failed"):
            return record["index"]
    return None
