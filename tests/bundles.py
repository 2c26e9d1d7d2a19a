"""Bundles for the renderers' and publish's tests: the demo run for real, and synthetic
ones (hostile text, a video, a failed visual check) built file by file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, cast

import yaml
from PIL import Image

from verifier.browser import CHROMIUM_FLAGS
from verifier.cli import main
from verifier.evidence import Manifest, StepRecord, sha256_of

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "recipes" / "todo.yaml"
HOSTILE = ("<img src=x onerror=alert(1)>", "</script><script>alert(1)</script>")
CHROMIUM_ARGS = list(CHROMIUM_FLAGS)

# -- bundles: real runs and hand-written ones ------------------------------------------------


def run_demo(out: Path, *, fail: bool = False) -> Path:
    """Run the demo recipe through the CLI (``fail``: with one wrong expectation); its bundle."""
    recipe = DEMO
    if fail:
        data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
        data["app"]["cwd"] = str(DEMO.parent / data["app"]["cwd"])
        at = data["steps"].index({"expect_text": "2 items left"})
        data["steps"][at] = {"expect_text": {"text": "7 items left", "timeout": 1}}
        recipe = out / "fail.yaml"
        recipe.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert main(["run", str(recipe), "--out", str(out / "bundles")]) == (1 if fail else 0)
    (bundle,) = (out / "bundles").iterdir()
    return bundle


def png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (320, 200)) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return f"{path.parent.name}/{path.name}"


def make_step(index: int, **fields: Any) -> StepRecord:
    step: dict[str, Any] = {
        "index": index,
        "action": "click",
        "target": f"#button-{index}",
        "status": "passed",
        "started_at": "2026-01-02T03:04:05.000Z",
        "duration_ms": 12.5,
        "screenshot": None,
        "raw_screenshot": None,
        "screenshots": [],
        "video_offset_s": None,
        "error": None,
        "points": [],
    }
    step.update(fields)
    if step["screenshot"]:
        step["screenshots"] = [step["screenshot"]]
    return cast(StepRecord, step)


def make_manifest(steps: list[StepRecord], **fields: Any) -> Manifest:
    manifest: dict[str, Any] = {
        "schema_version": 1,
        "run_id": "20260102-030405-synthetic-abc123",
        "verdict": "passed",
        "finished": True,
        "recipe": {"name": "synthetic run", "path": "/recipes/x.yaml", "sha256": "0" * 64},
        "started_at": "2026-01-02T03:04:05.000Z",
        "finished_at": "2026-01-02T03:04:09.000Z",
        "duration_s": 4.0,
        "environment": {"screen": "1280x800", "chromium": "1.0", "python": "3.11"},
        "setup": {"desktop": {"display": ":9", "ready_s": 0.1}, "app": {"ready_s": 0.5}},
        "steps": steps,
        "artifacts": [],
        "video": None,
        "error": None,
    }
    manifest.update(fields)
    return cast(Manifest, manifest)


def list_artifacts(root: Path, manifest: Manifest) -> Manifest:
    """Fill ``artifacts`` with every file under root except the manifest and renderings."""
    skip = {"manifest.json", "report.html", "summary.md", "junit.xml", "preview.gif"}
    manifest["artifacts"] = [
        {
            "path": rel,
            "kind": "screenshot" if rel.endswith(".png") else "other",
            "bytes": f.stat().st_size,
            "sha256": sha256_of(f),
        }
        for f in sorted(root.rglob("*"))
        if f.is_file() and (rel := f.relative_to(root).as_posix()) not in skip
    ]
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return manifest


def hostile_bundle(root: Path) -> Manifest:
    """A failed run whose every page-, app- and recipe-supplied text is an injection attempt."""
    evil = " ".join(HOSTILE)
    shot = png(root / "screenshots" / "01-click.png", (200, 40, 40))
    steps = [
        make_step(0, target=evil, screenshot=shot, points=[[10, 20]]),
        make_step(1, action=HOSTILE[0], status="failed", error=f"{evil}\n" + "`" * 7),
        make_step(2, target=HOSTILE[1], status="skipped", duration_ms=None),
    ]
    (root / "logs").mkdir(parents=True, exist_ok=True)
    (root / "logs" / "app.log").write_text(f"app says {evil}\n", encoding="utf-8")
    console = {"ts": "t", "level": "error", "text": evil, "url": HOSTILE[0], "line": 1}
    (root / "logs" / "browser-console.jsonl").write_text(json.dumps(console) + "\n")
    manifest = make_manifest(
        steps,
        verdict="failed",
        recipe={"name": evil, "path": HOSTILE[1], "sha256": HOSTILE[0]},
        environment={"chromium": evil},
        setup={"app": {"command": evil, "ready_s": 0.25}},
    )
    return list_artifacts(root, manifest)


def make_video(path: Path, seconds: int = 5) -> None:
    argv = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi"]
    argv += ["-i", "testsrc=size=320x240:rate=10", "-t", str(seconds)]
    argv += ["-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


def video_bundle(root: Path, video: Path) -> Manifest:
    """Three steps at 0.5, 2.5 and 4.0 s into a real 5 s H.264 video, a fourth with none."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "video.mp4").write_bytes(video.read_bytes())
    offsets = (0.5, 2.5, 4.0, None)
    steps = [
        make_step(i, screenshot=png(root / "screenshots" / f"{i:02d}.png", (0, 60 * i, 90)))
        | {"video_offset_s": offset}
        for i, offset in enumerate(offsets)
    ]
    video_info = {"path": "video.mp4", "duration_s": 5.0, "fps": 10, "chapters": 4}
    return list_artifacts(root, make_manifest(steps, video=video_info))


def visual_bundle(root: Path) -> Manifest:
    """A failed expect_screenshot with expected, actual and diff images attached (listed out
    of order), one more attachment with a hostile name, and one pointing outside."""
    shots = root / "screenshots"
    expected = png(shots / "02-expect-screenshot-expected.png", (30, 140, 60), (640, 400))
    actual = png(shots / "02-expect-screenshot-actual.png", (160, 40, 40), (640, 400))
    diff = png(shots / "02-expect-screenshot-diff.png", (250, 250, 250), (640, 400))
    odd = png(shots / "02-expect-screenshot-odd.png", (10, 10, 160), (640, 400))
    failed = png(shots / "02-expect-screenshot-failed.png", (9, 9, 9))
    details = {
        "baseline": "visual.baselines/home.png",
        "threshold": 0.1,
        "diff_pixels": 3070,
        "diff_ratio": 0.003364,
        "note": HOSTILE[1],
    }
    steps = [
        make_step(0, action="goto", target="/"),
        make_step(
            1,
            action="expect_screenshot",
            target="home",
            status="failed",
            screenshot=failed,
            error="expect_screenshot 'home': 3,070 pixels differ (0.336% of 912,640)",
            details=details,
            attachments=[
                {"name": "diff", "path": diff},
                {"name": HOSTILE[0], "path": odd},
                {"name": "expected", "path": expected},
                {"name": "escape", "path": "../../etc/passwd"},
                {"name": "actual", "path": actual},
            ],
        ),
    ]
    return list_artifacts(root, make_manifest(steps, verdict="failed"))


# -- Chromium ---------------------------------------------------------------------------------
