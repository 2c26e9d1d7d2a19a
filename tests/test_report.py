"""report.html, checked in a real Chromium: it loads offline, shows the run, resists injection.

The bundles come from real runs of the demo recipe (one passing, one failing) and from
hand-written manifests for the edge cases. The helpers at the top build those; the other
renderers' tests (test_evidence_render.py) use them too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.bundles import (
    CHROMIUM_ARGS,
    HOSTILE,
    hostile_bundle,
    make_manifest,
    make_step,
    make_video,
    png,
    run_demo,
    video_bundle,
    visual_bundle,
)
from tests.support import wait_gone
from verifier.errors import BundleError
from verifier.evidence import read_manifest
from verifier.evidence._report import LOG_CAP, render_report, write_report


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
    assert manifest["video"], "the demo runs with a video"
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
    page = render_report(tmp_path, manifest)
    assert "<video" not in page and 'data-seek="' not in page


def test_missing_screenshot_is_not_a_broken_image(tmp_path: Path) -> None:
    manifest = make_manifest([make_step(0, screenshot="screenshots/gone.png")])
    manifest["steps"][1:] = [make_step(1, screenshot="../../etc/passwd")]
    page = render_report(tmp_path, manifest)
    assert "<img" not in page and "passwd" not in page.split("<tbody>")[1].split("</tbody>")[0]


def test_error_verdict_shows_the_run_error(tmp_path: Path) -> None:
    error = {"type": "DevServerError", "message": "dev server exited <code 3>", "step": None}
    manifest = make_manifest([], verdict="error", error=error, finished=False)
    page = render_report(tmp_path, manifest)
    assert 'class="banner v-error"' in page
    assert "The run could not verify: DevServerError" in page
    assert "dev server exited &lt;code 3&gt;" in page
    assert "did not finish" in page


def test_big_logs_keep_their_tail(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    lines = [f"line {n:07d} <{'x' * 40}>" for n in range(30_000)]
    (tmp_path / "logs" / "app.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    page = render_report(tmp_path, make_manifest([]))
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
        write_report(not_a_folder, make_manifest([]))


def test_lone_surrogates_and_control_characters(tmp_path: Path) -> None:
    manifest = make_manifest([make_step(0, target="a\ud800b\x00c\x1b")], verdict="failed")
    manifest["recipe"]["name"] = "\udcff name"
    report = write_report(tmp_path, manifest)
    assert "?b" in report.read_text(encoding="utf-8")


def test_a_long_run_renders_every_step(tmp_path: Path) -> None:
    steps = [make_step(i, target=f"{i}:" + "<t>" * 333) for i in range(5_000)]
    steps[-1].update({"status": "error", "error": "e" * 100_000})
    page = render_report(tmp_path, make_manifest(steps, verdict="error"))
    assert page.count('<tr class="r-') == 5_000 and "4999:&lt;t&gt;" in page
    assert "<t>" not in page and len(page) < 30_000_000
