"""Every question to the browser has a deadline: a page that stops answering, at any
moment a step can meet it, ends the run within its bounds, with a verdict, and nothing
left running; a Playwright internal we rely on that is gone fails here, by name."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import SITE, server_command
from verifier.browser import Browser, Unanswered
from verifier.desktop import Desktop
from verifier.evidence import read_manifest

pytestmark = pytest.mark.usefixtures("no_leaks")

VERIFIER = shutil.which("verifier")
# Where a page stops answering, and the steps that meet it there.
MOMENTS: dict[str, list[dict[str, object]]] = {
    "click": [{"click": "#spin"}, {"expect_text": {"text": "done", "timeout": 3}}],
    "load": [{"expect_text": {"text": "done", "timeout": 3}}],
    "timer": [{"wait": 0.2}, {"click": {"selector": "#spin", "timeout": 3}}],
    "hover": [{"hover": "#hover"}, {"expect_visible": {"selector": "#out", "timeout": 3}}],
    "key": [{"click": "#key"}, {"press": "a"}, {"expect_text": {"text": "done", "timeout": 3}}],
    "raf": [{"click": "#spin"}, {"expect_text": {"text": "done", "timeout": 3}}],
}


def spin_recipe(write_recipe: Callable[..., Path], when: str) -> Path:
    return write_recipe(
        {
            "name": f"stops answering: {when}",
            "timeout": 5,
            "app": {
                "command": server_command("serve", str(SITE)),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [{"goto": {"url": f"/spin.html?when={when}", "timeout": 5}}, *MOMENTS[when]],
        },
        f"spin-{when}.yaml",
    )


@pytest.fixture
def busy_machine() -> Iterator[None]:
    """Both cores loaded, as on a busy CI machine."""
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def run(recipe: Path, out: Path) -> tuple[int, float, dict[str, Any]]:
    assert VERIFIER is not None, "the verifier command is not on PATH (run provision.sh)"
    start = time.monotonic()
    done = subprocess.run(
        [VERIFIER, "run", str(recipe), "--out", str(out), "--json", "--no-video"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    took = time.monotonic() - start
    record = json.loads(done.stdout.splitlines()[-1]) if done.stdout.strip() else {}
    assert record.get("bundle"), done.stderr
    return done.returncode, took, read_manifest(Path(record["bundle"]))


@pytest.mark.parametrize("when", sorted(MOMENTS))
def test_a_page_that_stops_answering_ends_the_run(
    tmp_path: Path, write_recipe: Callable[..., Path], when: str
) -> None:
    recipe = spin_recipe(write_recipe, when)
    for _ in range(int(os.environ.get("VERIFIER_TEST_REPEAT", "1"))):
        code, took, manifest = run(recipe, tmp_path / "out")
        # The step that meets it times out: a failed check (exit 1), not a broken run.
        assert code == 1, manifest
        assert manifest["verdict"] == "failed" and manifest["finished"]
        # Each step within its timeout plus 5 s; teardown within 10 s; the start besides.
        assert took < 60, f"{when}: the run took {took:.0f} s"
        if when != "raf":  # a busy page still answers, slowly: it fails on its own
            errors = [s.get("error") or "" for s in manifest["steps"]]
            errors.append((manifest.get("error") or {}).get("message", ""))
            assert any("answers nothing at all" in e for e in errors), errors
            # Once a step's page drew no frame, its aria snapshot is not asked (a wait
            # of 2 s more on each step that met the page so).
            log = tmp_path / "out" / manifest["run_id"] / "logs" / "verifier.log"
            said = log.read_text("utf-8")
            assert "the page drew no frame" in said and "Timeout 2000ms" not in said


def test_a_page_that_floods_its_console_ends_the_run_saying_so(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    """6 MB of console lines a tick: every question to the page waits behind them (this
    run took 88 s, saying the page's scripts never yield). Past the log's limit the
    console is not listened to, the run ends sooner, and its message names the flood;
    expect_no_console_errors counts the flood as an error."""

    def recipe(name: str, *steps: dict[str, object]) -> Path:
        app = {"command": server_command("serve", str(SITE)), "url": "http://127.0.0.1:{port}/"}
        return write_recipe(
            {"name": name, "timeout": 3, "app": app, "steps": [{"goto": "/flood.html"}, *steps]},
            f"{name}.yaml",
        )

    flood = recipe("flood", {"wait": 8}, {"expect_text": "The page logs without end"})
    code, took, manifest = run(flood, tmp_path / "out")
    assert code == 1 and took < 70, f"the run took {took:.0f} s"
    error = str(manifest["steps"][2]["error"])
    assert "the page floods its console (more than 10 MiB logged)" in error, error
    # Its lines jam the pipe to the browser: once a round trip went unanswered for its 5
    # s, the browser's close waits a second, not 5 s.
    said = (tmp_path / "out" / manifest["run_id"] / "logs" / "verifier.log").read_text("utf-8")
    assert "Chromium did not close within 1 s" in said, said[-2000:]

    # In a suite, the next recipe runs on a new desktop, and the teardown of the jammed
    # one is within its 10 s too (it waited 44 s to stop hearing of the tabs).
    errors = recipe("errors", {"wait": 3}, {"expect_no_console_errors": {}})
    app = {"command": server_command("serve", str(SITE)), "url": "http://127.0.0.1:{port}/"}
    after = write_recipe(
        {"name": "after", "app": app, "steps": [{"goto": "/"}, {"expect_title": "Fixture"}]},
        "after.yaml",
    )
    assert VERIFIER is not None
    argv = [VERIFIER, "run", str(errors), str(after), "--out", str(tmp_path / "suite")]
    done = subprocess.run(
        [*argv, "--json", "--no-video"], capture_output=True, text=True, timeout=240, check=False
    )
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert done.returncode == 1 and second["verdict"] == "passed", done.stdout + done.stderr
    manifest = read_manifest(Path(first["bundle"]))
    error = str(manifest["steps"][2]["error"])
    assert "logged more than 10 MiB to its console" in error, error
    said = (Path(first["bundle"]) / "logs" / "verifier.log").read_text("utf-8")
    ended, closed = (_logged_at(said, what) for what in ("step 3 ", "did not close within 1 s"))
    assert 0 < closed - ended < 10, said[-2000:]


def test_a_step_behind_a_burst_of_console_lines_sees_what_came_before_it(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    """120,000 console lines at once, then an alert or a new tab: the pipe to the browser
    is seconds behind. The dialog step waited 2 s and failed on an alert that came 0.3 s
    later; expect_title passed on the tab before the one in front ('Docs page')."""
    burst = "/burst.html?lines=120000&act="
    app = {"command": server_command("serve", str(SITE)), "url": "http://127.0.0.1:{port}/"}
    recipe = write_recipe(
        {
            "name": "burst",
            "timeout": 8,
            "app": app,
            "steps": [
                {"goto": burst + "alert"},
                {"click": "#go"},
                {"dialog": {"action": "accept", "timeout": 2}},
                {"goto": burst + "tab"},
                {"click": "#go"},
                {"expect_title": "Burst"},
            ],
        }
    )
    # The tab opens 0.3 s after the click, while the check waits: the old tab's title
    # came to hold, 8 s later, and the check passed on it.
    late = write_recipe(
        {
            "name": "late",
            "timeout": 10,
            "app": app,
            "steps": [
                {"goto": "/burst.html?lines=50000&act=late"},
                {"click": "#go"},
                {"expect_title": "Done"},
            ],
        }
    )
    # The lines, then an error, 50 ms after the click: a check for errors waited a
    # second for the page and passed before the error came.
    error = write_recipe(
        {
            "name": "error",
            "app": app,
            "steps": [
                {"goto": "/burst.html?lines=50000&act=error"},
                {"click": "#go"},
                {"expect_no_console_errors": {}},
            ],
        }
    )
    assert VERIFIER is not None
    argv = [VERIFIER, "run", str(recipe), str(late), str(error), "--out", str(tmp_path / "out")]
    done = subprocess.run(
        [*argv, "--json", "--no-video"], capture_output=True, text=True, timeout=240, check=False
    )
    first, second, third = (json.loads(line) for line in done.stdout.splitlines())
    steps = read_manifest(Path(second["bundle"]))["steps"]
    assert steps[2]["status"] == "failed", steps[2]
    error = steps[2]["error"]
    assert "it is 'Docs page'" in error or "news stayed behind" in error, error
    steps = read_manifest(Path(third["bundle"]))["steps"]
    assert "boom after the burst" in (steps[2]["error"] or ""), steps[2]
    manifest = read_manifest(Path(first["bundle"]))
    steps = manifest["steps"]
    assert done.returncode == 1 and manifest["verdict"] == "failed", steps
    # The alert opened in time; on a slower machine its news may stay behind, and then
    # the step says so.
    assert steps[2]["status"] == "passed" or "as far as is known" in steps[2]["error"], steps[2]
    if steps[2]["status"] == "passed":
        assert steps[5]["status"] == "failed", steps[5]
        error = steps[5]["error"]
        assert "it is 'Docs page'" in error or "news stayed behind" in error, error


def _logged_at(log: str, what: str) -> float:
    """When the first line of ``log`` (verifier.log) that says ``what`` was written: seconds
    into its day."""
    line = next(line for line in log.splitlines() if what in line)
    clock = line.split()[1]  # 2026-12-06 07:10:41,679 INFO ...
    hours, minutes, seconds = clock.replace(",", ".").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def test_on_a_busy_machine_too(
    tmp_path: Path, write_recipe: Callable[..., Path], busy_machine: None
) -> None:
    for when in ("click", "key"):
        code, took, manifest = run(spin_recipe(write_recipe, when), tmp_path / "out")
        assert code == 1 and manifest["verdict"] == "failed", manifest
        assert took < 90, f"{when} on a busy machine: the run took {took:.0f} s"


def test_an_agent_session_on_a_page_that_stops_answering(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    import anyio
    from mcp import Client, StdioServerParameters

    recipe = spin_recipe(write_recipe, "click")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "verifier", "mcp", "--recipe", str(recipe), "--out", str(tmp_path / "out")],
        env=dict(os.environ),
    )

    async def session() -> dict[str, float]:
        took: dict[str, float] = {}
        async with Client(params) as client:
            # It stops answering 30 ms after it loads.
            await client.call_tool("navigate", {"url": "/spin.html?when=timer"})
            for tool, args in (
                ("snapshot", {}),
                ("computer", {"action": "left_click", "coordinate": [400, 400]}),
                ("navigate", {"url": "/"}),
                ("tabs", {}),
            ):
                start = time.monotonic()
                await client.call_tool(tool, args)
                took[tool] = time.monotonic() - start
            await client.call_tool("finish", {"verdict": "failed", "summary": "it spins"})
        return took

    took = anyio.run(session)
    assert took["snapshot"] < 15 and took["computer"] < 15 and took["tabs"] < 15, took
    assert took["navigate"] < 35, took


def test_a_deadline_calls_off_a_question_the_page_never_answers(
    desktop: Desktop, tmp_path: Path, site_url: str
) -> None:
    """What the rest stands on: Playwright's sync API makes its calls as tasks on its loop,
    from the calling greenlet, through the loop's task factory (``_calls.py``)."""
    with Browser(
        display=desktop.display,
        screen=desktop.size,
        console_log=tmp_path / "console.jsonl",
        env=desktop.env,
    ) as browser:
        browser.open(f"{site_url}spin.html?when=click")
        page = browser.page
        start = time.monotonic()
        with pytest.raises(asyncio.CancelledError), browser.deadline(1.0, "a test"):
            page.evaluate("for (;;) {}")  # never answers
        assert time.monotonic() - start < 3
        assert not browser.answers(within=0.5)
        with pytest.raises(Unanswered, match="answers nothing at all"):
            browser.window()


def test_the_playwright_internals_we_use_are_there(
    desktop: Desktop, tmp_path: Path, site_url: str
) -> None:
    """Named, so that an upgrade that removes one fails here first."""
    import greenlet
    from playwright.sync_api import Download

    with Browser(
        display=desktop.display,
        screen=desktop.size,
        console_log=tmp_path / "console.jsonl",
        env=desktop.env,
    ) as browser:
        context = browser.page.context
        assert isinstance(context._loop, asyncio.AbstractEventLoop), "BrowserContext._loop"
        assert callable(context._sync), "BrowserContext._sync"
        made: list[object] = []
        factory = context._loop.get_task_factory()
        assert factory is not None, "our task factory on Playwright's loop"

        def noting(loop: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Future[Any]:
            made.append(greenlet.getcurrent())
            return factory(loop, coro, **kw)

        context._loop.set_task_factory(noting)
        try:
            browser.page.evaluate("1")
        finally:
            context._loop.set_task_factory(factory)
        assert greenlet.getcurrent() in made, "a sync call's task is made in the caller's greenlet"
    # _downloads.py awaits the coroutines behind Download.save_as and Download.failure.
    for name in ("save_as", "failure"):
        source = inspect.getsource(getattr(Download, name))
        assert f"self._impl_obj.{name}(" in source, f"Download._impl_obj.{name}"
