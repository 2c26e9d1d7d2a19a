"""`verifier bench`'s end-to-end group: the demo recipe against the same check written as
a plain headless Playwright script with video.

Each is a whole process timed from spawn to exit, each starting the demo app's server
and waiting for it: ``verifier run recipes/todo.yaml`` (Xvfb, openbox, headed Chromium,
XTest input, screen video, bundle and report), the same on a warm desktop of a
``verifier serve`` started for the group (``--pool``), and the script below (headless
Chromium, Playwright's ``record_video_dir`` through Debian's ffmpeg, one screenshot at
the end). Every round pauses before each contender, untimed, so that the pool has put
a new desktop in place of the last one and nothing else is busy.
The demo recipe is the command's ``--demo`` (``recipes/todo.yaml`` of a checkout); without
it the group is skipped and says so.
"""

from __future__ import annotations

import contextlib
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from verifier.bench._script import playwright_video_env, run_script
from verifier.browser import CHROMIUM, CHROMIUM_FLAGS

__all__ = ("PAUSE_S", "e2e_contenders")
PAUSE_S = 2.5  # before each timed run: a desktop warms in about 1.1 s here
_SERVE_S = 60.0

# The demo recipe's 14 steps, as someone would write them with Playwright alone: TESTS
# tests, as Playwright Test runs a suite (one server, one browser, a context with video
# for each test).
_PLAIN = r"""
import os, shutil, socket, subprocess, sys, time, urllib.request
from contextlib import closing
from playwright.sync_api import sync_playwright, expect
app, videos, tests, chromium = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
flags = sys.argv[5:]
with closing(socket.socket()) as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
# The recipe's own command: python3 as this PATH finds it (a shim of a version manager,
# say, is paid by both).
python3 = shutil.which("python3") or sys.executable
server = subprocess.Popen([python3, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
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
        for test in range(tests):
            ctx = browser.new_context(viewport={"width": 1280, "height": 713},
                                      record_video_dir=os.path.join(videos, str(test)))
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
            page.screenshot(path=os.path.join(videos, f"completed-{test}.png"))
            ctx.close()
        browser.close()
finally:
    server.terminate(); server.wait()
"""

Contender = tuple[str, Callable[[], object] | None, str]


@contextlib.contextmanager
def e2e_contenders(
    tmp: Path, demo: Path, suite: int = 10
) -> Iterator[tuple[list[Contender], list[Contender]]]:
    """Ours cold, ours on a warm desktop and the plain script, each run once per call;
    then the suites: the demo recipe ``suite`` times in one run of ours, and as that
    many tests of one plain script. Skipped without the demo. The pool's server stops
    when the block ends."""
    ours = "verifier run recipes/todo.yaml (headed, XTest, video, bundle)"
    warm = "  the same, on a warm desktop (verifier serve, --pool)"
    plain = "plain headless Playwright script, record_video_dir"
    if not demo.is_file():
        why = f"needs the demo recipe (--demo): {str(demo)!r} is not a file"
        yield [(ours, None, why), (warm, None, why), (plain, None, why)], []
        return
    out = tmp / "e2e-bundles"

    def run_ours(*more: str, times: int = 1) -> None:
        recipes = [str(demo)] * times
        run_script([sys.executable, "-m", "verifier", "run", *recipes, "--out", str(out), *more])

    script = tmp / "e2e_plain.py"
    script.write_text(_PLAIN, encoding="utf-8")
    env = playwright_video_env(tmp)
    rounds = iter(range(1_000_000))

    def run_plain(tests: int = 1) -> None:
        videos = tmp / f"e2e-videos-{next(rounds)}"
        app = demo.parent / "todo-app"
        argv = [sys.executable, str(script), str(app), str(videos), str(tests)]
        run_script([*argv, CHROMIUM, *CHROMIUM_FLAGS], env=env)

    no_ffmpeg = "" if env else "ffmpeg is not installed"
    with _serving(tmp / "pool" / "pool.sock") as (pool, why_not):
        yield (
            [
                (ours, run_ours, ""),
                (warm, (lambda: run_ours("--pool", str(pool))) if not why_not else None, why_not),
                (plain, run_plain if env else None, no_ffmpeg),
            ],
            [
                (
                    f"verifier run: the demo recipe {suite} times (one app, desktop, browser)",
                    lambda: run_ours(times=suite),
                    "",
                ),
                (
                    f"plain Playwright: {suite} tests, one server and browser, a context each",
                    (lambda: run_plain(suite)) if env else None,
                    no_ffmpeg,
                ),
            ],
        )


@contextlib.contextmanager
def _serving(sock: Path) -> Iterator[tuple[Path, str]]:
    """``verifier serve`` at ``sock`` while the block runs, once it says it is ready (or
    why it is not), then stopped."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "verifier", "serve", "--socket", str(sock)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield sock, _wait_ready(proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=_SERVE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _wait_ready(proc: subprocess.Popen[str]) -> str:
    """ "" once the server says its desktops are ready; else why they are not."""
    assert proc.stdout is not None
    deadline = time.monotonic() + _SERVE_S
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            return f"verifier serve exited {proc.wait()}"
        if line.startswith("ready:"):
            return ""
    return f"verifier serve was not ready within {_SERVE_S:g} s"
