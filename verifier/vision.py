"""Pictures: compare a screen with a baseline, and find a picture on the screen.

Pure OpenCV + NumPy on RGB ``uint8`` arrays (``HxWx3``); nothing here knows about X, the
browser or recipes.

:func:`compare` counts the pixels whose perceptual colour distance (YIQ, as in Kotsarenko
and Ramos, "Measuring perceived color difference using YIQ NTSC transmission color space
in mobile applications", 2010) exceeds ``threshold``, and by default forgives pixels that
look like anti-aliasing in either image: an edge pixel between a darker and a brighter
neighbour, one of which lies in a flat area of both images. A line one pixel wide on a
flat background that appears, disappears, moves or changes colour is not anti-aliasing:
it has no neighbour both darker and brighter than itself, so it always counts.

:func:`find` matches a template in grey on an image pyramid first (cheap), refines the
best candidates at full size in a small window and scores them in colour (so a red and a
green button of the same shape are told apart), and when the plain match is weak tries
scales around 1.0.
A score is OpenCV's normalized correlation coefficient (``TM_CCOEFF_NORMED``) times one
minus the mean colour difference: the coefficient alone ignores brightness and contrast,
so a greyed-out copy of a button would score almost as well as the button. 1.0 is a
perfect match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from verifier._files import write_beneath
from verifier._types import Box, Image

__all__ = (
    "DEFAULT_CONFIDENCE",
    "DEFAULT_THRESHOLD",
    "Box",
    "Comparison",
    "Image",
    "Match",
    "compare",
    "find",
    "mark_match",
    "read_image",
    "write_image",
)

_T = TypeVar("_T", bound=np.generic)

DEFAULT_THRESHOLD = 0.1
DEFAULT_CONFIDENCE = 0.9
# Tried, nearest first, when the plain match is weaker than the confidence asked for.
SCALES = (0.95, 1.05, 0.9, 1.1, 0.85, 1.17, 0.8, 1.25)

# The largest YIQ distance two RGB colours can have (black against white: 32,857).
_MAX_YIQ = 35215.0
_Y = np.array([0.29889531, 0.58662247, 0.11448223], np.float32)
_I = np.array([0.59597799, -0.27417610, -0.32180189], np.float32)
_Q = np.array([0.21147017, -0.52261711, 0.31114694], np.float32)
_AROUND = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)], np.intp)
_RED = (230, 20, 40)
_YELLOW = (245, 190, 30)
_BLUE = (70, 120, 230)
_GREEN = (20, 170, 60)


def _size(image: Image) -> str:
    return f"{image.shape[1]}x{image.shape[0]}"


def _check(image: Image, what: str) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        msg = f"{what}: expected an HxWx3 uint8 RGB image, got {image.dtype} {image.shape}"
        raise ValueError(msg)


def _clip(box: Box, width: int, height: int) -> Box | None:
    """``box`` cut to the image; None when nothing of it is inside."""
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + w), min(height, y + h)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


# -- comparing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    """How an actual image differs from the expected one (see :func:`compare`)."""

    diff_pixels: int  # pixels that differ beyond the threshold (not anti-aliasing)
    compared_pixels: int  # pixels outside the masks
    threshold: float
    allowed_pixels: int
    masks: tuple[Box, ...]
    actual: Image = field(repr=False)
    expected: Image = field(repr=False)
    changed: npt.NDArray[np.intp] = field(repr=False)  # flat indices of the differing pixels

    @property
    def diff_ratio(self) -> float:
        return self.diff_pixels / self.compared_pixels if self.compared_pixels else 0.0

    @property
    def passed(self) -> bool:
        return self.diff_pixels <= self.allowed_pixels

    @property
    def message(self) -> str:
        if self.diff_pixels == 0:
            return f"no pixel differs beyond threshold {self.threshold:g}"
        verdict = "within" if self.passed else "more than"
        return (
            f"{self.diff_pixels:,} pixels differ ({self.diff_ratio:.3%} of "
            f"{self.compared_pixels:,}) beyond threshold {self.threshold:g}, {verdict} the "
            f"{self.allowed_pixels:,} allowed"
        )

    def diff_image(self) -> Image:
        """The actual image faded to grey, differing pixels red and boxed, tolerated ones
        (under the threshold, or anti-aliasing) yellow, masked areas blue."""
        height, width = self.actual.shape[:2]
        grey = cv2.cvtColor(self.actual, cv2.COLOR_RGB2GRAY)
        faded = cv2.convertScaleAbs(grey, alpha=0.3, beta=178)
        out: Image = np.ascontiguousarray(cv2.cvtColor(faded, cv2.COLOR_GRAY2RGB))
        # Any channel that differs at all leaves the grey of the thresholded difference > 0.
        any_diff = cv2.threshold(cv2.absdiff(self.actual, self.expected), 0, 255, cv2.THRESH_BINARY)
        touched = cv2.cvtColor(any_diff[1], cv2.COLOR_RGB2GRAY)
        for x, y, w, h in self.masks:
            touched[y : y + h, x : x + w] = 0
        out[touched > 0] = _YELLOW
        for x, y, w, h in self.masks:
            patch = out[y : y + h, x : x + w]
            tint = np.empty_like(patch)
            tint[:] = _BLUE
            out[y : y + h, x : x + w] = cv2.addWeighted(patch, 0.5, tint, 0.5, 0)
        if self.changed.size:
            flat = out.reshape(-1, 3)
            flat[self.changed] = _RED
            hit = np.zeros(height * width, np.uint8)
            hit[self.changed] = 255
            grown = cv2.dilate(hit.reshape(height, width), np.ones((15, 15), np.uint8))
            count, _, stats, _ = cv2.connectedComponentsWithStats(grown)
            # Box each cluster so a single changed pixel is visible at thumbnail size.
            for x, y, w, h, _area in stats[1 : min(count, 101)]:
                cv2.rectangle(out, (int(x), int(y)), (int(x + w - 1), int(y + h - 1)), _RED, 1)
        return out


Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float32]

# The 3x3 neighbourhood without its centre: erode/dilate with it give the darkest and
# brightest neighbour.
_RING = np.ones((3, 3), np.uint8)
_RING[1, 1] = 0
_YIQ = np.stack([_Y, _I, _Q])
_YIQ_WEIGHTS = np.array([[0.5053, 0.299, 0.1957]], np.float32)


def _brightness(image: Image) -> Floats:
    return np.asarray(cv2.transform(image.astype(np.float32), _Y[None, :]), np.float32)


def _shifted(padded: npt.NDArray[_T], height: int, width: int) -> list[npt.NDArray[_T]]:
    """The 8 neighbours of every pixel of a 1-pixel padded array, as views."""
    return [padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in _AROUND]


def _alike(values: npt.NDArray[_T], sentinel: float) -> Image:
    """How many of its 8 neighbours equal each value (outside the array counts as none)."""
    height, width = values.shape
    padded = np.pad(values, 1, constant_values=sentinel)
    count = np.zeros((height, width), np.uint8)
    for near in _shifted(padded, height, width):
        count += near == values
    return count


def _packed(image: Image) -> npt.NDArray[np.int32]:
    wide = image.astype(np.int32)
    out: npt.NDArray[np.int32] = (wide[..., 0] << 16) | (wide[..., 1] << 8) | wide[..., 2]
    return out


def _antialiased(image: Image, flat_both: Bools) -> Bools:
    """Where ``image`` looks anti-aliased: a pixel between a darker and a brighter
    neighbour, with at most two neighbours of its own brightness, one of its darkest or
    brightest neighbours lying in a flat area of both images (``flat_both``)."""
    height, width = image.shape[:2]
    bright = _brightness(image)
    darkest = np.asarray(cv2.erode(bright, _RING, borderType=cv2.BORDER_REPLICATE), np.float32)
    brightest = np.asarray(cv2.dilate(bright, _RING, borderType=cv2.BORDER_REPLICATE), np.float32)
    # A replicated border repeats values already in the neighbourhood: it cannot create a
    # darker or a brighter neighbour.
    between = (darkest < bright) & (brightest > bright) & (_alike(bright, np.nan) <= 2)
    anchored = np.zeros((height, width), np.bool_)
    near_b = _shifted(np.pad(bright, 1, constant_values=np.nan), height, width)
    near_f = _shifted(np.pad(flat_both, 1, constant_values=False), height, width)
    for value, flat in zip(near_b, near_f, strict=True):
        anchored |= flat & ((value == darkest) | (value == brightest))
    out: Bools = between & anchored
    return out


def _differing(
    actual: Image, expected: Image, candidates: Image, limit: float, ignore_antialiasing: bool
) -> npt.NDArray[np.intp]:
    """Flat indices of the candidate pixels whose YIQ distance exceeds ``limit`` and that
    are not anti-aliasing. Works on the candidates' bounding box (plus the two pixels the
    neighbourhood tests look at), so a small change costs little."""
    height, width = candidates.shape
    bx, by, bw, bh = cv2.boundingRect(candidates)
    x0, y0 = max(0, bx - 2), max(0, by - 2)
    x1, y1 = min(width, bx + bw + 2), min(height, by + bh + 2)
    a, e = actual[y0:y1, x0:x1], expected[y0:y1, x0:x1]
    yiq = cv2.transform(a.astype(np.float32) - e.astype(np.float32), _YIQ)
    delta = cv2.transform(np.square(yiq), _YIQ_WEIGHTS)
    over: Bools = (np.asarray(delta) > limit) & (candidates[y0:y1, x0:x1] > 0)
    if ignore_antialiasing and over.any():
        flat_both = (_alike(_packed(a), -1) > 2) & (_alike(_packed(e), -1) > 2)
        over &= ~(_antialiased(a, flat_both) | _antialiased(e, flat_both))
    ys, xs = np.nonzero(over)
    flat: npt.NDArray[np.intp] = ((ys + y0) * width + (xs + x0)).astype(np.intp)
    return flat


def _mask_image(masks: Sequence[Box], height: int, width: int) -> tuple[Image, tuple[Box, ...]]:
    image = np.zeros((height, width), np.uint8)
    kept = []
    for box in masks:
        cut = _clip(box, width, height)
        if cut is not None:
            x, y, w, h = cut
            image[y : y + h, x : x + w] = 255
            kept.append(cut)
    return image, tuple(kept)


def compare(
    actual: Image,
    expected: Image,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    max_diff_pixels: int | None = None,
    max_diff_ratio: float | None = None,
    masks: Sequence[Box] = (),
    ignore_antialiasing: bool = True,
) -> Comparison:
    """Compare two RGB images of the same size, pixel by pixel.

    :param threshold: 0 to 1, the perceptual (YIQ) colour distance up to which two pixels
        count as equal; the default 0.1 lets about 26 grey levels pass (rendering noise),
        not a visible change.
    :param max_diff_pixels: how many pixels may differ; with ``max_diff_ratio`` too the
        stricter bound wins; with neither, none may.
    :param max_diff_ratio: the share (0 to 1) of the compared pixels that may differ.
    :param masks: ``(x, y, width, height)`` areas left out of the comparison.
    :param ignore_antialiasing: forgive pixels that look like anti-aliasing in either image.
    :raises ValueError: when the images are not RGB or their sizes differ.
    """
    _check(actual, "actual")
    _check(expected, "expected")
    if actual.shape != expected.shape:
        msg = f"sizes differ: actual {_size(actual)}, expected {_size(expected)}"
        raise ValueError(msg)
    if not 0 <= threshold <= 1:
        msg = f"threshold must be between 0 and 1, got {threshold!r}"
        raise ValueError(msg)
    height, width = actual.shape[:2]
    mask, kept = _mask_image(masks, height, width) if masks else (None, ())
    compared = height * width - (cv2.countNonZero(mask) if mask is not None else 0)
    bounds = [b for b in (max_diff_pixels,) if b is not None]
    if max_diff_ratio is not None:
        bounds.append(int(max_diff_ratio * compared))
    allowed = min(bounds) if bounds else 0
    changed = np.empty(0, np.intp)
    if not np.array_equal(actual, expected):
        # A pixel can exceed the YIQ limit only if some channel differs by more than
        # 255 * threshold: that cheap test on the whole image leaves few candidates.
        limit = _MAX_YIQ * threshold * threshold
        level = float(np.floor(255 * threshold))
        over = cv2.threshold(cv2.absdiff(actual, expected), level, 255, cv2.THRESH_BINARY)[1]
        candidates = np.asarray(cv2.cvtColor(over, cv2.COLOR_RGB2GRAY), np.uint8)
        if mask is not None:
            candidates[mask > 0] = 0
        if cv2.countNonZero(candidates):
            changed = _differing(actual, expected, candidates, limit, ignore_antialiasing)
    return Comparison(
        diff_pixels=int(changed.size),
        compared_pixels=compared,
        threshold=threshold,
        allowed_pixels=allowed,
        masks=kept,
        actual=actual,
        expected=expected,
        changed=changed,
    )


# -- finding ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    """The best place a template matched: its score (1.0 is perfect) and box on the image."""

    score: float
    box: Box
    scale: float = 1.0
    confidence: float = DEFAULT_CONFIDENCE

    @property
    def found(self) -> bool:
        return self.score >= self.confidence

    @property
    def centre(self) -> tuple[int, int]:
        x, y, w, h = self.box
        return x + w // 2, y + h // 2

    def to_json(self) -> dict[str, object]:
        return {
            "score": round(self.score, 4),
            "box": list(self.box),
            "scale": round(self.scale, 3),
            "confidence": self.confidence,
        }


def _scores(image: Image, template: Image) -> npt.NDArray[np.float32]:
    result = cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED)
    # A flat window makes the coefficient 0/0; OpenCV may then answer NaN or +-inf.
    out: npt.NDArray[np.float32] = np.clip(np.nan_to_num(result, nan=-1.0), -1.0, 1.0)
    return out


def _grey(image: Image) -> Image:
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), np.uint8)


def _down(image: Image) -> Image:
    return np.asarray(cv2.pyrDown(image), np.uint8)


class _Template:
    """One size of the template: colour, grey, and grey halved ``level`` times (so that
    its short side keeps at least 8 pixels, at most 3 times)."""

    def __init__(self, colour: Image, scale: float) -> None:
        self.colour = colour
        self.scale = scale
        self.height, self.width = colour.shape[:2]
        self.grey = _grey(colour)
        self.level = 0
        while self.level < 3 and min(self.width, self.height) >> (self.level + 1) >= 8:
            self.level += 1
        self._small: Image | None = None

    @property
    def small(self) -> Image:
        """The grey template at its pyramid level (made when a coarse search needs it)."""
        if self._small is None:
            small = self.grey
            for _ in range(self.level):
                small = _down(small)
            self._small = small
        return self._small

    @classmethod
    def resized(cls, template: Image, scale: float) -> _Template | None:
        th, tw = template.shape[:2]
        w, h = round(tw * scale), round(th * scale)
        if w < 4 or h < 4:
            return None
        method = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        return cls(np.asarray(cv2.resize(template, (w, h), interpolation=method), np.uint8), scale)


def _colour_score(window: Image, template: Image) -> float:
    """TM_CCOEFF_NORMED of two same-size colour images (each channel centred on its own
    mean), times one minus their mean absolute colour difference."""
    a = window.reshape(-1, 3).astype(np.float32)
    b = template.reshape(-1, 3).astype(np.float32)
    apart = float(np.abs(a - b).mean()) / 255
    a -= a.mean(axis=0)
    b -= b.mean(axis=0)
    norm = float(np.sqrt(np.square(a).sum() * np.square(b).sum()))
    correlation = float((a * b).sum()) / norm if norm > 1e-6 else 0.0
    return max(-1.0, min(1.0, correlation)) * (1.0 - apart)


# (score, x, y, size): where a size of the template matched, and how well.
_Candidate = tuple[float, int, int, _Template]


class _Search:
    """One screen (or region of it), its grey pyramid built once, searched for templates."""

    def __init__(self, screen: Image) -> None:
        self.colour = screen
        self.height, self.width = screen.shape[:2]
        self.pyramid = [_grey(screen)]
        for _ in range(3):
            self.pyramid.append(_down(self.pyramid[-1]))

    def fits(self, t: _Template) -> bool:
        return bool(t.width <= self.width and t.height <= self.height)

    def coarse(self, t: _Template, keep: int) -> list[tuple[float, int, int]]:
        """Up to ``keep`` separate peaks (score, x, y) of the grey match at the template's
        pyramid level, in full-size coordinates."""
        image = self.pyramid[t.level]
        sh, sw = t.small.shape[:2]
        if sh > image.shape[0] or sw > image.shape[1]:
            return []
        result = _scores(image, t.small)
        peaks = []
        for _ in range(keep):
            _, best, _, (x, y) = cv2.minMaxLoc(result)
            if best <= -1.0:
                break
            peaks.append((float(best), x << t.level, y << t.level))
            result[
                max(0, y - sh // 2) : y + sh // 2 + 1, max(0, x - sw // 2) : x + sw // 2 + 1
            ] = -1
        return peaks

    def refine(self, t: _Template, x: int, y: int, radius: int) -> _Candidate:
        """The best grey position at full size within ``radius`` pixels of (x, y), scored
        there in colour (see :func:`find`)."""
        x0 = min(max(0, x - radius), self.width - t.width)
        y0 = min(max(0, y - radius), self.height - t.height)
        x1 = min(self.width, x + radius + t.width)
        y1 = min(self.height, y + radius + t.height)
        if x0 < 0 or y0 < 0 or x1 - x0 < t.width or y1 - y0 < t.height:
            return -1.0, x, y, t
        _, _, _, (bx, by) = cv2.minMaxLoc(_scores(self.pyramid[0][y0:y1, x0:x1], t.grey))
        x, y = x0 + bx, y0 + by
        return _colour_score(self.colour[y : y + t.height, x : x + t.width], t.colour), x, y, t

    def best(self, t: _Template, keep: int) -> list[_Candidate]:
        """The coarse peaks of one template size, each refined at full size."""
        radius = (1 << t.level) + 1
        return [self.refine(t, x, y, radius) for _, x, y in self.coarse(t, keep)]


def _climb(search: _Search, template: Image, start: _Candidate) -> _Candidate:
    """From a match at one scale, try nearby scales (2 %, then 1 %, then 0.5 % apart)
    while the score improves."""
    best = start
    for step in (1.02, 1.01, 1.005):
        for _ in range(4):
            _, x, y, t = best
            cx, cy = x + t.width // 2, y + t.height // 2
            tries = [best]
            for scale in (t.scale * step, t.scale / step):
                near = _Template.resized(template, scale)
                if near is not None and search.fits(near):
                    radius = 3 + round(max(near.width, near.height) * 0.01)
                    at = (cx - near.width // 2, cy - near.height // 2)
                    tries.append(search.refine(near, *at, radius))
            better = max(tries, key=lambda c: c[0])
            if better is best:
                break
            best = better
    return best


def _across_scales(
    search: _Search, template: Image, best: _Candidate, scales: Sequence[float]
) -> _Candidate:
    """The best match over ``scales``: sizes ranked by their coarse score (which forgives
    a few percent of scale), the top three refined at full size, the best one climbed."""
    ranked: list[tuple[float, int, int, _Template]] = []
    for scale in scales:
        t = _Template.resized(template, scale)
        if t is not None and search.fits(t):
            ranked.extend((score, x, y, t) for score, x, y in search.coarse(t, keep=2))
    ranked.sort(key=lambda c: c[0], reverse=True)
    refined = [search.refine(t, x, y, (1 << t.level) + 1) for _, x, y, t in ranked[:3]]
    if refined:
        top = max(refined, key=lambda c: c[0])
        best = max(best, _climb(search, template, top), key=lambda c: c[0])
    return best


def find(
    screen: Image,
    template: Image,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    region: Box | None = None,
    scales: Sequence[float] = SCALES,
) -> Match:
    """The best match of ``template`` in ``screen`` (both RGB), found or not.

    :param confidence: the score (0 to 1) a match needs to count as found; below it the
        scales in ``scales`` are tried too.
    :param region: ``(x, y, width, height)`` of ``screen`` to search; the box is still in
        ``screen``'s coordinates.
    :returns: the best :class:`Match`; ``match.found`` tells whether it reached
        ``confidence``.
    :raises ValueError: the template is flat (nothing to match) or larger than the area.
    """
    _check(screen, "screen")
    _check(template, "template")
    ox, oy = 0, 0
    if region is not None:
        cut = _clip(region, screen.shape[1], screen.shape[0])
        if cut is None:
            msg = f"region {region} is outside the {_size(screen)} screen"
            raise ValueError(msg)
        ox, oy, w, h = cut
        screen = screen[oy : oy + h, ox : ox + w]
    th, tw = template.shape[:2]
    if th > screen.shape[0] or tw > screen.shape[1]:
        where = "region" if region is not None else "screen"
        msg = f"the {tw}x{th} image is larger than the {_size(screen)} {where} to search"
        raise ValueError(msg)
    if float(cv2.meanStdDev(_grey(template))[1][0, 0]) < 1.0:
        msg = "the image is a single flat colour; there is nothing to match"
        raise ValueError(msg)
    search = _Search(np.ascontiguousarray(screen))
    plain = _Template(np.ascontiguousarray(template), 1.0)
    best = max(search.best(plain, keep=5), default=(-1.0, 0, 0, plain), key=lambda c: c[0])
    if best[0] < confidence and scales:
        best = _across_scales(search, template, best, scales)
    score, x, y, t = best
    return Match(
        score=max(-1.0, min(1.0, score)),
        box=(ox + x, oy + y, t.width, t.height),
        scale=t.scale,
        confidence=confidence,
    )


def mark_match(image: Image, match: Match) -> Image:
    """A copy of ``image`` with the match's box drawn and its score written beside it
    (green when found, red when not)."""
    out: Image = np.ascontiguousarray(image).copy()
    colour = _GREEN if match.found else _RED
    x, y, w, h = match.box
    for thick, col in ((4, (255, 255, 255)), (2, colour)):
        cv2.rectangle(out, (x - 3, y - 3), (x + w + 2, y + h + 2), col, thick, cv2.LINE_AA)
    label = f"{match.score:.3f}" + (f" @{match.scale:.2f}x" if match.scale != 1.0 else "")
    ty = y - 10 if y >= 24 else y + h + 20
    for thick, col in ((4, (255, 255, 255)), (1, colour)):
        cv2.putText(out, label, (x, ty), cv2.FONT_HERSHEY_SIMPLEX, 0.55, col, thick, cv2.LINE_AA)
    return out


# -- files ------------------------------------------------------------------------------------


def read_image(path: Path) -> Image:
    """A PNG (or JPEG...) file as RGB; alpha is dropped.

    :raises ValueError: when the file cannot be read as an image.
    """
    data = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if data is None:
        msg = f"{str(path)!r} is not a readable image"
        raise ValueError(msg)
    rgb: Image = np.ascontiguousarray(cv2.cvtColor(data, cv2.COLOR_BGR2RGB))
    return rgb


def write_image(base: Path, name: str, image: Image) -> Path:
    """Write an RGB image as PNG to ``name`` below the folder ``base``, atomically and
    following no symbolic link on the way (the app under test may write below ``base``).

    :raises OSError: when it cannot be written (``ELOOP``: a folder on the way is a link).
    """
    ok, data = cv2.imencode(
        ".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 6]
    )
    if not ok:
        msg = f"could not encode {name!r} as PNG"
        raise OSError(msg)
    return write_beneath(base, name, data.tobytes())
