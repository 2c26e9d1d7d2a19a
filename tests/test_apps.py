"""Real apps: several services, a Cursor environment, and logged-in state across runs.

Real processes: a small JSON API and a static frontend calling it, a fixture repo with
``.cursor/environment.json``, a login page that sets a cookie and localStorage.
"""

from __future__ import annotations

import json
import shutil
import stat
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import SERVER, SITE, live_processes
from verifier.app import free_port
from verifier.cli import main
from verifier.evidence import read_manifest

pytestmark = pytest.mark.usefixtures("no_leaks")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object], str]:
    code = main(["run", *args, "--json", "--no-video"])
    out, err = capsys.readouterr()
    return code, json.loads(out.splitlines()[-1]), err


def two_services(*, api_mode: str = "api", steps: list[object] | None = None) -> dict[str, Any]:
    return {
        "name": "frontend and API",
        "app": [
            {
                "name": "api",
                "command": [sys.executable, str(SERVER), api_mode, "{port}"],
                "url": "http://127.0.0.1:{port}/health",
            },
            {
                "name": "web",
                "command": [sys.executable, str(SERVER), "web", "{port}", str(SITE)],
                "url": "http://127.0.0.1:{port}/items.html",
                "env": {"API_URL": "http://127.0.0.1:{ports.api}"},
            },
        ],
        "steps": steps or [{"goto": "/items.html"}, {"expect_text": "apples"}],
    }


def test_a_frontend_calls_its_api_on_the_port_it_was_given(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, err = run(capsys, str(write_recipe(two_services())), "--out", str(tmp_path))
    assert code == 0, err
    bundle = Path(str(result["bundle"]))
    services = read_manifest(bundle)["setup"]["app"]["services"]
    assert [s["name"] for s in services] == ["api", "web"]
    api, web = services
    assert api["port"] and web["port"] and api["port"] != web["port"]
    assert api["ready_s"] is not None and web["ready_s"] is not None
    assert api["exit_code"] is not None and web["exit_code"] is not None  # stopped, recorded
    logs = bundle / "logs"
    assert f"API at http://127.0.0.1:{api['port']}" in (logs / "app-web.log").read_text()
    assert "GET /items" in (logs / "app-api.log").read_text()
    assert not (logs / "app.log").exists()


def test_a_service_that_dies_is_named_with_its_log(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, str(write_recipe(two_services(api_mode="die"))), "--out", str(tmp_path)
    )
    assert code == 2
    assert "service 'api'" in err and "exited with code 3 before it was ready" in err
    assert "Cannot find module" in err
    # Killed mid-run: the page asks the API to die.
    steps = [{"goto": "/items.html?die=1"}, {"wait": 3}, {"expect_text": "Items"}]
    code, result, err = run(
        capsys, str(write_recipe(two_services(steps=steps))), "--out", str(tmp_path)
    )
    assert code == 2 and "service 'api' exited with code 5 during the run" in err, err
    assert "api: told to die" in err


def test_each_service_gets_one_sigterm_to_stop_gracefully(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A server that shuts down gracefully on SIGTERM and at once on a second (as uvicorn
    does) gets one: the sandbox passes the run's on to it, and nothing else sends one."""
    service = {
        "command": [sys.executable, str(SERVER), "graceful", "{port}"],
        "url": "http://127.0.0.1:{port}/",
    }
    recipe = write_recipe(
        {
            "name": "graceful",
            "app": [{"name": "one", **service}, {"name": "two", **service}],
            "steps": [{"goto": "/"}],
        }
    )
    code, result, err = run(capsys, str(recipe), "--out", str(tmp_path / "out"))
    assert code == 0, err
    logs = Path(str(result["bundle"])) / "logs"
    for name in ("one", "two"):
        log = (logs / f"app-{name}.log").read_text()
        assert log.count("graceful: SIGTERM") == 1, log
    services = read_manifest(Path(str(result["bundle"])))["setup"]["app"]["services"]
    assert [s["exit_code"] for s in services] == [0, 0]


def test_the_list_form_is_checked_before_anything_starts(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = two_services()
    bad["app"][1]["env"] = {"API_URL": "http://127.0.0.1:{ports.apy}"}
    assert main(["validate", str(write_recipe(bad))]) == 2
    assert "{ports.apy} names no service of the app" in capsys.readouterr().err
    twins = two_services()
    twins["app"][1]["name"] = "api"
    assert main(["validate", str(write_recipe(twins))]) == 2
    assert "two services are named 'api'" in capsys.readouterr().err


def cursor_repo(
    root: Path, *, install: str = "python3 build.py", terminals: bool = True
) -> tuple[Path, int, int]:
    """A repo with .cursor/environment.json: install builds, start leaves an API daemon,
    a terminal serves the pages (on free ports, written into the file); without
    ``terminals``, start leaves the page server running too."""
    web, api = free_port(), free_port()
    (root / ".cursor").mkdir(parents=True)
    # The page to build from lies in the repo: the sandbox shows the app its checkout.
    shutil.copy(SITE / "items.html", root / "items.src.html")
    (root / "build.py").write_text(
        "import pathlib\n"
        "d = pathlib.Path('dist'); d.mkdir(exist_ok=True)\n"
        "(d / 'items.html').write_text(pathlib.Path('items.src.html').read_text())\n"
        f"(d / 'config.js').write_text('window.API_URL = \"http://127.0.0.1:{api}\";')\n"
        "print('built')\n"
    )
    environment: dict[str, Any] = {
        "snapshot": "snapshot-abc",  # a key Cursor knows and verifier ignores
        "install": install,
        "start": f"{sys.executable} {SERVER} api {api} > api.log 2>&1 &",
        "terminals": [
            {
                "name": "Web server",
                "command": f"{sys.executable} -m http.server {web} --bind 127.0.0.1 -d dist",
            }
        ],
    }
    if not terminals:
        serve = environment.pop("terminals")[0]["command"]
        environment["start"] = f"{environment['start']} {serve} > web.log 2>&1 &"
    (root / ".cursor" / "environment.json").write_text(json.dumps(environment, indent=1))
    return root / ".cursor" / "environment.json", web, api


def cursor_recipe(env_file: Path, port: int) -> dict[str, object]:
    return {
        "name": "cursor",
        "app": {"environment": str(env_file), "url": f"http://127.0.0.1:{port}/items.html"},
        "steps": [{"goto": "/items.html"}, {"expect_text": "apples"}],
    }


def test_a_cursor_environment_installs_starts_and_serves(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    env_file, port, api = cursor_repo(tmp_path / "repo")
    recipe = write_recipe(cursor_recipe(env_file, port))
    code, result, err = run(capsys, str(recipe), "--out", str(tmp_path / "out"))
    assert code == 0, err
    bundle = Path(str(result["bundle"]))
    services = read_manifest(bundle)["setup"]["app"]["services"]
    assert [(s["name"], s["kind"]) for s in services] == [
        ("install", "install"),
        ("start", "start"),
        ("Web server", "serve"),
    ]
    assert services[0]["exit_code"] == 0 and services[1]["exit_code"] == 0
    logs = bundle / "logs"
    assert "built" in (logs / "app-install.log").read_text()
    assert (logs / "app-web-server.log").is_file()
    # The daemon start left (the API the page called) went with the run.
    assert not live_processes(set(), marker=f"api {api}")


def test_a_cursor_environment_whose_start_leaves_the_server_running(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """No terminals: what start leaves running serves the url, and goes with the run."""
    env_file, port, api = cursor_repo(tmp_path / "repo", terminals=False)
    recipe = write_recipe(cursor_recipe(env_file, port))
    code, result, err = run(capsys, str(recipe), "--out", str(tmp_path / "out"))
    assert code == 0, err
    services = read_manifest(Path(str(result["bundle"])))["setup"]["app"]["services"]
    assert [s["name"] for s in services] == ["install", "start"]
    assert not live_processes(set(), marker=f"api {api}")
    assert not live_processes(set(), marker=f"http.server {port}")
    # Nothing at all to serve the url: said before anything starts.
    env_file.write_text('{"install": "true"}')
    assert main(["validate", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert f"{env_file}: no 'start' and no 'terminals': nothing would serve" in err


def test_a_failing_install_and_a_broken_environment_file(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    env_file, port, _ = cursor_repo(tmp_path / "repo", install="echo npm ERR! missing; exit 4")
    recipe = cursor_recipe(env_file, port)
    code, _, err = run(capsys, str(write_recipe(recipe)), "--out", str(tmp_path / "out"))
    assert code == 2 and "install" in err and "exited with code 4" in err
    assert "npm ERR! missing" in err
    env_file.write_text('{"install": "true",\n  "terminals": [}\n')
    assert main(["validate", str(write_recipe(recipe))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{env_file}: line 2, column" in err
    env_file.unlink()
    assert main(["validate", str(write_recipe(recipe))]) == 2
    assert f"{env_file}: no such file" in capsys.readouterr().err


def test_a_login_is_saved_once_and_used_by_the_next_recipe(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    app = {
        "command": [sys.executable, str(SERVER), "serve", "{port}", str(SITE)],
        "url": "http://127.0.0.1:{port}/",
    }
    user = f"Ada{uuid.uuid4().hex[:6]}"
    login = write_recipe(
        {
            "name": "login",
            "app": app,
            "steps": [
                {"goto": "/login.html"},
                {"type": {"selector": "#user", "text": user}},
                {"click": "#signin"},
                {"expect_text": f"Welcome {user}"},
                {"save_storage_state": "state/auth.json"},
            ],
        },
        "login.yaml",
    )
    account = write_recipe(
        {
            "name": "account",
            "app": app,
            "storage_state": "state/auth.json",
            "steps": [{"goto": "/account.html"}, {"expect_text": f"Signed in as {user}"}],
        },
        "account.yaml",
    )
    code, _, err = run(capsys, str(account), "--out", str(tmp_path / "out"))
    assert code == 2 and "state/auth.json" in err and "login.yaml" in err, err
    code, first, err = run(capsys, str(login), "--out", str(tmp_path / "out"))
    assert code == 0, err
    saved = tmp_path / "state" / "auth.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert user in saved.read_text()
    code, second, err = run(capsys, str(account), "--out", str(tmp_path / "out"))
    assert code == 0, err  # a new port, the same login
    for result in (first, second):
        bundle = Path(str(result["bundle"]))
        for path in bundle.rglob("*"):
            if path.is_file():
                assert b"s-" + user.encode() not in path.read_bytes(), path
        assert not list(bundle.rglob("auth.json"))
