"""`verifier bench`'s recording group: what recording the screen costs, ours against
Playwright's ``record_video_dir``, on a 1280x800 page that animates constantly.

The figure is CPU milliseconds per second of video (utime + stime from /proc), so the
table's ratio reads as "how many times our CPU". Ours is ffmpeg x11grab of the bench's
own desktop at the Recorder's defaults. Playwright's is measured in a child process
(one Playwright per thread, and the bench's own is busy): headless Chromium showing the
same page with and without ``record_video_dir``, the difference of its process tree's
CPU. The note gives each video's size in MB per minute.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from verifier.bench._script import playwright_video_env, run_script
from verifier.bench._tree import cpu_seconds, tree_of
from verifier.browser import CHROMIUM, CHROMIUM_FLAGS, Browser
from verifier.desktop import Desktop
from verifier.recorder import Recorder

__all__ = ("SECONDS", "ours_once", "playwright_once", "show_animation")

SECONDS = 2.0
ANIMATED = """<!doctype html><html><body style="margin:0;background:#fff">
<div id="box" style="position:absolute;width:300px;height:300px;background:#36c;
  border-radius:40px;animation:spin 1.3s linear infinite"></div>
<p style="font:24px sans-serif;margin:340px 0 0 40px" id="t"></p>
<style>@keyframes spin{from{transform:translate(0,0) rotate(0)}
to{transform:translate(900px,400px) rotate(360deg)}}</style>
<script>let n=0;setInterval(()=>{t.textContent='frame '+(n++)},16)</script>
</body></html>"""

# The child: "<ms of CPU per second of video> <MB per minute>" on stdout.
_PLAYWRIGHT = r"""
import json, os, sys, time
from pathlib import Path
from playwright.sync_api import sync_playwright
page_html, videos, seconds, chromium, flags = (
    sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5:])
tick = os.sysconf("SC_CLK_TCK")
def tree_cpu():
    me, kids, total = os.getpid(), {}, 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                f = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            kids.setdefault(int(f[1]), []).append((int(d), int(f[11]) + int(f[12])))
    stack = [me]
    while stack:
        for pid, t in kids.get(stack.pop(), []):
            total += t; stack.append(pid)
    return total / tick
cost = {}
with sync_playwright() as p:
    for record in (False, True):
        browser = p.chromium.launch(executable_path=chromium, args=flags)
        options = {"viewport": {"width": 1280, "height": 800}}
        if record:
            options |= {"record_video_dir": str(videos),
                        "record_video_size": {"width": 1280, "height": 800}}
        ctx = browser.new_context(**options)
        ctx.new_page().set_content(open(page_html).read())
        time.sleep(0.3)
        c0, t0 = tree_cpu(), time.monotonic()
        time.sleep(seconds)
        cost[record] = (tree_cpu() - c0) / (time.monotonic() - t0)
        ctx.close(); browser.close()
size = sum(f.stat().st_size for f in videos.glob("*.webm"))
print(json.dumps({"ms_per_s": (cost[True] - cost[False]) * 1000,
                  "mb_per_min": size / 1e6 / seconds * 60}))
"""


def ours_once(desk: Desktop, tmp: Path, n: int) -> tuple[float, float]:
    """Record ``SECONDS`` of the desktop: (CPU ms per second, MB per minute)."""
    video = tmp / f"recording-{n}.mp4"
    recorder = Recorder(
        display=desk.display, size=desk.size, path=video, log=tmp / "recording-ffmpeg.log"
    ).start()
    try:
        assert recorder.pid is not None
        tree = tree_of(recorder.pid)
        c0, t0 = cpu_seconds(tree), time.monotonic()
        time.sleep(SECONDS)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(tree) - c0
    finally:
        info = recorder.stop()
    duration = info.duration_s if info is not None and info.duration_s > 0 else elapsed
    return cpu * 1000 / elapsed, video.stat().st_size / 1e6 / duration * 60


def playwright_once(tmp: Path, n: int) -> tuple[float, float]:
    """The same in a child process with Playwright's ``record_video_dir``."""
    env = playwright_video_env(tmp)
    if env is None:
        raise RuntimeError("ffmpeg is not installed")
    page = tmp / "animated.html"
    page.write_text(ANIMATED, encoding="utf-8")
    script = tmp / "pw_recording.py"
    script.write_text(_PLAYWRIGHT, encoding="utf-8")
    argv = [sys.executable, str(script), str(page), str(tmp / f"pw-videos-{n}"), str(SECONDS)]
    out = run_script([*argv, CHROMIUM, *CHROMIUM_FLAGS], env=env, timeout=120)
    result = json.loads(out.strip().splitlines()[-1])
    return float(result["ms_per_s"]), float(result["mb_per_min"])


def show_animation(browser: Browser) -> None:
    browser.page.set_content(ANIMATED)
    browser.next_frame()
