"""`verifier run --jobs N`: recipes in parallel, each on its own display."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import SITE, server_command
from verifier.evidence import read_manifest


def _recipe(write_recipe: Callable[..., Path], text: str) -> Path:
    return write_recipe(
        {
            "name": f"expects {text}",
            "app": {
                "command": server_command("serve", str(SITE)),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [{"goto": "/"}, {"expect_text": {"text": text, "timeout": 2}}],
        }
    )


@pytest.mark.usefixtures("no_leaks")
def test_jobs_run_in_parallel_and_the_worst_exit_wins(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    recipes = [_recipe(write_recipe, t) for t in ("Fixture app", "Not there", "idle")]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "verifier",
            "run",
            *map(str, recipes),
            "--jobs",
            "2",
            "--json",
            "--no-video",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(r["verdict"] for r in records) == ["failed", "passed", "passed"]
    displays = {read_manifest(Path(r["bundle"]))["environment"]["display"] for r in records}
    assert len(displays) >= 2  # at least two ran at once, each on its own display
    assert "expect_text: 'Not there' not in the visible text" in done.stderr


def test_jobs_refuse_a_shared_display(tmp_path: Path, write_recipe: Callable[..., Path]) -> None:
    recipes = [str(_recipe(write_recipe, "x")), str(_recipe(write_recipe, "y"))]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "verifier",
            "run",
            *recipes,
            "--jobs",
            "2",
            "--display",
            ":0",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("Error: --display and --jobs > 1 cannot be combined")
