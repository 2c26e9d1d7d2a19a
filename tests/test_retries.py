"""`verifier run --retries/--repeat/--fail-on-flaky`, through the installed executable,
against an app that is broken on its first start and fixed on the next
(tests/apps/flaky.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.support import APPS
from verifier.evidence import read_manifest

pytestmark = pytest.mark.slow

VERIFIER = shutil.which("verifier")


def _recipe(folder: Path, *, name: str = "flaky.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(APPS / "flaky.py", folder / "flaky.py")
    path = folder / name
    path.write_text(
        "name: The flaky app saves\n"
        "app:\n"
        "  command: python3 flaky.py {port}\n"
        "  url: http://127.0.0.1:{port}/\n"
        "steps:\n"
        "  - goto: /\n"
        "  - expect_text: {text: Saved, timeout: 2}\n",
        encoding="utf-8",
    )
    return path


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert VERIFIER is not None, "provision.sh links verifier onto PATH"
    return subprocess.run(
        [VERIFIER, "run", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
    )


def _records(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_a_pass_on_a_retry_is_flaky_and_every_attempt_is_kept(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path / "app")
    out = tmp_path / "out"
    done = _run(recipe, "--retries", "2", "--json", "--out", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (record,) = _records(done.stdout)
    assert record["verdict"] == "flaky" and record["exit_code"] == 0
    attempts = record["attempts"]
    assert isinstance(attempts, list) and len(attempts) == 2  # it stopped once it passed
    assert [a["verdict"] for a in attempts] == ["failed", "passed"]
    assert "the page shows 'Broken'" in attempts[0]["error"]
    assert "FLAKY" in done.stderr and "passed on attempt 2, after 1 failed attempt" in done.stderr

    first, last = (Path(a["bundle"]) for a in attempts)
    assert last == Path(str(record["bundle"])) and first.parent == last.parent == out
    assert read_manifest(first)["verdict"] == "failed"  # kept as it was
    # ... and marked: CI reading every junit.xml finds one test case, the last attempt's.
    assert read_manifest(first)["retried"] is True and not (first / "junit.xml").exists()
    assert "and the recipe was run again \\(--retries\\)" in (first / "summary.md").read_text()
    manifest = read_manifest(last)
    assert manifest["verdict"] == "passed" and manifest["flaky"] is True
    assert [a["run_id"] for a in manifest["attempts"]] == [first.name, last.name]

    summary = (last / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("## 🔁 Flaky: The flaky app saves")
    assert "Passed on attempt 2, after 1 failed attempt" in summary
    assert f"(../{first.name}/report.html)" in summary
    report = (last / "report.html").read_text(encoding="utf-8")
    assert f'href="../{first.name}/report.html"' in report
    # JUnit as Maven Surefire writes a rerun that passed: CI systems list it as flaky.
    case = ET.parse(last / "junit.xml").getroot().find("testsuite/testcase")
    assert case is not None and case.find("failure") is None
    flaky = case.find("flakyFailure")
    assert flaky is not None and "Broken" in flaky.get("message", "")

    runs = subprocess.run(
        [str(VERIFIER), "runs", "--out", str(out)], capture_output=True, text=True, timeout=60
    ).stdout.splitlines()
    assert any(first.name in line and "failed (retried)" in line for line in runs), runs
    assert any(last.name in line and " flaky " in line for line in runs), runs


def test_fail_on_flaky_and_no_retries(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path / "app")
    done = _run(recipe, "--out", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 1 and "FAILED" in done.stderr  # no retries: the first start
    (tmp_path / "app" / "starts").unlink()
    done = _run(recipe, "--retries", "1", "--fail-on-flaky", "--out", tmp_path / "o2", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "FLAKY" in done.stderr


def test_a_recipe_that_fails_every_attempt_says_so(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path / "app")
    text = recipe.read_text(encoding="utf-8").replace("text: Saved", "text: Shipped")
    recipe.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    done = _run(recipe, "--retries", "1", "--json", "--out", out, cwd=tmp_path)
    assert done.returncode == 1
    (record,) = _records(done.stdout)
    assert record["verdict"] == "failed" and len(record["attempts"]) == 2
    assert "(on all 2 attempts)" in done.stderr
    case = ET.parse(Path(str(record["bundle"])) / "junit.xml").getroot().find("testsuite/testcase")
    assert case is not None and case.find("failure") is not None
    assert case.find("rerunFailure") is not None
    summary = (Path(str(record["bundle"])) / "summary.md").read_text(encoding="utf-8")
    assert "Failed on all 2 attempts" in summary


def test_repeat_counts_the_passes_and_keeps_a_bundle_each(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path / "app")
    out = tmp_path / "out"
    done = _run(recipe, "--repeat", "3", "--json", "--out", out, cwd=tmp_path)
    assert done.returncode == 1  # the worst of the three: the first start is broken
    records = _records(done.stdout)
    assert [r["verdict"] for r in records] == ["failed", "passed", "passed"]
    assert len({r["bundle"] for r in records}) == 3 and len(list(out.iterdir())) == 3
    assert f"2 of 3 passed: {recipe}" in done.stderr


def test_repeat_and_retries_with_jobs(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path / "app")
    (tmp_path / "app" / "starts").write_text("1")  # fixed already
    out = tmp_path / "out"
    done = _run(
        recipe, "--repeat", "2", "--jobs", "2", "--retries", "1", "--out", out, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("PASSED") == 2 and f"2 of 2 passed: {recipe}" in done.stdout


def test_bad_counts_are_one_line_errors(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path / "app")
    for args, says in (
        (["--retries", "-1"], "--retries must be from 0 to 100 (got -1)"),
        (["--repeat", "0"], "--repeat must be at least 1 (got 0)"),
    ):
        done = _run(recipe, *args, cwd=tmp_path)
        assert done.returncode == 2 and says in done.stderr, done.stderr
    assert not (tmp_path / "artifacts").exists()
