"""Shared fixtures: a real Xvfb desktop, a real Chromium on it, a real HTTP server."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from verifier._process import become_subreaper, find_tree
from verifier.browser import Browser
from verifier.desktop import Desktop

APPS = Path(__file__).parent / "apps"
SITE = APPS / "site"
SERVER = APPS / "server.py"
# Processes a run may start; none may outlive it.
RUN_PROCESSES = {"Xvfb", "openbox", "chromium", "chrome_crashpad", "ffmpeg"}


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.pop("WAYLAND_DISPLAY", None)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session", autouse=True)
def _subreaper() -> None:
    """Orphans of our runs reparent to this test process, so leak checks can see them and
    tell them from processes of other test runs on the same machine."""
    become_subreaper()


def _mine(pid: int, parents: dict[int, int]) -> bool:
    me = os.getpid()
    seen = set()
    while pid > 1 and pid not in seen:
        if pid == me:
            return True
        seen.add(pid)
        pid = parents.get(pid, 0)
    return False


def live_processes(names: set[str] = RUN_PROCESSES, marker: str | None = None) -> dict[int, str]:
    """Live (non-zombie) processes whose name is in ``names`` and that descend from this
    test process, or whose argv holds ``marker`` (anywhere on the machine)."""
    found: dict[int, str] = {}
    parents: dict[int, int] = {}
    candidates: list[tuple[int, str, str, str]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(rest[1])
        if rest[0] not in "ZX":
            candidates.append((int(entry.name), comm, rest[0], cmdline))
    for pid, comm, _state, cmdline in candidates:
        if (marker is not None and marker in cmdline) or (comm in names and _mine(pid, parents)):
            found[pid] = f"{comm}: {cmdline[:120]}"
    return found


def wait_gone(
    before: dict[int, str], *, marker: str | None = None, within: float = 5.0
) -> dict[int, str]:
    """New processes (vs ``before``) still alive after ``within`` seconds."""
    deadline = time.monotonic() + within
    names = set() if marker else RUN_PROCESSES
    while True:
        extra = {p: d for p, d in live_processes(names, marker).items() if p not in before}
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.05)


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


def server_command(mode: str, *args: str) -> list[str]:
    """argv of the fixture dev server (tests/apps/server.py) in ``mode``; {port} is filled in."""
    return [sys.executable, str(SERVER), mode, "{port}", *args]


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[..., Path]:
    """Write a recipe (a dict) as YAML-compatible JSON into tmp_path and return its path."""
    counter = iter(range(1000))

    def write(recipe: dict[str, object], name: str | None = None) -> Path:
        path = tmp_path / (name or f"recipe{next(counter)}.yaml")
        path.write_text(json.dumps(recipe, ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    return write


def read_manifest(bundle: Path) -> dict[str, object]:
    return json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def wait_for_step(out: Path, index: int, *, timeout: float = 60.0) -> Path:
    """Poll ``out`` until a run's manifest shows step ``index`` started; its manifest path."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in out.glob("*/manifest.json"):
            try:
                steps = json.loads(path.read_text())["steps"]
            except (OSError, ValueError, KeyError):
                continue
            if len(steps) > index and steps[index]["started_at"]:
                return path
        time.sleep(0.05)
    pytest.fail(f"no run under {out} reached step {index} within {timeout} s")


def chromium_of(pid: int) -> list[int]:
    """The Chromium browser process(es) (not its helpers) under process ``pid``."""
    found = [
        child
        for child in find_tree(pid, None)
        if Path(f"/proc/{child}/comm").read_text().strip() == "chromium"
        and b"--type=" not in Path(f"/proc/{child}/cmdline").read_bytes()
    ]
    assert found, f"no Chromium browser process under {pid}"
    return found


@contextlib.contextmanager
def running_verifier(
    *args: str, stderr: int | None = subprocess.PIPE
) -> Iterator[subprocess.Popen[str]]:
    """``python3 -m verifier ARGS`` in its own process; killed and reaped whatever happens."""
    proc = subprocess.Popen([sys.executable, "-m", "verifier", *args], stderr=stderr, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
