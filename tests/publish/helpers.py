"""What the publish tests share besides fixtures: the pull request, bundles made file by
file, the command in-process, and where a token could leak."""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.publish.github_fake import FakeGitHub
from verifier.publish._errors import secret_forms
from verifier.publish.cli import add_parser, run

REPO = "octo/app"
PR = 7
SHA = "0123456789abcdef0123456789abcdef01234567"
URL_BASE = "https://git.example/raw/{branch}/"


def git(*args: str, cwd: Path | None = None) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), "LC_ALL": "C"}
    env |= {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def branch_files(bare: Path, branch: str = "verifier-artifacts") -> set[str]:
    out = git("--git-dir", str(bare), "ls-tree", "-r", "--name-only", f"refs/heads/{branch}")
    return set(out.split())


def make_bundle(
    out: Path,
    *,
    verdict: str = "passed",
    name: str = "Adding a todo shows it",
    error: str = "expect_text: '7 items left' not in the visible text",
    recipe_path: str = "/work/recipes/todo.yaml",
    video_bytes: int = 20_000,
    attachments: tuple[str, ...] = (),
) -> Path:
    """A bundle as the runner writes it: screenshots, preview, video, report, manifest."""
    run_id = f"20260102-030405-{re.sub(r'[^a-z0-9]+', '-', name.lower())[:20]}-"
    run_id = run_id.replace("--", "-") + secrets.token_hex(3)
    root = out / run_id
    (root / "screenshots").mkdir(parents=True)
    (root / "logs").mkdir()
    steps: list[dict[str, Any]] = []
    for n in range(3):
        status = "passed"
        if verdict == "failed" and n == 2:
            status = "failed"
        if verdict == "error":
            status = "skipped"
        shot = None
        if status != "skipped":
            shot = f"screenshots/{n + 1:02d}-click{'-failed' if status == 'failed' else ''}.png"
            Image.new("RGB", (64, 40), (40 * n, 100, 200)).save(root / shot)
        steps.append(
            {
                "index": n,
                "action": "expect_text" if n == 2 else "click",
                "target": "7 items left" if n == 2 else f"#b{n}",
                "status": status,
                "started_at": "2026-01-02T03:04:05.000Z",
                "duration_ms": 12.0 if status != "skipped" else None,
                "screenshot": shot,
                "raw_screenshot": shot,
                "screenshots": [shot] if shot else [],
                "video_offset_s": None,
                "error": error if status == "failed" else None,
                "points": [],
            }
        )
    for name in attachments:  # what expect_screenshot attaches to its failing step
        rel = f"screenshots/03-{name}.png"
        Image.new("RGB", (64, 40), (200, 0, 0)).save(root / rel)
        steps[2].setdefault("attachments", []).append({"name": name, "path": rel})
    Image.new("RGB", (64, 40), (0, 0, 0)).save(root / "preview.gif")
    (root / "video.mp4").write_bytes(os.urandom(video_bytes))
    (root / "report.html").write_text("<!doctype html><title>report</title>", encoding="utf-8")
    manifest = {
        "schema_version": 1,
        "run_id": run_id,
        "verdict": verdict,
        "finished": True,
        "recipe": {"name": name, "path": recipe_path, "sha256": "0" * 64},
        "started_at": "2026-01-02T03:04:05.000Z",
        "finished_at": "2026-01-02T03:04:09.000Z",
        "duration_s": 4.0,
        "environment": {"screen": "1280x800"},
        "setup": {},
        "steps": steps,
        "artifacts": [],
        "video": {
            "path": "video.mp4",
            "duration_s": 4.0,
            "fps": 15,
            "codec": "h264",
            "pix_fmt": "yuv420p",
            "chapters": 3,
        },
        "preview": "preview.gif",
        "error": (
            {"type": "DevServerError", "message": "dev server never got ready", "step": None}
            if verdict == "error"
            else None
        ),
    }
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return root


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``verifier publish ARGV`` in-process: (exit code, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="verifier")
    add_parser(parser.add_subparsers(dest="command", required=True))
    code = run(parser.parse_args(["publish", *argv]))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def target(github: FakeGitHub, remote: Path | None = None) -> list[str]:
    args = ["--repo", REPO, "--pr", str(PR), "--sha", SHA, "--api-url", github.url]
    if remote is None:
        return [*args, "--no-upload"]
    return [*args, "--artifacts-remote", str(remote), "--artifacts-url-base", URL_BASE]


def leaks(token: str, *places: str) -> list[str]:
    return [form for place in places for form in secret_forms(token) if form in place]


def files_holding(token: str, root: Path) -> list[Path]:
    forms = [f.encode() for f in secret_forms(token)]
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and any(f in path.read_bytes() for f in forms)
    ]
