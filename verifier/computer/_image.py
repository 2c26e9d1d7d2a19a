"""Model-friendly screenshots: scaling with exact coordinate maps, and fast encoding.

A model sees the screen at ``model`` size (aspect kept, never enlarged) and answers in
those pixels. Each model pixel maps to the screen pixel under its centre and back again,
so model -> screen -> model is the identity (tested for every pixel).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import cv2
import numpy as np

from verifier._types import IMAGE_FORMATS, Image, ImageFormat
from verifier.desktop import PNG_PARAMS
from verifier.errors import DisplayError, InputError

__all__ = (
    "EncodedImage",
    "IMAGE_FORMATS",
    "ImageFormat",
    "JPEG_QUALITY",
    "ScreenScale",
    "decode",
    "encode",
    "fit_within",
    "mark_region",
)


# "auto" sends PNG for UI screens (exact pixels, and as small as JPEG there), JPEG for
# photo-like ones; a PNG above this many bytes is also tried as JPEG, the smaller wins.
AUTO_PNG_LIMIT = 256 * 1024
AUTO_FLAT_MIN = 0.3  # below this share of flat pixels, "auto" goes straight to JPEG
JPEG_QUALITY = 85
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


@dataclass(frozen=True, slots=True)
class ScreenScale:
    """How screenshots shown to a model relate to the screen.

    :param screen: (width, height) of the screen.
    :param model: (width, height) of the screenshots the model sees.
    """

    screen: tuple[int, int]
    model: tuple[int, int]

    @classmethod
    def fit(cls, screen: tuple[int, int], target: tuple[int, int] | None) -> ScreenScale:
        """Scale ``screen`` to fit inside ``target`` keeping its aspect; never enlarge."""
        sw, sh = screen
        if target is None:
            return cls(screen, screen)
        tw, th = target
        if sw <= tw and sh <= th:
            return cls(screen, screen)
        # The axis that limits is filled exactly; the other is rounded, at least 1 px.
        if tw * sh <= th * sw:
            mw, mh = tw, max(1, (sh * tw * 2 + sw) // (2 * sw))
        else:
            mw, mh = max(1, (sw * th * 2 + sh) // (2 * sh)), th
        return cls(screen, (mw, mh))

    @property
    def identity(self) -> bool:
        return self.screen == self.model

    def check(self, x: int, y: int, *, what: str = "coordinate") -> None:
        mw, mh = self.model
        if not (0 <= x < mw and 0 <= y < mh):
            msg = (
                f"{what} [{x}, {y}] is outside the {mw}x{mh} screen; "
                f"use 0 <= x <= {mw - 1} and 0 <= y <= {mh - 1}"
            )
            raise InputError(msg)

    def to_screen(self, x: int, y: int, *, what: str = "coordinate") -> tuple[int, int]:
        """The screen pixel under the centre of model pixel (x, y); refuses out-of-range."""
        self.check(x, y, what=what)
        (sw, sh), (mw, mh) = self.screen, self.model
        return (2 * x + 1) * sw // (2 * mw), (2 * y + 1) * sh // (2 * mh)

    def to_model(self, x: int, y: int) -> tuple[int, int]:
        """The model pixel whose area holds the centre of screen pixel (x, y), clamped."""
        (sw, sh), (mw, mh) = self.screen, self.model
        mx = (2 * x + 1) * mw // (2 * sw)
        my = (2 * y + 1) * mh // (2 * sh)
        return min(max(mx, 0), mw - 1), min(max(my, 0), mh - 1)

    def length_to_screen(self, dx: int, dy: int) -> tuple[int, int]:
        """A distance in model pixels (a scroll) as screen pixels."""
        (sw, sh), (mw, mh) = self.screen, self.model
        return round(dx * sw / mw), round(dy * sh / mh)

    def region_to_screen(self, region: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """Model region [x0, y0, x1, y1] (edges; x1, y1 exclusive) as the screen box covering it."""
        x0, y0, x1, y1 = region
        mw, mh = self.model
        if not (0 <= x0 < x1 <= mw and 0 <= y0 < y1 <= mh):
            msg = (
                f"region {list(region)} is not inside the {mw}x{mh} screen with x0 < x1 and "
                f"y0 < y1; use [x0, y0, x1, y1] with 0 <= x0 < x1 <= {mw}, 0 <= y0 < y1 <= {mh}"
            )
            raise InputError(msg)
        sw, sh = self.screen
        return x0 * sw // mw, y0 * sh // mh, -(-x1 * sw // mw), -(-y1 * sh // mh)

    def image(self, frame: Image) -> Image:
        """``frame`` (a whole screen) at model size."""
        if self.identity:
            return frame
        return resize_to(frame, self.model)


def resize_to(frame: Image, size: tuple[int, int]) -> Image:
    """``frame`` resized to (width, height): area averaging keeps small text legible."""
    height, width = frame.shape[:2]
    if (width, height) == size:
        return frame
    interp = cv2.INTER_AREA if size[0] < width else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(frame, size, interpolation=interp), dtype=np.uint8)


def fit_within(frame: Image, limit: tuple[int, int]) -> Image:
    """``frame`` shrunk (aspect kept) to fit inside ``limit``; never enlarged."""
    height, width = frame.shape[:2]
    scale = ScreenScale.fit((width, height), limit)
    return resize_to(frame, scale.model)


@dataclass(frozen=True, slots=True)
class EncodedImage:
    """An encoded screenshot: bytes, MIME type and pixel size."""

    data: bytes
    mime: str
    width: int
    height: int

    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")


def _imencode(bgr: Image, fmt: str, quality: int) -> bytes:
    if fmt == "png":
        ok, buf = cv2.imencode(".png", bgr, PNG_PARAMS)
    elif fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    else:
        ok, buf = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, quality])
    if not ok:
        msg = f"could not encode a {bgr.shape[1]}x{bgr.shape[0]} screenshot as {fmt}"
        raise DisplayError(msg)
    return bytes(buf)


def _flat(frame: Image) -> float:
    """How much of the screen is flat colour (samples equal to the pixel to their left), on
    every 16th row: most of a UI screen, next to none of a photo or a video."""
    rows = frame[::16].reshape(-(-frame.shape[0] // 16), -1)
    return float((rows[:, 3:] == rows[:, :-3]).mean()) if rows.shape[1] > 3 else 1.0


def encode(frame: Image, fmt: ImageFormat = "auto", *, quality: int = JPEG_QUALITY) -> EncodedImage:
    """Encode an RGB frame. ``auto``: fast PNG for UI screens (exact pixels, small), JPEG
    for photo-like ones or when the PNG comes out large and JPEG is smaller."""
    bgr = np.asarray(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), dtype=np.uint8)
    height, width = frame.shape[:2]
    kind = fmt
    if fmt == "auto":
        kind = "png" if _flat(frame) >= AUTO_FLAT_MIN else "jpeg"
    data = _imencode(bgr, kind, quality)
    if fmt == "auto" and kind == "png" and len(data) > AUTO_PNG_LIMIT:
        jpeg = _imencode(bgr, "jpeg", quality)
        if len(jpeg) < len(data):
            kind, data = "jpeg", jpeg
    return EncodedImage(data, _MIME[kind], width, height)


def decode(data: bytes) -> Image:
    """Encoded image bytes -> RGB frame (for tests and tools)."""
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        msg = "not an image cv2 can decode"
        raise DisplayError(msg)
    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def mark_region(frame: Image, box: tuple[int, int, int, int]) -> Image:
    """A copy of ``frame`` with the screen box (x0, y0, x1, y1) outlined."""
    img = np.ascontiguousarray(frame).copy()
    x0, y0, x1, y1 = box
    cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 255), 5)
    cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), (230, 30, 50), 2)
    return img
