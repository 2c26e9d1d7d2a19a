"""report.html, checked in a real Chromium: it loads offline, shows the run, resists injection.

The bundles come from real runs of the demo recipe (one passing, one failing) and from
hand-written manifests for the edge cases. The helpers at the top build those; the other
renderers' tests (test_evidence_render.py) use them too.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import wait_gone
from verifier.browser import CHROMIUM_FLAGS
from verifier.cli import main
from verifier.errors import BundleError
from verifier.evidence import sha256_of
from verifier.evidence._report import LOG_CAP, render_report, write_report

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


def read_manifest(bundle: Path) -> Any:
    return json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))


def png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (320, 200)) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return f"{path.parent.name}/{path.name}"


def make_step(index: int, **fields: Any) -> dict[str, Any]:
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
    return step


def make_manifest(steps: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
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
    return manifest


def list_artifacts(root: Path, manifest: dict[str, Any]) -> dict[str, Any]:
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


def hostile_bundle(root: Path) -> dict[str, Any]:
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


def video_bundle(root: Path, video: Path) -> dict[str, Any]:
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


def visual_bundle(root: Path) -> dict[str, Any]:
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


@pytest.fixture(scope="module")
def passing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_demo(tmp_path_factory.mktemp("passing"))


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_demo(tmp_path_factory.mktemp("failing"), fail=True)


@pytest.fixture(scope="module")
def browser(passing: Path, failing: Path) -> Iterator[Browser]:
    # Module scope, and after the demo runs: Playwright's sync API allows one instance per
    # thread, and the in-process runs start their own. The marker (a switch Chromium
    # ignores) tells this browser apart from any other Chromium on the machine.
    marker = f"--verifier-test-report={uuid.uuid4().hex}"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=[*CHROMIUM_ARGS, marker]
        )
        try:
            yield chromium
        finally:
            chromium.close()
    assert not wait_gone({}, marker=marker), "Chromium outlived the test module"


class Opened:
    """A report opened in Chromium, with everything it said while loading."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"pageerror: {exc}"))
        page.on("dialog", self._dialog)

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def images(self) -> list[tuple[str, int]]:
        """Every <img> (src, naturalWidth), each scrolled into view and waited for."""
        return [
            (src, width)
            for src, width in self.page.evaluate(
                """async () => {
                    for (const img of document.images) {
                        img.scrollIntoView();
                        if (!img.complete) {
                            await new Promise((done) => { img.onload = img.onerror = done; });
                        }
                    }
                    return [...document.images].map((i) => [i.getAttribute("src"), i.naturalWidth]);
                }"""
            )
        ]


@pytest.fixture
def open_report(browser: Browser) -> Iterator[Callable[[Path, Any], Opened]]:
    pages: list[Page] = []

    def open_(root: Path, manifest: Any) -> Opened:
        report = write_report(root, manifest)
        assert report == root / "report.html"
        page = browser.new_page()
        pages.append(page)
        opened = Opened(page)
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        return opened

    yield open_
    for page in pages:
        page.close()


def assert_clean(opened: Opened) -> None:
    images = opened.images()
    assert images and all(width > 0 for _, width in images), images
    csp = opened.page.locator('meta[http-equiv="Content-Security-Policy"]')
    assert csp.count() == 1
    policy = csp.get_attribute("content") or ""
    assert policy.startswith("default-src 'none';") and "script-src 'sha256-" in policy
    assert not opened.problems, opened.problems


def test_passing_demo_report(passing: Path, open_report: Callable[[Path, Any], Opened]) -> None:
    manifest = read_manifest(passing)
    opened = open_report(passing, manifest)
    page = opened.page
    assert_clean(opened)
    assert page.locator("header.banner.v-passed").count() == 1
    # The inline style ran under the CSP: the banner is green.
    colour = page.eval_on_selector("header.banner", "e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(26, 127, 55)"
    rows = page.locator("#steps tbody tr")
    assert rows.count() == len(manifest["steps"]) == 14
    assert "Grüße aus 東京 ✓" in rows.nth(5).inner_text()
    assert manifest["recipe"]["sha256"] in page.locator("#recipe").inner_text()
    # A thumbnail opens the full-size PNG.
    link = rows.nth(0).locator("a:has(img.thumb)")
    assert link.get_attribute("href") == manifest["steps"][0]["screenshot"]
    logs = page.locator("#logs").inner_text()
    assert "GET /app.js" in logs
    if manifest.get("video"):
        ready = "() => document.getElementById('video').readyState >= 1"
        page.wait_for_function(ready, timeout=10_000)


def test_failing_demo_report_shows_the_failure(
    failing: Path, open_report: Callable[[Path, Any], Opened]
) -> None:
    manifest = read_manifest(failing)
    opened = open_report(failing, manifest)
    assert_clean(opened)
    page = opened.page
    assert page.locator("header.banner.v-failed").count() == 1
    failure = page.locator("#failure")
    assert "step 8 (expect_text 7 items left): failed" in failure.inner_text()
    assert "'7 items left' not in the visible text" in failure.inner_text()
    shot = failure.locator("img.full")
    assert shot.get_attribute("src") == manifest["steps"][7]["screenshot"]
    statuses = page.locator("#steps tbody tr td:nth-child(4)").all_inner_texts()
    assert [s.split()[-1] for s in statuses] == ["passed"] * 7 + ["failed"] + ["skipped"] * 6


def test_hostile_text_is_shown_as_text(
    tmp_path: Path, open_report: Callable[[Path, Any], Opened]
) -> None:
    opened = open_report(tmp_path, hostile_bundle(tmp_path))
    assert_clean(opened)  # also: no dialog fired, no CSP violation reported
    page = opened.page
    for evil in HOSTILE:
        for where in ("header", "#recipe", "#steps", "#failure", "#logs", "#environment"):
            assert evil in page.locator(where).inner_text(), (evil, where)
    assert page.locator("script").count() == 1
    assert page.locator("img").count() == 1  # the one screenshot, nothing injected
    assert page.title().startswith("Failed: <img src=x")


def test_failing_screenshot_shows_expected_actual_and_diff_side_by_side(
    tmp_path: Path, open_report: Callable[[Path, Any], Opened]
) -> None:
    manifest = visual_bundle(tmp_path)
    opened = open_report(tmp_path, manifest)
    assert_clean(opened)  # every image loads; the hostile name fired nothing
    page = opened.page
    figures = page.locator("#failure .sbs figure")
    captions = figures.locator("figcaption").all_inner_texts()
    assert captions == ["Expected", "Actual", "Diff", HOSTILE[0]]
    boxes = [figures.nth(i).locator("img").bounding_box() for i in range(4)]
    assert all(box is not None and box["width"] > 150 for box in boxes), boxes
    tops = {round(box["y"]) for box in boxes if box}
    lefts = [box["x"] for box in boxes if box]
    assert len(tops) == 1 and lefts == sorted(lefts)  # one row, in order
    srcs = figures.locator("img").evaluate_all("(els) => els.map((e) => e.getAttribute('src'))")
    attached = {a["name"]: a["path"] for a in manifest["steps"][1]["attachments"]}
    assert srcs == [attached[n] for n in ("expected", "actual", "diff", HOSTILE[0])]
    failure = page.locator("#failure").inner_text()
    assert "diff_pixels 3070 · diff_ratio 0.003364" in failure and HOSTILE[1] in failure
    row = page.locator("#steps tbody tr").nth(1)
    links = row.locator("a").all_inner_texts()
    assert {"expected", "actual", "diff"} <= set(links) and "escape" not in links
    assert "baseline visual.baselines/home.png" in row.inner_text()
    assert "passwd" not in page.content()


def test_seek_link_moves_the_video(
    tmp_path: Path, open_report: Callable[[Path, Any], Opened]
) -> None:
    make_video(tmp_path / "source.mp4")
    root = tmp_path / "bundle"
    opened = open_report(root, video_bundle(root, tmp_path / "source.mp4"))
    assert_clean(opened)
    page = opened.page
    video = page.locator("video#video")
    assert video.get_attribute("src") == "video.mp4"
    # Debian's Chromium plays H.264: the metadata loads and the duration is the real one.
    page.wait_for_function("() => document.getElementById('video').readyState >= 1")
    assert page.evaluate("document.getElementById('video').error") is None
    assert page.evaluate("document.getElementById('video').duration") == pytest.approx(5, abs=0.2)
    seeks = page.locator("a[data-seek]")
    assert seeks.count() == 3  # the step without an offset has no link
    seeks.nth(1).click()
    page.wait_for_function(
        "() => Math.abs(document.getElementById('video').currentTime - 2.5) < 0.05"
    )
    seeks.nth(2).click()
    page.wait_for_function(
        "() => Math.abs(document.getElementById('video').currentTime - 4.0) < 0.05"
    )
    assert page.url.endswith("report.html")  # the click was handled, not followed
    assert not opened.problems, opened.problems


# -- without a browser ------------------------------------------------------------------------


def test_no_video_no_seek_links(tmp_path: Path) -> None:
    shot = png(tmp_path / "screenshots" / "a.png", (1, 2, 3))
    manifest = make_manifest([make_step(0, screenshot=shot, video_offset_s=1.0)])
    page = render_report(tmp_path, manifest)  # type: ignore[arg-type]
    assert "<video" not in page and 'data-seek="' not in page


def test_missing_screenshot_is_not_a_broken_image(tmp_path: Path) -> None:
    manifest = make_manifest([make_step(0, screenshot="screenshots/gone.png")])
    manifest["steps"][1:] = [make_step(1, screenshot="../../etc/passwd")]
    page = render_report(tmp_path, manifest)  # type: ignore[arg-type]
    assert "<img" not in page and "passwd" not in page.split("<tbody>")[1].split("</tbody>")[0]


def test_error_verdict_shows_the_run_error(tmp_path: Path) -> None:
    error = {"type": "DevServerError", "message": "dev server exited <code 3>", "step": None}
    manifest = make_manifest([], verdict="error", error=error, finished=False)
    page = render_report(tmp_path, manifest)  # type: ignore[arg-type]
    assert 'class="banner v-error"' in page
    assert "The run could not verify: DevServerError" in page
    assert "dev server exited &lt;code 3&gt;" in page
    assert "did not finish" in page


def test_big_logs_keep_their_tail(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    lines = [f"line {n:07d} <{'x' * 40}>" for n in range(30_000)]
    (tmp_path / "logs" / "app.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    page = render_report(tmp_path, make_manifest([]))  # type: ignore[arg-type]
    assert f"line {29_999:07d} &lt;" in page and "line 0000000" not in page
    assert "Cut: showing the last 200 KB" in page
    assert len(page.encode()) < 2 * LOG_CAP
    start = page.index("App (dev server) log")
    body = page[page.index("<pre>", start) + 5 : page.index("</pre>", start)]
    assert body.startswith("line "), "the cut starts at a line boundary"


def test_unwritable_folder_raises_bundle_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(BundleError, match=r"cannot write .*report\.html"):
        write_report(not_a_folder, make_manifest([]))  # type: ignore[arg-type]


def test_lone_surrogates_and_control_characters(tmp_path: Path) -> None:
    manifest = make_manifest([make_step(0, target="a\ud800b\x00c\x1b")], verdict="failed")
    manifest["recipe"]["name"] = "\udcff name"
    report = write_report(tmp_path, manifest)  # type: ignore[arg-type]
    assert "?b" in report.read_text(encoding="utf-8")


def test_a_long_run_renders_every_step(tmp_path: Path) -> None:
    steps = [make_step(i, target=f"{i}:" + "<t>" * 333) for i in range(5_000)]
    steps[-1].update(status="error", error="e" * 100_000)
    page = render_report(tmp_path, make_manifest(steps, verdict="error"))  # type: ignore[arg-type]
    assert page.count('<tr class="r-') == 5_000 and "4999:&lt;t&gt;" in page
    assert "<t>" not in page and len(page) < 30_000_000
