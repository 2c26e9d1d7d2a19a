"""Marks on screenshots: where a click landed, where a drag went."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from verifier._types import Image

__all__ = ("mark_points",)

_RED = (230, 30, 50)
_WHITE = (255, 255, 255)


def _target(img: Image, x: int, y: int) -> None:
    # A white halo under a red ring and crosshair stays visible on any background.
    for colour, thick in ((_WHITE, 5), (_RED, 2)):
        cv2.circle(img, (x, y), 14, colour, thick, cv2.LINE_AA)
        cv2.line(img, (x - 22, y), (x - 6, y), colour, thick, cv2.LINE_AA)
        cv2.line(img, (x + 6, y), (x + 22, y), colour, thick, cv2.LINE_AA)
        cv2.line(img, (x, y - 22), (x, y - 6), colour, thick, cv2.LINE_AA)
        cv2.line(img, (x, y + 6), (x, y + 22), colour, thick, cv2.LINE_AA)
    cv2.circle(img, (x, y), 2, _RED, -1, cv2.LINE_AA)


def mark_points(frame: Image, points: Sequence[Sequence[int]], *, path: bool = False) -> Image:
    """A copy of ``frame`` (RGB) with each point marked; ``path`` joins them with arrows."""
    img = np.ascontiguousarray(frame).copy()
    pts = [(int(p[0]), int(p[1])) for p in points]
    if path:
        for a, b in zip(pts, pts[1:], strict=False):
            for colour, thick in ((_WHITE, 6), (_RED, 3)):
                cv2.arrowedLine(img, a, b, colour, thick, cv2.LINE_AA, tipLength=0.04)
    for x, y in pts:
        _target(img, x, y)
    return img
