"""`verifier serve`: warm desktops, each serving one run of `verifier run --pool`, replaced
after it; cold starts when none fits; a killed desktop replaced; nothing left behind."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import SITE, server_command, wait_for_step
from verifier._process import find_tree
from verifier.evidence import read_manifest

VERIFIER = shutil.which("verifier")
pytestmark = [
    pytest.mark.skipif(VERIFIER is None, reason="verifier is not installed"),
    pytest.mark.usefixtures("no_leaks"),
]


class _Serving:
    """A `verifier serve` process, its stdout read line by line."""

    def __init__(self, sock: Path, *args: str, env: dict[str, str] | None = None) -> None:
        assert VERIFIER is not None
        self.sock = sock
        self.proc = subprocess.Popen(
            [VERIFIER, "serve", "--socket", str(sock), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._stopped: tuple[int, str] | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_line(self, start: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line.startswith(start):
                return line
        pytest.fail(f"verifier serve said no {start!r} within {timeout} s")

    def workers(self) -> list[int]:
        """The desktop processes the server has now."""
        found = []
        for pid in find_tree(self.proc.pid, None):
            with contextlib.suppress(OSError):
                if b"verifier.pool" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
        return sorted(found)

    def wait_ready(self, other_than: set[int], timeout: float = 60.0) -> int:
        """A desktop process not in ``other_than`` that is up (its Chromium started)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pid in set(self.workers()) - other_than:
                names = set()
                for child in find_tree(pid, None):
                    with contextlib.suppress(OSError):
                        names.add(Path(f"/proc/{child}/comm").read_text().strip())
                if {"Xvfb", "chromium"} <= names:
                    time.sleep(0.3)  # its "ready" is said just after the launch returns
                    return pid
            time.sleep(0.05)
        pytest.fail("no new warm desktop came up")

    def stop(self) -> tuple[int, str]:
        """SIGTERM, then its exit code and what it said on stderr (the same every call)."""
        if self._stopped is not None:
            return self._stopped
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("verifier serve did not stop on SIGTERM within 60 s")
        assert self.proc.stderr is not None and self.proc.stdout is not None
        self._stopped = (code, self.proc.stderr.read())
        self._reader.join(timeout=5)
        self.proc.stderr.close()
        self.proc.stdout.close()
        return self._stopped


@contextlib.contextmanager
def _serving(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[_Serving]:
    server = _Serving(tmp_path / "pool" / "pool.sock", *args, env=env)
    try:
        server.wait_line("ready:")
        yield server
    finally:
        server.stop()


_REMEMBERS = """<!doctype html><title>remembers</title><body><p id=found></p><script>
found.textContent = 'found:' + document.cookie + ':' + (localStorage.left || 'none');
document.cookie = 'left=1; max-age=3600'; localStorage.left = '1';
</script>"""


def _site_recipe(
    write_recipe: Callable[..., Path], *steps: object, site: Path = SITE, **more: object
) -> Path:
    return write_recipe(
        {
            "name": "the fixture site",
            "app": {
                "command": server_command("serve", str(site)),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [{"goto": "/"}, *steps],
            **more,
        }
    )


def _run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    assert VERIFIER is not None
    return subprocess.run(
        [VERIFIER, "run", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_runs_take_warm_desktops_each_fresh_and_serve_stops_clean(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    # The page finds nothing, then leaves a cookie and local storage; run again on the
    # next desktop, it must find nothing again (a fresh Chromium: nothing of one run
    # reaches the next).
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(_REMEMBERS)
    leave = find = _site_recipe(write_recipe, {"expect_text": "found::none"}, site=site)
    out = tmp_path / "out"
    with _serving(tmp_path) as server:
        assert server.sock.stat().st_mode & 0o777 == 0o600
        first_desktop = server.workers()
        done = _run(str(leave), "--pool", str(server.sock), "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert "starting cold" not in done.stderr
        bundle = Path(json.loads(done.stdout)["bundle"])
        manifest = read_manifest(bundle)
        assert manifest["setup"]["desktop"]["warm"] is True
        assert manifest["setup"]["browser"]["warm"] is True
        assert {"xvfb.log", "video.mp4"} <= {
            Path(a["path"]).name for a in manifest["artifacts"]
        } | {p.name for p in (bundle / "logs").iterdir()}
        # Its desktop is gone and another is warm in its place.
        second = server.wait_ready(set(first_desktop))
        assert not set(first_desktop) & set(server.workers())
        env = {**os.environ, "VERIFIER_POOL": str(server.sock)}
        done = _run(str(find), "--out", str(out), env=env)
        assert done.returncode == 0, done.stderr
        assert read_manifest(Path(json.loads(done.stdout)["bundle"]))["setup"]["desktop"]["warm"]
        server.wait_ready({second})  # its desktop, too, replaced by another
        assert second not in server.workers()
        processes = set(find_tree(server.proc.pid, None))
    code, stderr = server.stop()
    assert code == 128 + signal.SIGTERM
    assert "every desktop stopped" in stderr
    assert not server.sock.exists()
    left = {}
    for pid in processes:
        with contextlib.suppress(OSError):
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
            if state != "Z":  # (an exited child of a subreaper in this test process)
                left[pid] = Path(f"/proc/{pid}/cmdline").read_bytes()[:200]
    assert not left


def test_a_warm_run_that_loads_a_login_gets_a_context_made_with_it(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    # A warm desktop opens its run's window ahead; a run that loads a saved login needs
    # a context made with it: the window ahead is dropped, and the page finds the login.
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(_REMEMBERS)
    save = _site_recipe(
        write_recipe,
        {"expect_text": "found::none"},
        {"save_storage_state": "state/auth.json"},
        site=site,
    )
    (site / "again.html").write_text(_REMEMBERS)
    load = write_recipe(
        {
            "name": "loads the login",
            "app": {
                "command": server_command("serve", str(site)),
                "url": "http://127.0.0.1:{port}/",
            },
            "storage_state": "state/auth.json",
            "steps": [{"goto": "/again.html"}, {"expect_text": "found:left=1:1"}],
        },
        "load.yaml",
    )
    out = tmp_path / "out"
    with _serving(tmp_path) as server:
        first = server.workers()
        done = _run(str(save), "--pool", str(server.sock), "--out", str(out), "--no-video")
        assert done.returncode == 0, done.stderr
        assert read_manifest(Path(json.loads(done.stdout)["bundle"]))["setup"]["browser"]["warm"]
        server.wait_ready(set(first))
        done = _run(str(load), "--pool", str(server.sock), "--out", str(out), "--no-video")
        assert done.returncode == 0, done.stderr + done.stdout
        setup = read_manifest(Path(json.loads(done.stdout)["bundle"]))["setup"]
        assert setup["browser"]["warm"] is True
        assert setup["storage_state"]["path"].endswith("auth.json")


def test_a_run_the_pool_cannot_serve_starts_cold_and_says_why(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    recipe = _site_recipe(write_recipe, {"expect_text": "Fixture app"}, screen="1024x768")
    _site_recipe(write_recipe, {"expect_text": "Fixture app"}).rename(recipe.with_name("same.yaml"))
    out = tmp_path / "out"
    with _serving(tmp_path) as server:
        done = _run(str(recipe), "--pool", str(server.sock), "--out", str(out), "--no-video")
        assert done.returncode == 0, done.stderr
        assert "note: starting cold, not on the pool: the recipe's screen 1024x768" in done.stderr
        setup = read_manifest(Path(json.loads(done.stdout)["bundle"]))["setup"]
        assert setup["desktop"]["warm"] is False
        # Chromium read its time zone, language and proxies when it started: a caller
        # whose differ starts cold rather than be verified under the pool's.
        env = {**os.environ, "TZ": "Asia/Tokyo"}
        same = str(recipe.with_name("same.yaml"))
        done = _run(same, "--pool", str(server.sock), "--out", str(out), env=env)
        assert "the caller's TZ is not the pool's" in done.stderr, done.stderr
    # No pool there, or a socket others may open (it would get our environment): cold.
    done = _run(str(recipe), "--pool", str(tmp_path / "none.sock"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "starting cold, not on the pool: no pool at" in done.stderr
    open_to_all = tmp_path / "open.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with listener:
        listener.bind(str(open_to_all))
        listener.listen(1)
        open_to_all.chmod(0o666)
        done = _run(str(recipe), "--pool", str(open_to_all), "--out", str(out), "--no-video")
    assert done.returncode == 0, done.stderr
    assert "is not ours alone" in done.stderr


def test_a_killed_desktop_is_replaced_and_its_run_reports_exit_2(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    recipe = _site_recipe(write_recipe, {"expect_text": "Fixture app"})
    slow = _site_recipe(write_recipe, {"wait": 60})
    out = tmp_path / "out"
    # What the desktops write in temporary folders goes where their watchdogs remove it
    # (a short path: Chromium puts a socket below it).
    scratch = Path(tempfile.mkdtemp(prefix="vt-", dir="/tmp"))
    with _serving(tmp_path, env={**os.environ, "TMPDIR": str(scratch)}) as server:
        # An idle desktop whose display dies is replaced, and the pool serves on.
        idle = server.workers()
        xvfb = [
            p
            for w in idle
            for p in find_tree(w, None)
            if Path(f"/proc/{p}/comm").read_text().strip() == "Xvfb"
        ]
        assert xvfb
        os.kill(xvfb[0], signal.SIGKILL)
        served = server.wait_ready(set(idle))
        done = _run(str(recipe), "--pool", str(server.sock), "--out", str(out), "--no-video")
        assert done.returncode == 0, done.stderr
        assert "starting cold" not in done.stderr
        # A desktop killed under its run: the run says so, exit 2; a new one comes up.
        # (The one that served the last run closes its parts after answering.)
        busy = server.wait_ready({served})
        assert VERIFIER is not None
        client = subprocess.Popen(
            [VERIFIER, "run", str(slow), "--pool", str(server.sock), "--out", str(out / "slow")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for_step(out / "slow", 1)
            os.killpg(busy, signal.SIGKILL)
            _stdout, stderr = client.communicate(timeout=60)
        finally:
            if client.poll() is None:
                client.kill()
                client.communicate()
        assert client.returncode == 2, stderr
        assert "ended before its run did" in stderr
        server.wait_ready({busy})
    # Nothing of the killed desktops is left (a killed Chromium's singleton folder, the
    # X cookie), nor of the ones serve stopped.
    left: list[Path] = []
    for _ in range(50):
        if not (left := list(scratch.iterdir())):
            break
        time.sleep(0.1)
    assert not left
    scratch.rmdir()


def test_a_retry_on_the_pool_runs_and_a_crashed_window_is_not_used(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    out = tmp_path / "out"
    fails = _site_recipe(write_recipe, {"expect_text": "not on the page", "timeout": 1})
    works = _site_recipe(write_recipe, {"expect_text": "Fixture app"})
    with _serving(tmp_path) as server:
        # The first attempt is the warm desktop's; the retry starts its own in the same
        # process (once the desktop's browser and driver are stopped): failed, not error.
        idle = server.workers()
        done = _run(str(fails), "--pool", str(server.sock), "--out", str(out), "--retries", "1")
        assert done.returncode == 1, done.stderr
        attempts = read_manifest(Path(json.loads(done.stdout)["bundle"]))["attempts"]
        assert [a["verdict"] for a in attempts] == ["failed", "failed"], attempts
        # The window a desktop opened ahead crashed while it waited (its renderer
        # killed): the run sees it and opens its own.
        fresh = server.wait_ready(set(idle))
        time.sleep(1.5)  # its window is open (it is ready)
        renderers = [
            pid
            for pid in find_tree(fresh, None)
            if b"--type=renderer" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert renderers
        for pid in renderers:
            os.kill(pid, signal.SIGKILL)
        time.sleep(1.0)
        done = _run(str(works), "--pool", str(server.sock), "--out", str(out), "--no-video")
        assert done.returncode == 0, done.stderr
        bundle = Path(json.loads(done.stdout)["bundle"])
        assert read_manifest(bundle)["setup"]["desktop"]["warm"] is True, done.stderr
        assert "the window opened ahead crashed" in (bundle / "logs" / "verifier.log").read_text()
        # serve stopped the moment a run has answered: its desktop closes in peace.
        server.wait_ready(set())
    code, stderr = server.stop()
    assert code == 128 + signal.SIGTERM
    assert "Traceback" not in stderr, stderr


def test_ctrl_c_reaches_the_run_on_the_warm_desktop(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    slow = _site_recipe(write_recipe, {"wait": 60})
    out = tmp_path / "out"
    with _serving(tmp_path) as server:
        assert VERIFIER is not None
        client = subprocess.Popen(
            [VERIFIER, "run", str(slow), "--pool", str(server.sock), "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            manifest = wait_for_step(out, 1)
            client.send_signal(signal.SIGINT)
            _stdout, stderr = client.communicate(timeout=60)
        finally:
            if client.poll() is None:
                client.kill()
                client.communicate()
        assert client.returncode == 130, stderr
        assert "interrupted by SIGINT" in stderr
        finished = read_manifest(manifest.parent)
        assert finished["verdict"] == "error"
        assert "SIGINT" in finished["error"]["message"]
        assert finished["setup"]["desktop"]["warm"] is True


_KNOCKS = """
import json, os, socket, sys, http.server, functools
path = os.environ["POOL_SOCKET"]
try:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    s.sendall((json.dumps({"recipe": "/etc/hostname", "cwd": "/", "env": {}, "options": {}})
               + "\\n" + json.dumps({"go": True}) + "\\n").encode())
    print("POOL ANSWERED:", s.recv(4096), flush=True)
except OSError as exc:
    print("POOL REFUSED:", exc, flush=True)
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[2])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
"""


def test_the_app_under_test_cannot_hand_the_pool_a_run(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    # The socket where the app could see it (in its own folder): the run hides it, and
    # a caller in another user namespace (the sandbox's) is refused all the same.
    app = tmp_path / "app"
    app.mkdir()
    (app / "index.html").write_text("<title>knocks</title><p>served</p>")
    (app / "knocks.py").write_text(_KNOCKS)
    sock = app / "pool" / "pool.sock"
    recipe = write_recipe(
        {
            "name": "an app that knocks",
            "app": {
                "command": ["python3", "knocks.py", "{port}", str(app)],
                "cwd": str(app),
                "url": "http://127.0.0.1:{port}/",
                "env": {"POOL_SOCKET": str(sock)},
            },
            "steps": [{"goto": "/"}, {"expect_text": "served"}],
        }
    )
    server = _Serving(sock)
    try:
        server.wait_line("ready:")
        idle = set(server.workers())
        done = _run(str(recipe), "--pool", str(sock), "--out", str(tmp_path / "out"))
        assert done.returncode == 0, done.stderr
        bundle = Path(json.loads(done.stdout)["bundle"])
        log = (bundle / "logs" / "app.log").read_text()
        assert "POOL REFUSED" in log or "POOL ANSWERED: b''" in log, log
        # Only the caller's run took a desktop: the one that replaced it is still idle.
        fresh = server.wait_ready(idle)
        time.sleep(1.0)
        assert fresh in server.workers()
    finally:
        server.stop()


def test_a_warm_bundle_is_made_with_the_callers_umask(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    recipe = _site_recipe(write_recipe, {"expect_text": "Fixture app"})
    with _serving(tmp_path) as server:
        assert VERIFIER is not None
        done = subprocess.run(
            ["sh", "-c", 'umask 077 && exec "$@"', "sh", VERIFIER, "run", str(recipe)]
            + ["--pool", str(server.sock), "--json", "--no-video", "--out", str(tmp_path / "o")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        bundle = Path(json.loads(done.stdout)["bundle"])
        assert read_manifest(bundle)["setup"]["desktop"]["warm"] is True
        assert bundle.stat().st_mode & 0o077 == 0
        assert (bundle / "logs" / "verifier.log").stat().st_mode & 0o077 == 0
