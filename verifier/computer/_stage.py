"""What a session runs on: the desktop, the app's dev server, the screen video, the browser.

Started the way a run starts them (the same classes, overlapping their waits) and from
the calling thread, which must outlive them: PR_SET_PDEATHSIG follows the thread that
forks, so children spawned from a short-lived thread would die with it.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from playwright.sync_api import Error as PlaywrightError

from verifier import __version__
from verifier.app import DevServer
from verifier.browser import Browser
from verifier.desktop import Desktop
from verifier.errors import BrowserError, RecorderError
from verifier.evidence import BundleWriter
from verifier.recipe import Recipe
from verifier.recorder import Recorder

__all__ = ()

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class Stage:
    """The live parts of a session (closed by the ExitStack that started them)."""

    desktop: Desktop
    browser: Browser
    app: DevServer | None
    recorder: Recorder | None
    base_url: str | None  # the app's URL (port filled in) or the recipe's url
    start_url: str | None  # where the browser was opened


def start_stage(
    stack: contextlib.ExitStack,
    bundle: BundleWriter,
    *,
    recipe: Recipe | None,
    screen: str,
    display: str | None,
    video: bool,
    url: str | None,
) -> Stage:
    """Start everything, register its teardown on ``stack`` (LIFO), open ``url`` or the app's."""
    logs = bundle.root / "logs"
    app: DevServer | None = None
    if recipe is not None and recipe.app is not None:
        spec = recipe.app
        app = DevServer(
            spec.command,
            url=spec.url,
            cwd=(recipe.base_dir / spec.cwd).resolve(),
            env=spec.env,
            ready_timeout=spec.ready_timeout,
            log_path=logs / "app.log",
        )
        app.launch()
    t0 = time.monotonic()
    try:
        desktop = stack.enter_context(Desktop(screen, display=display, log_dir=logs))
    except BaseException:
        if app is not None:
            app.close()
        raise
    if app is not None:
        stack.callback(app.close)
    width, height = desktop.size
    bundle.set_setup(
        "desktop",
        {"display": desktop.display, "own_xvfb": display is None, "ready_s": _since(t0)},
    )
    bundle.set_environment(
        {
            "screen": f"{width}x{height}",
            "display": desktop.display,
            "verifier": __version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
        }
    )
    recorder = _recorder(stack, desktop, bundle, recipe) if video else None
    t0 = time.monotonic()
    browser = stack.enter_context(
        Browser(
            display=desktop.display,
            screen=desktop.size,
            console_log=logs / "browser-console.jsonl",
            env=desktop.env,
        )
    )
    if recorder is not None:
        stack.callback(recorder.end)  # the video ends on the page, before the browser closes
    bundle.set_setup("browser", {"ready_s": _since(t0)})
    bundle.set_environment({"chromium": browser.version})
    if recorder is not None:
        try:
            recorder.wait_ready()
        except RecorderError as exc:
            _log.warning("no screen video: %s", exc)
            recorder = None
        else:
            bundle.set_setup("recorder", {"fps": recorder.fps, "crf": recorder.crf})
    base = recipe.url if recipe is not None else None
    if app is not None:
        app.wait_ready()
        bundle.set_setup(
            "app",
            {
                "command": app.command,
                "url": app.url,
                "port": app.port,
                "pid": app.pid,
                "ready_s": round(app.ready_s or 0.0, 3),
            },
        )
        base = app.url
    start = (urljoin(base, url) if base else url) if url is not None else base
    if start is not None:
        _open(browser, start)
    return Stage(desktop, browser, app, recorder, base, start)


def check_alive(stage: Stage) -> None:
    """Raise if something the session stands on has died (Xvfb, the app, ffmpeg, Chromium)."""
    for part in (stage.desktop, stage.app, stage.recorder, stage.browser):
        if part is not None:
            part.check_alive()


def _since(t0: float) -> float:
    return round(time.monotonic() - t0, 3)


def _recorder(
    stack: contextlib.ExitStack, desktop: Desktop, bundle: BundleWriter, recipe: Recipe | None
) -> Recorder | None:
    fps, crf = (recipe.video.fps, recipe.video.crf) if recipe is not None else (15, 30)
    recorder = Recorder(
        display=desktop.display,
        size=desktop.size,
        path=bundle.path("video.mp4"),
        log=bundle.root / "logs" / "ffmpeg.log",
        fps=fps,
        crf=crf,
    )
    try:
        recorder.launch()
    except RecorderError as exc:  # no ffmpeg here: a session without video is still evidence
        _log.warning("no screen video: %s", exc)
        return None
    stack.callback(recorder.stop)
    return recorder


def _open(browser: Browser, url: str) -> None:
    try:
        response = browser.page.goto(url, wait_until="load", timeout=30_000)
    except PlaywrightError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        msg = f"the browser could not open {url}: {first}"
        raise BrowserError(msg) from exc
    if response is not None and response.status >= 400:
        _log.warning("%s answered HTTP %d", url, response.status)


def replay_start(stage: Stage) -> str | None:
    """The replay's first ``goto``: relative to the base URL when the session began on its
    site (the replay's dev server gets another port), else the absolute start URL."""
    start, base = stage.start_url, stage.base_url
    if start is None or base is None:
        return start
    s, b = urlsplit(start), urlsplit(base)
    if (s.scheme, s.netloc) != (b.scheme, b.netloc):
        return start
    return (
        (s.path or "/")
        + (f"?{s.query}" if s.query else "")
        + (f"#{s.fragment}" if s.fragment else "")
    )


def replay_head(recipe: Recipe | None, *, screen: str, url: str | None) -> dict[str, object]:
    """``app``/``url``/``screen`` of the replay recipe: the session's, with ``cwd`` absolute
    (session.yaml lives in the bundle, not beside the original recipe)."""
    head: dict[str, object] = {}
    if recipe is not None and recipe.app is not None:
        app = recipe.app.model_dump(exclude_defaults=True)
        app["cwd"] = str((recipe.base_dir / recipe.app.cwd).resolve())
        head["app"] = app
    elif recipe is not None and recipe.url is not None:
        head["url"] = recipe.url
    elif url is not None:
        head["url"] = url
    head["screen"] = screen
    if recipe is not None and not recipe.video.enabled:
        head["video"] = False
    return head
