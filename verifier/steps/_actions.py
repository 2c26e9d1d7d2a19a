"""Actions a person does: every click, key and wheel goes through XTest at screen points."""

from __future__ import annotations

import os
import time

from playwright.sync_api import Locator

from verifier.browser import ORIGIN_JS, origin_of
from verifier.errors import CheckFailed, RecipeError
from verifier.recipe import Step
from verifier.recipe.steps import (
    Click,
    DoubleClick,
    Drag,
    Goto,
    Hover,
    Point,
    Press,
    Screenshot,
    Scroll,
    Type,
    Wait,
)
from verifier.steps import _vision
from verifier.steps._context import StepContext, StepOutcome, playwright_errors, runs

__all__ = ()

# Aim at an element as a person would, in one round trip: scroll it into view when it is
# not all in view, wait until its box holds still over two frames (animations, layout),
# and say what is really at its centre ('' when it is the element itself). Playwright's
# scroll_into_view_if_needed plus separate calls took ~80 ms a click; this takes ~15.
_AIM_JS = """
async (el, [maxFrames, hitTest]) => {
  const rect = () => {
    const r = el.getBoundingClientRect();
    return [r.x, r.y, r.width, r.height];
  };
  const [x0, y0, w0, h0] = rect();
  if (x0 < 0 || y0 < 0 || x0 + w0 > innerWidth || y0 + h0 > innerHeight) {
    el.scrollIntoView({ block: 'center', inline: 'center', behavior: 'instant' });
  }
  let prev = rect(), box = null;
  for (let i = 0; i < maxFrames && box === null; i++) {
    await new Promise((r) => requestAnimationFrame(r));
    const now = rect();
    if (now.every((v, k) => v === prev[k])) box = now;
    prev = now;
  }
  let covering = '';
  if (box !== null && hitTest) {
    const hit = document.elementFromPoint(box[0] + box[2] / 2, box[1] + box[3] / 2);
    if (!hit) covering = 'nothing (the point is outside the page)';
    else if (hit !== el && !el.contains(hit)) {
      const id = hit.id ? '#' + hit.id : '';
      const cls = hit.classList.length ? '.' + [...hit.classList].slice(0, 3).join('.') : '';
      const text = (hit.innerText || '').trim().replace(/\\s+/g, ' ').slice(0, 40);
      covering = '<' + hit.tagName.toLowerCase() + id + cls + '>' + (text ? ' "' + text + '"' : '');
    }
  }
  return { box, view: [innerWidth, innerHeight], origin: ORIGIN, covering };
}
""".replace("ORIGIN", ORIGIN_JS)


def element_point(
    ctx: StepContext, selector: str, timeout: float, what: str, *, hit_test: bool = True
) -> tuple[int, int]:
    """Screen point of the centre of ``selector``'s element, as a person would aim.

    Waits for it to be visible and still, scrolls it into view, and refuses when another
    element covers that point (a person's click would land there instead).
    """
    locator: Locator = ctx.browser.page.locator(selector)
    with playwright_errors(ctx, f"{what}: no visible element matches {selector!r}", timeout):
        ctx.wait(timeout, lambda ms: locator.wait_for(state="visible", timeout=ms))
    with playwright_errors(ctx, f"{what}: {selector!r} could not be scrolled into view", timeout):
        aim = locator.evaluate(_AIM_JS, [60, hit_test], timeout=timeout * 1000)
    if aim["box"] is None:
        msg = f"{what}: {selector!r} kept moving (not stable for two frames within 1 s)"
        raise CheckFailed(msg)
    x, y, w, h = aim["box"]
    if w <= 0 or h <= 0:
        msg = f"{what}: {selector!r} has an empty box ({w}x{h}); there is nothing to click"
        raise CheckFailed(msg)
    vw, vh = aim["view"]
    cx, cy = x + w / 2, y + h / 2
    if not (0 <= cx < vw and 0 <= cy < vh):
        msg = f"{what}: the centre of {selector!r} ({cx:.0f}, {cy:.0f}) is outside the viewport"
        raise CheckFailed(msg)
    if aim["covering"]:
        msg = (
            f"{what}: {selector!r} is covered at its centre by {aim['covering']}; "
            "a person could not click it"
        )
        raise CheckFailed(msg)
    ox, oy = origin_of(aim["origin"])
    return ox + int(cx), oy + int(cy)


def _click(ctx: StepContext, step: Step, args: Click, count: int) -> StepOutcome:
    if args.image is not None:
        return _vision.click_image(ctx, step, args, count)
    if args.selector is not None:
        point = element_point(ctx, args.selector, step.timeout, step.action)
    else:
        assert args.x is not None and args.y is not None
        point = (args.x, args.y)
    mark = ctx.browser.input_mark()
    ctx.desktop.click(*point, button=args.button, count=count)
    ctx.browser.wait_input(mark, "mouseup", count, timeout=min(step.timeout, 2.0))
    return StepOutcome(points=[point])


@runs("click", Click, settle=True)
def click(ctx: StepContext, step: Step, args: Click) -> StepOutcome:
    return _click(ctx, step, args, 1)


@runs("double_click", DoubleClick, settle=True)
def double_click(ctx: StepContext, step: Step, args: DoubleClick) -> StepOutcome:
    return _click(ctx, step, args, 2)


@runs("drag", Drag, settle=True)
def drag(ctx: StepContext, step: Step, args: Drag) -> StepOutcome:
    def end(spec: str | Point, what: str, hit_test: bool) -> tuple[int, int]:
        if isinstance(spec, str):
            return element_point(ctx, spec, step.timeout, what, hit_test=hit_test)
        return spec.x, spec.y

    # The drop target may sit under the dragged element once it moves: no hit test there.
    start = end(args.from_, "drag from", True)
    stop = end(args.to, "drag to", False)
    mark = ctx.browser.input_mark()
    ctx.desktop.drag(start, stop)
    ctx.browser.wait_input(mark, "mouseup", 1, timeout=min(step.timeout, 2.0))
    return StepOutcome(points=[start, stop], path=True)


@runs("hover", Hover, settle=True)
def hover(ctx: StepContext, step: Step, args: Hover) -> StepOutcome:
    if args.selector is not None:
        point = element_point(ctx, args.selector, step.timeout, "hover")
    else:
        assert args.x is not None and args.y is not None
        point = (args.x, args.y)
    ctx.desktop.move(*point)
    ctx.browser.next_frame()  # the page has seen the pointer and restyled (:hover)
    return StepOutcome(points=[point])


@runs("wait", Wait)
def wait(ctx: StepContext, step: Step, args: Wait) -> StepOutcome:
    # In Playwright's wait, so the page's events keep flowing; in slices, so a dead app
    # or browser ends a long wait at once.
    deadline = time.monotonic() + args.seconds
    while (left := deadline - time.monotonic()) > 0:
        with playwright_errors(ctx, "wait", args.seconds):
            ctx.browser.page.wait_for_timeout(min(left, 1.0) * 1000)
        ctx.check_infra()
    return StepOutcome()


@runs("goto", Goto, settle=True)
def goto(ctx: StepContext, step: Step, args: Goto) -> StepOutcome:
    url = ctx.resolve_url(args.url)
    with playwright_errors(ctx, f"goto {url}", step.timeout):
        response = ctx.browser.page.goto(url, timeout=step.timeout * 1000, wait_until="load")
    if response is not None and response.status >= 400:
        msg = f"goto {url}: the server answered HTTP {response.status}"
        raise CheckFailed(msg)
    return StepOutcome()


@runs("type", Type, settle=True)
def type_(ctx: StepContext, step: Step, args: Type) -> StepOutcome:
    points: list[tuple[int, int]] = []
    if args.selector is not None:
        point = element_point(ctx, args.selector, step.timeout, "type")
        mark = ctx.browser.input_mark()
        ctx.desktop.click(*point)
        ctx.browser.wait_input(mark, "mouseup", 1, timeout=min(step.timeout, 2.0))
        points.append(point)
    if args.secret is not None:
        text = os.environ.get(args.secret)
        if text is None:
            msg = f"type: secret {args.secret!r} is not set in the environment"
            raise RecipeError(msg)
    else:
        assert args.text is not None
        text = args.text
    mark = ctx.browser.input_mark()
    releases = ctx.desktop.type(text)
    ctx.browser.wait_input(mark, "keyup", releases, timeout=min(step.timeout, 5.0))
    return StepOutcome(points=points)


@runs("press", Press, settle=True)
def press(ctx: StepContext, step: Step, args: Press) -> StepOutcome:
    mark = ctx.browser.input_mark()
    releases = ctx.desktop.key(args.key)
    ctx.browser.wait_input(mark, "keyup", releases, timeout=min(step.timeout, 1.0))
    return StepOutcome()


@runs("scroll", Scroll, settle=True)
def scroll(ctx: StepContext, step: Step, args: Scroll) -> StepOutcome:
    if args.selector is not None:
        at = element_point(ctx, args.selector, step.timeout, "scroll")
    elif args.x is not None and args.y is not None:
        at = (args.x, args.y)
    else:
        ox, oy = ctx.browser.viewport_origin()
        vw, vh = ctx.browser.page.evaluate("[innerWidth, innerHeight]")
        at = (ox + int(vw) // 2, oy + int(vh) // 2)
    mark = ctx.browser.input_mark()
    ctx.desktop.scroll(args.dx, args.dy, x=at[0], y=at[1])
    ctx.browser.wait_input(mark, "wheel", 1, timeout=min(step.timeout, 2.0))
    ctx.browser.settle(timeout=min(step.timeout, 3.0))
    return StepOutcome(points=[at])


@runs("screenshot", Screenshot, settle=True)
def screenshot(ctx: StepContext, step: Step, args: Screenshot) -> StepOutcome:
    # The runner captures the screen after every step, once the page has held still for
    # two frames (a scroll still gliding, say); this step only names that capture.
    return StepOutcome(label=args.name)
