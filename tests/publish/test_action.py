"""action.yml, the composite GitHub Action, run step by step as a runner would: each
``run:`` script with bash and the step's environment, its expressions filled in, against
GitHub's API as the simulator describes it. Only upload-artifact, a JavaScript action,
is stood in for (its inputs are checked and the folder copied)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.publish.conftest import SIMULATED, state
from tests.publish.helpers import PR, REPO, SHA, leaks
from tests.support import APPS

ROOT = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class Job:
    """One job's use of the action: its inputs, event and what the steps left."""

    workspace: Path
    token: str
    api: str
    inputs: dict[str, str]
    event: dict[str, Any]
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    uploaded: Path | None = None

    def value(self, expr: str) -> str:
        parts = expr.split(".")
        if parts[0] == "inputs" and len(parts) == 2:
            spec = ACTION["inputs"][parts[1]]
            return self.inputs.get(parts[1], self.value_of(str(spec.get("default", ""))))
        if expr == "github.token":
            return self.token
        if expr == "github.repository":
            return REPO
        if parts[:2] == ["github", "event"]:
            found: Any = self.event
            for part in parts[2:]:
                found = found.get(part) if isinstance(found, dict) else None
            return "" if found is None else str(found)
        if parts[0] == "steps" and parts[2] == "outputs":
            return self.outputs.get(parts[1], {}).get(parts[3], "")
        raise AssertionError(f"this test does not know the expression {expr!r}")

    def value_of(self, text: str) -> str:
        return _EXPR.sub(lambda m: self.value(m.group(1)), text)

    def holds(self, condition: str | None, failed: bool) -> bool:
        if condition is None:
            return not failed
        terms = [t.strip() for t in condition.split("&&")]
        ok = True
        for term in terms:
            if term == "always()":
                continue
            left, sep, right = term.partition("==")
            assert sep and right.strip().startswith("'"), f"unknown condition {term!r}"
            ok = ok and self.value(left.strip()) == right.strip().strip("'")
        return ok and (not failed or "always()" in terms)

    def environ(self, summary: Path, output: Path) -> dict[str, str]:
        event = self.workspace.parent / "event.json"
        event.write_text(json.dumps(self.event), encoding="utf-8")
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
        return {
            **keep,
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_ACTION_PATH": str(ROOT),
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_EVENT_NAME": "pull_request" if "pull_request" in self.event else "push",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_SHA": SHA,
            "GITHUB_API_URL": self.api,
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": "4242",
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_OUTPUT": str(output),
        }

    def run(self) -> int:
        """Every step as the runner runs it; the job's exit code (the first failing step's)."""
        summary = self.workspace.parent / "summary.md"
        failed = 0
        for step in ACTION["runs"]["steps"]:
            if not self.holds(step.get("if"), failed != 0):
                continue
            if "uses" in step:
                self._upload(step)
                continue
            assert step["shell"] == "bash" and "${{" not in step["run"], step["name"]
            output = self.workspace.parent / f"output-{len(self.logs)}"
            output.write_text("")
            env = self.environ(summary, output)
            env.update({k: self.value_of(str(v)) for k, v in (step.get("env") or {}).items()})
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                cwd=self.workspace,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            self.logs.append(f"## {step['name']} ({done.returncode})\n{done.stdout}{done.stderr}")
            if "id" in step:
                pairs = [ln.split("=", 1) for ln in output.read_text().splitlines() if "=" in ln]
                self.outputs[step["id"]] = dict(pairs)
            failed = failed or done.returncode
        return failed

    def _upload(self, step: dict[str, Any]) -> None:
        assert step["uses"] == "actions/upload-artifact@v4"
        given = {k: self.value_of(str(v)) for k, v in step["with"].items()}
        assert given["if-no-files-found"] == "warn"
        source = self.workspace / given["path"]
        if source.is_dir():
            self.uploaded = self.workspace.parent / "uploaded" / given["name"]
            shutil.copytree(source, self.uploaded)


def _project(folder: Path) -> Path:
    (folder / "checks" / "shop").mkdir(parents=True)
    shutil.copy(APPS / "flaky.py", folder / "checks" / "shop" / "flaky.py")
    flaky = (
        "name: The flaky app saves\napp:\n  command: python3 flaky.py {port}\n"
        "  url: http://127.0.0.1:{port}/\nsteps:\n  - goto: /\n"
        "  - expect_text: {text: Saved, timeout: 2}\n"
    )
    (folder / "checks" / "shop" / "verify_flaky.yaml").write_text(flaky, encoding="utf-8")
    return folder


def _job(tmp_path: Path, token: str, api: str, **inputs: str) -> Job:
    workspace = _project(tmp_path / "workspace")
    pull = {"number": PR, "head": {"sha": SHA, "repo": {"full_name": REPO}}}
    return Job(workspace, token, api, inputs, {"pull_request": pull})


@SIMULATED
@pytest.mark.slow
def test_a_flaky_pass_is_published_and_uploaded(tmp_path: Path, token: str, simulator: str) -> None:
    job = _job(tmp_path, token, simulator, recipes="checks/**/verify_*.yaml", retries="1")
    assert job.run() == 0, "\n".join(job.logs)
    assert job.outputs["run"]["exit-code"] == "0"
    seen = state(simulator)
    (comment,) = seen["comments"]
    assert "The flaky app saves (flaky: passed on a retry)" in comment["body"]
    assert "1 passed \\(1 flaky\\: on a retry\\)" in comment["body"]  # as Markdown escapes it
    assert [s["state"] for s in seen["statuses"]] == ["success"]
    assert "The flaky app saves" in (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert job.uploaded is not None and len(list(job.uploaded.iterdir())) == 2  # both attempts
    assert leaks(token, *job.logs) == []


@SIMULATED
@pytest.mark.slow
def test_a_failing_recipe_fails_the_job_after_publishing(
    tmp_path: Path, token: str, simulator: str
) -> None:
    job = _job(tmp_path, token, simulator, recipes="checks/**/*.yaml")
    assert job.run() == 1, "\n".join(job.logs)
    seen = state(simulator)
    assert [s["state"] for s in seen["statuses"]] == ["failure"]
    assert "the page shows 'Broken'" in seen["comments"][0]["body"]
    assert job.uploaded is not None and len(list(job.uploaded.iterdir())) == 1


@SIMULATED
@pytest.mark.slow
def test_without_a_pull_request_only_the_job_summary(
    tmp_path: Path, token: str, simulator: str
) -> None:
    job = _job(tmp_path, token, simulator, recipes="checks/shop/verify_flaky.yaml", retries="2")
    job.event = {"ref": "refs/heads/main"}
    assert job.run() == 0, "\n".join(job.logs)
    assert state(simulator)["comments"] == []
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "The flaky app saves" in summary and "::stop-commands::" not in summary


@SIMULATED
@pytest.mark.slow
def test_a_pattern_that_matches_nothing_is_an_error(
    tmp_path: Path, token: str, simulator: str
) -> None:
    job = _job(tmp_path, token, simulator, recipes="checks/*.yml", publish="false")
    assert job.run() == 2
    assert "::error::verifier: no recipe file matches 'checks/*.yml'" in "\n".join(job.logs)
    assert job.uploaded is None and state(simulator)["statuses"] == []


def test_the_readmes_workflow_uses_the_actions_inputs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("# .github/workflows/verify.yml") :]
    workflow = yaml.safe_load(block[: block.index("```")])
    (step,) = [s for s in workflow["jobs"]["verify"]["steps"] if "verifier@" in s.get("uses", "")]
    assert set(step["with"]) <= set(ACTION["inputs"])
    (checkout,) = [
        s for s in workflow["jobs"]["verify"]["steps"] if "checkout@" in s.get("uses", "")
    ]
    assert checkout["with"]["persist-credentials"] is False
    assert {"recipes", "out", "retries", "publish"} <= set(ACTION["inputs"])
    assert ACTION["runs"]["using"] == "composite"


@SIMULATED
@pytest.mark.slow
def test_a_checkout_that_kept_the_token_is_refused(
    tmp_path: Path, token: str, simulator: str
) -> None:
    """actions/checkout's default leaves the job's token in .git/config, which the app
    under test can read: the action refuses to run it there."""
    job = _job(tmp_path, token, simulator, recipes="checks/**/*.yaml")
    subprocess.run(["git", "init", "-q", str(job.workspace)], check=True, timeout=30)
    header = "AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46Z2hzX0ZBS0U="
    config = ["git", "-C", str(job.workspace), "config", "--local"]
    subprocess.run([*config, "http.https://github.com/.extraheader", header], check=True)
    assert job.run() == 2
    logs = "\n".join(job.logs)
    assert "check out with 'persist-credentials: false'" in logs
    assert not (job.workspace / "artifacts").exists()  # nothing ran


@SIMULATED
@pytest.mark.slow
def test_a_pull_request_from_a_fork_gets_the_job_summary_only(
    tmp_path: Path, token: str, simulator: str
) -> None:
    job = _job(tmp_path, token, simulator, recipes="checks/**/*.yaml", retries="1")
    job.event["pull_request"]["head"]["repo"]["full_name"] = "someone/fork"
    assert job.run() == 0, "\n".join(job.logs)
    assert state(simulator)["comments"] == [] and state(simulator)["statuses"] == []
    assert "a pull request from a fork" in "\n".join(job.logs)
    assert "The flaky app saves" in (tmp_path / "summary.md").read_text(encoding="utf-8")
