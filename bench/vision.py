"""Speed of the vision layer: template matching and screen diffs at 1280x800.

    python3 bench/vision.py [--rounds 50] [--image SCREENSHOT.png] [--json]

Goals (issue 4): a 200x60 template found in a 1280x800 screen in under 20 ms, and a
full-screen diff in under 5 ms. The screen is a real screenshot when ``--image`` is given,
otherwise a synthetic one (buttons with labels, lines of anti-aliased text). Reports the
minimum and the median over ``--rounds`` calls, single process, OpenCV's default threads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from verifier.vision import Image, compare, find, read_image

ROOT = Path(__file__).resolve().parent.parent


def synthetic_screen(seed: int = 0) -> Image:
    rng = np.random.default_rng(seed)
    screen = np.empty((800, 1280, 3), np.uint8)
    screen[:] = (246, 248, 250)
    for i in range(150):
        x, y = int(rng.integers(0, 1180)), int(rng.integers(0, 770))
        colour = tuple(int(c) for c in rng.integers(0, 200, 3))
        cv2.rectangle(screen, (x, y), (x + 96, y + 26), colour, -1)
        cv2.putText(
            screen,
            f"Button {i}",
            (x + 5, y + 18),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    for _ in range(50):
        x, y = int(rng.integers(0, 880)), int(rng.integers(12, 800))
        cv2.putText(
            screen,
            "The quick brown fox jumps over",
            (x, y),
            cv2.FONT_HERSHEY_DUPLEX,
            0.6,
            (30, 30, 30),
            1,
            cv2.LINE_AA,
        )
    return screen


def measure(fn: Callable[[], object], rounds: int) -> dict[str, float]:
    fn()  # warm up: first calls allocate
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return {"min_ms": round(min(times), 3), "median_ms": round(statistics.median(times), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--image", type=Path, help="a 1280x800 screenshot to use as the screen")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    screen = read_image(args.image) if args.image else synthetic_screen()
    height, width = screen.shape[:2]
    # A 200x60 cut with something in it: the window of the screen with the most detail.
    grey = cv2.cvtColor(screen, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(grey, 50, 150)
    density = cv2.boxFilter(edges.astype(np.float32), -1, (200, 60), normalize=False)
    _, _, _, (cx, cy) = cv2.minMaxLoc(density[30 : height - 30, 100 : width - 100])
    x, y = cx, cy
    template = screen[y : y + 60, x : x + 200].copy()
    scaled = np.asarray(
        cv2.resize(template, None, fx=0.9, fy=0.9, interpolation=cv2.INTER_AREA), np.uint8
    )
    absent = np.empty((60, 200, 3), np.uint8)
    absent[:] = (90, 30, 120)
    cv2.putText(absent, "Nowhere", (10, 42), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (250, 250, 0), 2)
    changed = screen.copy()
    changed[300:340, 500:700] = 0
    text_moved = np.roll(screen, 1, axis=1)
    inverted = 255 - screen
    same = screen.copy()
    assert find(screen, template).box == (x, y, 200, 60)
    results = {
        "screen": f"{width}x{height}" + (f" ({args.image.name})" if args.image else " synthetic"),
        "find 200x60, present": measure(lambda: find(screen, template), args.rounds),
        "find 200x60 cut at 0.9x (scales tried)": measure(
            lambda: find(screen, scaled), args.rounds
        ),
        "find 200x60, absent (every scale tried)": measure(
            lambda: find(screen, absent), max(5, args.rounds // 5)
        ),
        "diff, identical": measure(lambda: compare(same, screen), args.rounds),
        "diff, a 200x40 area changed": measure(lambda: compare(changed, screen), args.rounds),
        "diff, everything moved 1 px": measure(
            lambda: compare(text_moved, screen), max(5, args.rounds // 5)
        ),
        "diff, every pixel changed": measure(
            lambda: compare(inverted, screen), max(5, args.rounds // 5)
        ),
        "diff image (for a failure)": measure(
            lambda: compare(changed, screen).diff_image(), max(5, args.rounds // 5)
        ),
    }
    if args.json:
        print(json.dumps(results))
        return 0
    print(
        f"screen {results.pop('screen')}, OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads"
    )
    for name, value in results.items():
        assert isinstance(value, dict)
        print(f"  {name:<42} min {value['min_ms']:8.2f} ms   median {value['median_ms']:8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
