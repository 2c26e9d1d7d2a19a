"""A real web-component app: the `lit` template of create-vite, installed from npm (once,
into the checkout's git-ignored .cache/), run by its own Vite dev server and verified
through `verifier run`: its counter button and text live in an open shadow root."""

from __future__ import annotations

import fcntl
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import NPM_CACHE, npm
from verifier.cli import main
from verifier.evidence import read_manifest

pytestmark = pytest.mark.usefixtures("no_leaks")

ROOT = Path(__file__).resolve().parent.parent
CACHE = NPM_CACHE
CREATE_VITE = "vite@9.3.0"  # npm create vite: create-vite 9.3.0; its dependencies float


@pytest.fixture(scope="module")
def lit_app() -> Iterator[Path]:
    """The create-vite lit project, made and installed on first use."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: the create-vite lit app cannot be made")
    CACHE.mkdir(parents=True, exist_ok=True)
    app = CACHE / "lit-app"
    with (CACHE / "lit-app.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be making it
        if not (app / "node_modules" / ".bin" / "vite").exists():
            shutil.rmtree(app, ignore_errors=True)
            npm(
                [
                    "create",
                    "-y",
                    CREATE_VITE,
                    app.name,
                    "--",
                    "--template",
                    "lit",
                    "--no-interactive",
                ],
                CACHE,
            )
            npm(["install", "--no-audit", "--no-fund"], app)
    yield app


def test_a_create_vite_lit_app_is_verified_through_its_shadow_dom(
    lit_app: Path,
    write_recipe: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = write_recipe(
        {
            "name": "Lit counter",
            "app": {
                "command": [
                    str(lit_app / "node_modules" / ".bin" / "vite"),
                    "--port",
                    "{port}",
                    "--strictPort",
                    "--host",
                    "127.0.0.1",
                ],
                "cwd": str(lit_app),
                "url": "http://127.0.0.1:{port}/",
                "ready_timeout": 60,
            },
            "video": False,
            "steps": [
                {"goto": "/"},
                {"expect_text": "Get started"},  # slotted into <my-element>
                {"expect_text": {"text": "Count is 0", "exact": True}},  # in its shadow root
                {"click": "text=Count is 0"},
                {"click": "my-element >> button.counter"},
                {"expect_text": {"text": "Count is 2", "exact": True}},
                {"expect_no_text": "Count is 0"},
                {
                    "expect_attribute": {
                        "selector": "button.counter",
                        "name": "part",
                        "value": "button",
                    }
                },
                {"expect_visible": "text=Documentation"},
                {
                    "expect_aria": {
                        "selector": "button.counter",
                        "snapshot": '- button "Count is 2"',
                    }
                },
                {"expect_title": "lit-app"},
            ],
        }
    )
    code = main(["run", str(recipe), "--out", str(tmp_path / "out"), "--json"])
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert code == 0, (result, captured.err)
    manifest = read_manifest(Path(result["bundle"]))
    steps = manifest["steps"]
    assert all(s["status"] == "passed" for s in steps)
    assert steps[3]["points"] and steps[4]["points"]
