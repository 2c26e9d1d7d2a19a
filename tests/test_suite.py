"""Recipes of one `verifier run` share one desktop, one browser and one start of an equal
app, each with a fresh context and input; `--isolate` gives each its own; an app that
died is started again for the next recipe."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import server_command
from verifier.errors import VerifierError
from verifier.evidence import read_manifest

VERIFIER = shutil.which("verifier")
pytestmark = [
    pytest.mark.skipif(VERIFIER is None, reason="verifier is not installed"),
    pytest.mark.usefixtures("no_leaks"),
]

# What one recipe could leave for the next: cookies, storage, the HTTP cache (cached.js
# would not be asked for again), Caps Lock, the clipboard, keys bound for typing (and
# the key events of the next recipe's typing name its own characters).
_PAGE = """<!doctype html><title>suite</title><body>
<p id=found></p><input id=field aria-label=field><p id=keys></p>
<script src="cached.js"></script>
<script>
found.textContent = 'found:' + document.cookie + ':' + (localStorage.left || 'none');
field.addEventListener('keydown', (e) => {
  if (e.key.length === 1 && !e.ctrlKey) keys.textContent += e.key;
});
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
                {"type": "abc ñ"},
                {"expect_value": {"selector": "#field", "value": "abc ñ"}},
                # The key events name what was typed (Chromium reads a key's meaning for
                # them once: a key bound after the first recipe typed read "\0").
                {"expect_text": {"selector": "#keys", "text": "abc ñ", "exact": True}},
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
    assert all("shared_with" not in s["desktop"] for s in setups)
    assert setups[0]["app"]["pid"] != setups[1]["app"]["pid"]


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
    assert "shared_with" not in setups[1]["app"]
    assert setups[1]["desktop"]["shared_with"]


# An app that says what it was sent a moment later (as a background job would): in the
# time of the recipe after the one that sent it.
_LATE = """
import http.server, sys, threading, time, urllib.parse
class Late(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def do_GET(self):
        query = urllib.parse.urlsplit(self.path).query
        if query:
            threading.Timer(1.5, lambda: print("LATER", query, flush=True)).start()
        if self.path.startswith("/die"):
            threading.Timer(0.3, lambda: (print("FATAL: gone", flush=True), sys.exit(3)
                                          if False else __import__("os")._exit(3))).start()
        super().do_GET()
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Late).serve_forever()
"""
_FORM = "<title>form</title><form><input id=q name=q aria-label=q></form><p>ready</p>"


def _late_app(tmp_path: Path) -> dict[str, object]:
    app = tmp_path / "late"
    app.mkdir()
    (app / "late.py").write_text(_LATE)
    (app / "index.html").write_text(_FORM)
    return {"command": "python3 late.py {port}", "cwd": str(app), "url": "http://127.0.0.1:{port}/"}


def test_a_recipe_s_secret_is_redacted_in_the_next_recipe_s_bundle(
    tmp_path: Path, write_recipe: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "s1-Secret-Value-9f8e7d"
    monkeypatch.setenv("S1_TOKEN", token)
    app = _late_app(tmp_path)
    sends = write_recipe(
        {
            "name": "sends a secret",
            "app": app,
            "secrets": ["S1_TOKEN"],
            "steps": [
                {"goto": "/"},
                {"click": "#q"},
                {"type": {"secret": "S1_TOKEN"}},
                {"press": "Enter"},
                {"expect_text": "ready"},
            ],
        }
    )
    later = write_recipe(
        {"name": "declares nothing", "app": app, "steps": [{"goto": "/"}, {"wait": 2}]}
    )
    first, second = _run(str(sends), str(later), "--out", str(tmp_path / "out"))
    bundle = Path(str(second["bundle"]))
    log = (bundle / "logs" / "app.log").read_text()
    assert "LATER q=[secret:S1_TOKEN]" in log, log  # said in its time, redacted
    for path in bundle.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_an_app_that_died_after_a_recipe_is_started_again_before_the_next(
    tmp_path: Path,
) -> None:
    # Between two recipes of a suite (no desktop needed to see it): the next recipe
    # asks for the app, finds it gone, and gets a new start with the old one's last words.
    from verifier._redact import NO_SECRETS
    from verifier.app import AppServices
    from verifier.recipe import load_recipe
    from verifier.suite import Suite

    site = _site(tmp_path)
    recipe_path = tmp_path / "r.yaml"
    recipe_path.write_text(
        json.dumps(
            {
                "name": "r",
                "app": {
                    "command": server_command("serve", str(site)),
                    "url": "http://127.0.0.1:{port}/",
                },
                "steps": [{"goto": "/"}],
            }
        )
    )
    services = load_recipe(recipe_path).services()

    def make() -> AppServices:
        return AppServices(services, logs=tmp_path / "logs-1")

    with Suite() as suite:
        first, by = suite.app(
            "key", make, run_id="one", logs=tmp_path / "logs-1", redactor=NO_SECRETS
        )
        first.wait_ready()
        assert by is None
        again, by = suite.app(
            "key", make, run_id="two", logs=tmp_path / "logs-2", redactor=NO_SECRETS
        )
        assert again is first and by == "one"
        os.kill(first.services[0].pid or 0, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                first.check_alive()
            except VerifierError:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the killed app did not end")
        third, by = suite.app(
            "key", make, run_id="three", logs=tmp_path / "logs-3", redactor=NO_SECRETS
        )
        assert third is not first and by is None
        third.wait_ready()


def test_retries_in_a_suite_start_anew(tmp_path: Path, write_recipe: Callable[..., Path]) -> None:
    leaves, _finds = _recipes(write_recipe, _site(tmp_path))
    fails = write_recipe(
        {
            "name": "fails",
            "app": {
                "command": server_command("serve", str(tmp_path / "site")),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [{"goto": "/"}, {"expect_text": {"text": "never there", "timeout": 1}}],
        }
    )
    assert VERIFIER is not None
    done = subprocess.run(
        [VERIFIER, "run", str(leaves), str(fails), "--retries", "1", "--json", "--no-video"]
        + ["--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1, done.stderr
    record = json.loads(done.stdout.splitlines()[-1])
    assert [a["verdict"] for a in record["attempts"]] == ["failed", "failed"], record
