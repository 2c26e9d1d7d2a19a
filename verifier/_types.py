"""The types every layer shares, and the one grammar of a size (``WIDTHxHEIGHT``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal, TypeAlias

__all__ = (
    "IMAGE_FORMATS",
    "SCREEN_PATTERN",
    "Box",
    "Button",
    "Image",
    "ImageFormat",
    "parse_screen",
    "parse_size",
)

# A picture in memory: HxWx3 RGB (a screenshot, a template), or HxW grey. (NumPy is
# imported where pictures are made, not by everything that names their type: the CLI
# starts faster.)
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

Image: TypeAlias = "npt.NDArray[np.uint8]"
# A rectangle in pixels: x, y, width, height.
Box = tuple[int, int, int, int]
Button = Literal["left", "middle", "right"]
# How a screenshot is encoded for a model ("auto": PNG, or JPEG when PNG is large).
ImageFormat = Literal["auto", "png", "jpeg", "webp"]
IMAGE_FORMATS: tuple[ImageFormat, ...] = ("auto", "png", "jpeg", "webp")

# WIDTHxHEIGHT[x24]; also the recipe schema's pattern (an ECMAScript regex too).
SCREEN_PATTERN = r"\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*(?:[xX]\s*(\d{1,2})\s*)?"
_SIZE = re.compile(SCREEN_PATTERN)
SCREEN_WIDTHS = (320, 7680)
SCREEN_HEIGHTS = (240, 4320)


def parse_size(text: str, *, what: str = "size", minimum: int = 16) -> tuple[int, int]:
    """``"1280x800"`` -> (1280, 800).

    :raises ValueError: naming ``what`` and the text, when it is not ``WIDTHxHEIGHT`` or
        a side is under ``minimum``.
    """
    width, height, depth = _parse(text, what)
    if depth is not None:
        msg = f"{_name(what, text)} is WIDTHxHEIGHT, without a depth (like 1280x800)"
        raise ValueError(msg)
    if width < minimum or height < minimum:
        msg = f"{_name(what, text)} is too small ({minimum}x{minimum} at least)"
        raise ValueError(msg)
    return width, height


def parse_screen(text: str, *, what: str = "screen") -> tuple[int, int, int]:
    """``"1280x800"`` or ``"1280x800x24"`` -> (width, height, depth) of an X screen.

    :raises ValueError: when it is not ``WIDTHxHEIGHT[x24]`` or out of Xvfb's range.
    """
    width, height, depth = _parse(text, what)
    if not (
        SCREEN_WIDTHS[0] <= width <= SCREEN_WIDTHS[1]
        and SCREEN_HEIGHTS[0] <= height <= SCREEN_HEIGHTS[1]
    ):
        msg = (
            f"{_name(what, text)} is out of range: width {SCREEN_WIDTHS[0]}-{SCREEN_WIDTHS[1]}, "
            f"height {SCREEN_HEIGHTS[0]}-{SCREEN_HEIGHTS[1]}"
        )
        raise ValueError(msg)
    if depth not in (None, 24):
        # mss and our PNG path read 32-bit pixels; other depths would silently mis-capture.
        msg = f"{_name(what, text)}: only depth 24 is supported"
        raise ValueError(msg)
    return width, height, 24


def _parse(text: str, what: str) -> tuple[int, int, int | None]:
    match = _SIZE.fullmatch(text)
    if match is None:
        msg = f"{_name(what, text)} is not WIDTHxHEIGHT, like 1280x800"
        raise ValueError(msg)
    return int(match[1]), int(match[2]), int(match[3]) if match[3] else None


def _name(what: str, text: str) -> str:
    return f"{what} {text!r}" if what else repr(text)
