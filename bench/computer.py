"""The computer-use interface's speed: encoding, and round trips through a real MCP client.

    python3 bench/computer.py [--rounds 30] [--json]

Measures, on this machine, against tests/apps/site/computer-lab.html (a static page):

* screenshot encodings of a real 1280x800 screen (and of a photo-like one): time and size;
* in process (``Computer``): screenshot -> encoded image, and click -> settled, encoded
  screenshot;
* through MCP (``verifier mcp`` over stdio, driven by the ``mcp`` SDK's client): a
  ``screenshot`` round trip (goal: under 50 ms at 1280x800, encoding included) and a
  ``left_click`` -> settled screenshot round trip (goal: under 150 ms).

The reference computer-use demo spends about 190 ms in scrot + convert + base64 per
screenshot, plus a 2 s sleep after every action.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import cv2
import numpy as np
from mcp import Client, StdioServerParameters

from verifier.browser import Browser
from verifier.computer import Computer, anthropic_action, decode, encode
from verifier.desktop import Desktop

ROOT = Path(__file__).resolve().parent.parent

SITE = ROOT / "tests" / "apps" / "site"
SERVER = ROOT / "tests" / "apps" / "server.py"
GOALS_MS = {"mcp_screenshot": 50.0, "mcp_click_settled": 150.0}


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))], 1),
        "min_ms": round(ordered[0], 1),
    }


def timed(fn: Callable[[], object], rounds: int) -> list[float]:
    fn()
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def encodings(frame: np.ndarray, rounds: int) -> dict[str, dict[str, float]]:
    bgr = np.ascontiguousarray(frame[:, :, ::-1])
    ways: dict[str, Callable[[], bytes]] = {
        "png (ours: no filter, zlib 1)": lambda: encode(frame, "png").data,
        "png (libpng default)": lambda: bytes(cv2.imencode(".png", bgr)[1]),
        "jpeg q85": lambda: encode(frame, "jpeg").data,
        "webp q85": lambda: encode(frame, "webp").data,
        "auto": lambda: encode(frame, "auto").data,
    }
    # Round robin, so that a busy machine slows every encoding alike.
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(max(5, rounds // 2)):
        for name, way in ways.items():
            t0 = time.perf_counter()
            way()
            samples[name].append((time.perf_counter() - t0) * 1000)
    return {
        name: {"ms": round(statistics.median(samples[name]), 1), "kib": round(len(way()) / 1024, 1)}
        for name, way in ways.items()
    }


def in_process(rounds: int, url: str, tmp: Path) -> dict[str, Any]:
    with Desktop(screen="1280x800") as desk:
        with Browser(
            display=desk.display, screen=desk.size, console_log=tmp / "c.jsonl", env=desk.env
        ) as browser:
            browser.page.goto(url)
            computer = Computer(desk, browser=browser)
            ox, oy = browser.viewport_origin()
            frame = computer.screenshot().frame
            rng = np.random.default_rng(0)
            photo = rng.integers(0, 256, frame.shape, dtype=np.uint8)
            photo = np.asarray(cv2.GaussianBlur(photo, (9, 9), 0), np.uint8)
            shot = timed(lambda: computer.screenshot().image(), rounds)
            click = timed(
                lambda: anthropic_action(
                    computer, {"action": "left_click", "coordinate": [ox + 780, oy + 70]}
                ).image(),
                rounds,
            )
            return {
                "encodings_ui": encodings(frame, rounds),
                "encodings_photo": encodings(photo, rounds),
                "computer_screenshot": stats(shot),
                "computer_click_settled": stats(click),
            }


async def over_mcp(rounds: int, recipe: Path, out: Path) -> dict[str, Any]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "verifier", "mcp", "--recipe", str(recipe), "--out", str(out), "--no-video"],
        env=dict(os.environ),
        cwd=str(ROOT),
    )
    async with Client(params) as client:
        shot_ms, click_ms, sizes = [], [], []
        first = await client.call_tool("computer", {"action": "screenshot"})
        image = next(c for c in first.content if c.type == "image")
        frame = decode(base64.b64decode(image.data))
        ys, xs = np.nonzero((np.abs(frame.astype(int) - (0, 160, 80)) <= 6).all(axis=2))
        button = [int(xs.mean()), int(ys.mean())]
        for _ in range(rounds):
            t0 = time.perf_counter()
            result = await client.call_tool("computer", {"action": "screenshot"})
            shot_ms.append((time.perf_counter() - t0) * 1000)
            sizes.append(len(next(c for c in result.content if c.type == "image").data))
        for _ in range(rounds):
            t0 = time.perf_counter()
            await client.call_tool("computer", {"action": "left_click", "coordinate": button})
            click_ms.append((time.perf_counter() - t0) * 1000)
        await client.call_tool("finish", {})
    return {
        "mcp_screenshot": stats(shot_ms),
        "mcp_screenshot_base64_kib": round(statistics.median(sizes) / 1024, 1),
        "mcp_click_settled": stats(click_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="verifier-bench-") as tmp_name:
        tmp = Path(tmp_name)
        recipe = tmp / "lab.yaml"
        recipe.write_text(
            json.dumps(
                {
                    "name": "computer lab",
                    "app": {
                        "command": [sys.executable, str(SERVER), "serve", "{port}", str(SITE)],
                        "url": "http://127.0.0.1:{port}/computer-lab.html",
                    },
                    "steps": [{"goto": "/computer-lab.html"}],
                }
            )
        )
        results = anyio.run(over_mcp, args.rounds, recipe, tmp / "out")
        results |= in_process(args.rounds, (SITE / "computer-lab.html").as_uri(), tmp)
    results["load_average"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"load average {results['load_average']:.2f} on {os.cpu_count()} cores")
    for key in ("encodings_ui", "encodings_photo"):
        print(f"\n{key.removeprefix('encodings_')} screen 1280x800:")
        for name, row in results[key].items():
            print(f"  {name:32s} {row['ms']:7.1f} ms {row['kib']:9.1f} KiB")
    print()
    for key in (
        "computer_screenshot",
        "computer_click_settled",
        "mcp_screenshot",
        "mcp_click_settled",
    ):
        row = results[key]
        goal = GOALS_MS.get(key)
        verdict = ""
        if goal is not None:
            verdict = f"  goal < {goal:g} ms: {'met' if row['median_ms'] < goal else 'MISSED'}"
        print(
            f"{key:24s} median {row['median_ms']:6.1f} ms  p90 {row['p90_ms']:6.1f}"
            f"  min {row['min_ms']:6.1f}{verdict}"
        )


if __name__ == "__main__":
    main()
