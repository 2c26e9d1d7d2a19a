"""Secrets never reach the bundle or the terminal, even when the page echoes them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import SITE, server_command
from verifier._redact import Redactor

SECRET = "s3cr3t-Tok3n-d9f8e7c6b5a4"


@pytest.mark.usefixtures("no_leaks")
def test_typed_secret_echoed_by_the_page_is_nowhere(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    recipe = write_recipe(
        {
            "name": "token form",
            "secrets": ["MY_SECRET"],
            "app": {
                "command": server_command("serve", str(SITE)),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [
                {"goto": "/secret.html"},
                {"type": {"secret": "MY_SECRET", "selector": "#token"}},
                {"click": "#save"},
                {"expect_text": "Saved"},
                # Fails, and its message quotes the page, which shows the secret.
                {"expect_text": {"text": "Stored", "timeout": 1}},
            ],
        }
    )
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "verifier", "run", str(recipe), "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "MY_SECRET": SECRET},
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert SECRET not in done.stdout and SECRET not in done.stderr
    assert "the page shows 'Save Saved [secret:MY_SECRET]'" in done.stderr
    (bundle,) = out.iterdir()
    files = [p for p in bundle.rglob("*") if p.is_file()]
    assert {"manifest.json", "report.html", "summary.md", "junit.xml"} <= {p.name for p in files}
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    # The page did echo it: the markers prove redaction happened where it was written.
    logs = bundle / "logs"
    assert "saving token [secret:MY_SECRET]" in (logs / "browser-console.jsonl").read_text()
    assert "GET /echo?token=[secret:MY_SECRET]" in (logs / "app.log").read_text()
    assert "[secret:MY_SECRET]" in (bundle / "summary.md").read_text()


def test_redactor_collects_declared_and_guessed_secrets() -> None:
    environ = {
        "MY_SECRET": "abc",
        "GITHUB_TOKEN": "ghp_0123456789abcdef",
        "HOME": "/root",
        "DISABLE_AUTH_TOKEN": "true",
    }
    redactor = Redactor.collect(
        declared=["MY_SECRET"],
        environ=environ,
        app_env={"DB_PASSWORD": "hunter2hunter2", "MODE": "dev"},
    )
    assert redactor.names == ["DB_PASSWORD", "GITHUB_TOKEN", "MY_SECRET"]
    text = "abc ghp_0123456789abcdef hunter2hunter2 true /root dev"
    assert redactor.text(text) == (
        "[secret:MY_SECRET] [secret:GITHUB_TOKEN] [secret:DB_PASSWORD] true /root dev"
    )
    assert redactor.obj({"k": ["abc", 1]}) == {"k": ["[secret:MY_SECRET]", 1]}
    assert not Redactor.collect(declared=[], environ={"HOME": "/x"}, app_env={})
