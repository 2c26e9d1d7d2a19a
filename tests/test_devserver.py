"""The dev server: started, probed until ready, and stopped with its whole process tree."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support import SERVER, SITE, live_processes, server_command, wait_gone
from verifier.app import DevServer, command_argv
from verifier.errors import DevServerError


def start(
    tmp_path: Path,
    command: str | list[str],
    *,
    url: str = "http://127.0.0.1:{port}/",
    ready_timeout: float = 20,
) -> DevServer:
    return DevServer(
        command,
        url=url,
        cwd=tmp_path,
        ready_timeout=ready_timeout,
        log_path=tmp_path / "logs" / "app.log",
    ).start()


def test_serves_and_logs(tmp_path: Path) -> None:
    with start(tmp_path, server_command("serve", str(SITE))) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/"
        assert server.ready_s is not None
    log = (tmp_path / "logs" / "app.log").read_text()
    assert f"serving {SITE} on {server.port}" in log


def test_exits_at_start_fails_at_once_quoting_stderr(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(
        DevServerError,
        match=r"exited with code 3 before it was ready.*"
        r"Cannot find module 'vite'",
    ) as info:
        start(tmp_path, server_command("die"), ready_timeout=30)
    assert time.monotonic() - t0 < 5
    assert info.value.returncode == 3


def test_never_healthy_fails_soon_after_ready_timeout(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(
        DevServerError,
        match=r"did not answer 2xx/3xx .* within 1.5 s "
        r"\(app.ready_timeout\); last probe: HTTP 503",
    ):
        start(tmp_path, server_command("never"), ready_timeout=1.5)
    elapsed = time.monotonic() - t0
    assert 1.5 <= elapsed < 4.5


@pytest.mark.parametrize(("mode", "ready"), [("serve", True), ("never", False)])
def test_the_timeout_spent_on_the_desktop_still_gets_one_probe(
    tmp_path: Path, mode: str, ready: bool
) -> None:
    """The runner launches the server, starts Xvfb and Chromium, then waits: on a slow
    machine that can outlast ready_timeout. A server that is up then is ready; one that is
    not says what the probe saw."""
    server = DevServer(
        server_command(mode, str(SITE)) if mode == "serve" else server_command(mode),
        url="http://127.0.0.1:{port}/",
        cwd=tmp_path,
        ready_timeout=0.5,
        log_path=tmp_path / "logs" / "app.log",
    )
    try:
        server.launch()
        time.sleep(1.5)  # the desktop and browser starting
        if ready:
            assert server.wait_ready().ready_s is not None
        else:
            with pytest.raises(DevServerError, match=r"within 0.5 s .*last probe: HTTP 503"):
                server.wait_ready()
    finally:
        server.close()


def test_slow_starter_is_waited_for(tmp_path: Path) -> None:
    with start(tmp_path, server_command("slow", "2"), ready_timeout=20) as server:
        assert server.ready_s is not None and server.ready_s >= 2


def test_forked_grandchild_in_its_own_session_is_stopped(tmp_path: Path) -> None:
    marker = f"verifier-test-{uuid.uuid4().hex}"
    with start(tmp_path, server_command("fork", marker)):
        assert live_processes(set(), marker=marker), "the grandchild should be running"
    assert not wait_gone({}, marker=marker, within=5.0)


def test_localhost_tries_ipv6_too(tmp_path: Path) -> None:
    script = (
        "import http.server,socket,sys\n"
        "class S(http.server.ThreadingHTTPServer): address_family = socket.AF_INET6\n"
        "S(('::1', int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()\n"
    )
    with start(
        tmp_path, [sys.executable, "-c", script, "{port}"], url="http://localhost:{port}/"
    ) as server:
        assert server.ready_s is not None


def test_shell_command_and_port_in_env(tmp_path: Path) -> None:
    cmd = f"cd {SITE} && exec {sys.executable} -m http.server $PORT --bind 127.0.0.1"
    assert command_argv(cmd)[:2] == ["/bin/sh", "-c"]
    with start(tmp_path, cmd) as server:
        assert server.ready_s is not None


def test_missing_command_and_cwd(tmp_path: Path) -> None:
    with pytest.raises(DevServerError, match="could not start"):
        start(tmp_path, "no-such-binary-xyz --port {port}")
    with pytest.raises(DevServerError, match="is not a directory"):
        DevServer(
            "true",
            url="http://127.0.0.1:{port}/",
            cwd=tmp_path / "nope",
            log_path=tmp_path / "a.log",
        ).start()


def test_server_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    marker = f"verifier-stubborn-{uuid.uuid4().hex}"
    script = (
        "import signal,sys,runpy; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        f"sys.argv=['s','serve',sys.argv[1],{str(SITE)!r}];"
        f"runpy.run_path({str(SERVER)!r}, run_name='__main__')"
    )
    with start(tmp_path, [sys.executable, "-c", script, "{port}", marker]):
        pass
    assert not wait_gone({}, marker=marker, within=1.0)
    subprocess.run(["true"], check=True)
