"""Screen video: real ffmpeg x11grab on a real Xvfb; playable on every path, SIGKILL included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support import (
    live_processes,
    running_verifier,
    server_command,
    wait_for_step,
    wait_gone,
)
from verifier._process import _scratch_parent
from verifier._watchdog import _remove_scratch
from verifier.cli import main
from verifier.desktop import Desktop
from verifier.desktop._display import open_display
from verifier.errors import RecorderError
from verifier.evidence import read_manifest
from verifier.recorder import Recorder, probe_video


def _recording(desk: Desktop, folder: Path, *, fps: int) -> Recorder:
    """A started recording of ``desk`` into ``folder``/video.mp4."""
    return Recorder(
        display=desk.display,
        size=desk.size,
        path=folder / "video.mp4",
        log=folder / "ffmpeg.log",
        fps=fps,
    ).start()


def test_recording_has_h264_yuv420p_and_chapters(tmp_path: Path) -> None:
    with Desktop(screen="800x600") as desk:
        rec = _recording(desk, tmp_path, fps=10)
        assert rec.chapter("1. goto /") is not None
        time.sleep(1.2)
        second = rec.chapter("2. click 'a=b; #c'")
        time.sleep(0.6)
        info = rec.stop()
        assert rec.stop() is info  # idempotent
    assert info is not None
    assert (info.codec, info.pix_fmt, info.width, info.height) == ("h264", "yuv420p", 800, 600)
    assert [title for _, title in info.chapters] == ["1. goto /", "2. click 'a=b; #c'"]
    assert second is not None and abs(info.chapters[1][0] - second) < 0.01
    assert 1.5 < info.duration_s < 4


def test_odd_screen_size_still_records(tmp_path: Path) -> None:
    with Desktop(screen="801x601") as desk:
        with Recorder(
            display=desk.display, size=desk.size, path=tmp_path / "v.mp4", log=tmp_path / "f.log"
        ) as rec:
            time.sleep(0.3)
    assert rec.info is not None and (rec.info.width, rec.info.height) == (800, 600)


def test_probe_rejects_a_non_video(tmp_path: Path) -> None:
    bogus = tmp_path / "video.mp4"
    bogus.write_bytes(b"\0" * 1000)
    with pytest.raises(RecorderError, match="not a playable video"):
        probe_video(bogus)


def test_no_video_flag(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_recipe({"name": "no video", "steps": [{"goto": "about:blank"}]})
    assert main(["run", str(recipe), "--out", str(tmp_path), "--no-video", "--json"]) == 0
    bundle = Path(json.loads(capsys.readouterr().out)["bundle"])
    assert not (bundle / "video.mp4").exists()
    manifest = read_manifest(bundle)
    assert manifest["video"] is None
    assert manifest["steps"][0]["video_offset_s"] is None


def _runs_status(out: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "verifier", "runs", "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line)["status"] for line in done.stdout.splitlines()]


def test_sigkill_of_the_verifier_leaves_a_playable_video_and_a_valid_manifest(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    before = live_processes()
    marker = f"verifier-sigkill-{uuid.uuid4().hex}"
    recipe = write_recipe(
        {
            "name": "killed mid-run",
            # The server forks a grandchild into its own session: PDEATHSIG cannot reach
            # it, the watchdog must.
            "app": {
                "command": server_command("fork", marker),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [
                {"goto": "/"},
                {"click": "#go"},
                {"wait_for": {"selector": "#never", "timeout": 60}},
            ],
        }
    )
    out = tmp_path / "out"
    # Its temporary folders (the X cookie's, openbox's, Chromium's and its driver's own)
    # go where the watchdog removes them. (A short path: Chromium's socket goes below.)
    scratch = Path(tempfile.mkdtemp(prefix="vt-", dir="/tmp"))
    env = {**os.environ, "TMPDIR": str(scratch)}
    with running_verifier(
        "run", str(recipe), "--out", str(out), stderr=subprocess.DEVNULL, env=env
    ) as proc:
        manifest_path = wait_for_step(out, 2)
        assert _runs_status(out) == ["running"]
        assert {p.name.split("-")[0] for p in scratch.glob("*/*")} >= {"xauth", "openbox"}
        time.sleep(2.5)  # let a few one-second fragments reach the disk
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert not wait_gone(before, within=5.0)
    assert not wait_gone({}, marker=marker, within=5.0)
    left: list[Path] = []
    for _ in range(50):  # the watchdog removes the folder once the tree is gone
        if not (left := list(scratch.iterdir())):
            break
        time.sleep(0.1)
    assert not left
    scratch.rmdir()
    assert _runs_status(out) == ["error: interrupted"]
    manifest = read_manifest(manifest_path.parent)  # valid JSON: written atomically
    assert manifest["verdict"] == "error" and manifest["finished"] is False
    assert [s["status"] for s in manifest["steps"]] == ["passed", "passed", "error"]
    info = probe_video(manifest_path.parent / "video.mp4")
    assert info.codec == "h264" and info.duration_s >= 2.0


def test_the_scratch_folder_is_short_enough_for_chromiums_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A TMPDIR of 63 characters or more stopped Chromium from starting at all (its
    # singleton socket's path is too long): the scratch folder is made elsewhere then.
    long = tmp_path / ("x" * 80)
    long.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(long))
    assert _scratch_parent() == "/tmp"
    monkeypatch.setattr(tempfile, "tempdir", "/var/tmp")
    assert _scratch_parent() == "/var/tmp"


def test_the_watchdog_removes_only_a_private_scratch_folder_of_ours(tmp_path: Path) -> None:
    # It is told paths over a pipe: what is not a private folder named as ours stays.
    made = {name: tmp_path / name for name in ("verifier-a", "verifier-b", "other-c", "x")}
    for path in made.values():
        path.mkdir(mode=0o700)
        (path / "f").write_bytes(b"")
    made["verifier-b"].chmod(0o755)
    link = tmp_path / "verifier-d"
    link.symlink_to(made["x"])
    for path in [*made.values(), link]:
        _remove_scratch(bytes(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "other-c",
        "verifier-b",
        "verifier-d",
        "x",
    ]
    assert (made["x"] / "f").is_file()


_FORKED = """
import os, sys
from verifier._process import OwnedProcess, scratch_root
sleeper = OwnedProcess(["sleep", "30"], name="sleep", env=dict(os.environ))
ours = scratch_root()
pid = os.fork()
if pid == 0:  # its own folder, and a watchdog of its own that goes at its exit
    print(scratch_root() != ours and ours.is_dir(), flush=True)
    sys.exit(0)
os.waitpid(pid, 0)
print(sleeper.poll() is None and ours.is_dir(), flush=True)
sleeper.stop()
"""


def test_a_forked_process_leaves_its_parents_processes_and_folder_alone() -> None:
    # A child forked from a verifier process once ran a watchdog of the parent's token
    # and folder: at its end it stopped the parent's processes and removed its folder.
    done = subprocess.run(
        [sys.executable, "-c", _FORKED], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.split() == ["True", "True"], done.stdout + done.stderr


def test_nothing_after_end_reaches_the_video(tmp_path: Path) -> None:
    # ffmpeg reads its "q" at most every 100 ms and grabs the screen until then: what the
    # caller does right after end() (closing the browser) must not be the video's end.
    with Desktop(screen="320x240") as desk:
        conn = open_display(desk.display)
        screen = conn.screen()
        cover = screen.root.create_window(
            0,
            0,
            320,
            240,
            0,
            screen.root_depth,
            background_pixel=screen.white_pixel,
            override_redirect=True,
        )
        cover.map()
        conn.sync()
        rec = _recording(desk, tmp_path, fps=30)
        time.sleep(1.0)
        rec.end()
        cover.unmap()  # the black root window from here on
        conn.sync()
        rec.stop()
        conn.close()
    last = tmp_path / "last.png"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-sseof", "-0.3", "-i", str(tmp_path / "video.mp4")]
        + ["-update", "1", "-y", str(last)],
        check=True,
    )
    gray = np.asarray(Image.open(last).convert("L"))
    assert (gray > 200).mean() > 0.95, gray.mean()  # white to the end (the pointer aside)
