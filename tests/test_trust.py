"""The app under test is hostile: nothing it does escapes the run or forges its evidence.

Against the real thing: the installed ``verifier`` executable, real Xvfb pairs, a real
second run, a host service on loopback, a full filesystem (a small tmpfs).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import SITE, Canary, live_processes, server_command
from verifier.app import DevServer, LogPump
from verifier.browser import Browser
from verifier.desktop import Desktop
from verifier.errors import BrowserError, DisplayError
from verifier.evidence import read_manifest
from verifier.recipe import load_recipe
from verifier.stage import check_window_on

pytestmark = pytest.mark.usefixtures("no_leaks")

ROOT = Path(__file__).resolve().parent.parent
VERIFIER = shutil.which("verifier")


def verifier(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed command, as users run it (its imports start Playwright's driver)."""
    assert VERIFIER is not None, "the verifier command is not on PATH (run provision.sh)"
    return subprocess.run(
        [VERIFIER, *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env if env is not None else dict(os.environ),
        check=False,
    )


@pytest.fixture
def canary() -> Iterator[Canary]:
    """A service on the host's own 127.0.0.1, which a loopback run must not reach."""
    with Canary("127.0.0.1") as server:
        yield server


def loopback_recipe(write_recipe: Callable[..., Path], canary: str, name: str) -> Path:
    return write_recipe(
        {
            "name": name,
            "network": "loopback",
            "app": {
                "command": server_command("outbound", canary),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [
                {"goto": f"/net.html?target={canary}"},
                {"expect_text": "outbound blocked"},
            ],
        },
        f"{name}.yaml",
    )


def test_loopback_holds_through_the_command_and_jobs(
    tmp_path: Path, write_recipe: Callable[..., Path], canary: Canary
) -> None:
    one = loopback_recipe(write_recipe, canary.url, "alone")
    two = loopback_recipe(write_recipe, canary.url, "beside")
    done = verifier("run", str(one), "--out", str(tmp_path / "a"), "--json", "--no-video")
    assert done.returncode == 0, done.stderr
    bundle = Path(json.loads(done.stdout)["bundle"])
    assert "outbound: blocked" in (bundle / "logs" / "app.log").read_text()
    assert read_manifest(bundle)["environment"]["network"] == "loopback"
    jobs = verifier(
        "run", str(one), str(two), "--jobs", "2", "--out", str(tmp_path / "b"), "--no-video"
    )
    assert jobs.returncode == 0, jobs.stderr
    assert canary.hits == [], "a request left the run's network namespace"


def test_the_app_gets_an_allow_listed_environment_and_cannot_outlive_the_run(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    marker = f"hostile-{uuid.uuid4().hex}"
    recipe = write_recipe(
        {
            "name": "hostile app",
            "app": {
                "command": server_command("hostile", marker),
                "url": "http://127.0.0.1:{port}/",
                "env": {"MODE": "test"},
                "pass_env": ["PASSED_ON"],
            },
            "steps": [{"goto": "/"}, {"expect_text": "Fixture app"}],
        }
    )
    # In the C locale (no LANG), as on a bare machine: Python puts LC_CTYPE into its own
    # environment (PEP 538), which is not the app's to get.
    bare = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL", "LC_CTYPE")}
    env = {
        **bare,
        "VERIFIER_MCP_TOKEN": "never-for-the-app-0123",
        "GITHUB_TOKEN": "ghp_never_for_the_app_0123",
        "PASSED_ON": "yes",
    }
    done = verifier("run", str(recipe), "--out", str(tmp_path), "--json", "--no-video", env=env)
    assert done.returncode == 0, done.stderr
    bundle = Path(json.loads(done.stdout)["bundle"])
    log = (bundle / "logs" / "app.log").read_text()
    env_line = re.search(r"hostile: env (.*)", log)
    assert env_line, log
    names = set(env_line[1].split())
    assert names <= {"PATH", "HOME", "LANG", "TERM", "TMPDIR", "PORT", "MODE", "PASSED_ON"}
    assert {"PORT", "MODE", "PASSED_ON"} <= names
    app = read_manifest(bundle)["setup"]["app"]
    if app["sandbox"].startswith("sandbox"):
        # Its own PID namespace: it sees only itself, and no X display at all.
        sees = re.search(r"sees (\d+) processes", log)
        assert sees and int(sees[1]) <= 3, log
        assert "hostile: display" not in log
    assert "accepted" not in log, "the app reached an X display"
    # The setsid, environment-scrubbed grandchild went with the run.
    assert not live_processes(set(), marker=marker)


def test_another_run_s_app_cannot_reach_our_display(tmp_path: Path) -> None:
    marker = f"hostile-{uuid.uuid4().hex}"
    with Desktop(screen="640x480") as ours:
        number = ours.display.lstrip(":")
        # Without our cookie, the X server refuses a client on its socket file.
        refused = subprocess.run(
            ["xdpyinfo", "-display", ours.display],
            capture_output=True,
            text=True,
            env={"PATH": os.environ["PATH"], "XAUTHORITY": "/dev/null"},
            check=False,
        )
        assert refused.returncode != 0 and "unable to open display" in refused.stderr
        assert ours.xauthority is not None and oct(ours.xauthority.stat().st_mode)[-3:] == "600"
        app = DevServer(
            server_command("hostile", marker),
            url="http://127.0.0.1:{port}/",
            cwd=tmp_path,
            log_path=tmp_path / "app.log",
        )
        with app:
            pass
        log = (tmp_path / "app.log").read_text()
        assert f"display X{number} accepted" not in log
        assert f"abstract X{number} accepted" not in log
        assert "accepted" not in log


def test_a_foreign_server_on_the_abstract_socket_is_stepped_around() -> None:
    with Desktop(screen="640x480") as first:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as squatter:
            # The next number a desktop would take (one that another run on this
            # machine holds is stepped over here too).
            start = int(first.display.lstrip(":")) + 1
            for taken in range(start, start + 100):
                try:
                    squatter.bind(f"\0/tmp/.X11-unix/X{taken}")
                    break
                except OSError:
                    continue
            else:
                pytest.fail(f"no free display number from :{start} on")
            squatter.listen(1)
            with Desktop(screen="640x480") as second:
                assert second.display != f":{taken}"
                assert second.screenshot().shape == (480, 640, 3)


def test_a_display_whose_abstract_socket_leads_elsewhere_is_refused() -> None:
    from verifier.desktop import _display

    with Desktop(screen="640x480") as ours, Desktop(screen="640x480") as other:
        # Point libxcb clients of ours at the other server, as a squatter on our abstract
        # socket would: our root window's token is not there.
        with pytest.raises(DisplayError, match="leads libxcb clients .* to another X server"):
            _display._check_identity(ours.display, env=other.env)
        _display._check_identity(ours.display, env=ours.env)  # and ours is ours


def test_a_browser_on_another_display_is_found_out(tmp_path: Path) -> None:
    with Desktop(screen="800x600") as ours, Desktop(screen="800x600") as elsewhere:
        with Browser(
            display=elsewhere.display,
            screen=elsewhere.size,
            console_log=tmp_path / "console.jsonl",
            env=elsewhere.env,
        ) as browser:
            check_window_on(elsewhere, browser, timeout=5)
            with pytest.raises(BrowserError, match=rf"not on display {ours.display}"):
                check_window_on(ours, browser, timeout=1)


def test_a_flood_of_output_keeps_the_log_and_memory_bounded(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    flood = 400 * 1024 * 1024  # no newline in it
    recipe = write_recipe(
        {
            "name": "flood",
            "app": {
                "command": server_command("flood", str(flood)),
                "url": "http://127.0.0.1:{port}/",
                "ready_timeout": 120,
                "log_limit": 1024 * 1024,
            },
            "steps": [{"goto": "/"}, {"expect_text": "Fixture app"}],
        }
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = verifier("run", str(recipe), "--out", str(tmp_path), "--json", "--no-video")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert done.returncode == 0, done.stderr
    bundle = Path(json.loads(done.stdout)["bundle"])
    log = (bundle / "logs" / "app.log").read_bytes()
    assert len(log) <= 1024 * 1024
    assert b"bytes of output cut here" in log
    assert b"flood done" in log  # the tail is kept
    # The verifier's process stayed small (its peak, not the 400 MB it read); Chromium's
    # processes are children too, so the bound leaves room for them.
    assert peak_mb < 700 or before / 1024 >= peak_mb, f"peak RSS {peak_mb:.0f} MB"


@pytest.mark.parametrize("size", [8192, 8193, 9000, 100_000])
def test_a_log_keeps_at_most_its_limit_with_the_note_inside(tmp_path: Path, size: int) -> None:
    """app.log_limit is the most the log holds, the line saying what was cut included;
    output that fits is kept whole."""
    read, write = os.pipe()
    data = bytes(ord("a") + i % 26 for i in range(size))
    path = tmp_path / "app.log"
    with os.fdopen(read, "rb") as stream:
        pump = LogPump(stream, path, limit=8192).start()
        with os.fdopen(write, "wb") as out:
            out.write(data)
        pump.join(10)
    log = path.read_bytes()
    if size <= 8192:
        assert log == data
        return
    assert len(log) <= 8192 and log.startswith(data[:4096]) and log.endswith(data[-3000:])
    head, note, tail = log[:4096], log[4096:].split(b"\n")[1], log[4096:].split(b"\n")[2]
    assert head + tail == data[:4096] + data[len(data) - len(tail) :]
    said = re.match(rb"\[verifier: (\d+) bytes of output cut here", note)
    assert said, note
    cut = int(said[1])
    assert cut == size - 4096 - len(tail)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_output_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(full)], check=True)
    try:
        (full / "filler").write_bytes(b"\0" * 300 * 1024)  # about 100 KB are left
        demo = ROOT / "recipes" / "todo.yaml"
        done = verifier("run", str(demo), "--out", str(full / "out"))
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("Error: ")
        assert "No space left on device" in done.stderr
        assert not [p for p in full.rglob("*") if ".tmp" in p.name]
    finally:
        subprocess.run(["umount", str(full)], check=True)


def test_control_characters_never_reach_the_terminal(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    recipe = write_recipe(
        {
            "name": "evil \x1b[2J\x1b]0;owned\x07 name \u202e",
            "app": {
                "command": server_command("serve", str(SITE)),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [{"goto": "/"}, {"expect_text": {"text": "\x1b[31mred", "timeout": 1}}],
        }
    )
    done = verifier("run", str(recipe), "--out", str(tmp_path), "--no-video")
    assert done.returncode == 1, done.stderr
    runs = verifier("runs", "--out", str(tmp_path))
    for text in (done.stdout, done.stderr, runs.stdout, runs.stderr):
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f\u202e]", text), repr(text)
    assert "\\u001b[2J" in runs.stdout


def test_a_session_over_mcp_gets_the_protections_of_a_run(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    import anyio
    from mcp import Client, StdioServerParameters

    secret = f"s3cr3t-{uuid.uuid4().hex[:12]}"
    recipe = write_recipe(
        {
            "name": "secret session",
            "secrets": ["SESSION_SECRET"],
            "network": "loopback",
            "app": {
                "command": server_command("serve", str(SITE)),
                "url": "http://127.0.0.1:{port}/secret.html",
                "pass_env": ["SESSION_SECRET"],
            },
            "steps": [{"goto": "/secret.html"}],
        }
    )
    env = {**os.environ, "SESSION_SECRET": secret}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "verifier", "mcp", "--recipe", str(recipe), "--out", str(tmp_path / "out")],
        env=env,
    )

    async def session() -> dict[str, object]:
        async with Client(params) as client:
            await client.call_tool("computer", {"action": "type", "text": secret})
            done = await client.call_tool("finish", {"verdict": "passed", "summary": secret})
            return dict(done.structured_content or {})

    finished = anyio.run(session)
    bundle = Path(str(finished["bundle"]))
    files = [p for p in bundle.rglob("*") if p.is_file() and p.suffix != ".png"]
    assert {"manifest.json", "session.yaml", "report.html", "summary.md"} <= {p.name for p in files}
    for path in files:
        assert secret.encode() not in path.read_bytes(), path
    manifest = read_manifest(bundle)
    assert manifest["environment"]["network"] == "loopback"
    replay = (bundle / "session.yaml").read_text()
    assert "secrets:" in replay and "SESSION_SECRET" in replay and "network: loopback" in replay
    assert "type: {secret: SESSION_SECRET}" in replay  # replayed from the variable
    load_recipe(bundle / "session.yaml")


def test_a_typed_secret_s_prefixes_are_redacted_in_the_console_log(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    secret = "pw-" + uuid.uuid4().hex[:14]
    recipe = write_recipe(
        {
            "name": "keylogger",
            "app": {
                "command": server_command("serve", str(SITE)),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [
                {"goto": "/secret.html?keylog=1"},
                {"type": {"secret": "TYPED", "selector": "#token"}},
            ],
        }
    )
    env = {**os.environ, "TYPED": secret}
    done = verifier("run", str(recipe), "--out", str(tmp_path), "--json", "--no-video", env=env)
    assert done.returncode == 0, done.stderr
    bundle = Path(json.loads(done.stdout)["bundle"])
    console = (bundle / "logs" / "browser-console.jsonl").read_text()
    assert "keylog" in console, "the page logged nothing: the test proves nothing"
    for end in range(6, len(secret) + 1):
        assert secret[:end] not in console
    assert "[secret:TYPED]" in console


def test_two_hundred_processes_go_with_the_app(tmp_path: Path) -> None:
    marker = f"swarm-{uuid.uuid4().hex}"
    app = DevServer(
        server_command("swarm", "200", marker),
        url="http://127.0.0.1:{port}/",
        cwd=tmp_path,
        log_path=tmp_path / "app.log",
    )
    with app:
        assert len(live_processes(set(), marker=marker)) >= 200
    assert not live_processes(set(), marker=marker)


def test_an_endless_download_does_not_hold_the_run(tmp_path: Path, desktop: Desktop) -> None:
    app = DevServer(
        server_command("serve", str(SITE)),
        url="http://127.0.0.1:{port}/",
        cwd=tmp_path,
        log_path=tmp_path / "app.log",
    )
    with (
        app,
        Browser(
            display=desktop.display,
            screen=desktop.size,
            console_log=tmp_path / "console.jsonl",
            env=desktop.env,
        ) as browser,
    ):
        assert app.url is not None
        browser.page.goto(app.url)
        browser.page.evaluate("location.href = '/endless.bin'")  # the page starts it
        browser.page.wait_for_timeout(500)
        t0 = time.monotonic()
        saved = browser.save_downloads(tmp_path / "downloads", timeout=2)
        assert saved == [] and time.monotonic() - t0 < 10
        assert browser.downloads == [("endless.bin", None, "it did not finish in time (cancelled)")]
