"""preview.gif: the run's step screenshots as a small animated GIF, for PR comments.

One frame per step (its marked screenshot), downscaled, with a caption band naming the
step. The file is guaranteed smaller than ``max_bytes``: when an attempt comes out too
big, the next one is narrower, has fewer colours, then fewer frames.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from verifier._types import Image as Frame
from verifier.evidence._manifest import Manifest, StepRecord
from verifier.evidence._verify import bundle_file
from verifier.evidence.text import one_line, step_number, write_file

__all__ = ("write_preview",)

log = logging.getLogger(__name__)

FRAME_MS = 900
LAST_FRAME_MS = 3_000
MAX_FRAMES = 60
_CAPTION_PX = 22
_CAPTION_BG = {"failed": (207, 34, 46), "error": (154, 52, 18)}


@dataclass(frozen=True, slots=True)
class _Attempt:
    width: int
    colors: int
    frames: int


# From the best look to the smallest file; the last rungs keep only a few frames.
_LADDER = (
    _Attempt(640, 256, MAX_FRAMES),
    _Attempt(640, 64, MAX_FRAMES),
    _Attempt(480, 64, MAX_FRAMES),
    _Attempt(400, 32, 30),
    _Attempt(320, 16, 15),
    _Attempt(240, 16, 6),
    _Attempt(160, 8, 2),
)


def _pick(frames: Sequence[tuple[StepRecord, Path]], n: int) -> list[tuple[StepRecord, Path]]:
    """At most ``n`` frames, evenly spread, always keeping the last and the failing one."""
    if len(frames) <= n:
        return list(frames)
    last = len(frames) - 1
    if n < 2:
        return [frames[last]]
    keep = sorted({round(i * last / (n - 1)) for i in range(n)})
    bad = next((i for i, (s, _) in enumerate(frames) if s.get("status") in _CAPTION_BG), None)
    if bad is not None and bad not in keep:
        nearest = min(range(len(keep) - 1), key=lambda k: abs(keep[k] - bad))  # never the last
        keep[nearest] = bad
    return [frames[i] for i in sorted(keep)]


def _caption(step: StepRecord) -> str:
    target = one_line(str(step.get("target", "")))
    text = f"{step_number(step)}. {step.get('action')} {target}"
    return (text if len(text) <= 80 else text[:79] + "…") + f"  [{step.get('status')}]"


@functools.cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=13)


def _load(path: Path) -> Image.Image | None:
    """The screenshot as RGB, at most the widest width the ladder asks for."""
    try:
        with Image.open(path) as src:
            shot = src.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        log.warning("preview: leaving out %s, which cannot be read: %s", path.name, exc)
        return None
    return _scaled(shot, _LADDER[0].width)


def _scaled(image: Image.Image, width: int) -> Image.Image:
    if image.width <= width:
        return image
    height = max(1, round(image.height * width / image.width))
    # Box (area) averaging: as legible as Lanczos at these sizes, and about 2.5x faster.
    return image.resize((width, height), Image.Resampling.BOX)


def _frame(step: StepRecord, shot: Image.Image, width: int, colors: int) -> Image.Image:
    shot = _scaled(shot, width)
    canvas = Image.new("RGB", (shot.width, shot.height + _CAPTION_PX), (36, 41, 47))
    canvas.paste(shot, (0, _CAPTION_PX))
    draw = ImageDraw.Draw(canvas)
    background = _CAPTION_BG.get(str(step.get("status")))
    if background:
        draw.rectangle((0, 0, shot.width, _CAPTION_PX - 1), fill=background)
    draw.text((6, 4), _caption(step), fill=(255, 255, 255), font=_font())
    # Fast octree: as good as median cut on UI screenshots, and some 50 times faster.
    return canvas.quantize(colors, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)


class _Encoder:
    """Encodes attempts from the same frames, decoding each screenshot only once."""

    def __init__(
        self,
        frames: Sequence[tuple[StepRecord, Path]],
        decoded: Mapping[Path, Frame] | None = None,
    ) -> None:
        self.frames = frames
        self.cache: dict[Path, Image.Image | None] = {}
        for _, path in frames:
            if decoded is not None and path in decoded:
                self.cache[path] = _scaled(Image.fromarray(decoded[path]), _LADDER[0].width)

    def encode(self, attempt: _Attempt) -> bytes:
        chosen = _pick(self.frames, attempt.frames)
        # Keep only what this attempt uses: later attempts want fewer frames, not others.
        self.cache = {path: self.cache[path] for _, path in chosen if path in self.cache}
        images = []
        for step, path in chosen:
            if path not in self.cache:
                self.cache[path] = _load(path)
            shot = self.cache[path]
            if shot is not None:
                images.append(_frame(step, shot, attempt.width, attempt.colors))
        if not images:
            return b""
        durations = [FRAME_MS] * (len(images) - 1) + [LAST_FRAME_MS]
        out = io.BytesIO()
        images[0].save(
            out,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=durations,
            loop=0,
            optimize=True,
            disposal=1,
        )
        return out.getvalue()


def write_preview(
    root: Path,
    manifest: Manifest,
    *,
    max_bytes: int = 2_000_000,
    decoded: Mapping[Path, Frame] | None = None,
) -> Path | None:
    """Write ``root/preview.gif`` from the steps' screenshots, in step order.

    :param max_bytes: the file is always smaller than this; narrower, fewer colours and
        fewer frames are tried in turn until it fits.
    :param decoded: screenshots already in memory (RGB, any width), by resolved path:
        those are not read back from their PNG files.
    :returns: the path, or None when no step has a readable screenshot (or nothing fits).
    :raises BundleError: when the file cannot be written.
    """
    frames: list[tuple[StepRecord, Path]] = []
    for step in manifest.get("steps") or []:
        full = bundle_file(root, step.get("screenshot"))
        if full is not None:
            frames.append((step, full))
    if not frames:
        return None
    target = root / "preview.gif"
    encoder = _Encoder(frames, decoded)
    for attempt in _LADDER:
        data = encoder.encode(attempt)
        if not data:
            return None
        if len(data) < max_bytes:
            return write_file(target, data)
        log.debug("preview %s: %d bytes, over %d; trying smaller", attempt, len(data), max_bytes)
    log.warning("no preview: even the smallest GIF is over %d bytes", max_bytes)
    return None
