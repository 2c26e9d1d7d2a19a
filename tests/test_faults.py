"""The fault matrix: whatever dies, the run ends with exit 2, says what died, keeps its
logs and video, and leaves no process behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    SITE,
    chromium_of,
    running_verifier,
    server_command,
    wait_for_step,
)
from verifier._process import find_tree
from verifier.cli import main
from verifier.evidence import read_manifest
from verifier.recorder import probe_video

pytestmark = pytest.mark.usefixtures("no_leaks")

WAITING = [{"goto": "/"}, {"wait_for": {"selector": "#never", "timeout": 60}}]


def _recipe(write_recipe: Callable[..., Path], **app: Any) -> Path:
    return write_recipe(
        {
            "name": "fault",
            "app": {
                "command": server_command("serve", str(SITE)),
                "url": "http://127.0.0.1:{port}/",
                **app,
            },
            "steps": WAITING,
        }
    )


def _run_and_kill(
    recipe: Path, out: Path, victim: Callable[[int, Path], list[int]], *, sig: int = signal.SIGKILL
) -> tuple[int, str, Path]:
    """Run the recipe, kill ``victim``'s pids mid-wait; returns (code, stderr, bundle)."""
    with running_verifier("run", str(recipe), "--out", str(out)) as proc:
        manifest = wait_for_step(out, 1)
        time.sleep(1.5)  # let the first one-second video fragments reach the disk
        pids = victim(proc.pid, manifest)
        assert pids, "nothing to kill"
        for pid in pids:
            os.kill(pid, sig)
        _, err = proc.communicate(timeout=30)
    return proc.returncode, err, manifest.parent


def _by_name(name: str) -> Callable[[int, Path], list[int]]:
    def find(verifier_pid: int, _manifest: Path) -> list[int]:
        return [
            pid
            for pid in find_tree(verifier_pid, None)
            if Path(f"/proc/{pid}/comm").read_text().strip() == name
        ]

    return find


def _dev_server(_verifier_pid: int, manifest: Path) -> list[int]:
    return [read_manifest(manifest.parent)["setup"]["app"]["pid"]]


@pytest.mark.parametrize(
    ("victim", "message"),
    [
        (_dev_server, "dev server exited with code -9 during the run"),
        (_by_name("Xvfb"), "Xvfb on :"),
        (_by_name("ffmpeg"), "ffmpeg (screen video) exited"),
    ],
    ids=["dev-server", "xvfb", "ffmpeg"],
)
def test_something_dies_mid_run(
    tmp_path: Path,
    write_recipe: Callable[..., Path],
    victim: Callable[[int, Path], list[int]],
    message: str,
) -> None:
    code, err, bundle = _run_and_kill(_recipe(write_recipe), tmp_path / "out", victim)
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    manifest = read_manifest(bundle)
    assert manifest["verdict"] == "error" and manifest["finished"] is True
    assert message in manifest["error"]["message"]
    assert manifest["steps"][1]["status"] == "error"
    assert (bundle / "logs" / "app.log").is_file() and (bundle / "logs" / "verifier.log").is_file()
    # The video holds what was recorded up to the fault, and plays.
    assert probe_video(bundle / "video.mp4").duration_s > 0.3


def test_port_taken_fails_at_once(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        recipe = write_recipe(
            {
                "name": "port taken",
                "app": {
                    "command": [sys.executable, "-m", "http.server", str(port)],
                    "url": f"http://127.0.0.1:{port}/",
                },
                "steps": [{"goto": "/"}],
            }
        )
        assert main(["run", str(recipe), "--out", str(tmp_path), "--no-video"]) == 2
    err = capsys.readouterr().err
    assert f"port {port} of http://127.0.0.1:{port}/ is already in use" in err


def test_sigterm_twice_still_tears_down(tmp_path: Path, write_recipe: Callable[..., Path]) -> None:
    """A second signal during teardown must not cut teardown short."""
    recipe = _recipe(write_recipe)
    out = tmp_path / "out"
    with running_verifier("run", str(recipe), "--out", str(out)) as proc:
        wait_for_step(out, 1)
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err


def test_a_wedged_chromium_does_not_hold_teardown(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    """Playwright's close waits for Chromium's answer; a stopped Chromium never gives it."""
    recipe = _recipe(write_recipe)
    out = tmp_path / "out"
    with running_verifier("run", str(recipe), "--out", str(out), "--no-video") as proc:
        manifest = wait_for_step(out, 1)
        for pid in chromium_of(proc.pid):
            os.kill(pid, signal.SIGSTOP)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert (
        "Chromium did not close within" in (manifest.parent / "logs" / "verifier.log").read_text()
    )
    assert read_manifest(manifest.parent)["finished"] is True


def test_a_chromium_wedged_mid_run_ends_the_run(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    """A Chromium that stops answering between steps (stopped here; a hung browser does
    the same) does not hold the run: the questions without a timeout of their own are
    called off, each step fails within its timeout, and the run ends with its bundle."""
    recipe = write_recipe(
        {
            "name": "wedged",
            "app": {
                "command": server_command("serve", str(SITE)),
                "url": "http://127.0.0.1:{port}/",
            },
            "timeout": 3,
            "video": False,
            "steps": [{"goto": "/"}, {"wait": 2}, {"click": "#go"}, {"expect_text": "clicked"}],
        }
    )
    out = tmp_path / "out"
    with running_verifier("run", str(recipe), "--out", str(out)) as proc:
        manifest = wait_for_step(out, 1)
        for pid in chromium_of(proc.pid):
            os.kill(pid, signal.SIGSTOP)
        _, err = proc.communicate(timeout=150)
    assert proc.returncode == 1, err
    steps = read_manifest(manifest.parent)["steps"]
    assert steps[2]["status"] == "failed", steps[2]


@pytest.mark.parametrize("after", [0.3, 0.7, 1.1, 1.5, 1.9, 2.3])
def test_sigterm_at_any_moment_stops_the_run_even_with_its_readers_gone(
    tmp_path: Path, write_recipe: Callable[..., Path], after: float
) -> None:
    """A signal that lands mid-screenshot or mid-step stops the run (no handler may take it
    for an error and go on), and a parent that died with our pipes does not change the
    exit code: this is how a killed Temporal worker's run ends."""
    recipe = write_recipe(
        {
            "name": "busy",
            "app": {
                "command": server_command("serve", str(SITE)),
                "url": "http://127.0.0.1:{port}/",
            },
            "video": False,
            "steps": [{"goto": "/"}] + [{"click": "#go"}, {"expect_text": "clicked"}] * 40,
        }
    )
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "verifier", "run", str(recipe), "--out", str(out), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        manifest = wait_for_step(out, 1)
        time.sleep(after)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    data = read_manifest(manifest.parent)
    assert data["finished"] is True and data["verdict"] == "error"
    assert data["error"]["message"] == "interrupted by SIGTERM"
