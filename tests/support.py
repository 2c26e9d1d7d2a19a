"""What the tests share besides fixtures: the fixture apps, process checks, manifests,
and running the verifier in its own process. (Fixtures live in conftest.py.)"""

from __future__ import annotations

import contextlib
import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import numpy.typing as npt
import pytest

from verifier._process import find_tree
from verifier.errors import BundleError
from verifier.evidence import read_manifest

if TYPE_CHECKING:
    from verifier.recipe import Step
    from verifier.recipe.step_args import StepArgs

APPS = Path(__file__).parent / "apps"
SITE = APPS / "site"
SERVER = APPS / "server.py"
# Processes a run may start; none may outlive it.
RUN_PROCESSES = {
    "Xvfb",
    "openbox",
    "chromium",
    "chrome_crashpad",
    "ffmpeg",
    "x11vnc",
    "websockify",
}


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


# Where the tests keep the npm projects they make (and reuse from run to run): the
# user's cache, never the checkout.
NPM_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "verifier-tests"


def npm(args: list[str], cwd: Path) -> None:
    """Run ``npm args`` in ``cwd`` (no prompts, none of our variables), within 10 min;
    a failure fails the test with npm's last words."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFIER_")}
    done = subprocess.run(
        ["npm", *args],
        cwd=cwd,
        env={**env, "npm_config_yes": "true", "npm_config_fund": "false"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        pytest.fail(f"npm {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")


def server_command(mode: str, *args: str) -> list[str]:
    """argv of the fixture dev server (tests/apps/server.py) in ``mode``; {port} is filled in."""
    return [sys.executable, str(SERVER), mode, "{port}", *args]


ArgsT = TypeVar("ArgsT", bound="StepArgs")


def args_of(step: Step, kind: type[ArgsT]) -> ArgsT:
    """The arguments of a parsed ``step``, which the recipe's parser made a ``kind``."""
    assert isinstance(step.args, kind), (step.action, type(step.args).__name__)
    return step.args


def imread(path: Path) -> npt.NDArray[np.uint8]:
    """The image at ``path`` as OpenCV reads it (BGR); a file it cannot read fails the test."""
    import cv2

    image = cv2.imread(str(path))
    assert image is not None, f"{path} is not an image OpenCV can read"
    return np.asarray(image, np.uint8)


def wait_for_step(out: Path, index: int, *, timeout: float = 60.0) -> Path:
    """Poll ``out`` until a run's manifest shows step ``index`` started; its manifest path."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in out.glob("*/manifest.json"):
            try:
                steps = read_manifest(path.parent)["steps"]
            except (BundleError, KeyError):
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
    *args: str, stderr: int | None = subprocess.PIPE, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """``python3 -m verifier ARGS`` in its own process; killed and reaped whatever happens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "verifier", *args], stderr=stderr, text=True, env=env
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


class Canary:
    """A service the run must not reach: an HTTP server on ``host`` that notes every hit."""

    def __init__(self, host: str) -> None:
        hits: list[str] = []
        self.hits = hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"canary")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}/canary"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Canary:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
