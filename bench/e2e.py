"""A whole verification against the same check as a plain headless Playwright script.

    python3 bench/e2e.py [--rounds 3]

Alternates, in one run: ``verifier run recipes/todo.yaml`` (Xvfb, openbox, headed
Chromium, XTest input, screen video, bundle) and a Playwright script doing the same
steps headless with ``record_video_dir`` (PLAYWRIGHT_BROWSERS_PATH pointing at Debian's
ffmpeg), both starting the same dev server and waiting for it. Reports wall seconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PLAIN = r"""
import os, socket, subprocess, sys, time, urllib.request
from contextlib import closing
from playwright.sync_api import sync_playwright, expect
with closing(socket.socket()) as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                          cwd=sys.argv[1], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
url = f"http://127.0.0.1:{port}/"
try:
    while True:
        try:
            urllib.request.urlopen(url, timeout=1); break
        except OSError:
            time.sleep(0.05)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        ctx = browser.new_context(viewport={"width": 1280, "height": 713},
                                  record_video_dir=sys.argv[2])
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
        page.screenshot(path=os.path.join(sys.argv[2], "completed.png"))
        ctx.close(); browser.close()
finally:
    server.terminate(); server.wait()
"""


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import os

    ours: list[float] = []
    plain: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        browsers = Path(tmp) / "pw-browsers" / "ffmpeg-1013"
        browsers.mkdir(parents=True)
        (browsers / "ffmpeg-linux").symlink_to("/usr/bin/ffmpeg")
        env = {**os.environ, "PLAYWRIGHT_BROWSERS_PATH": str(browsers.parent)}
        script = Path(tmp) / "plain.py"
        script.write_text(PLAIN, encoding="utf-8")
        for i in range(args.rounds):
            ours.append(
                timed(
                    [
                        sys.executable,
                        "-m",
                        "verifier",
                        "run",
                        str(ROOT / "recipes" / "todo.yaml"),
                        "--out",
                        tmp,
                    ]
                )
            )
            plain.append(
                timed(
                    [
                        sys.executable,
                        str(script),
                        str(ROOT / "recipes" / "todo-app"),
                        str(Path(tmp) / f"video{i}"),
                    ],
                    env=env,
                )
            )
    for name, xs in (
        ("verifier run recipes/todo.yaml (headed, XTest, video, bundle)", ours),
        ("plain headless Playwright script with record_video_dir", plain),
    ):
        print(
            f"{name:<64} min {min(xs):5.2f}  median {statistics.median(xs):5.2f}  "
            f"max {max(xs):5.2f} s"
        )
    print(f"ratio of medians: {statistics.median(ours) / statistics.median(plain):.2f}x")


if __name__ == "__main__":
    main()
