"""Hostile pages and recipes: nothing they say runs in the report, no file escapes the bundle."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, sync_playwright

from tests.support import SITE, server_command
from verifier.browser import CHROMIUM_FLAGS
from verifier.cli import main


@pytest.mark.usefixtures("no_leaks")
def test_script_injections_run_nowhere(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_recipe(
        {
            "name": "../../etc/<script>alert('name')</script>",
            "app": {
                "command": server_command("serve", str(SITE)),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [
                {"goto": "/hostile.html"},
                {"screenshot": "../../evil"},
                {"expect_text": {"text": "<b onmouseover=alert('x')>", "timeout": 1}},
            ],
        }
    )
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--out", str(out), "--json", "--no-video"]) == 1
    bundle = Path(json.loads(capsys.readouterr().out)["bundle"])
    assert bundle.parent == out  # the run id is a safe slug of the hostile name
    files = [p.relative_to(out) for p in out.rglob("*") if p.is_file()]
    assert all(str(p).startswith(bundle.name + "/") for p in files), files
    assert (bundle / "screenshots" / "02-screenshot-evil.png").is_file()

    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=list(CHROMIUM_FLAGS))
        try:
            page = browser.new_page()

            def dismiss(dialog: Dialog) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", dismiss)
            page.goto((bundle / "report.html").as_uri())
            page.wait_for_load_state("load")
            text = page.text_content("body") or ""
            injected = page.evaluate(
                "document.querySelectorAll('svg, iframe, img[src=x], b[onmouseover]').length"
            )
            scripts = page.evaluate("document.scripts.length")
        finally:
            browser.close()
    assert dialogs == []
    assert injected == 0 and scripts == 1
    assert "<script>alert('name')</script>" in text  # shown as text
    assert "<img src=x onerror=alert('error')>" in text  # the console error, as text
    assert "</script><script>alert('console')</script>" in text  # the console log, as text
