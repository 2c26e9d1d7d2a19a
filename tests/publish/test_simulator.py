"""verifier publish against @simulacrum/github-api-simulator, which validates every request
and answer against GitHub's OpenAPI description (made stateful by github_simulator.mjs).

Runs when ``GITHUB_API_SIMULATOR`` (default: ``.cache/github-api-simulator`` in the repo,
where desktop-image/provision.sh installs it) names a folder whose node_modules holds the
package; skipped otherwise.
"""

from __future__ import annotations

import json
import os
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

from tests.publish.helpers import PR, REPO, SHA, cli, leaks, make_bundle

SIMULATOR = os.environ.get(
    "GITHUB_API_SIMULATOR", str(Path(__file__).parents[2] / ".cache" / "github-api-simulator")
)
PACKAGE = Path(SIMULATOR, "node_modules", "@simulacrum", "github-api-simulator")
SCRIPT = Path(__file__).parent / "github_simulator.mjs"

pytestmark = pytest.mark.skipif(
    not SIMULATOR or not PACKAGE.is_dir() or shutil.which("node") is None,
    reason="set GITHUB_API_SIMULATOR to a folder with @simulacrum/github-api-simulator installed",
)


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def simulator(token: str, tmp_path: Path) -> Iterator[str]:
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


def state(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_state", timeout=5) as answer:
        data: dict[str, Any] = json.load(answer)
    return data


def test_publish_against_githubs_openapi_description(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], simulator: str, token: str
) -> None:
    target = ["--repo", REPO, "--pr", str(PR), "--sha", SHA, "--api-url", simulator]
    target += ["--no-upload", "--link-base", "https://ci.example/artifacts/"]
    summary = tmp_path / "summary.md"
    os.environ["GITHUB_STEP_SUMMARY"] = str(summary)
    passing = make_bundle(tmp_path / "b")
    code, out1, err1 = cli(capsys, str(passing), *target)
    assert (code, err1) == (0, "")
    failing = make_bundle(tmp_path / "b", verdict="failed", name="Completing a todo counts it")
    code, out2, err2 = cli(capsys, str(passing), str(failing), *target)
    assert (code, err2) == (0, ""), err2
    assert "comment updated" in out2

    seen = state(simulator)
    assert len(seen["comments"]) == 1
    body = seen["comments"][0]["body"]
    assert body.startswith("<!-- verifier:verifier -->\n## ❌ verifier: 1 of 2 recipes")
    assert "Completing a todo counts it" in body
    assert [s["state"] for s in seen["statuses"]] == ["success", "failure"]
    assert seen["statuses"][-1]["sha"] == SHA
    assert set(seen["auth"]) == {f"Bearer {token}"}
    assert summary.read_text(encoding="utf-8").count("<!-- verifier:verifier -->") == 2
    assert leaks(token, out1, out2, err1, err2, body, summary.read_text(encoding="utf-8")) == []
