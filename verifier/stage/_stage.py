"""The stage: everything a run or an agent's session stands on, set up and torn down in
one place.

A :class:`Stage` owns, for one recipe: the redaction of its secrets, its evidence bundle,
the capture of verifier's log records into the bundle, SIGINT/SIGTERM, the network
namespace (``network: loopback``), the display, the app's dev server, the screen video,
Playwright's driver and the browser, and the background writer of screenshots. The
runner (``verifier run``) and the MCP session (``verifier mcp``) both stand on it; neither
constructs a desktop, a dev server, a recorder or a browser itself.

::

    stage = Stage(recipe, out=Path("artifacts"))   # the bundle exists from here on
    with stage:                                    # signals and log capture
        try:
            stage.start()                          # display, app, video, browser
            ...                                    # steps, or an agent's actions
        finally:
            stage.close()                          # teardown; screenshots and video listed
        stage.finish("passed", None)               # verdict, report, summary, JUnit

Every process is spawned from the calling thread, which must outlive them:
PR_SET_PDEATHSIG follows the thread that forks. Teardown is LIFO on every path: the video
ends on the page, then the browser closes, the dev server and the display stop while
ffmpeg finalizes the video, and the network namespace is left last.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import logging
import os
import platform
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from verifier import __version__
from verifier._git import git_commit
from verifier._netns import check_contained
from verifier._process import become_subreaper, scratch_moved
from verifier._redact import NO_SECRETS, Redactor
from verifier._signals import SignalGuard
from verifier._storage import load_state, read_state
from verifier.app import AppServices, Confinement
from verifier.browser import CHROMIUM, Browser, Chromium, start_playwright, stop_playwright
from verifier.desktop import Desktop
from verifier.errors import (
    BrowserError,
    BundleError,
    RecipeError,
    VerifierError,
    message_of,
)
from verifier.evidence import BundleWriter, ErrorInfo, StepRecord, Verdict
from verifier.evidence.text import write_text
from verifier.live import LiveOptions, LiveView, live_socket
from verifier.recipe import EnvironmentSpec, Recipe, load_recipe
from verifier.recorder import Recorder
from verifier.rig import Rig, enter_loopback
from verifier.stage._runlog import capture_logs
from verifier.stage._shots import ShotWriter
from verifier.stage._steps import StepLog
from verifier.suite import Suite

__all__ = (
    "ShotWriter",
    "Stage",
    "check_window_on",
    "error_info",
    "readable_recipes",
    "secrets_of",
    "secrets_of_all",
    "typed_text_of_all",
)

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


def secrets_of(recipe: Recipe, environ: Mapping[str, str]) -> Redactor:
    """What a run of ``recipe`` must never write: its declared and typed secrets, and
    the variables it hands its app whose names look secret.

    :raises RecipeError: a declared secret is too short to redact safely.
    """
    app_env: dict[str, str] = {}
    for service in recipe.services():
        app_env.update({n: environ[n] for n in service.pass_env if n in environ})
        app_env.update(service.env)
    return Redactor.collect(
        declared=recipe.secret_names,
        environ=environ,
        app_env=app_env,
        typed=recipe.typed_secrets,
    )


def readable_recipes(paths: Sequence[str | os.PathLike[str]]) -> list[Recipe]:
    """The recipes at ``paths`` that can be read (one that cannot fails on its own run)."""
    found = []
    for path in paths:
        try:
            found.append(load_recipe(Path(path)))
        except RecipeError:
            continue
    return found


def secrets_of_all(recipes: Sequence[Recipe], environ: Mapping[str, str]) -> Redactor:
    """The secrets of every recipe in ``recipes`` (one that declares a secret too short
    to redact fails on its own run and adds none)."""
    found = NO_SECRETS
    for recipe in recipes:
        try:
            found = found.joined(secrets_of(recipe, environ))
        except RecipeError:
            continue
    return found


def typed_text_of_all(recipes: Sequence[Recipe]) -> str:
    """What every recipe in ``recipes`` types (secrets read from the environment)."""
    return "".join(recipe.typed_text() for recipe in recipes)


def check_window_on(desktop: Desktop, browser: Browser, *, timeout: float = 5.0) -> set[int]:
    """Make sure ``browser``'s window is on ``desktop`` (a window there belongs to one of
    its processes); returns the browser's processes.

    :raises BrowserError: it is not, within ``timeout`` seconds: another X server may
        hold the display, and every screenshot would show something else.
    """
    pids = browser.pids
    if desktop.wait_windows(lambda ws: any(w.pid in pids for w in ws), timeout=timeout):
        return pids
    others = sorted({w.pid for w in desktop.windows() if w.pid} - pids)
    msg = (
        f"Chromium's window is not on display {desktop.display}: none of its processes "
        f"{sorted(pids)} shows a window there"
        + (f" (windows there belong to pids {others})" if others else "")
        + "; another X server may hold the display"
    )
    raise BrowserError(msg)


def error_info(exc: BaseException, step: int | None = None) -> ErrorInfo:
    """The manifest's ``error`` for ``exc`` (``step``: the 0-based step it ended)."""
    return {"type": type(exc).__name__, "message": message_of(exc), "step": step}


class _State(enum.Enum):
    CREATED = 1
    STARTED = 2
    CLOSED = 3
    FINISHED = 4


class Stage:
    """Everything one run or session stands on (see the module's docstring).

    :param recipe: what to start (its app, screen, video, network and secrets).
    :param out: the folder that receives the bundle (``out/<run-id>/``).
    :param display: attach to this X display instead of starting Xvfb.
    :param video: record the screen (default: the recipe's ``video``).
    :param network: ``"loopback"`` confines the app and the browser (default: the recipe's).
    :param title: the bundle's name for the recipe (default: the recipe's name).
    :param loggers: more loggers to capture into logs/verifier.log, with their levels.
    :param live: serve a live view of the display (x11vnc + noVNC, see ``verifier.live``).
    :param protect: more files the app may read but never change (the other recipes of
        the same command, and what they read).
    :param private: more files the app must not see (an MCP token file).
    :param rig: a warm desktop (``verifier.rig``) to take over instead of starting a
        display, a driver and a browser; its :meth:`~verifier.rig.Rig.refuses` said yes.
    :param suite: the recipes of one command share its desktop, browser and app start
        (``verifier.suite``): this stage borrows them, with a browser context of its own.
    :raises BundleError: the bundle folder cannot be created.
    """

    def __init__(
        self,
        recipe: Recipe,
        *,
        out: str | os.PathLike[str],
        display: str | None = None,
        video: bool | None = None,
        network: str | None = None,
        title: str | None = None,
        loggers: Mapping[str, int] | None = None,
        live: LiveOptions | None = None,
        protect: Sequence[Path] = (),
        private: Sequence[Path] = (),
        rig: Rig | None = None,
        suite: Suite | None = None,
    ) -> None:
        self.recipe = recipe
        self._rig = rig
        self._suite = suite
        self._protect = tuple(protect)
        self._private = tuple(private)
        self.display = display
        self.video = recipe.video.enabled if video is None else video
        self.network = network or recipe.network
        try:
            self.redactor = secrets_of(recipe, os.environ)
        except RecipeError as exc:
            msg = f"{recipe.path or recipe.name}: {exc.message}"
            raise RecipeError(msg) from None
        if suite is not None:  # an app shared with other recipes may repeat theirs
            self.redactor = self.redactor.joined(suite.secrets)
        redactor = self.redactor
        self.bundle = BundleWriter(
            Path(out),
            recipe={
                "name": title or recipe.name,
                "path": str(recipe.path) if recipe.path else None,
                "sha256": recipe.sha256,
            },
            redact=redactor.obj if redactor else None,
        )
        self.signals = SignalGuard()
        self.shots = ShotWriter(on_written=self._shot_written)
        self.desktop: Desktop | None = None
        self.app: AppServices | None = None
        # What may explain a failed check (a saved login on another host): said with it.
        self.notes: list[str] = []
        self.browser: Browser | None = None
        self.recorder: Recorder | None = None
        self.live: LiveView | None = None
        self._live = live
        self._levels = {"verifier": logging.DEBUG, "playwright": 0, **(loggers or {})}
        self._logs = contextlib.ExitStack()
        self._parts = contextlib.ExitStack()
        self._preview: Callable[[], Path | None] | None = None
        self._state = _State.CREATED

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Stage:
        """Guard the signals and capture the log; :meth:`start` starts the processes."""
        become_subreaper()
        self.signals.__enter__()
        self._logs.enter_context(
            capture_logs(self.bundle.root / "logs" / "verifier.log", self.redactor, self._levels)
        )
        return self

    def __exit__(self, *exc: object) -> None:
        """Tear down and write the bundle, as an ``error``, if :meth:`finish` was not
        called (an exception of the caller's): the bundle is never left unfinished."""
        try:
            if self._state is not _State.FINISHED:
                error = exc[1] if isinstance(exc[1], BaseException) else None
                self.close()
                unfinished = RuntimeError("the run ended before it wrote a verdict")
                self.finish("error", error_info(error or unfinished))
        finally:
            self._logs.close()
            self.signals.__exit__()

    def start(self) -> None:
        """Start the display, the app, the video and the browser, overlapping their waits.

        The dev server boots while the display and the browser start, and ffmpeg grabs
        its first frame while Chromium launches. What started is stopped by :meth:`close`,
        also when this raises.
        """
        if self._state is not _State.CREATED:
            msg = f"the stage of {self.recipe.name!r} was already started"
            raise VerifierError(msg)
        self._state = _State.STARTED
        state_path = self.recipe.storage_state_path
        if state_path is not None and not state_path.is_file():  # before starting anything
            read_state(state_path, recipe=self.recipe.path)
        stack = self._parts
        # The live view listens outside the network namespace: a person's browser is there.
        listen = stack.enter_context(live_socket()) if self._live is not None else None
        if self.network == "loopback" and self._suite is None:  # (a suite's desktop has one)
            if self._rig is not None:  # the rig's browser runs outside any namespace of ours
                msg = "a warm desktop cannot serve a network: loopback run"
                raise VerifierError(msg)
            enter_loopback(stack)
        logs = self.bundle.root / "logs"
        if (moved := scratch_moved()) is not None:
            _log.warning("%s", moved)
        # Asked on the (still idle) writer thread while the desktop starts: git is a
        # subprocess, and platform() reads the Python binary for its libc version.
        commit = self.shots.submit(functools.partial(git_commit, self.recipe.base_dir))
        host = self.shots.submit(platform.platform)
        # Registered first, so it runs last: the video's chapters and its check go on
        # while the browser, dev server and display close.
        stack.callback(self._stop_recorder)
        warm = self._rig.take() if self._rig is not None else None
        desktop: Desktop | None = None
        shared_by: str | None = None  # the run that started the suite's desktop
        if self._suite is not None:  # lent (once the app launched): given back, not stopped
            self._suite.prepare(self.recipe, network=self.network, display=self.display)
            stack.callback(self._give_back)
        elif warm is not None:  # the rig stops its parts once this run has answered
            desktop = warm.desktop
        else:
            desktop = Desktop(self.recipe.screen, display=self.display, log_dir=logs)
            stack.callback(desktop.close)  # after the dev server (registered later) stops
            # Xvfb (~60 ms to come up) while the app's sandbox is made (~50 ms).
            desktop.launch()
        if warm is not None and self.video:
            # Its display is up: ffmpeg (~0.15 s to its first frame) starts beside the app.
            self._launch_recorder(warm.desktop, logs)
        services = self.recipe.services()
        app_by: str | None = None  # the run that started the suite's app
        if services:
            environment = self.recipe.app if isinstance(self.recipe.app, EnvironmentSpec) else None
            url = environment.url if environment is not None else None
            ready_timeout = environment.ready_timeout if environment is not None else 60.0

            def make() -> AppServices:
                return AppServices(
                    services,
                    logs=logs,
                    redactor=self.redactor,
                    url=url,
                    ready_timeout=ready_timeout,
                    confinement=self._confinement(),
                )

            # The checkout's commit is read before the app can change its .git folders.
            commit.result()
            if self._suite is not None:  # started once for the recipes of equal app blocks
                self.app, app_by = self._suite.app(
                    (services, url, ready_timeout),
                    make,
                    run_id=self.bundle.run_id,
                    logs=logs,
                    redactor=self.redactor,
                    shareable=not self.recipe.private_files(),
                )
            else:
                self.app = make()
                stack.callback(self._stop_app)
                self.app.launch()
        t0 = time.monotonic()
        if self._suite is not None:
            warm, shared_by = self._suite.lend(run_id=self.bundle.run_id)
            desktop = warm.desktop
        # Playwright's driver needs no display: it starts while Xvfb comes up.
        if warm is not None:
            playwright = warm.playwright
        else:
            playwright = start_playwright()
            stack.callback(stop_playwright, playwright)
        driver_s = time.monotonic() - t0
        pooled = warm is not None and self._suite is None  # a pool's, taken over
        assert desktop is not None
        # openbox comes up while Chromium starts (below), which opens no window until
        # it is asked for one (a warm desktop's is managed already).
        self.desktop = desktop.start(managed=False)
        # Binding what the steps type makes every X client re-read the keymap: before
        # Chromium starts it costs nothing (a suite's desktop bound every recipe's then);
        # a running one (a warm desktop's) would hold its new window back while it reads,
        # so there it waits until the window is up and is read while the app gets ready.
        if warm is None:
            self.desktop.prepare_typing(self.recipe.typed_text())
        if self._live is not None:
            self._start_live(listen)
        width, height = self.desktop.size
        self.bundle.set_setup(
            "desktop",
            {
                "display": self.desktop.display,
                "own_xvfb": self.display is None,
                "ready_s": _since(t0),
                "warm": pooled,
                **({"warmed_s": warm.ready_s} if warm is not None else {}),
                **({"shared_with": shared_by} if shared_by is not None else {}),
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
                "git_commit": commit.result(),
            }
        )
        if self.video and self.recorder is None:
            self._launch_recorder(self.desktop, logs)
        storage = None
        if state_path is not None:
            loaded = load_state(state_path, services=self.services, recipe=self.recipe.path)
            storage = loaded.state
            self.notes += loaded.notes
            for note in loaded.notes:
                _log.warning("%s", note)
            self.bundle.set_setup(
                "storage_state",
                {"path": str(state_path), "origins": loaded.origins, "notes": loaded.notes},
            )
        t0 = time.monotonic()
        chromium = warm.chromium if warm is not None else None
        if chromium is None:
            chromium = Chromium(
                executable=CHROMIUM,
                display=self.desktop.display,
                env=self.desktop.env,
                file_urls=self.recipe.allow_file_urls,
            )
            stack.callback(chromium.close)
            chromium.launch(playwright)
        self.desktop.wait_managed()  # before the browser opens its window
        self.browser = stack.enter_context(
            Browser(
                display=self.desktop.display,
                screen=self.desktop.size,
                console_log=logs / "browser-console.jsonl",
                env=self.desktop.env,
                redact=self.redactor.text if self.redactor else None,
                playwright=playwright,
                storage_state=storage,
                file_urls=self.recipe.allow_file_urls,
                chromium=chromium,
                keep_chromium=warm is not None,  # the rig's: it closes it
            )
        )
        if self.recorder is not None:
            # Teardown ends the video first, so it closes on the page, not on the browser
            # closing; ffmpeg finalizes while the browser closes.
            stack.callback(self.recorder.end)
        self.bundle.set_setup(
            "browser",
            {
                "ready_s": _since(t0),
                "driver_s": round(driver_s, 3),
                "file_urls": self.browser.file_url_policy,
                "warm": pooled,
                **({"shared_with": shared_by} if shared_by is not None else {}),
            },
        )
        self.bundle.set_environment({"chromium": self.browser.version})
        if warm is not None:
            self.desktop.prepare_typing(self.recipe.typed_text())
        if self.recorder is not None:
            self.recorder.wait_ready()
            self.bundle.set_setup("recorder", {"fps": self.recorder.fps, "crf": self.recorder.crf})
        if self.app is not None:
            self.app.wait_ready()
            base = self.app.services[-1]
            self.bundle.set_setup(
                "app",
                {
                    "command": base.command,
                    "url": self.app.url,
                    "port": base.port,
                    "pid": base.pid,
                    "ready_s": round(self.app.ready_s or 0.0, 3),
                    "sandbox": base.sandbox,
                    "services": self.app.records(),
                    **({"shared_with": app_by} if app_by is not None else {}),
                },
            )
        self._check_placement()

    def _launch_recorder(self, desktop: Desktop, logs: Path) -> None:
        """Spawn the screen's video (its first frame is waited for before the steps)."""
        self.recorder = Recorder(
            display=desktop.display,
            size=desktop.size,
            path=self.bundle.path("video.mp4"),
            log=logs / "ffmpeg.log",
            fps=self.recipe.video.fps,
            crf=self.recipe.video.crf,
            env=desktop.env,
        )
        self._parts.callback(self.recorder.end)  # before the display goes
        self.recorder.launch()

    def _confinement(self) -> Confinement:
        """What the app's sandbox keeps from it: every bundle of the output folder, saved
        logins and token files hidden; what the runs read beside their recipes, read-only."""
        hide = [self.bundle.root.parent, self.bundle.root, *self._private]
        if self.recipe.storage_state_path is not None:
            hide.append(self.recipe.storage_state_path)
        return Confinement(hide=tuple(hide), read_only=(*self.recipe.inputs(), *self._protect))

    def _start_live(self, listen: socket.socket | None) -> None:
        """The live view of the display: its URL without the token in the manifest, with
        it to ``announce``; stopped before the display (LIFO)."""
        assert self.desktop is not None and self._live is not None
        self.live = self._parts.enter_context(
            LiveView(
                self.desktop.display,
                xauthority=self.desktop.xauthority,
                take_over=self._live.take_over,
                log_dir=self.bundle.root / "logs",
                listen=listen,
            )
        )
        setup = {"url": self.live.public_url, "take_over": self._live.take_over}
        self.bundle.set_setup("live", setup)
        if self._live.announce is not None:
            self._live.announce(self.live.url)

    def _check_placement(self) -> None:
        """Before the first step: the browser's window is on this run's display (found by
        window and process, not assumed), and with ``network: loopback`` the browser and
        the app run inside the run's network namespace. Otherwise the run could pass on
        evidence of another screen, or reach the network: it stops (exit 2)."""
        assert self.desktop is not None and self.browser is not None
        pids = check_window_on(self.desktop, self.browser)
        if self.network == "loopback":
            named = {f"Chromium (pid {pid})": pid for pid in sorted(pids)[:1]}
            if self.app is not None:
                for service in self.app.services:
                    if service.pid is not None:
                        named[service.name] = service.pid
            check_contained(named)

    def _give_back(self) -> None:
        """Hand the suite's desktop back (reset for the next recipe), then say in the
        manifest how the app's services are (running, or how they ended)."""
        assert self._suite is not None
        self._suite.give_back(self.bundle.root / "logs")
        if self.app is not None:
            found = self.bundle.manifest["setup"].get("app")
            if isinstance(found, dict):
                found["services"] = self.app.records()

    def _stop_app(self) -> None:
        """Stop the services (in reverse) and record how each ended."""
        assert self.app is not None
        try:
            self.app.close()
        finally:
            found = self.bundle.manifest["setup"].get("app")
            setup: dict[str, object] = found if isinstance(found, dict) else {}
            if not setup:  # it never got ready: say how it was contained all the same
                setup["sandbox"] = self.app.services[0].sandbox
                self.bundle.manifest["setup"]["app"] = setup
            setup["services"] = self.app.records()
            self.bundle.write_manifest()

    def _stop_recorder(self) -> None:
        if self.recorder is not None:
            self.recorder.stop()

    def close(self) -> None:
        """Tear everything down (LIFO), then list the screenshots and the finalized video
        (when it is playable). Idempotent; a signal during it is only logged."""
        if self._state in (_State.CLOSED, _State.FINISHED):
            return
        self._state = _State.CLOSED
        try:
            self._parts.close()
        finally:
            self.signals.quiet = True
            if self._rig is not None:
                self._rig.copy_logs(self.bundle.root / "logs")
            for path in self.shots.drain():
                self._shot_written(path, *self.shots.digests[path])
            self._list_video()

    def _shot_written(self, path: Path, sha256: str, size: int) -> None:
        """List a screenshot with the digest of the bytes written (on the writer's thread,
        as it is written; the manifest takes it in at its next write)."""
        rel = path.relative_to(self.bundle.root).as_posix()
        self.bundle.add_artifact(rel, "screenshot", digest=(sha256, size))

    def finish(self, verdict: Verdict, error: ErrorInfo | None) -> None:
        """Tear down if still up, stop capturing the log, and write the verdict, preview,
        report, summary and JUnit. Idempotent."""
        if self._state is _State.FINISHED:
            return
        self.close()
        self._state = _State.FINISHED
        self.shots.close()
        self._write_har()
        self._logs.close()  # verifier.log is complete before it is listed
        self.bundle.finish(verdict, error, preview=self._preview)

    def _write_har(self) -> None:
        """network.har: every request the pages made (HAR 1.2, no bodies, redacted)."""
        if self.browser is None:
            return
        har = self.browser.network.har(
            creator="verifier", version=__version__, browser=self.browser.version
        )
        try:
            write_text(self.bundle.path("network.har"), json.dumps(har, ensure_ascii=False))
        except BundleError as exc:
            _log.warning("network.har not written: %s", exc)
            return
        self.bundle.add_artifact("network.har", "har")

    def start_preview(self) -> None:
        """Render preview.gif on the writer thread while teardown goes on (about 0.25 s
        that would otherwise follow it); call it once the steps are final."""
        self._preview = self.shots.submit(self.bundle.preview_job(self.shots.small)).result

    # -- while it runs --------------------------------------------------------------------

    @property
    def services(self) -> dict[str, str]:
        """Each service of the app that has a URL: its name and origin in this run."""
        return self.app.origins if self.app is not None else {}

    @property
    def base_url(self) -> str | None:
        """The app's URL (its port filled in), or the recipe's ``url``."""
        return self.app.url if self.app is not None else self.recipe.url

    def check_alive(self) -> None:
        """Raise if something the run stands on has died (exit 2, not a failed check)."""
        for part in (self.desktop, self.app, self.recorder, self.browser):
            if part is not None:
                part.check_alive()

    def step_log(self, records: list[StepRecord] | None = None) -> StepLog:
        """The bundle's step records, each recorded the one way (see ``_steps.py``), in
        this stage's browser, with its video chapters."""
        return StepLog(
            self.bundle, browser=lambda: self.browser, chapter=self.chapter, records=records
        )

    def chapter(self, title: str) -> float | None:
        """Start a video chapter named ``title`` (redacted); its offset in seconds."""
        if self.recorder is None:
            return None
        return self.recorder.chapter(self.redactor.text(title))

    def _list_video(self) -> None:
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


def _since(t0: float) -> float:
    return round(time.monotonic() - t0, 3)
