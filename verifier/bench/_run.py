"""`verifier bench`: this machine's desktop against the peers' ways of doing the same thing.

Every contender of a group is timed in the same run, round after round in turn (so
machine noise hits all of them alike); the table reports min/median/max and each
median's ratio to ours. Peers are measured only when installed (pyautogui, scrot +
ImageMagick as the Anthropic computer-use demo does it, xdotool); a missing one is
listed as skipped.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from verifier._process import patched_environ
from verifier.bench._e2e import PAUSE_S, e2e_contenders
from verifier.bench._recording import SECONDS, ours_once, playwright_once, show_animation
from verifier.bench._tree import parts_pss_kb
from verifier.browser import Browser
from verifier.desktop import PNG_PARAMS, Desktop

__all__ = ("BenchRow", "report", "run_bench")

_PAGE = """<!doctype html><html><body style="margin:0;font-family:sans-serif">
<div id="pad" style="position:fixed;inset:0 50% 0 0;background:#eef"></div>
<input id="field" style="position:fixed;left:60%;top:40px;width:30%;font-size:18px">
<p style="position:fixed;left:60%;top:120px">Benchmark page</p>
<script>window.clicks = 0; document.getElementById('pad')
  .addEventListener('mouseup', () => window.clicks++);</script></body></html>"""
_TEXT = "The quick brown fox jumps over the lazy dog 0123"[:50].ljust(50, ".")


@dataclass
class BenchRow:
    """One contender's timings in one group, in milliseconds."""

    group: str
    name: str
    samples: list[float] = field(default_factory=list)
    note: str = ""
    skipped: str = ""
    unit: str = "ms"

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    def to_json(self, ours: float) -> dict[str, Any]:
        if not self.samples:
            return {"group": self.group, "name": self.name, "skipped": self.skipped}
        unit = self.unit.lower()
        return {
            "group": self.group,
            "name": self.name,
            "n": len(self.samples),
            f"min_{unit}": round(min(self.samples), 3),
            f"median_{unit}": round(self.median, 3),
            f"max_{unit}": round(max(self.samples), 3),
            "ratio_to_ours": round(self.median / ours, 2) if ours else None,
            "note": self.note,
        }


Contender = tuple[str, Callable[[], object] | None, str]  # name, run once (None: skipped), why


def _alternate(
    group: str,
    contenders: list[Contender],
    rounds: int,
    *,
    pause: float = 0.0,
    warm_up: bool = True,
) -> list[BenchRow]:
    rows = []
    runnable: list[Callable[[], object] | None] = []
    for name, fn, why in contenders:
        row = BenchRow(group, name, skipped=why if fn is None else "")
        try:  # one untimed call: warms caches, and weeds out a peer that cannot run here
            if fn is not None and warm_up:
                fn()
        except Exception as exc:  # noqa: BLE001 - a peer failing here is a finding, not a crash
            row.skipped = f"fails here: {str(exc).strip().splitlines()[0][:90]}"
            fn = None
        rows.append(row)
        runnable.append(fn)
    failures = [0] * len(rows)
    for _ in range(rounds):
        for i, (row, fn) in enumerate(zip(rows, runnable, strict=True)):
            if fn is None:
                continue
            time.sleep(pause)  # untimed: what the last contender left running settles
            t0 = time.perf_counter()
            try:
                fn()
            except Exception:  # noqa: BLE001 - counted and reported, not fatal
                failures[i] += 1
                continue
            row.samples.append((time.perf_counter() - t0) * 1000)
    for row, failed in zip(rows, failures, strict=True):
        if failed:
            row.note = f"{row.note} failed {failed}/{rounds} times".strip()
    return rows


def _peer(binary: str) -> str | None:
    return shutil.which(binary)


def _pyautogui(desk: Desktop) -> tuple[Any, str]:
    """pyautogui bound to ``desk`` (it reads DISPLAY at import), or why it is unavailable."""
    os.environ["DISPLAY"] = desk.display
    if not os.environ.get("XAUTHORITY") and not (Path.home() / ".Xauthority").is_file():
        os.environ["XAUTHORITY"] = os.devnull  # python-xlib insists on a file
    try:
        # pyscreeze (under pyautogui) leaks subprocess pipes at import, and its X
        # connection leaks the Xauthority file: a peer's manners, not ours to fail on.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore", ResourceWarning)
            import pyautogui  # type: ignore[import-untyped]

            gc.collect()
    except Exception as exc:  # noqa: BLE001 - any import failure means "not measured"
        return None, f"pyautogui unavailable: {type(exc).__name__}"
    return pyautogui, ""


def _capture_group(desk: Desktop, browser: Browser, rounds: int, tmp: Path) -> list[BenchRow]:
    frame = desk.screenshot()
    floor = np.empty_like(frame)
    env = desk.env
    convert = "/usr/bin/convert" if Path("/usr/bin/convert").exists() else None
    scrot = _peer("scrot")

    def scrot_demo() -> bytes:  # the Anthropic computer-use demo: scrot, convert -resize, b64
        shot = tmp / "demo.png"
        subprocess.run([scrot or "scrot", "-o", str(shot)], env=env, check=True)
        subprocess.run(
            [convert or "convert", str(shot), "-resize", "1024x768!", str(shot)],
            env=env,
            check=True,
        )
        return base64.b64encode(shot.read_bytes())

    pyautogui, why_pg = _pyautogui(desk)
    pyautogui_shot = (lambda: np.asarray(pyautogui.screenshot())) if pyautogui else None
    from PIL import ImageGrab

    page = browser.page
    return _alternate(
        "capture 1280x800 to an RGB array",
        [
            ("verifier Desktop.screenshot (XShm)", desk.screenshot, ""),
            ("memcpy of a frame (the floor)", lambda: np.copyto(floor, frame), ""),
            ("PIL ImageGrab.grab", lambda: np.asarray(ImageGrab.grab(xdisplay=desk.display)), ""),
            ("pyautogui.screenshot", pyautogui_shot, why_pg),
            (
                "scrot + convert resize + base64 (demo)",
                scrot_demo if scrot and convert else None,
                "scrot or ImageMagick not installed",
            ),
            (
                "Playwright page.screenshot + decode",
                lambda: cv2.imdecode(np.frombuffer(page.screenshot(), np.uint8), cv2.IMREAD_COLOR),
                "",
            ),
        ],
        rounds,
    )


def _encode_group(desk: Desktop, rounds: int) -> list[BenchRow]:
    frame = cv2.cvtColor(desk.screenshot(), cv2.COLOR_RGB2BGR)
    codecs = [
        ("PNG (level 1, no row filter)", ".png", PNG_PARAMS),
        ("JPEG (quality 80)", ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 80]),
        ("WebP (quality 80)", ".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
    ]

    def encoder(ext: str, params: list[int]) -> Callable[[], object]:
        return lambda: cv2.imencode(ext, frame, params)

    rows = _alternate(
        "encode a frame for an agent",
        [(name, encoder(ext, params), "") for name, ext, params in codecs],
        rounds,
    )
    for row, (_n, ext, params) in zip(rows, codecs, strict=True):
        row.note = f"{len(cv2.imencode(ext, frame, params)[1]) / 1024:.0f} KB"
    return rows


def _click_group(desk: Desktop, browser: Browser, rounds: int) -> list[BenchRow]:
    page = browser.page
    ox, oy = browser.viewport_origin()
    x, y = ox + 100, oy + 100
    env = desk.env

    def seen(action: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            before = page.evaluate("window.clicks")
            action()
            page.wait_for_function(
                "(n) => window.clicks > n", arg=before, polling="raf", timeout=5000
            )

        return run

    pyautogui, _why = _pyautogui(desk)
    xdotool = _peer("xdotool")
    return _alternate(
        "click -> the page sees it",
        [
            ("verifier XTest click", seen(lambda: desk.click(x, y)), ""),
            (
                "xdotool subprocess",
                seen(
                    lambda: subprocess.run(
                        [xdotool or "xdotool", "mousemove", str(x), str(y), "click", "1"],
                        env=env,
                        check=True,
                    )
                )
                if xdotool
                else None,
                "xdotool not installed",
            ),
            (
                "pyautogui.click (defaults)",
                seen(lambda: pyautogui.click(x, y)) if pyautogui else None,
                "pyautogui unavailable",
            ),
            ("Playwright page.mouse.click", seen(lambda: page.mouse.click(100, 100)), ""),
        ],
        rounds,
    )


def _type_group(desk: Desktop, browser: Browser, rounds: int) -> list[BenchRow]:
    page = browser.page
    box = page.locator("#field").bounding_box()
    assert box is not None
    ox, oy = browser.viewport_origin()
    fx, fy = ox + int(box["x"] + 10), oy + int(box["y"] + box["height"] / 2)

    def typed(action: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            page.evaluate("document.getElementById('field').value = ''")
            desk.click(fx, fy)
            page.wait_for_function(
                "document.activeElement.id === 'field'", polling="raf", timeout=5000
            )
            action()
            page.wait_for_function(
                "(n) => document.getElementById('field').value.length >= n",
                arg=len(_TEXT),
                polling="raf",
                timeout=5000,
            )

        return run

    xdotool = _peer("xdotool")
    return _alternate(
        "type 50 characters",
        [
            ("verifier XTest type", typed(lambda: desk.type(_TEXT)), ""),
            (
                "xdotool type subprocess",
                typed(
                    lambda: subprocess.run(
                        [xdotool or "xdotool", "type", "--delay", "0", _TEXT],
                        env=desk.env,
                        check=True,
                    )
                )
                if xdotool
                else None,
                "xdotool not installed",
            ),
            ("Playwright keyboard.type", typed(lambda: page.keyboard.type(_TEXT)), ""),
        ],
        rounds,
    )


def _vision_group(desk: Desktop, browser: Browser, rounds: int) -> list[BenchRow]:
    from verifier import vision

    frame = desk.screenshot()
    ox, oy = browser.viewport_origin()
    vw = int(browser.page.evaluate("innerWidth"))
    # A 200x60 template around the text field and label on the right half of the page.
    x, y = ox + int(vw * 0.6) - 10, oy + 30
    template = np.ascontiguousarray(frame[y : y + 60, x : x + 200])
    changed = frame.copy()
    changed[oy + 200 : oy + 240, ox + 100 : ox + 300] ^= 0xFF
    rows = _alternate(
        "template match and screen diff",
        [
            (
                "verifier vision.find (grey, coarse-to-fine)",
                lambda: vision.find(frame, template),
                "",
            ),
            (
                "cv2.matchTemplate, colour, full size",
                lambda: cv2.matchTemplate(frame, template, cv2.TM_CCOEFF_NORMED),
                "",
            ),
            (
                "verifier vision.compare (200x40 changed)",
                lambda: vision.compare(changed, frame),
                "",
            ),
            (
                "numpy abs diff + count",
                lambda: int(
                    np.count_nonzero(
                        np.abs(changed.astype(np.int16) - frame.astype(np.int16)).max(axis=2) > 25
                    )
                ),
                "",
            ),
        ],
        rounds,
    )
    found = vision.find(frame, template)
    rows[0].note = f"score {found.score:.2f}"
    return rows


def _recording_group(desk: Desktop, browser: Browser, rounds: int, tmp: Path) -> list[BenchRow]:
    group = f"recording: CPU ms per second of 1280x800 video ({SECONDS:g} s of an animating page)"
    ours = BenchRow(group, "verifier Recorder (ffmpeg x11grab, x264 veryfast)")
    peer = BenchRow(group, "Playwright record_video_dir (headless, VP8)")
    sizes: dict[str, list[float]] = {ours.name: [], peer.name: []}
    failures = {ours.name: 0, peer.name: 0}
    contenders: list[tuple[BenchRow, Callable[[int], tuple[float, float]]]] = [
        (ours, lambda n: ours_once(desk, tmp, n)),
        (peer, lambda n: playwright_once(tmp, n)),
    ]
    show_animation(browser)
    for n in range(rounds):
        for row, once in contenders:
            try:
                ms, mb_per_min = once(n)
            except Exception as exc:  # noqa: BLE001 - a recorder failing here is a finding
                failures[row.name] += 1
                row.skipped = f"fails here: {str(exc).strip().splitlines()[0][:90]}"
                continue
            row.samples.append(ms)
            sizes[row.name].append(mb_per_min)
    for row in (ours, peer):
        if row.samples:
            failed = failures[row.name]
            row.note = f"{statistics.median(sizes[row.name]):.1f} MB/min" + (
                f", failed {failed}/{rounds} times" if failed else ""
            )
    return [ours, peer]


_PARTS = {
    "chromium": "Chromium (every process)",
    "driver": "Playwright's driver (Node.js)",
    "verifier": "verifier (Python)",
    "ffmpeg": "ffmpeg (the screen video)",
    "xvfb": "Xvfb",
    "openbox": "openbox",
    "other": "other",
}


def _memory_group(demo: Path, rounds: int, tmp: Path) -> list[BenchRow]:
    """One run of the demo recipe at a time, its process tree's proportional memory
    sampled every 50 ms: the peak of the whole (the app's own processes aside, as they
    are the app's), and each part at that moment."""
    group = "memory: one run's process tree at its peak (PSS, the app aside)"
    total = BenchRow(group, "verifier run recipes/todo.yaml, in all", unit="MB")
    parts = {key: BenchRow(group, f"  {name}", unit="MB") for key, name in _PARTS.items()}
    if not demo.is_file():
        total.skipped = f"needs the demo recipe (--demo): {str(demo)!r} is not a file"
        return [total]
    for _ in range(rounds):
        proc = subprocess.Popen(
            [sys.executable, "-m", "verifier", "run", str(demo), "--out", str(tmp / "memory")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        peak: dict[str, int] = {}
        while proc.poll() is None:
            now = parts_pss_kb(proc.pid)
            now.pop("app", None)
            if sum(now.values()) > sum(peak.values()):
                peak = now
            time.sleep(0.05)
        total.samples.append(sum(peak.values()) / 1024)
        for key, row in parts.items():
            row.samples.append(peak.get(key, 0) / 1024)
    return [total, *(row for row in parts.values() if any(row.samples))]


def _start_group(screen: str, rounds: int, tmp: Path, browser: Browser) -> list[BenchRow]:
    def cold_once() -> None:
        with (
            Desktop(screen, log_dir=tmp) as desk,
            Browser(
                display=desk.display, screen=desk.size, console_log=tmp / "c.jsonl", env=desk.env
            ) as b,
        ):
            b.page.set_content(_PAGE)

    def cold() -> None:
        # Its own thread: Playwright's sync API allows one instance per thread. Everything
        # it starts is stopped before the thread ends (PDEATHSIG follows the thread).
        failure: list[BaseException] = []

        def target() -> None:
            try:
                cold_once()
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                failure.append(exc)

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if failure:
            raise failure[0]

    def warm() -> None:
        page = browser.page.context.new_page()
        page.set_content(_PAGE)
        page.close()

    return _alternate(
        "start",
        [
            ("cold: Xvfb + openbox + headed Chromium + page", cold, ""),
            ("warm: new page in a running browser", warm, ""),
        ],
        rounds,
    )


def run_bench(
    *,
    screen: str = "1280x800",
    rounds: int = 20,
    demo: Path = Path("recipes/todo.yaml"),
    suite_size: int = 10,
) -> list[BenchRow]:
    """Measure every group; ``rounds`` samples per contender (start and end to end: a
    tenth of it)."""
    rows: list[BenchRow] = []
    with tempfile.TemporaryDirectory(prefix="verifier-bench-") as tmpdir:
        tmp = Path(tmpdir)
        with (
            contextlib.ExitStack() as stack,
            Desktop(screen, log_dir=tmp) as desk,
            Browser(
                display=desk.display,
                screen=desk.size,
                console_log=tmp / "console.jsonl",
                env=desk.env,
            ) as browser,
        ):
            # Every peer reaches the display as ours do: its DISPLAY, and the cookie.
            client = {k: v for k, v in desk.env.items() if k in ("DISPLAY", "XAUTHORITY")}
            stack.enter_context(patched_environ(client))
            browser.page.set_content(_PAGE)
            browser.next_frame()
            rows += _capture_group(desk, browser, rounds, tmp)
            rows += _encode_group(desk, rounds)
            rows += _click_group(desk, browser, rounds)
            rows += _type_group(desk, browser, max(3, rounds // 4))
            rows += _vision_group(desk, browser, rounds)
            rows += _start_group(screen, max(2, rounds // 10), tmp, browser)
            rows += _recording_group(desk, browser, max(1, rounds // 10), tmp)
        # Whole processes, each with its own desktop or browser: after ours is closed.
        with e2e_contenders(tmp, demo.resolve(), suite_size) as (single, suite):
            rows += _alternate("end to end", single, max(1, rounds // 10), pause=PAUSE_S)
            if suite:  # (warmed up by the group before)
                group = f"a suite: {suite_size} runs of the demo recipe"
                rows += _alternate(group, suite, max(1, rounds // 30), pause=PAUSE_S, warm_up=False)
        rows += _memory_group(demo.resolve(), max(1, rounds // 10), tmp)
    return rows


def report(rows: list[BenchRow]) -> tuple[str, list[dict[str, Any]]]:
    """A text table and the JSON records; ratios are to the group's first row (ours)."""
    lines, records = [], []
    group = None
    ours = float("nan")
    for row in rows:
        if row.group != group:
            group, ours = row.group, row.median
            lines.append(f"\n{group}")
            lines.append(f"  {'':<48} {'min':>9} {'median':>9} {'max':>9} {'x ours':>7}")
        records.append(row.to_json(ours))
        if not row.samples:
            lines.append(f"  {row.name:<48} skipped: {row.skipped}")
            continue
        lines.append(
            f"  {row.name:<48} {min(row.samples):8.2f}{row.unit} {row.median:8.2f}{row.unit} "
            f"{max(row.samples):8.2f}{row.unit} {row.median / ours:6.1f}x  {row.note}".rstrip()
        )
    return "\n".join(lines).lstrip("\n"), records
