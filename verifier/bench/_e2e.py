"""`verifier bench`'s end-to-end group: the demo recipe against the same check written as
a plain headless Playwright script with video.

Both are whole processes timed from spawn to exit, each starting the demo app's server
and waiting for it: ``verifier run recipes/todo.yaml`` (Xvfb, openbox, headed Chromium,
XTest input, screen video, bundle and report) and the script below (headless Chromium,
Playwright's ``record_video_dir`` through Debian's ffmpeg, one screenshot at the end).
The demo recipe is the command's ``--demo`` (``recipes/todo.yaml`` of a checkout); without
it the group is skipped and says so.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from verifier.bench._script import playwright_video_env, run_script
from verifier.browser import CHROMIUM, CHROMIUM_FLAGS

__all__ = ("e2e_contenders",)

# The demo recipe's 14 steps, as someone would write them with Playwright alone.
_PLAIN = r"""
import os, socket, subprocess, sys, time, urllib.request
from contextlib import closing
from playwright.sync_api import sync_playwright, expect
app, videos, chromium, flags = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with closing(socket.socket()) as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                          cwd=app, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
url = f"http://127.0.0.1:{port}/"
try:
    while True:
        try:
            urllib.request.urlopen(url, timeout=1); break
        except OSError:
            time.sleep(0.05)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=flags)
        ctx = browser.new_context(viewport={"width": 1280, "height": 713}, record_video_dir=videos)
        page = ctx.new_page()
        page.goto(url)
        expect(page.locator("body")).to_contain_text("Nothing to do yet")
        page.click("#new-todo"); page.keyboard.type("Buy milk"); page.keyboard.press("Enter")
        page.keyboard.type("Grüße aus 東京 ✓"); page.click("text=Add")
        expect(page.locator("body")).to_contain_text("2 items left")
        page.click("input[aria-label='Done: Buy milk']")
        expect(page.locator("body")).to_contain_text("1 item left")
        page.click("text=Completed")
        expect(page).to_have_url(url + "#/completed")
        expect(page.locator("#todo-list li.done")).to_be_visible()
        page.screenshot(path=os.path.join(videos, "completed.png"))
        ctx.close(); browser.close()
finally:
    server.terminate(); server.wait()
"""

Contender = tuple[str, Callable[[], object] | None, str]


def e2e_contenders(tmp: Path, demo: Path) -> list[Contender]:
    """Ours and the plain script, each run once per call; skipped without the demo."""
    ours = "verifier run recipes/todo.yaml (headed, XTest, video, bundle)"
    plain = "plain headless Playwright script, record_video_dir"
    if not demo.is_file():
        why = f"needs the demo recipe (--demo): {str(demo)!r} is not a file"
        return [(ours, None, why), (plain, None, why)]
    out = tmp / "e2e-bundles"

    def run_ours() -> None:
        run_script([sys.executable, "-m", "verifier", "run", str(demo), "--out", str(out)])

    script = tmp / "e2e_plain.py"
    script.write_text(_PLAIN, encoding="utf-8")
    env = playwright_video_env(tmp)
    rounds = iter(range(1_000_000))

    def run_plain() -> None:
        videos = tmp / f"e2e-videos-{next(rounds)}"
        argv = [sys.executable, str(script), str(demo.parent / "todo-app"), str(videos)]
        run_script([*argv, CHROMIUM, *CHROMIUM_FLAGS], env=env)

    return [
        (ours, run_ours, ""),
        (plain, run_plain if env else None, "" if env else "ffmpeg is not installed"),
    ]
