"""Recording cost, measured side by side in one run (issue: evidence, speed and size).

    python3 bench/recording.py [--seconds 20] [--json]

For each way of recording a 1280x800 page that animates constantly (and one that is
static), it reports the CPU of the recording (cores, from /proc utime+stime) and the
size of the video in MB per minute:

* ours: ffmpeg x11grab of the Xvfb screen with verifier's Recorder at its defaults;
* ours at x264 ultrafast, for scale;
* Playwright's record_video_dir (headless Chromium screencast -> VP8 in its ffmpeg),
  with PLAYWRIGHT_BROWSERS_PATH pointing at Debian's ffmpeg, its cost taken as the
  browser tree's CPU with recording minus the same page without.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from verifier._process import find_tree  # noqa: E402
from verifier.browser import CHROMIUM_FLAGS, Browser  # noqa: E402
from verifier.desktop import Desktop  # noqa: E402
from verifier.recorder import Recorder  # noqa: E402

SITE = ROOT / "tests" / "apps" / "site"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Iterator[int] | list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


@contextmanager
def serve() -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SITE))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def measure(seconds: float, sample: Callable[[], float]) -> float:
    start_cpu, start = sample(), time.monotonic()
    time.sleep(seconds)
    return (sample() - start_cpu) / (time.monotonic() - start)


def ours(url: str, page: str, seconds: float, preset: str, tmp: Path) -> dict[str, float]:
    with Desktop(screen="1280x800") as desk:
        with Browser(
            display=desk.display, screen=desk.size, console_log=tmp / "c.jsonl", env=desk.env
        ) as browser:
            browser.page.goto(url + page)
            video = tmp / f"ours-{preset}-{page}.mp4"
            rec = Recorder(
                display=desk.display,
                size=desk.size,
                path=video,
                log=tmp / "ffmpeg.log",
                preset=preset,
            ).start()
            assert rec._proc is not None
            pid = rec._proc.pid
            cores = measure(seconds, lambda: cpu_seconds([pid]))
            info = rec.stop()
    assert info is not None
    return {"cores": cores, "mb_per_min": video.stat().st_size / 1e6 / info.duration_s * 60}


def _browser_tree_cpu() -> float:
    me = os.getpid()
    return cpu_seconds([pid for pid in find_tree(me, None) if pid != me])


def playwright_video(url: str, page: str, seconds: float, tmp: Path) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    browsers = tmp / "pw-browsers"
    (browsers / "ffmpeg-1013").mkdir(parents=True, exist_ok=True)
    link = browsers / "ffmpeg-1013" / "ffmpeg-linux"
    if not link.exists():
        link.symlink_to("/usr/bin/ffmpeg")
    os.environ["PLAYWRIGHT_BROWSERS_PATH"] = str(browsers)
    results = {}
    with sync_playwright() as p:
        for record in (False, True):
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", args=list(CHROMIUM_FLAGS)
            )
            options: dict[str, object] = {"viewport": {"width": 1280, "height": 800}}
            if record:
                options |= {
                    "record_video_dir": str(tmp / f"pw-video-{page}"),
                    "record_video_size": {"width": 1280, "height": 800},
                }
            ctx = browser.new_context(**options)  # type: ignore[arg-type]
            pg = ctx.new_page()
            pg.goto(url + page)
            cores = measure(seconds, _browser_tree_cpu)
            ctx.close()
            browser.close()
            results[record] = cores
    files = list((tmp / f"pw-video-{page}").glob("*.webm"))
    size = sum(f.stat().st_size for f in files)
    return {
        "cores": results[True] - results[False],
        "cores_browser_without_video": results[False],
        "mb_per_min": size / 1e6 / seconds * 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows: dict[str, dict[str, float]] = {}
    with serve() as url, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for page in ("animate.html", "index.html"):
            for preset in ("veryfast", "ultrafast"):
                label = "ours " + preset + (" (default)" if preset == "veryfast" else "")
                rows[f"{label}, {page}"] = ours(url, page, args.seconds, preset, tmp)
            rows[f"playwright record_video_dir, {page}"] = playwright_video(
                url, page, args.seconds, tmp
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'recording (1280x800, ' + str(args.seconds) + ' s)':<52} {'cores':>7} {'MB/min':>8}")
    for name, row in rows.items():
        print(f"{name:<52} {row['cores']:>7.3f} {row['mb_per_min']:>8.2f}")


if __name__ == "__main__":
    main()
