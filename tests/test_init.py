"""`verifier init`, through the installed executable: a first recipe for an existing app,
whose checks come from the running app, and which then passes `verifier run`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import npm

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
VERIFIER = shutil.which("verifier")
CREATE_VITE = "vite@9.3.0"  # as tests/test_pages_lit.py: create-vite 9.3.0


def _verifier(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert VERIFIER is not None, "provision.sh links verifier onto PATH"
    return subprocess.run(
        [VERIFIER, *map(str, args)], capture_output=True, text=True, timeout=240, cwd=cwd
    )


def _init_then_run(folder: Path, tmp_path: Path) -> dict[str, Any]:
    done = _verifier("init", folder, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    recipe = folder / "verify_smoke.yaml"
    assert done.stdout.strip() == str(recipe)
    assert f"next: verifier run {recipe}" in done.stderr
    ran = _verifier("run", recipe, "--out", tmp_path / "out", "--no-video", cwd=folder)
    assert ran.returncode == 0 and ran.stdout.startswith("PASSED"), ran.stderr
    data = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_a_fresh_create_vite_app(tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: no create-vite app can be made")
    npm(
        ["create", "-y", CREATE_VITE, "shop", "--", "--template", "react-ts", "--no-interactive"],
        tmp_path,
    )
    app = tmp_path / "shop"
    done = _verifier("init", app, cwd=tmp_path)  # before npm install: it says what to do
    assert done.returncode == 2 and "node_modules is missing" in done.stderr
    assert "(npm install)" in done.stderr and not (app / "verify_smoke.yaml").exists()
    npm(["install", "--no-audit", "--no-fund"], app)

    data = _init_then_run(app, tmp_path)
    assert data["app"] == {
        "command": "npm run dev -- --port {port} --strictPort --host 127.0.0.1",
        "url": "http://127.0.0.1:{port}/",
    }
    # The title comes from the running app (create-vite names it after the project), and
    # so does the heading React rendered.
    assert data["steps"] == [
        {"goto": "/"},
        {"expect_title": "shop"},
        {"expect_text": "Get started"},
        {"expect_no_console_errors": {}},
    ]
    # Never overwrites: a second init leaves the file as it was.
    before = (app / "verify_smoke.yaml").read_bytes()
    again = _verifier("init", app, cwd=tmp_path)
    assert again.returncode == 2
    assert f"{app / 'verify_smoke.yaml'} exists: verifier init never overwrites" in again.stderr
    assert (app / "verify_smoke.yaml").read_bytes() == before


def test_a_cursor_environment(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "recipes" / "cursor-repo", repo, ignore=shutil.ignore_patterns("*.log"))
    data = _init_then_run(repo, tmp_path)
    # The port the environment's web terminal serves on.
    assert data["app"] == {
        "environment": ".cursor/environment.json",
        "url": "http://127.0.0.1:47380/",
    }
    assert {"expect_title": "Shop"} in data["steps"]


def test_a_static_site_without_a_title(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(
        "<!doctype html><body><script>console.error('boom')</script>"
        "<p>  Plain   page </p><p>more</p>",
        encoding="utf-8",
    )
    done = _verifier("init", site, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no title: the check is its first line of text" in done.stderr
    assert "console error" in done.stderr  # noted, and no check that would fail
    recipe = yaml.safe_load((site / "verify_smoke.yaml").read_text(encoding="utf-8"))
    assert recipe["steps"] == [{"goto": "/"}, {"expect_text": "Plain page"}]
    ran = _verifier("run", site / "verify_smoke.yaml", "--out", tmp_path / "o", cwd=site)
    assert ran.returncode == 0, ran.stderr


def test_a_folder_without_an_app_says_what_it_looked_for(tmp_path: Path) -> None:
    done = _verifier("init", tmp_path, cwd=tmp_path)
    assert done.returncode == 2
    assert "no .cursor/environment.json, package.json or index.html" in done.stderr
    missing = _verifier("init", tmp_path / "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    assert list(tmp_path.iterdir()) == []


MOVER = """
import http.server, os, sys
here = os.getcwd()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<title>Mover</title><h1>Moved</h1>"
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
        if not os.path.islink(here):  # the folder goes; a link to elsewhere takes its place
            os.rename(here, here + "_moved")
            os.symlink(sys.argv[1], here)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


def test_an_app_that_moves_its_folder_gets_nothing_written_elsewhere(tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    repo = tmp_path / "repo"
    web = repo / "web"
    web.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
    victim = tmp_path / "victim"
    victim.mkdir()
    (web / "mover.py").write_text(MOVER, encoding="utf-8")
    package = {"name": "mover", "scripts": {"dev": f"python3 mover.py {victim}"}}
    (web / "package.json").write_text(json.dumps(package), encoding="utf-8")
    done = _verifier("init", web, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "was moved or replaced while the app ran: nothing written" in done.stderr
    assert list(victim.iterdir()) == []
    assert not (repo / "web_moved" / "verify_smoke.yaml").exists()
