"""The page's structure for an agent: Playwright's aria snapshot, a ref per element, and
each element's box on the screenshot a ``computer`` call returns.

Playwright's AI snapshot (``page.aria_snapshot(mode="ai", boxes=True)``) gives refs and
boxes in the viewport's CSS pixels; an iframe's elements are relative to the iframe's own
viewport, which starts inside its border and padding. One CSS pixel is one screen pixel
(the browser runs at device scale factor 1), so a box moves to the screen by the
viewport's origin (and the content boxes of the iframes around it), is clipped to what is
on screen, and maps to the screenshot's pixels through the same
:class:`~verifier.computer.ScreenScale` the ``computer`` tool uses. The box holds exactly
the screenshot pixels that land inside the element: clicking its centre hits it (unless
something covers it, as for a person).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from playwright.sync_api import Error as PlaywrightError

from verifier.browser import FRAME_INSET_JS
from verifier.errors import BrowserError, InputError

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from verifier.browser import Browser
    from verifier.computer import ScreenScale

__all__ = ("MAX_CHARS", "Element", "Snapshot", "model_span", "take_snapshot")

Box = tuple[int, int, int, int]  # x, y, width, height
Box4 = tuple[float, float, float, float]

_BOX = re.compile(r" \[box=(-?[\d.]+),(-?[\d.]+),(-?[\d.]+),(-?[\d.]+)\]")
# A line of the snapshot: YAML quotes it whole ('...') when its name holds ": ".
_LINE = re.compile(
    r"^(?P<indent> *)- (?P<quoted>')?(?P<role>[\w-]+)(?: (?P<name>\"(?:[^\"\\]|\\.)*\"))?"
)
_REF = re.compile(r" \[ref=([\w-]+)\]")
# The attributes after a role and name (" [ref=e5] [cursor=pointer] [box=...]"), before
# the element's text: the page's words come after them, and are never taken for them.
_ATTRS = re.compile(r"(?: \[[\w-]+(?:=[^\]\n]*)?\])*")
_TIMEOUT_MS = 10_000
MAX_CHARS = 20_000  # the most of a snapshot's text an answer carries
_FRAME_MS = 2_000
# On an iframe: its content box (where its document is drawn) within its border box.
_CONTENT_JS = f"(e) => {{ {FRAME_INSET_JS} return frameInset(e); }}"


@dataclass(frozen=True, slots=True)
class Element:
    """One element of the snapshot that has a ref."""

    ref: str
    role: str
    name: str
    box: Box | None  # in screenshot pixels; None when none of it is on the screen

    @property
    def center(self) -> tuple[int, int] | None:
        if self.box is None:
            return None
        x, y, w, h = self.box
        return x + (w - 1) // 2, y + (h - 1) // 2

    def to_json(self) -> dict[str, Any]:
        box = self.box
        return {
            "ref": self.ref,
            "role": self.role,
            "name": self.name,
            "box": dict(zip(("x", "y", "width", "height"), box, strict=True)) if box else None,
            "center": list(self.center) if self.center else None,
        }


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The active page's aria snapshot, boxes in screenshot pixels."""

    url: str
    title: str
    size: tuple[int, int]  # the screenshot's (width, height)
    text: str
    elements: tuple[Element, ...]

    def render(self) -> str:
        width, height = self.size
        return (
            f"page: {self.url}\ntitle: {self.title}\n"
            f"(pass a ref to computer, or click a [box=x,y,width,height]'s centre: "
            f"{width}x{height} screenshot pixels; [offscreen]: a ref scrolls to it)\n" + self.text
        )

    def to_json(self) -> dict[str, Any]:
        """The facts beside the text (which the answer carries once): refs and boxes."""
        return {
            "url": self.url,
            "title": self.title,
            "screenshot_size": list(self.size),
            "elements": [e.to_json() for e in self.elements],
        }

    def trimmed(self, *, viewport_only: bool = False, limit: int = MAX_CHARS) -> Snapshot:
        """Without what is off screen (``viewport_only``: offscreen elements and what
        they hold), and cut at ``limit`` characters with a line saying how to scope."""
        lines = self.text.splitlines()
        if viewport_only:
            kept, skip = [], None
            for line in lines:
                indent = len(line) - len(line.lstrip(" "))
                if skip is not None and indent > skip:
                    continue
                skip = indent if " [offscreen]" in line else None
                if skip is None:
                    kept.append(line)
            lines = kept
        out, size = [], 0
        for n, line in enumerate(lines):
            if size + len(line) + 1 > limit:
                out.append(
                    f"[cut at {limit:,} characters: {len(lines) - n} more lines; scope the "
                    "snapshot with ref or selector (one element), depth, or viewport_only]"
                )
                break
            out.append(line)
            size += len(line) + 1
        text = "\n".join(out)
        refs = set(_REF.findall(text))
        kept_elements = tuple(e for e in self.elements if e.ref in refs)
        return replace(self, text=text, elements=kept_elements)


def model_span(lo: int, hi: int, screen: int, model: int) -> tuple[int, int] | None:
    """The model pixels ``k`` whose screen pixel (``ScreenScale.to_screen``: ``(2k + 1) *
    screen // (2 * model)``) lies in ``lo..hi`` (inclusive), as (first, last); None if
    there are none."""
    first = max(0, -((screen - 2 * model * lo) // (2 * screen)))
    last = min(model - 1, -((screen - 2 * model * (hi + 1)) // (2 * screen)) - 1)
    return (first, last) if first <= last else None


def _pixels(start: float, end: float, lo: int, hi: int) -> tuple[int, int] | None:
    """Screen pixels whose centres lie in [start, end), clipped to ``lo..hi``."""
    first = max(lo, math.ceil(start - 0.5))
    last = min(hi, math.ceil(end - 0.5) - 1)
    return (first, last) if first <= last else None


def take_snapshot(
    browser: Browser,
    scale: ScreenScale,
    *,
    redact: Callable[[str], str] | None = None,
    scope: str | None = None,
    depth: int | None = None,
) -> Snapshot:
    """The active page's aria snapshot with refs and screen boxes: of the element the
    selector ``scope`` matches (one), and ``depth`` levels deep, when given.

    :raises BrowserError: the page is gone or did not answer.
    :raises InputError: ``scope`` matches no element, or several.
    """
    page = browser.page
    try:
        if scope is None:
            raw = page.aria_snapshot(mode="ai", boxes=True, depth=depth, timeout=_TIMEOUT_MS)
        else:
            target = page.locator(scope)
            count = target.count()
            if count != 1:
                msg = f"snapshot: {scope!r} matches {count} elements; scope it to one"
                raise InputError(msg)
            raw = target.aria_snapshot(mode="ai", boxes=True, depth=depth, timeout=_TIMEOUT_MS)
        url = page.url
    except asyncio.CancelledError:
        msg = (
            "snapshot: the page did not answer: a dialog opened (answer it first with "
            "computer: key Return accepts, Escape dismisses), or its scripts are busy"
        )
        raise BrowserError(msg) from None
    except PlaywrightError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        msg = f"the page did not give its snapshot: {first}"
        raise BrowserError(msg) from exc
    # Where the page is, from the browser: its scripts may redefine innerWidth and co.
    place = browser.place()
    ox, oy, vw, vh = place.viewport
    viewport = (float(ox), float(oy), float(ox + vw), float(oy + vh))
    sw, sh = scale.screen
    mw, mh = scale.model
    lines: list[str] = []
    elements: list[Element] = []
    # Frames around the current line: (indent, x offset, y offset, clip rectangle).
    frames: list[tuple[int, float, float, tuple[float, float, float, float]]] = []
    for line in raw.splitlines():
        head = _LINE.match(line)
        indent = len(head["indent"]) if head else len(line) - len(line.lstrip(" "))
        while frames and indent <= frames[-1][0]:
            frames.pop()
        dx, dy, clip = (
            (frames[-1][1], frames[-1][2], frames[-1][3]) if frames else (ox, oy, viewport)
        )
        # The ref and box follow the role and name: a name of the page's own that holds
        # " [ref=...]" or " [box=...]" is never taken for them.
        after = head.end() if head else 0
        attrs = _ATTRS.match(line, after)
        end = attrs.end() if attrs else after
        found = _BOX.search(line, after, end)
        ref_found = _REF.search(line, after, end)
        ref_id = ref_found[1] if ref_found else None
        box: Box | None = None
        if found is not None:
            x, y, w, h = (float(v) for v in found.groups())
            left, top = dx + x, dy + y
            xs = _pixels(max(left, clip[0]), min(left + w, clip[2]), 0, sw - 1)
            ys = _pixels(max(top, clip[1]), min(top + h, clip[3]), 0, sh - 1)
            mx = model_span(*xs, sw, mw) if xs else None
            my = model_span(*ys, sh, mh) if ys else None
            if mx is not None and my is not None:
                box = (mx[0], my[0], mx[1] - mx[0] + 1, my[1] - my[0] + 1)
            shown = f" [box={box[0]},{box[1]},{box[2]},{box[3]}]" if box else " [offscreen]"
            if w <= 0 or h <= 0:
                shown = " [no box]"  # nothing to see or click (an empty element)
            line = line[: found.start()] + shown + line[found.end() :]
            if head is not None and head["role"] == "iframe":
                # The frame's document starts inside its border and padding.
                il, it, iw, ih = _content_box(page, ref_id, w, h) if ref_id else (0, 0, w, h)
                left, top = left + il, top + it
                inner = (
                    max(left, clip[0]),
                    max(top, clip[1]),
                    min(left + iw, clip[2]),
                    min(top + ih, clip[3]),
                )
                frames.append((indent, left, top, inner))
        if ref_id is not None and head is not None:
            quoted = head["name"]
            if quoted and head["quoted"]:  # inside a single-quoted scalar: '' is one '
                quoted = quoted.replace("''", "'")
            elements.append(Element(ref_id, head["role"], _name(quoted, redact), box))
        lines.append(redact(line) if redact else line)
    title = place.title
    return Snapshot(
        url=redact(url) if redact else url,
        title=redact(title) if redact else title,
        size=scale.model,
        text="\n".join(lines),
        elements=tuple(elements),
    )


def _content_box(page: Page, ref: str, width: float, height: float) -> Box4:
    """Where an iframe's document sits in the iframe's border box: x, y, width, height.

    The whole border box when the iframe no longer answers (it went away meanwhile)."""
    try:
        values = page.locator(f"aria-ref={ref}").evaluate(_CONTENT_JS, timeout=_FRAME_MS)
        x, y, w, h = (float(v) for v in values)
    except (PlaywrightError, TypeError, ValueError, asyncio.CancelledError):
        return 0.0, 0.0, width, height
    return x, y, w, h


def _name(quoted: str | None, redact: Callable[[str], str] | None) -> str:
    """An element's name from the snapshot's double-quoted YAML string."""
    if not quoted:
        return ""
    try:
        name = str(json.loads(quoted))
    except ValueError:
        name = quoted[1:-1]
    return redact(name) if redact else name
