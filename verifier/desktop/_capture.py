"""Full-screen capture through XShm (mss's XCB XShmGetImage backend) into numpy RGB."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

import cv2
import mss
import numpy as np

from verifier._files import write_atomic
from verifier._types import Image
from verifier._xauth import connecting_to
from verifier.errors import BundleError, DisplayError

__all__ = ("Image", "PNG_PARAMS", "ScreenCapture", "downscale", "save_png", "write_png")


class ScreenCapture:
    """Grabs the root window of one display; about 1 ms a 1280x800 frame here."""

    def __init__(self, display: str) -> None:
        try:
            with connecting_to(display):
                self._mss: Any = mss.MSS(display=display, backend="xshmgetimage")
        except mss.ScreenShotError as exc:
            msg = f"cannot capture X display {display!r}: {exc}"
            raise DisplayError(msg) from exc
        self._monitor = dict(self._mss.monitors[0])
        self.size = (int(self._monitor["width"]), int(self._monitor["height"]))

    def grab(self) -> Image:
        """The whole screen as an HxWx3 RGB uint8 array (a fresh copy)."""
        try:
            shot = self._mss.grab(self._monitor)
        # mss's XCB layer asserts on the null reply a dead X server gives.
        except (mss.ScreenShotError, AssertionError, OSError) as exc:
            msg = f"screen capture failed (is the X server gone?): {exc or type(exc).__name__}"
            raise DisplayError(msg) from exc
        bgra = np.frombuffer(shot.raw, dtype=np.uint8).reshape(shot.height, shot.width, 4)
        rgb: Image = np.asarray(cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB), dtype=np.uint8)
        return rgb

    def close(self) -> None:
        # On a dead X server closing raises (mss asserts on null replies); gone is closed.
        with contextlib.suppress(Exception):
            self._mss.close()


# PNG without row filters at zlib level 1: libpng's default tries every filter on every
# row, ~18 ms a 1280x800 UI screen against ~5 here, and is no smaller on such screens.
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]


def save_png(frame: Image, path: Path) -> Path:
    """Write an RGB frame as PNG (fast compression: evidence, not archival).

    Encoded in memory and written by Python, so a full disk is an error we report, not
    libpng's message on stderr; nothing half-written is left.

    :raises BundleError: the file cannot be written.
    """
    write_png(frame, path)
    return path


def write_png(frame: Image, path: Path) -> tuple[str, int]:
    """:func:`save_png`, returning the sha256 (hex) and size of the bytes written: the
    digest of what we wrote, not of what the file holds when someone reads it later."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), PNG_PARAMS)
    if not ok:
        msg = f"could not encode the PNG {str(path)!r}"
        raise BundleError(msg)
    raw = data.tobytes()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, raw)
    except OSError as exc:
        msg = f"cannot write {str(path)!r}: {exc.strerror or exc}"
        raise BundleError(msg) from exc
    return hashlib.sha256(raw).hexdigest(), len(raw)


def downscale(frame: Image, width: int) -> Image:
    """``frame`` at most ``width`` pixels wide (area averaging), or ``frame`` itself."""
    height, current = frame.shape[:2]
    if current <= width:
        return frame
    size = (width, max(1, round(height * width / current)))
    small: Image = np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    return small
