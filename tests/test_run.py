"""`verifier run` end to end: real Xvfb, Chromium and dev servers, through the CLI contract."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support import (
    SITE,
    chromium_of,
    imread,
    live_processes,
    running_verifier,
    server_command,
    wait_for_step,
    wait_gone,
)
from verifier._process import find_tree
from verifier._signals import SignalGuard
from verifier.cli import main
from verifier.desktop import Desktop
from verifier.errors import Interrupted
from verifier.evidence import read_manifest, sha256_of
from verifier.recorder import probe_video

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "recipes" / "todo.yaml"

pytestmark = pytest.mark.usefixtures("no_leaks")


def site_recipe(
    steps: list[Any],
    *,
    mode: str = "serve",
    args: tuple[str, ...] = (str(SITE),),
    ready_timeout: float = 20,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "name": "fixture app",
        "app": {
            "command": server_command(mode, *args),
            "url": "http://127.0.0.1:{port}/",
            "ready_timeout": ready_timeout,
        },
        "steps": steps,
        **extra,
    }


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(["run", *args, "--json"])
    captured = capsys.readouterr()
    # stdout is for agents: every line must be JSON (nothing else may print there).
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert len(lines) == 1, captured
    return code, lines[0], captured.err


def test_demo_recipe_passes_with_a_complete_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, _ = run_json(capsys, str(DEMO), "--out", str(tmp_path))
    assert code == 0 and result["verdict"] == "passed"
    bundle = Path(result["bundle"])
    assert bundle.parent == tmp_path
    manifest = read_manifest(bundle)
    for key in (
        "schema_version",
        "run_id",
        "verdict",
        "recipe",
        "started_at",
        "finished_at",
        "duration_s",
        "environment",
        "steps",
        "artifacts",
    ):
        assert key in manifest, key
    assert manifest["verdict"] == "passed" and manifest["error"] is None
    assert manifest["recipe"]["name"].startswith("Adding todos")
    assert manifest["recipe"]["sha256"] == sha256_of(DEMO)
    env = manifest["environment"]
    assert env["screen"] == "1280x800" and env["chromium"] and env["python"]
    steps = manifest["steps"]
    assert isinstance(steps, list) and len(steps) == 14
    for i, step in enumerate(steps):
        assert step["index"] == i and step["status"] == "passed"
        assert step["started_at"] and step["duration_ms"] is not None
        # Each one asks the page, but `screenshot`, which names the capture after it
        # (it may take less than the 0.05 ms its record rounds to 0).
        assert step["duration_ms"] > 0 or step["action"] == "screenshot", step
        assert "video_offset_s" in step and step["error"] is None
        shot = imread(bundle / step["screenshot"])
        assert shot.shape == (800, 1280, 3)
    assert steps[2]["points"], "a click records where it landed"
    # One after another, within the run: the times are the steps' own, in milliseconds.
    starts = [s["started_at"] for s in steps]
    assert starts == sorted(starts)
    assert sum(s["duration_ms"] for s in steps) < manifest["duration_s"] * 1000
    arts = manifest["artifacts"]
    assert isinstance(arts, list)
    paths = {a["path"] for a in arts}
    assert {"logs/app.log", "logs/browser-console.jsonl", "logs/verifier.log"} <= paths
    # 14 step screenshots, plus a marked copy for each of the 4 clicks.
    assert sum(a["kind"] == "screenshot" for a in arts) == 18
    assert steps[2]["screenshot"] == "screenshots/03-click-marked.png"
    assert steps[2]["raw_screenshot"] == "screenshots/03-click.png"
    video = manifest["video"]
    assert isinstance(video, dict) and video["path"] == "video.mp4"
    info = probe_video(bundle / "video.mp4")
    assert (info.codec, info.pix_fmt, len(info.chapters)) == ("h264", "yuv420p", 14)
    offsets = [s["video_offset_s"] for s in steps]
    assert offsets == sorted(offsets) and 0 <= offsets[0] and offsets[-1] < info.duration_s
    for art in arts:
        file = bundle / art["path"]
        assert file.stat().st_size == art["bytes"] and sha256_of(file) == art["sha256"]
    assert "GET /app.js" in (bundle / "logs" / "app.log").read_text()
    for name, kind in (
        ("report.html", "report"),
        ("summary.md", "summary"),
        ("junit.xml", "junit"),
        ("preview.gif", "preview"),
    ):
        assert {"path": name, "kind": kind}.items() <= next(
            a for a in arts if a["path"] == name
        ).items()
    capsys.readouterr()
    assert main(["verify-bundle", str(bundle)]) == 0
    shot = bundle / steps[0]["screenshot"]
    shot.write_bytes(shot.read_bytes()[:-1] + b"\0")
    assert main(["verify-bundle", str(bundle)]) == 1
    assert steps[0]["screenshot"] in capsys.readouterr().err


def test_wrong_expectation_exits_1_naming_the_step(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_recipe(
        site_recipe(
            [
                {"goto": "/"},
                {"click": "#go"},
                {"expect_text": {"text": "clicked twice", "timeout": 1}},
                {"expect_text": "clicked"},
            ]
        )
    )
    code, result, err = run_json(capsys, str(recipe), "--out", str(tmp_path / "out"))
    assert code == 1 and result["verdict"] == "failed" and result["failed_step"] == 2
    assert "at step 3: expect_text: 'clicked twice' not in the visible text" in err
    assert "the page shows 'Fixture app Go clicked'" in err
    manifest = read_manifest(Path(result["bundle"]))
    steps = manifest["steps"]
    assert isinstance(steps, list)
    assert [s["status"] for s in steps] == ["passed", "passed", "failed", "skipped"]
    assert steps[2]["screenshot"] == "screenshots/03-expect-text-failed.png"
    assert (Path(result["bundle"]) / steps[2]["screenshot"]).is_file()
    assert steps[3]["screenshot"] is None


def test_button_under_an_invisible_overlay_fails(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_recipe(
        site_recipe([{"goto": "/overlay.html"}, {"click": "#buy"}, {"expect_text": "bought"}])
    )
    code, result, err = run_json(capsys, str(recipe), "--out", str(tmp_path))
    assert code == 1 and result["failed_step"] == 1
    assert "'#buy' is covered at its centre by <div#shield.modal-backdrop>" in err
    assert "a person could not click it" in err


def test_dev_server_dying_at_start_exits_2_quoting_stderr(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_recipe(site_recipe([{"goto": "/"}], mode="die", args=()))
    t0 = time.monotonic()
    code, result, err = run_json(capsys, str(recipe), "--out", str(tmp_path))
    assert code == 2 and result["verdict"] == "error"
    assert time.monotonic() - t0 < 10
    assert "exited with code 3 before it was ready" in err and "Cannot find module 'vite'" in err
    assert str(result["bundle"]) in err
    manifest = read_manifest(Path(result["bundle"]))
    assert manifest["verdict"] == "error"
    assert "Cannot find module" in manifest["error"]["message"]
    assert manifest["steps"][0]["status"] == "skipped"
    assert "Cannot find module" in (Path(result["bundle"]) / "logs" / "app.log").read_text()


def test_never_healthy_exits_2_soon_after_ready_timeout(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_recipe(site_recipe([{"goto": "/"}], mode="never", args=(), ready_timeout=2))
    t0 = time.monotonic()
    code, _, err = run_json(capsys, str(recipe), "--out", str(tmp_path))
    assert code == 2
    assert time.monotonic() - t0 < 8
    assert "within 2 s (app.ready_timeout); last probe: HTTP 503" in err


def test_slow_starter_passes(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_recipe(
        site_recipe(
            [{"goto": "/"}, {"click": "#go"}, {"expect_text": "clicked"}], mode="slow", args=("3",)
        )
    )
    code, result, _ = run_json(capsys, str(recipe), "--out", str(tmp_path))
    assert code == 0, result
    setup = read_manifest(Path(result["bundle"]))["setup"]
    assert setup["app"]["ready_s"] >= 3


def test_server_forking_into_its_own_session_leaves_nothing(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    marker = f"verifier-fork-{uuid.uuid4().hex}"
    recipe = write_recipe(
        site_recipe([{"goto": "/"}, {"expect_text": "Fixture app"}], mode="fork", args=(marker,))
    )
    code, _, _ = run_json(capsys, str(recipe), "--out", str(tmp_path))
    assert code == 0
    assert not wait_gone({}, marker=marker)


def test_two_runs_in_parallel(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "verifier",
                "run",
                str(DEMO),
                "--json",
                "--out",
                str(tmp_path / f"out{i}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    displays = {read_manifest(Path(r["bundle"]))["environment"]["display"] for r in results}
    assert len(displays) == 2


def test_attach_to_an_existing_display(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with Desktop(screen="1024x768") as desk:
        recipe = write_recipe(
            site_recipe([{"goto": "/"}, {"click": "#go"}, {"expect_text": "clicked"}])
        )
        code, result, _ = run_json(
            capsys, str(recipe), "--out", str(tmp_path), "--display", desk.display
        )
        assert code == 0, result
        desk.check_alive()
        manifest = read_manifest(Path(result["bundle"]))
        assert manifest["environment"]["screen"] == "1024x768"
        assert manifest["setup"]["desktop"]["own_xvfb"] is False


def test_bad_recipe_exits_2_with_one_line(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_recipe({"name": "x", "url": "http://127.0.0.1:1/", "steps": [{"clik": "#a"}]})
    assert main(["run", str(recipe), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"Error: {recipe}: steps[0]: unknown step 'clik'; did you mean 'click'?\n"
    assert not list(tmp_path.glob("*/manifest.json"))


def test_the_command_stops_its_early_driver_when_the_recipe_is_bad(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    # `verifier run` starts Playwright's driver while it imports; a recipe that fails to
    # load ends the command with its one-line error and no Node.js process left running.
    recipe = write_recipe({"name": "x", "url": "http://127.0.0.1:1/", "steps": [{"clik": "#a"}]})
    before = live_processes({"node", "node-MainThread"})
    with running_verifier("run", str(recipe), "--out", str(tmp_path)) as proc:
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "unknown step 'clik'" in err
    assert not {
        p: d for p, d in live_processes({"node", "node-MainThread"}).items() if p not in before
    }


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_tears_down_and_leaves_the_bundle(
    tmp_path: Path, write_recipe: Callable[..., Path], sig: signal.Signals, code: int
) -> None:
    marker = f"verifier-sig-{uuid.uuid4().hex}"
    recipe = write_recipe(
        site_recipe(
            [{"goto": "/"}, {"wait_for": {"selector": "#never", "timeout": 60}}],
            mode="fork",
            args=(marker,),
        )
    )
    out = tmp_path / "out"
    with running_verifier("run", str(recipe), "--out", str(out)) as proc:
        manifests = [wait_for_step(out, 1)]
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert f"interrupted by {sig.name}" in err and "Traceback" not in err
    manifest = read_manifest(manifests[0].parent)
    assert manifest["verdict"] == "error" and manifest["finished"] is True
    assert manifest["error"]["message"] == f"interrupted by {sig.name}"
    assert manifest["steps"][1]["status"] == "error"
    assert not wait_gone({}, marker=marker)
    assert os.path.isfile(manifests[0].parent / "logs" / "app.log")
    # The video was finalized on the way out: playable, listed.
    assert probe_video(manifests[0].parent / "video.mp4").duration_s > 0.5
    assert manifest["video"] is not None
    assert not {p: d for p, d in live_processes().items() if "-m verifier" in d}


def test_ctrl_c_while_verifier_starts_is_130_in_one_line(tmp_path: Path) -> None:
    # Before a run takes SIGINT over (Python importing it, the driver starting), Ctrl-C
    # was a KeyboardInterrupt traceback and a death by signal, or a hang (an import's
    # lock left taken, the importing thread beside it waiting for it).
    with running_verifier("run", str(DEMO), "--out", str(tmp_path / "out")) as proc:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # its watchdog: the driver is starting
            if any(b"verifier._watchdog" in _cmdline(p) for p in find_tree(proc.pid, None)):
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Error: " in err and "interrupted by SIGINT" in err, err


def test_a_signal_amid_loggings_locking_is_raised_once_out_of_it() -> None:
    # logging's at-fork hooks run around every process a run spawns; a SIGINT raised in
    # them was dropped ("Exception ignored") with logging's lock left taken: the run went
    # on, passed, and hung at its next log line, for good.
    ns: dict[str, object] = {"__name__": "logging", "sys": sys}
    exec("def release(handler, signum):\n    handler(signum, sys._getframe())\n", ns)
    release = ns["release"]
    assert callable(release)
    with SignalGuard() as guard, pytest.raises(Interrupted) as caught:
        release(guard._handler, signal.SIGINT)
        time.sleep(1)  # (it comes at once)
    where = [f.f_globals["__name__"] for f, _ in traceback.walk_tb(caught.value.__traceback__)]
    assert "logging" not in where and where[-1] == "verifier._signals", where


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_chromium_crash_mid_run_exits_2(tmp_path: Path, write_recipe: Callable[..., Path]) -> None:
    recipe = write_recipe(
        site_recipe([{"goto": "/"}, {"wait_for": {"selector": "#never", "timeout": 60}}])
    )
    out = tmp_path / "out"
    with running_verifier("run", str(recipe), "--out", str(out), "--no-video") as proc:
        manifests = [wait_for_step(out, 1)]
        for pid in chromium_of(proc.pid):
            os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert "browser died" in err and "Traceback" not in err
    manifest = read_manifest(manifests[0].parent)
    assert manifest["verdict"] == "error"
    assert "browser died" in manifest["error"]["message"]


@pytest.mark.parametrize(("seconds", "code"), [(2.5, 0), (0.3, 1)])
def test_wait_lets_time_pass(
    tmp_path: Path,
    write_recipe: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    seconds: float,
    code: int,
) -> None:
    # The page adds #done two seconds after it loads; the check itself barely waits.
    recipe = write_recipe(
        site_recipe(
            [
                {"goto": "/temporal-slow.html?delay=2"},
                {"wait": seconds},
                {"expect_visible": {"selector": "#done", "timeout": 0.5}},
            ]
        )
    )
    got, result, _ = run_json(capsys, str(recipe), "--out", str(tmp_path), "--no-video")
    assert got == code, result
    step = read_manifest(Path(result["bundle"]))["steps"][1]
    assert step["status"] == "passed" and step["duration_ms"] >= seconds * 1000


def test_hover_reveals_what_only_hovering_shows(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    hovered = write_recipe(
        site_recipe(
            [
                {"goto": "/hover.html"},
                {"hover": "#item"},
                {"click": "#item .destroy"},
                {"expect_text": "deleted"},
            ]
        )
    )
    code, result, _ = run_json(capsys, str(hovered), "--out", str(tmp_path), "--no-video")
    assert code == 0, result
    steps = read_manifest(Path(result["bundle"]))["steps"]
    assert steps[1]["points"] and steps[1]["screenshot"].endswith("-marked.png")
    # Without the hover the button is not shown, so a person could not click it either.
    blind = write_recipe(
        site_recipe(
            [
                {"goto": "/hover.html"},
                {"click": {"selector": "#item .destroy", "timeout": 1}},
            ]
        )
    )
    code, result, err = run_json(capsys, str(blind), "--out", str(tmp_path), "--no-video")
    assert code == 1 and "no visible element matches '#item .destroy'" in err


def test_the_video_ends_on_the_page_not_on_the_browser_closing(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_recipe(site_recipe([{"goto": "/"}, {"expect_text": "Go"}]))
    code, result, _ = run_json(capsys, str(recipe), "--out", str(tmp_path))
    assert code == 0, result
    bundle = Path(result["bundle"])
    last = tmp_path / "last.png"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-sseof", "-0.5", "-i", str(bundle / "video.mp4")]
        + ["-update", "1", "-y", str(last)],
        check=True,
    )
    step = read_manifest(bundle)["steps"][-1]
    shot = imread(bundle / step["raw_screenshot"]).astype(np.int16)
    frame = imread(last).astype(np.int16)
    assert frame.shape == shot.shape
    # x264 at CRF 30 blurs a little; an empty desktop (no browser) differs wholesale.
    assert np.abs(frame - shot).mean() < 6


def test_clicks_scroll_their_target_into_view_first(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # Below the fold and right of the viewport, then inside a scrolled container, on a
    # page whose scrolling is smooth (animated): each click must land on its button.
    steps = [
        {"goto": "/scroll.html"},
        {"click": "#far"},
        {"expect_text": "none far"},
        {"goto": "/scroll.html"},
        {"click": "#inner"},
        {"expect_text": "none inner"},
    ]
    code, result, err = run_json(
        capsys, str(write_recipe(site_recipe(steps))), "--out", str(tmp_path)
    )
    assert code == 0, err
    shot = read_manifest(Path(result["bundle"]))["steps"][1]
    assert shot["points"] and shot["status"] == "passed"
