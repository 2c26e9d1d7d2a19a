"""Visual steps: screenshot baselines, picture targets, and the page's health.

``expect_screenshot`` compares the page (or one element) with a baseline beside the
recipe; ``click``/``double_click``/``wait_for`` with ``image:``, ``expect_image`` and
``expect_no_image`` find a picture on the screen; ``expect_no_console_errors`` and
``expect_no_failed_requests`` read what the browser recorded.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import logging
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import Error as PlaywrightError

from verifier import vision
from verifier.errors import CheckFailed, RecipeError, StepTimeout, VerifierError
from verifier.recipe import Step
from verifier.recipe.step_args import (
    Click,
    ExpectImage,
    ExpectNoConsoleErrors,
    ExpectNoFailedRequests,
    ExpectNoImage,
    ExpectScreenshot,
    Mask,
    Rect,
    WaitFor,
)
from verifier.steps._context import (
    StepContext,
    StepOutcome,
    in_frames,
    locate,
    playwright_errors,
    runs,
)
from verifier.steps._send import click_at

__all__ = ()

_log = logging.getLogger(__name__)

_POLL_S = 0.06  # how often a picture target grabs the screen while it waits
_QUIET_S = 0.1  # how long expect_screenshot's captures must stay the same
_MASK_COLOUR = (255, 0, 255)  # painted over masked areas, in the baseline too
_SHOWN = 3  # offenders quoted in a failure message

# Finite animations and transitions jump to their end, infinite ones rewind to their start
# and pause: either way the frame is the same on every run. The style hides the caret,
# stops new transitions and pauses CSS animations that start later.
_FREEZE_JS = """
() => {
  const paused = [];
  for (const a of document.getAnimations()) {
    if (a.playState !== 'running') continue;
    const end = a.effect ? a.effect.getComputedTiming().endTime : Infinity;
    if (Number.isFinite(end)) { try { a.finish(); continue; } catch (e) {} }
    a.pause(); a.currentTime = 0; paused.push(a);
  }
  window.__verifierPaused = paused;
  const style = document.createElement('style');
  style.id = '__verifier_freeze';
  style.textContent = '*, *::before, *::after { caret-color: transparent !important;'
    + ' transition: none !important; animation-play-state: paused !important; }';
  (document.head || document.documentElement).append(style);
}
"""
_THAW_JS = """
() => {
  const style = document.getElementById('__verifier_freeze');
  if (style) style.remove();
  for (const a of window.__verifierPaused || []) { try { a.play(); } catch (e) {} }
  delete window.__verifierPaused;
}
"""
_BOX_JS = (
    "(e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }"
)
_BOXES_JS = (
    "(els) => els.map((e) => { const r = e.getBoundingClientRect();"
    " return [r.left, r.top, r.right, r.bottom]; })"
)


# -- picture targets --------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _read(path: str, mtime_ns: int, size: int) -> vision.Image:
    del mtime_ns, size  # the cache key: a changed file is read again
    return vision.read_image(Path(path))


def _beside_recipe(ctx: StepContext, name: str) -> Path:
    path = Path(name).expanduser()
    if path.is_absolute():
        return path
    base = ctx.recipe_path.parent if ctx.recipe_path is not None else Path.cwd()
    return base / path


def _template(ctx: StepContext, action: str, image: str) -> vision.Image:
    path = _beside_recipe(ctx, image)
    try:
        stat = path.stat()
        return _read(str(path), stat.st_mtime_ns, stat.st_size)
    except FileNotFoundError:
        msg = f"{action}: image {image!r} not found (looked for {str(path)!r})"
        raise RecipeError(msg) from None
    except (OSError, ValueError) as exc:
        msg = f"{action}: image {image!r} cannot be read as a picture ({exc})"
        raise RecipeError(msg) from None


def _box(rect: Rect | None) -> vision.Box | None:
    return (rect.x, rect.y, rect.width, rect.height) if rect is not None else None


def _where(match: vision.Match) -> str:
    x, y, w, h = match.box
    return f"{w}x{h} at ({x}, {y})"


def _poll(
    ctx: StepContext,
    step: Step,
    image: str,
    *,
    confidence: float | None,
    region: Rect | None,
    present: bool,
    steady: bool = False,
) -> tuple[vision.Match, vision.Image]:
    """Grab the screen every ~60 ms until ``image`` is on it (``present``) or not.

    ``steady``: the match must hold the same box in two grabs in a row (not a frame of a
    moving or fading picture). Returns the deciding match and the screen it was found on;
    raises StepTimeout with the best score seen.
    """
    action = step.action
    template = _template(ctx, action, image)
    want = confidence if confidence is not None else vision.DEFAULT_CONFIDENCE
    deadline = time.monotonic() + step.timeout
    best: tuple[vision.Match, vision.Image] | None = None
    last_box: vision.Box | None = None
    while True:
        started = time.monotonic()
        frame = ctx.desktop.screenshot()
        try:
            match = vision.find(frame, template, confidence=want, region=_box(region))
        except ValueError as exc:
            msg = f"{action}: image {image!r}: {exc}"
            raise RecipeError(msg) from None
        if present and match.found and (not steady or match.box == last_box):
            return match, frame
        if not present and not match.found:
            return match, frame
        last_box = match.box if match.found else None
        if best is None or match.score > best[0].score:
            best = (match, frame)
        if started >= deadline:
            break
        ctx.browser.check_alive()
        time.sleep(max(0.0, _POLL_S - (time.monotonic() - started)))
    seen, shot = best
    ctx.attach("best-match" if present else "still-there", vision.mark_match(shot, seen))
    details: dict[str, object] = {"image": image, **seen.to_json()}
    if present:
        msg = (
            f"{action}: image {image!r} is not on the screen within {step.timeout:g} s "
            f"(best score {seen.score:.3f} < confidence {want:g}, {_where(seen)})"
        )
    else:
        msg = (
            f"{action}: image {image!r} is still on the screen after {step.timeout:g} s "
            f"(score {seen.score:.3f}, {_where(seen)})"
        )
    raise StepTimeout(msg, details=details)


def click_image(ctx: StepContext, step: Step, args: Click, count: int) -> StepOutcome:
    """Click (``count`` times) at the centre of where ``args.image`` is on the screen."""
    assert args.image is not None
    match, frame = _poll(
        ctx,
        step,
        args.image,
        confidence=args.confidence,
        region=args.region,
        present=True,
        steady=True,
    )
    cx, cy = match.centre
    dx, dy = (args.offset.x, args.offset.y) if args.offset is not None else (0, 0)
    point = (cx + dx, cy + dy)
    width, height = ctx.desktop.size
    if not (0 <= point[0] < width and 0 <= point[1] < height):
        msg = (
            f"{step.action}: offset ({dx}, {dy}) from the match at ({cx}, {cy}) puts the click "
            f"at {point}, outside the {width}x{height} screen"
        )
        raise RecipeError(msg)
    ctx.attach("match", vision.mark_match(frame, match))
    click_at(ctx, point, button=args.button, count=count, timeout=step.timeout)
    return StepOutcome(points=[point], details={"image": args.image, **match.to_json()})


def _found(ctx: StepContext, image: str, match: vision.Match, frame: vision.Image) -> StepOutcome:
    ctx.attach("match", vision.mark_match(frame, match))
    return StepOutcome(details={"image": image, **match.to_json()})


@runs("expect_image", ExpectImage)
def expect_image(ctx: StepContext, step: Step, args: ExpectImage) -> StepOutcome:
    match, frame = _poll(
        ctx, step, args.image, confidence=args.confidence, region=args.region, present=True
    )
    return _found(ctx, args.image, match, frame)


@runs("expect_no_image", ExpectNoImage)
def expect_no_image(ctx: StepContext, step: Step, args: ExpectNoImage) -> StepOutcome:
    match, _ = _poll(
        ctx, step, args.image, confidence=args.confidence, region=args.region, present=False
    )
    return StepOutcome(details={"image": args.image, **match.to_json()})


def wait_for_image(ctx: StepContext, step: Step, args: WaitFor) -> StepOutcome:
    """``wait_for: {image: ...}`` (the selector form is in _checks.py, which routes here)."""
    assert args.image is not None
    present = args.state == "visible"
    match, frame = _poll(
        ctx, step, args.image, confidence=args.confidence, region=args.region, present=present
    )
    if present:
        return _found(ctx, args.image, match, frame)
    return StepOutcome(details={"image": args.image, **match.to_json()})


# -- expect_screenshot ------------------------------------------------------------------------


def _pixels(edges: Sequence[float]) -> vision.Box:
    """Whole pixels covering a CSS box [left, top, right, bottom]."""
    left, top = math.floor(edges[0]), math.floor(edges[1])
    return left, top, math.ceil(edges[2]) - left, math.ceil(edges[3]) - top


def _viewport(ctx: StepContext, what: str, timeout: float) -> tuple[int, int, int, int]:
    """(screen x, screen y, width, height) of the page's viewport."""
    with playwright_errors(ctx, f"{what}: reading the viewport", timeout):
        ox, oy = ctx.browser.viewport_origin()
        vw, vh = ctx.browser.page.evaluate("[innerWidth, innerHeight]")
    return ox, oy, int(vw), int(vh)


def _element(
    ctx: StepContext, selector: str, frames: tuple[str, ...], what: str, timeout: float
) -> vision.Box:
    """The element's box in the page's viewport pixels, once it is visible and scrolled
    into view (inside iframes: mapped through them, as Playwright's box is)."""
    locator = locate(ctx.browser.page, selector, frames)
    with playwright_errors(
        ctx, f"{what}: no visible element matches {selector!r}", timeout, selector=selector
    ):
        ctx.wait(timeout, lambda ms: locator.wait_for(state="visible", timeout=ms), what)
    with playwright_errors(ctx, f"{what}: {selector!r} could not be scrolled into view", timeout):
        locator.scroll_into_view_if_needed(timeout=timeout * 1000)
        if in_frames(selector, frames):
            box = locator.bounding_box(timeout=timeout * 1000)
            if box is None:
                msg = f"{what}: {selector!r} has no box on the page"
                raise CheckFailed(msg)
            edges = [box["x"], box["y"], box["x"] + box["width"], box["y"] + box["height"]]
        else:
            edges = locator.evaluate(_BOX_JS)
    return _pixels(edges)


def _masks(
    ctx: StepContext, masks: Iterable[Mask], origin: tuple[int, int], what: str, timeout: float
) -> list[vision.Box]:
    """Every mask as a box in the compared image's pixels."""
    boxes: list[vision.Box] = []
    for mask in masks:
        if mask.selector is not None:
            with playwright_errors(ctx, f"{what}: mask {mask.selector!r}", timeout):
                found = ctx.browser.page.locator(mask.selector).evaluate_all(_BOXES_JS)
            boxes.extend(_pixels(edges) for edges in found)
        else:
            assert mask.x is not None and mask.y is not None
            assert mask.width is not None and mask.height is not None
            boxes.append((mask.x, mask.y, mask.width, mask.height))
    ox, oy = origin
    return [(x - ox, y - oy, w, h) for x, y, w, h in boxes if w > 0 and h > 0]


def _paint(image: vision.Image, boxes: Sequence[vision.Box]) -> vision.Image:
    height, width = image.shape[:2]
    for x, y, w, h in boxes:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(width, x + w), min(height, y + h)
        if x1 > x0 and y1 > y0:
            image[y0:y1, x0:x1] = _MASK_COLOUR
    return image


def _steady_shot(
    ctx: StepContext, area: vision.Box, masks: Sequence[vision.Box], deadline: float
) -> tuple[vision.Image, bool]:
    """Capture ``area`` of the screen, masks painted, until captures a page frame or more
    apart stay the same for ``_QUIET_S`` (True), or the deadline passes (False, with the
    last capture). The quiet time keeps a browser starved of CPU for a frame or two from
    passing for a still screen."""
    x, y, w, h = area
    still: vision.Image | None = None
    since = started = time.monotonic()
    for count in itertools.count(1):
        left = deadline - time.monotonic()
        ctx.browser.next_frame(timeout=min(1.0, max(0.1, left)))
        shot = _paint(ctx.desktop.screenshot()[y : y + h, x : x + w].copy(), masks)
        now = time.monotonic()
        if still is None or not np.array_equal(shot, still):
            still, since = shot, now
        steady = count > 1 and now - since >= _QUIET_S
        if steady or now >= deadline:
            _log.debug("%d captures in %.0f ms, steady: %s", count, (now - started) * 1000, steady)
            return shot, steady
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class _Shot:
    """What expect_screenshot captured: the image, whether it held still, its masks."""

    image: vision.Image
    steady: bool
    masks: list[vision.Box]


def _capture(ctx: StepContext, step: Step, args: ExpectScreenshot, what: str) -> _Shot:
    page = ctx.browser.page
    deadline = time.monotonic() + step.timeout
    with playwright_errors(ctx, f"{what}: pausing animations", step.timeout):
        page.evaluate(_FREEZE_JS)
    try:
        vx, vy, vw, vh = _viewport(ctx, what, step.timeout)
        if args.selector is not None:
            ex, ey, ew, eh = _element(ctx, args.selector, args.frame, what, step.timeout)
            left, top = max(0, ex), max(0, ey)
            right, bottom = min(vw, ex + ew), min(vh, ey + eh)
            if right <= left or bottom <= top:
                msg = f"{what}: {args.selector!r} has no visible area in the viewport"
                raise CheckFailed(msg)
            # Scrolling into view may have moved the viewport's content, not its place.
            area = (vx + left, vy + top, right - left, bottom - top)
            origin = (left, top)
        else:
            area, origin = (vx, vy, vw, vh), (0, 0)
        sw, sh = ctx.desktop.size
        ax, ay = max(0, area[0]), max(0, area[1])
        area = (ax, ay, min(sw, area[0] + area[2]) - ax, min(sh, area[1] + area[3]) - ay)
        masks = _masks(ctx, args.mask, origin, what, step.timeout)
        image, steady = _steady_shot(ctx, area, masks, deadline)
    finally:
        with contextlib.suppress(PlaywrightError, VerifierError):
            page.evaluate(_THAW_JS)
    return _Shot(image, steady, masks)


def _size(image: vision.Image) -> str:
    return f"{image.shape[1]}x{image.shape[0]}"


def _write(path: Path, image: vision.Image, what: str) -> None:
    """Write a baseline beside the recipe: never through a link the app left on the way."""
    base = path.parent.parent  # the recipe's folder
    try:
        vision.write_image(base, f"{path.parent.name}/{path.name}", image)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            why = "a folder on the way is a symbolic link (or not a folder); refused"
        msg = f"{what}: cannot write the baseline {str(path)!r}: {why}"
        raise RecipeError(msg) from exc


@runs("expect_screenshot", ExpectScreenshot)
def expect_screenshot(ctx: StepContext, step: Step, args: ExpectScreenshot) -> StepOutcome:
    name = args.name.removesuffix(".png")
    what = f"expect_screenshot {name!r}"
    if ctx.recipe_path is None:
        msg = f"{what}: baselines live beside the recipe file, and this recipe has none"
        raise RecipeError(msg)
    folder = f"{ctx.recipe_path.stem}.baselines"
    baseline = ctx.recipe_path.parent / folder / f"{name}.png"
    shot = _capture(ctx, step, args, what)
    actual = shot.image
    details: dict[str, object] = {
        "baseline": f"{folder}/{name}.png",
        "size": [actual.shape[1], actual.shape[0]],
        "threshold": args.threshold,
    }
    unsteady = (
        f"; the screen did not hold still for {_QUIET_S * 1000:.0f} ms within {step.timeout:g} s"
        " (mask what moves)"
    )

    def rewrite(why: str) -> StepOutcome:
        if not shot.steady:
            ctx.attach("actual", actual)
            msg = f"{what}: baseline not written{unsteady}"
            raise CheckFailed(msg, details=details)
        _write(baseline, actual, what)
        details["baseline_written"] = why
        return StepOutcome(details=details)

    if not baseline.is_file():
        if ctx.update_baselines:
            return rewrite("missing")
        outcome = rewrite("missing")
        ctx.attach("actual", actual)
        msg = (
            f"{what}: there was no baseline; wrote {str(baseline)!r} from this run. "
            "Check that it shows the right thing, then run again (or use --update-baselines)"
        )
        raise CheckFailed(msg, details=outcome.details)
    try:
        expected = vision.read_image(baseline)
    except ValueError:
        if ctx.update_baselines:
            return rewrite("unreadable")
        msg = (
            f"{what}: the baseline {str(baseline)!r} is not a readable PNG; delete it or run "
            "with --update-baselines"
        )
        raise CheckFailed(msg, details=details) from None
    if expected.shape != actual.shape:
        if ctx.update_baselines:
            return rewrite("size")
        details["baseline_size"] = [expected.shape[1], expected.shape[0]]
        ctx.attach("expected", expected)
        ctx.attach("actual", actual)
        part = "element" if args.selector is not None else "page viewport"
        msg = (
            f"{what}: the baseline is {_size(expected)} but the {part} is {_size(actual)} now; "
            "if the new size is right, run with --update-baselines"
        )
        raise CheckFailed(msg, details=details)
    result = vision.compare(
        actual,
        expected,
        threshold=args.threshold,
        max_diff_pixels=args.max_diff_pixels,
        max_diff_ratio=args.max_diff_ratio,
        masks=shot.masks,
    )
    details.update(
        diff_pixels=result.diff_pixels,
        diff_ratio=round(result.diff_ratio, 6),
        allowed_pixels=result.allowed_pixels,
        compared_pixels=result.compared_pixels,
    )
    if result.passed:
        return StepOutcome(details=details)
    if ctx.update_baselines:
        return rewrite("changed")
    ctx.attach("expected", expected)
    ctx.attach("actual", actual)
    ctx.attach("diff", result.diff_image())
    msg = f"{what}: {result.message}; see the diff image"
    raise CheckFailed(msg + (unsteady if not shot.steady else ""), details=details)


# -- the page's health ------------------------------------------------------------------------


def _unexpected(
    records: Iterable[Mapping[str, Any]], allow: Sequence[str], keys: Sequence[str]
) -> list[Mapping[str, Any]]:
    patterns = [re.compile(p) for p in allow]
    return [
        r for r in records if not any(p.search(str(r.get(k) or "")) for p in patterns for k in keys)
    ]


def _clip(text: object, limit: int = 160) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _listing(offenders: Sequence[Mapping[str, Any]], show: Any) -> str:
    shown = "; ".join(show(r) for r in offenders[:_SHOWN])
    more = len(offenders) - _SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


def _brief(records: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    return [{k: r.get(k) for k in keys if r.get(k) is not None} for r in records[:10]]


def _console_line(record: Mapping[str, Any]) -> str:
    text = repr(_clip(record.get("text")))
    if record.get("type") == "pageerror":
        return f"uncaught {text}"
    url = record.get("url")
    return f"{text} ({_clip(url, 100)}:{record.get('line')})" if url else text


def _request_line(record: Mapping[str, Any]) -> str:
    where = f"{record.get('method') or 'GET'} {_clip(record.get('url'), 200)}"
    if record.get("type") == "response":
        return f"{where} -> HTTP {record.get('status')} {record.get('text') or ''}".rstrip()
    return f"{where} failed: {record.get('text')}"


def _page_said(ctx: StepContext, step: Step) -> None:
    """Let what the page said before now arrive: a frame it draws comes after it. A page
    still busy (a handler logging 50,000 lines, then an error) is waited for, up to the
    step's timeout (with a second's wait, such a check passed before the error came)."""
    ctx.browser.next_frame(timeout=step.timeout)


@runs("expect_no_console_errors", ExpectNoConsoleErrors)
def expect_no_console_errors(
    ctx: StepContext, step: Step, args: ExpectNoConsoleErrors
) -> StepOutcome:
    _page_said(ctx, step)
    offenders = _unexpected(ctx.browser.console_errors, args.allow, ("text", "url"))
    if offenders:
        n = len(offenders)
        msg = f"{step.action}: {n} console error{'s' if n > 1 else ''}: "
        msg += _listing(offenders, _console_line)
        details = {"count": n, "errors": _brief(offenders, ("type", "text", "url", "line"))}
        raise CheckFailed(msg, details=details)
    return StepOutcome()


@runs("expect_no_failed_requests", ExpectNoFailedRequests)
def expect_no_failed_requests(
    ctx: StepContext, step: Step, args: ExpectNoFailedRequests
) -> StepOutcome:
    _page_said(ctx, step)
    offenders = _unexpected(ctx.browser.failed_requests, args.allow, ("url",))
    if offenders:
        n = len(offenders)
        msg = f"{step.action}: {n} failed request{'s' if n > 1 else ''}: "
        msg += _listing(offenders, _request_line)
        keys = ("method", "url", "status", "text")
        raise CheckFailed(msg, details={"count": n, "requests": _brief(offenders, keys)})
    return StepOutcome()
