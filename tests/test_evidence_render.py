"""summary.md, junit.xml, preview.gif and verify_bundle, on real runs and hand-written ones."""

from __future__ import annotations

import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import cast

import pytest
from PIL import Image
from PIL.GifImagePlugin import GifImageFile

from tests.bundles import (
    HOSTILE,
    hostile_bundle,
    list_artifacts,
    make_manifest,
    make_step,
    png,
    run_demo,
    visual_bundle,
)
from verifier.errors import BundleError
from verifier.evidence import Manifest, read_manifest
from verifier.evidence._junit import write_junit
from verifier.evidence._preview import write_preview
from verifier.evidence._summary import SUMMARY_LIMIT, render_summary, write_summary
from verifier.evidence._verify import verify_bundle


@pytest.fixture(scope="module")
def passing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_demo(tmp_path_factory.mktemp("passing"))


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_demo(tmp_path_factory.mktemp("failing"), fail=True)


@pytest.fixture
def bundle(passing: Path, tmp_path: Path) -> Path:
    """A copy of the passing bundle, free to damage."""
    return Path(shutil.copytree(passing, tmp_path / passing.name))


def unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)(?:\\\\)*\|", line))


# -- summary.md -------------------------------------------------------------------------------


def test_summary_of_a_failing_run(failing: Path) -> None:
    manifest = cast(Manifest, read_manifest(failing))
    text = render_summary(manifest)
    assert text.startswith("## ❌ Failed: Adding todos shows them in the list")
    assert "(7 passed, 1 failed, 6 skipped)" in text
    assert "| 8 | ❌ | expect\\_text | <code>7 items left</code> |" in text
    assert "| 14 | ⏭️ | screenshot |" in text
    assert "\n```text\nexpect_text: '7 items left' not in the visible text" in text
    shot = manifest["steps"][7]["screenshot"]
    assert f"[Screenshot of step 8]({shot})" in text
    assert "[Full report](report.html)" in text
    based = render_summary(manifest, link_base="https://ci.example/run/1/")
    assert f"(https://ci.example/run/1/{shot})" in based
    written = write_summary(failing, manifest)
    assert written == failing / "summary.md" and written.read_text(encoding="utf-8") == text


def test_summary_of_a_passing_run(passing: Path) -> None:
    manifest = cast(Manifest, read_manifest(passing))
    text = render_summary(manifest)
    assert text.startswith("## ✅ Passed:") and "(14 passed)" in text
    assert "```" not in text and "Screenshot of step" not in text
    assert manifest["video"] and "[Video](video.mp4)" in text


def test_summary_links_video_and_preview() -> None:
    manifest = make_manifest(
        [make_step(0)], video={"path": "video.mp4", "duration_s": 1.0}, preview="preview.gif"
    )
    text = render_summary(manifest, link_base="../")
    assert "[Video](../video.mp4) · [Preview](../preview.gif)" in text


def test_summary_escapes_markdown(tmp_path: Path) -> None:
    manifest = hostile_bundle(tmp_path)
    manifest["steps"][0]["target"] = "a | b\nc `code` *em* [x](javascript:alert(1)) @all #1"
    text = render_summary(manifest)
    for evil in HOSTILE:  # never raw HTML outside the fenced block
        outside = re.sub(r"(?s)\n(`{3,})text\n.*?\n\1\n", "", text)
        assert evil not in outside
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 3 and all(unescaped_pipes(row) == 6 for row in rows), rows
    assert "\\@all \\#1" in rows[1] and "\\[x\\]\\(javascript\\:alert\\(1\\)\\)" in rows[1]
    # The error holds a run of 7 backticks: the fence is longer, so it cannot be closed.
    assert "\n````````text\n" in text and text.count("````````") == 2


def test_summary_shows_a_failed_screenshot_side_by_side(tmp_path: Path) -> None:
    manifest = visual_bundle(tmp_path)
    text = render_summary(manifest, link_base="https://ci.example/run/1/")
    lines = text.splitlines()
    at = lines.index("| Expected | Actual | Diff | \\<img src=x onerror=alert\\(1\\)\\> |")
    assert lines[at + 1] == "|---|---|---|---|"
    base = "https://ci.example/run/1/screenshots/02-expect-screenshot"
    assert lines[at + 2] == (
        f"| ![Expected]({base}-expected.png) | ![Actual]({base}-actual.png) "
        f"| ![Diff]({base}-diff.png) "
        f"| ![\\<img src=x onerror=alert\\(1\\)\\>]({base}-odd.png) |"
    )
    assert all(unescaped_pipes(lines[at + n]) == 5 for n in range(3))
    facts = lines[at + 4]
    assert facts.startswith("baseline visual\\.baselines/home\\.png · threshold 0\\.1 · ")
    assert "diff\\_pixels 3070" in facts and not re.search(r"(?<!\\)<", facts)
    assert "passwd" not in text
    passing = make_manifest([make_step(0, details={"score": 0.99})])
    assert "| Expected" not in render_summary(passing)


def test_summary_stays_short_however_long_the_run() -> None:
    steps = [make_step(i, target="t|`\n" * 250) for i in range(5_000)]
    steps[4_321].update({"status": "failed", "error": "boom `` \n" * 12_000})
    error = {"type": "X", "message": "y" * 100_000, "step": None}
    manifest = make_manifest(steps, verdict="failed", error=error, recipe={"name": "n" * 10_000})
    text = render_summary(manifest, link_base="https://x/" * 20)
    assert len(text) < SUMMARY_LIMIT
    assert re.search(r"… 4,\d{3} more steps, see report\.html", text)
    assert "### ❌ step 4322" in text and "characters cut, see report.html" in text


def test_summary_of_an_error_run() -> None:
    error = {"type": "DevServerError", "message": "exited with code 3", "step": None}
    manifest = make_manifest([], verdict="error", error=error, finished=False)
    text = render_summary(manifest)
    assert text.startswith("## 💥 Error:")
    assert "The run could not verify (DevServerError)" in text
    assert "exited with code 3" in text and "did not finish" in text


# -- junit.xml --------------------------------------------------------------------------------


def test_junit_of_a_failing_run(failing: Path) -> None:
    manifest = cast(Manifest, read_manifest(failing))
    path = write_junit(failing, manifest)
    suites = ET.parse(path).getroot()
    assert suites.tag == "testsuites" and suites.get("failures") == "1"
    (suite,) = suites.findall("testsuite")
    name = manifest["recipe"]["name"]
    assert suite.get("name") == name
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "1",
        "failures": "1",
        "errors": "0",
        "skipped": "0",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", suite.get("timestamp", ""))
    (case,) = suite.findall("testcase")
    assert case.get("classname") == "verifier" and case.get("name") == name
    assert float(case.get("time", "")) == pytest.approx(manifest["duration_s"])
    failure = case.find("failure")
    assert failure is not None and case.find("error") is None
    assert failure.get("message", "").startswith(
        "step 8 (expect_text 7 items left): expect_text: '7 items left' not in the visible text"
    )
    out = case.findtext("system-out") or ""
    assert out.count("\n[") == 13 and "[failed] step 8 expect_text '7 items left'" in out


def test_junit_of_a_passing_run(passing: Path, tmp_path: Path) -> None:
    suites = ET.parse(write_junit(tmp_path, cast(Manifest, read_manifest(passing)))).getroot()
    case = suites.find("testsuite/testcase")
    assert case is not None and list(case) == [case.find("system-out")]


def test_junit_of_an_error_run_with_hostile_text(tmp_path: Path) -> None:
    evil = "".join(HOSTILE) + "\x00\x07\x1b\ud800\ufffe]]>&\"'"
    error = {"type": "BrowserError", "message": f"crashed {evil}", "step": 0}
    manifest = make_manifest(
        [make_step(0, target=evil, status="error", error=f"crashed {evil}")],
        verdict="error",
        error=error,
        recipe={"name": f"name {evil}", "path": None, "sha256": ""},
    )
    root = ET.parse(write_junit(tmp_path, manifest)).getroot()
    clean = "".join(HOSTILE) + "]]>&\"'"
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == f"name {clean}"
    node = root.find("testsuite/testcase/error")
    assert node is not None and node.get("type") == "BrowserError"
    assert node.get("message") == f"step 1 (click {clean}): crashed {clean}"
    assert node.text == f"crashed {clean}"


# -- preview.gif ------------------------------------------------------------------------------


def test_preview_of_a_real_run(failing: Path) -> None:
    path = write_preview(failing, cast(Manifest, read_manifest(failing)))
    assert path == failing / "preview.gif" and path.stat().st_size < 2_000_000
    with Image.open(path) as gif:
        assert isinstance(gif, GifImageFile) and gif.is_animated and gif.n_frames == 8
        assert gif.width == 640
        durations = []
        for n in range(gif.n_frames):
            gif.seek(n)
            durations.append(gif.info["duration"])
    assert durations[:-1] == [900] * 7 and durations[-1] > 900


def noisy_bundle(root: Path, frames: int) -> Manifest:
    steps = []
    for i in range(frames):
        shot = root / "screenshots" / f"{i:03d}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        Image.frombytes("RGB", (800, 500), os.urandom(800 * 500 * 3)).save(shot)
        steps.append(make_step(i, screenshot=f"screenshots/{shot.name}"))
    steps[-3]["status"] = "failed"
    return make_manifest(steps, verdict="failed")


def test_preview_shrinks_until_it_fits(tmp_path: Path) -> None:
    manifest = noisy_bundle(tmp_path, 20)
    path = write_preview(tmp_path, manifest, max_bytes=300_000)
    assert path is not None and path.stat().st_size < 300_000
    with Image.open(path) as gif:
        assert isinstance(gif, GifImageFile) and gif.n_frames > 1 and gif.width < 640
    assert write_preview(tmp_path, manifest, max_bytes=2_000) is None


def test_preview_without_screenshots(tmp_path: Path) -> None:
    png(tmp_path / "screenshots" / "ok.png", (9, 9, 9))
    (tmp_path / "screenshots" / "junk.png").write_bytes(b"not a png")
    steps = [make_step(0), make_step(1, screenshot="screenshots/junk.png")]
    assert write_preview(tmp_path, make_manifest(steps)) is None
    steps.append(make_step(2, screenshot="screenshots/ok.png"))
    steps.append(make_step(3, screenshot="../outside.png"))
    path = write_preview(tmp_path, make_manifest(steps))
    assert path is not None
    with Image.open(path) as gif:
        # the junk frame and the escaping path are left out
        assert isinstance(gif, GifImageFile) and gif.n_frames == 1


def test_preview_into_unwritable_folder(tmp_path: Path) -> None:
    manifest = make_manifest([make_step(0, screenshot=png(tmp_path / "s" / "a.png", (1, 1, 1)))])
    (tmp_path / "preview.gif").mkdir()  # a folder where the file should go
    with pytest.raises(BundleError, match="preview.gif"):
        write_preview(tmp_path, manifest)


# -- verify_bundle ----------------------------------------------------------------------------


def test_a_fresh_bundle_verifies(bundle: Path) -> None:
    assert verify_bundle(bundle) == []


def test_verify_finds_a_changed_byte(bundle: Path) -> None:
    rel = read_manifest(bundle)["steps"][3]["screenshot"]
    data = bytearray((bundle / rel).read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle / rel).write_bytes(bytes(data))
    assert verify_bundle(bundle) == [
        f"{rel}: sha256 differs from the manifest (the file changed after the run)"
    ]


def test_verify_finds_missing_and_truncated_files(bundle: Path) -> None:
    (bundle / "logs" / "app.log").unlink()
    with (bundle / "logs" / "verifier.log").open("ab") as fh:
        fh.write(b"more")
    problems = verify_bundle(bundle)
    assert "logs/app.log: missing (listed in the manifest, not in the bundle)" in problems
    assert any(p.startswith("logs/verifier.log: ") and "the manifest says" in p for p in problems)


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "screenshots/../../x", "a\\b", ""])
def test_verify_rejects_paths_outside_the_bundle(bundle: Path, path: str) -> None:
    manifest = read_manifest(bundle)
    manifest["artifacts"].append({"path": path, "kind": "other", "bytes": 0, "sha256": "0"})
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (problem,) = verify_bundle(bundle)
    assert "is not a relative path inside the bundle" in problem
    assert problem.startswith(path or "''")


def test_verify_rejects_a_symlink_out(bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("x")
    (bundle / "logs" / "link").symlink_to(tmp_path / "secret")
    manifest = read_manifest(bundle)
    manifest["artifacts"].append({"path": "logs/link", "kind": "log", "bytes": 1, "sha256": "0"})
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    last = len(manifest["artifacts"]) - 1
    expected = f"logs/link: artifacts[{last}] resolves outside the bundle (a symlink?)"
    assert verify_bundle(bundle) == [expected]


def test_verify_checks_step_references(tmp_path: Path) -> None:
    listed = png(tmp_path / "screenshots" / "a.png", (1, 2, 3))
    steps = [make_step(0, screenshot=listed), make_step(1, screenshot="screenshots/b.png")]
    manifest = list_artifacts(tmp_path, make_manifest(steps))
    broken = {**manifest, "video": {"path": "../video.mp4"}}
    (tmp_path / "manifest.json").write_text(json.dumps(broken), encoding="utf-8")
    assert verify_bundle(tmp_path) == [
        "screenshots/b.png: used by step 2 but missing from the bundle",
        "../video.mp4: video points outside the bundle",
    ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "manifest.json: missing from"),
        ("{not json", "manifest.json: not valid JSON: "),
        ("[1]", "manifest.json: not a JSON object"),
        ('{"artifacts": []}', "manifest.json: no schema_version"),
        ('{"schema_version": "1", "artifacts": []}', "schema_version '1' is not an integer"),
        ('{"schema_version": 1}', "manifest.json: artifacts is missing or not a list"),
    ],
)
def test_verify_a_broken_manifest(tmp_path: Path, content: str | None, problem: str) -> None:
    if content is not None:
        (tmp_path / "manifest.json").write_text(content, encoding="utf-8")
    (found,) = verify_bundle(tmp_path)
    assert problem in found and "\n" not in found


def test_progress_manifests_reach_disk_and_a_failed_write_is_reported(tmp_path: Path) -> None:
    from verifier.evidence import BundleWriter

    bundle = BundleWriter(tmp_path, recipe={"name": "progress", "path": None, "sha256": ""})
    assert read_manifest(bundle.root)["finished"] is False  # on disk from the start
    for n in range(1, 40):
        bundle.set_setup("count", n)  # written on a thread, newest wins
    bundle.finish("passed", None)
    done = read_manifest(bundle.root)
    assert done["setup"]["count"] == 39 and done["finished"] is True

    broken = BundleWriter(tmp_path, recipe={"name": "gone", "path": None, "sha256": ""})
    shutil.rmtree(broken.root)
    with pytest.raises(BundleError, match="manifest.json"):
        for n in range(100):  # the thread's failure surfaces on a later write
            broken.set_setup("count", n)
        broken.finish("passed", None)
