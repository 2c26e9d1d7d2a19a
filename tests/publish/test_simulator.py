"""verifier publish against @simulacrum/github-api-simulator, which validates every request
and answer against GitHub's OpenAPI description (made stateful by github_simulator.mjs).

Runs when ``GITHUB_API_SIMULATOR`` (default: ``.cache/github-api-simulator`` in the repo,
where desktop-image/provision.sh installs it) names a folder whose node_modules holds the
package; skipped otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.publish.conftest import SIMULATED, state
from tests.publish.helpers import PR, REPO, SHA, cli, leaks, make_bundle

pytestmark = SIMULATED


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
