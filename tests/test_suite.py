"""Recipes of one `verifier run` share one desktop, one browser and one start of an equal
app, each with a fresh context and input; `--isolate` gives each its own; an app that
died is started again for the next recipe."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import read_manifest, server_command

VERIFIER = shutil.which("verifier")
pytestmark = [
    pytest.mark.skipif(VERIFIER is None, reason="verifier is not installed"),
    pytest.mark.usefixtures("no_leaks"),
]

# What one recipe could leave for the next: cookies, storage, the HTTP cache (cached.js
# would not be asked for again), Caps Lock, the clipboard, keys bound for typing.
_PAGE = """<!doctype html><title>suite</title><body>
<p id=found></p><input id=field aria-label=field>
<script src="cached.js"></script>
<script>
found.textContent = 'found:' + document.cookie + ':' + (localStorage.left || 'none');
document.cookie = 'left=1; max-age=3600'; localStorage.left = '1';
</script>"""


def _site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(_PAGE)
    (site / "cached.js").write_text("window.cached = true;")
    return site


def _recipes(write_recipe: Callable[..., Path], site: Path) -> tuple[Path, Path]:
    app = {"command": server_command("serve", str(site)), "url": "http://127.0.0.1:{port}/"}
    leaves = write_recipe(
        {
            "name": "leaves what it can",
            "app": app,
            "steps": [
                {"goto": "/?first"},
                {"expect_text": "found::none"},
                {"click": "#field"},
                {"type": "Grüße 東京"},
                {"press": "Control+a"},
                {"press": "Control+c"},
                {"press": "CapsLock"},
            ],
        }
    )
    finds = write_recipe(
        {
            "name": "finds nothing of it",
            "app": app,
            "steps": [
                {"goto": "/?second"},
                {"expect_text": "found::none"},
                {"click": "#field"},
                {"press": "Control+v"},
                {"type": "abc"},
                {"expect_value": {"selector": "#field", "value": "abc"}},
            ],
        }
    )
    return leaves, finds


def _run(*args: str) -> list[dict[str, object]]:
    assert VERIFIER is not None
    done = subprocess.run(
        [VERIFIER, "run", *args, "--json", "--no-video"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, done.stderr
    return records


def test_recipes_share_the_desktop_and_app_but_nothing_of_each_other(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    leaves, finds = _recipes(write_recipe, _site(tmp_path))
    first, second = _run(str(leaves), str(finds), "--out", str(tmp_path / "out"))
    one, two = (Path(str(r["bundle"])) for r in (first, second))
    setup_one, setup_two = (read_manifest(b)["setup"] for b in (one, two))
    assert isinstance(setup_one, dict) and isinstance(setup_two, dict)
    # One desktop, one browser, one start of the app; the second says whose they are.
    assert setup_two["desktop"]["display"] == setup_one["desktop"]["display"]
    for part in ("desktop", "browser", "app"):
        assert "shared_with" not in setup_one[part]
        assert setup_two[part]["shared_with"] == one.name, part
    assert setup_two["app"]["pid"] == setup_one["app"]["pid"]
    # Each bundle has the app's output of its own time.
    log_one, log_two = ((b / "logs" / "app.log").read_text() for b in (one, two))
    assert "GET /?first" in log_one and "/?second" not in log_one
    assert "GET /?second" in log_two and "/?first" not in log_two
    assert "GET /cached.js" in log_two  # a fresh cache asks again
    assert (two / "logs" / "xvfb.log").is_file()


def test_isolate_gives_each_recipe_its_own_desktop_and_app(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    leaves, finds = _recipes(write_recipe, _site(tmp_path))
    records = _run(str(leaves), str(finds), "--isolate", "--out", str(tmp_path / "out"))
    setups = [read_manifest(Path(str(r["bundle"])))["setup"] for r in records]
    assert all("shared_with" not in s["desktop"] for s in setups)  # type: ignore[index]
    assert setups[0]["app"]["pid"] != setups[1]["app"]["pid"]  # type: ignore[index]


def test_an_app_that_died_is_started_again_for_the_next_recipe(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    app = {"command": server_command("api"), "url": "http://127.0.0.1:{port}/health"}
    kills = write_recipe(
        {"name": "kills the app", "app": app, "steps": [{"goto": "/die"}, {"wait": 0.5}]}
    )
    checks = write_recipe(
        {"name": "needs the app", "app": app, "steps": [{"goto": "/health"}, {"expect_text": "ok"}]}
    )
    assert VERIFIER is not None
    done = subprocess.run(
        [VERIFIER, "run", str(kills), str(checks), "--json", "--no-video"]
        + ["--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 2, done.stderr
    died, passed = (json.loads(line) for line in done.stdout.splitlines())
    assert died["verdict"] == "error" and "exited" in died["error"], died
    assert passed["verdict"] == "passed", passed
    setups = [read_manifest(Path(r["bundle"]))["setup"] for r in (died, passed)]
    assert "shared_with" not in setups[1]["app"]  # type: ignore[index]
    assert setups[1]["desktop"]["shared_with"]  # type: ignore[index]
