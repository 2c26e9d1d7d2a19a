"""Actions a person does: every click, key and wheel goes through XTest at screen points."""

from __future__ import annotations

import contextlib
import os
import time
from asyncio import CancelledError

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from verifier.desktop import WHEEL_PIXELS
from verifier.errors import RecipeError
from verifier.recipe import Step
from verifier.recipe.step_args import (
    Click,
    DoubleClick,
    Drag,
    Hover,
    Point,
    Press,
    Screenshot,
    Scroll,
    Type,
    Wait,
)
from verifier.steps import _vision
from verifier.steps._aim import DEEP_HIT_JS, WHEEL_TURNS_JS, aim
from verifier.steps._context import (
    StepContext,
    StepOutcome,
    TabClosed,
    no_dialog,
    playwright_errors,
    runs,
)
from verifier.steps._send import click_at, drag_between, frame_at, keys, wheel_at

__all__ = ()

# Where a scroll at a viewport point lands: the scrollers the wheel moves there (the
# nearest under the point that can still move that way, else the page) and where each
# one's whole wheel notches take it; _SCROLL_REST_JS then scrolls the rest of the
# distance, under one notch, once the wheel's glide has ended (scrolling during the glide
# would cut it short).
_SCROLL_PLAN_JS = """
([x, y, dx, dy, wheelX, wheelY]) => {
  DEEP_HIT
  WHEEL_TURNS
  const hit = deepHit(x, y);
  const up = (n) => n.parentNode || n.host || null;
  const scroller = (vertical, d) => {
    for (let n = hit; n && n.nodeType === 1; n = up(n)) if (turns(n, vertical, d)) return n;
    return WHEEL_PAGE;
  };
  const plan = [];
  if (dy) {
    const el = scroller(true, dy);
    plan.push([el, 'scrollTop', el.scrollTop + wheelY, dy - wheelY]);
  }
  if (dx) {
    const el = scroller(false, dx);
    plan.push([el, 'scrollLeft', el.scrollLeft + wheelX, dx - wheelX]);
  }
  window[Symbol.for('verifier.scroll')] = plan;
}
""".replace("DEEP_HIT", DEEP_HIT_JS).replace("WHEEL_TURNS", WHEEL_TURNS_JS)
# The rest of the distance, on the scrollers the wheel moved all the way (one that stopped
# short reached its end, or the page took the wheel: it gets no more).
_SCROLL_REST_JS = """
() => {
  for (const [el, key, to, rest] of window[Symbol.for('verifier.scroll')] || []) {
    if (rest && Math.abs(el[key] - to) < 1) {
      el.scrollBy({ [key === 'scrollTop' ? 'top' : 'left']: rest, behavior: 'instant' });
    }
  }
  delete window[Symbol.for('verifier.scroll')];
}
"""
# Resolves once every planned scroller is at its target, or has not moved for ten frames
# (it reached an end, or the page took the wheel for itself).
_SCROLL_DONE_JS = """
() => new Promise((resolve) => {
  const plan = window[Symbol.for('verifier.scroll')] || [];
  let last = null, still = 0;
  const tick = () => {
    const now = plan.map(([el, key]) => Math.round(el[key]));
    if (plan.every(([, , to], i) => Math.abs(now[i] - to) < 1)) return resolve(true);
    still = last && now.every((v, i) => v === last[i]) ? still + 1 : 0;
    last = now;
    if (still >= 10) return resolve(false);
    requestAnimationFrame(tick);
  };
  tick();
})
"""


def _click(ctx: StepContext, step: Step, args: Click, count: int) -> StepOutcome:
    if args.image is not None:
        return _vision.click_image(ctx, step, args, count)
    if args.selector is not None:
        at = aim(ctx, args.selector, args.frame, step.timeout, step.action)
        click_at(
            ctx, at.point, button=args.button, count=count, frame=at.frame, timeout=step.timeout
        )
        details: dict[str, object] = {"scrolled_clear_of": at.cleared} if at.cleared else {}
        return StepOutcome(points=[at.point], details=details)
    assert args.x is not None and args.y is not None
    point = (args.x, args.y)
    click_at(ctx, point, button=args.button, count=count, timeout=step.timeout)
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
            return aim(ctx, spec, args.frame, step.timeout, what, hit_test=hit_test).point
        return spec.x, spec.y

    # The drop target may sit under the dragged element once it moves: no hit test there.
    start = end(args.from_, "drag from", True)
    stop = end(args.to, "drag to", False)
    drag_between(ctx, start, stop, timeout=step.timeout)
    return StepOutcome(points=[start, stop], path=True)


@runs("hover", Hover, settle=True)
def hover(ctx: StepContext, step: Step, args: Hover) -> StepOutcome:
    if args.selector is not None:
        point = aim(ctx, args.selector, args.frame, step.timeout, "hover").point
    else:
        assert args.x is not None and args.y is not None
        point = (args.x, args.y)
    ctx.desktop.move(*point)
    ctx.browser.next_frame()  # the page has seen the pointer and restyled (:hover)
    return StepOutcome(points=[point])


@runs("wait", Wait)
def wait(ctx: StepContext, step: Step, args: Wait) -> StepOutcome:
    # In Playwright's wait, so the page's events keep flowing; in slices, so a dead app
    # or browser ends a long wait at once. (The timer is the driver's: a dialog holding
    # the page does not hold it.)
    deadline = time.monotonic() + args.seconds
    while (left := deadline - time.monotonic()) > 0:
        # A dialog opening meanwhile calls the timer off (see Browser._unstick): time
        # goes on all the same.
        # The tab closing itself meanwhile (a print view): the wait goes on with the next.
        with (
            contextlib.suppress(TabClosed),
            playwright_errors(ctx, "wait", args.seconds),
            contextlib.suppress(CancelledError),
        ):
            ctx.browser.page.wait_for_timeout(min(left, 1.0) * 1000)
        ctx.check_infra()
    return StepOutcome()


@runs("type", Type, settle=True)
def type_(ctx: StepContext, step: Step, args: Type) -> StepOutcome:
    points: list[tuple[int, int]] = []
    if args.selector is not None:
        at = aim(ctx, args.selector, args.frame, step.timeout, "type")
        click_at(ctx, at.point, frame=at.frame, timeout=step.timeout)
        points.append(at.point)
    if args.secret is not None:
        text = os.environ.get(args.secret)
        if text is None:
            msg = f"type: secret {args.secret!r} is not set in the environment"
            raise RecipeError(msg)
    else:
        assert args.text is not None
        text = args.text
    keys(ctx, lambda: ctx.desktop.type(text), timeout=min(step.timeout, 5.0))
    return StepOutcome(points=points)


@runs("press", Press, settle=True)
def press(ctx: StepContext, step: Step, args: Press) -> StepOutcome:
    keys(ctx, lambda: ctx.desktop.key(args.key), timeout=min(step.timeout, 1.0), names=args.key)
    return StepOutcome()


@runs("scroll", Scroll, settle=True)
def scroll(ctx: StepContext, step: Step, args: Scroll) -> StepOutcome:
    """The wheel turns whole notches (120 CSS pixels in Chromium); the rest of the distance,
    under a notch, is scrolled by the scroller under the pointer (first, so the wheel's
    glide ends on the spot): the page moves by exactly ``dy`` (and ``dx``) unless it hits
    an end or takes the wheel for itself."""
    no_dialog(ctx, "scroll")
    if args.selector is not None:
        at = aim(ctx, args.selector, args.frame, step.timeout, "scroll").point
    elif args.x is not None and args.y is not None:
        at = (args.x, args.y)
    else:
        vx, vy, vw, vh = ctx.browser.viewport()
        at = (vx + vw // 2, vy + vh // 2)
    notches_x, notches_y = int(args.dx / WHEEL_PIXELS), int(args.dy / WHEEL_PIXELS)
    rest_x, rest_y = args.dx - notches_x * WHEEL_PIXELS, args.dy - notches_y * WHEEL_PIXELS
    frame, x, y = frame_at(ctx, at)
    wheel = (notches_x * WHEEL_PIXELS, notches_y * WHEEL_PIXELS)
    with playwright_errors(ctx, "scroll", step.timeout):
        frame.evaluate(_SCROLL_PLAN_JS, [x, y, args.dx, args.dy, *wheel])
    if notches_x or notches_y:
        wheel_at(ctx, at, notches_x, notches_y, timeout=step.timeout, frame=frame)
        with playwright_errors(ctx, "scroll", step.timeout):
            with contextlib.suppress(PlaywrightTimeout):
                frame.wait_for_function(_SCROLL_DONE_JS, timeout=min(step.timeout, 3.0) * 1000)
    if rest_x or rest_y:
        with playwright_errors(ctx, "scroll", step.timeout):
            frame.evaluate(_SCROLL_REST_JS)
        ctx.browser.settle(timeout=min(step.timeout, 1.0), frame=frame)
    return StepOutcome(points=[at])


@runs("screenshot", Screenshot, settle=True)
def screenshot(ctx: StepContext, step: Step, args: Screenshot) -> StepOutcome:
    # The runner captures the screen after every step, once the page has held still for
    # two frames (a scroll still gliding, say); this step only names that capture.
    return StepOutcome(label=args.name)
