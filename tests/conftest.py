"""Shared fixtures: a real Xvfb desktop, a real Chromium on it, a real HTTP server.

Helpers that are not fixtures live in tests/support.py.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import NPM_CACHE, SITE, live_processes, wait_gone
from verifier._process import become_subreaper
from verifier.browser import Browser
from verifier.desktop import Desktop


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.pop("WAYLAND_DISPLAY", None)
    yield
    os.environ.clear()
    os.environ.update(saved)


ROOT = Path(__file__).resolve().parent.parent
# Hypothesis keeps its examples beside the tests' npm projects, not in the checkout.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(NPM_CACHE / "hypothesis"))


def _checkout_files() -> set[str] | None:
    """The checkout's untracked and changed files, ignored ones too (None: no git)."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        return None
    listed = subprocess.run(
        [git, "status", "--porcelain", "--ignored", "--untracked-files=normal"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if listed.returncode != 0:
        return None
    # Python's bytecode and pytest's own cache are the interpreter's, not a test's.
    return {
        line[3:]
        for line in listed.stdout.splitlines()
        if not line.endswith(("__pycache__/", ".pytest_cache/"))
    }


@pytest.fixture(scope="session", autouse=True)
def _checkout_untouched() -> Iterator[None]:
    """No test writes into the checkout (it works in tmp_path, or ~/.cache for what it
    keeps between runs): a file that appears there during the session fails it."""
    before = _checkout_files()
    yield
    after = _checkout_files()
    if before is not None and after is not None:
        new = sorted(after - before)
        assert not new, f"the tests wrote into the checkout: {new}"


@pytest.fixture(scope="session", autouse=True)
def _subreaper() -> None:
    """Orphans of our runs reparent to this test process, so leak checks can see them and
    tell them from processes of other test runs on the same machine."""
    become_subreaper()


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaves an Xvfb, openbox, Chromium or ffmpeg process behind."""
    before = live_processes()
    yield
    leaked = wait_gone(before)
    assert not leaked, f"processes left behind: {leaked}"


@pytest.fixture(scope="session")
def desktop() -> Iterator[Desktop]:
    with Desktop(screen="1280x800") as desk:
        yield desk


@pytest.fixture(scope="module")
def browser(desktop: Desktop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    # Module scope: Playwright's sync API allows one instance per thread, and the
    # in-process runs of test_run.py start their own.
    log = tmp_path_factory.mktemp("browser") / "console.jsonl"
    with Browser(
        display=desktop.display, screen=desktop.size, console_log=log, env=desktop.env
    ) as b:
        yield b


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def site_url() -> Iterator[str]:
    """Base URL of tests/apps/site served by a real HTTP server in a thread."""
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[..., Path]:
    """Write a recipe (a dict) as YAML-compatible JSON into tmp_path and return its path."""
    counter = iter(range(1000))

    def write(recipe: dict[str, object], name: str | None = None) -> Path:
        path = tmp_path / (name or f"recipe{next(counter)}.yaml")
        path.write_text(json.dumps(recipe, ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    return write
