"""Checks: conditions on the page, each waited for up to the step's timeout.

A failing check says what it found (the value, the count, the title...), so the report
tells what the page did instead. A check that needs one element fails as an ambiguous
recipe (exit 2) when its selector matches several.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import time
from collections.abc import Callable
from typing import Literal

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, expect

from verifier.browser import SEEN_ENGINE, SEEN_JS
from verifier.errors import StepTimeout
from verifier.recipe import Step
from verifier.recipe.step_args import (
    ExpectAria,
    ExpectAttribute,
    ExpectChecked,
    ExpectCount,
    ExpectDisabled,
    ExpectEnabled,
    ExpectFocused,
    ExpectHidden,
    ExpectTitle,
    ExpectUrl,
    ExpectValue,
    ExpectVisible,
    WaitFor,
)
from verifier.steps import _vision
from verifier.steps._context import (
    DESCRIBE_EL_JS,
    StepContext,
    StepOutcome,
    first_line,
    locate,
    no_dialog,
    playwright_errors,
    runs,
    single,
)
from verifier.steps._ink import HIDE_ELEMENT_JS, shows

__all__ = ()

# Each match: a short description, and why a person does not see it ('' when they do).
_WHY_JS = (
    (
        "(els) => { SEEN DESCRIBE return els.slice(0, 50).map((el) => "
        "[describe(el), seenWhy(el, seenBoxes(el), false)]); }"
    )
    .replace("SEEN", SEEN_JS)
    .replace("DESCRIBE", DESCRIBE_EL_JS)
)

# What the elements a selector matches hold, for failure messages (the first five).
_STATE_JS = """
(els, name) => els.slice(0, 5).map((e) => ({
  value: 'value' in e && typeof e.value === 'string' ? e.value : null,
  checked: (e.type === 'checkbox' || e.type === 'radio') ? e.checked
           : e.getAttribute('aria-checked'),
  attribute: name ? e.getAttribute(name) : null,
}))
"""


def _retry(
    ctx: StepContext,
    step: Step,
    selector: str,
    frames: tuple[str, ...],
    holds: Callable[[Locator, float], None],
    *,
    one: bool = True,
) -> Locator | None:
    """Retry ``holds(locator, timeout_ms)`` (a Playwright ``expect``) until the step's
    timeout, in slices that check the run is alive and no dialog holds the page. None
    when it held, else the locator, to describe what was found. ``one``: the selector must
    not match several elements."""
    what = step.action
    deadline = time.monotonic() + step.timeout
    while True:
        no_dialog(ctx, what)
        locator = locate(ctx.browser.page, selector, frames)
        remaining = deadline - time.monotonic()
        with playwright_errors(ctx, f"{what}: {selector!r}", step.timeout, selector=selector):
            if one:
                single(what, selector, locator)
            try:
                holds(locator, max(50.0, min(remaining, 1.0) * 1000))
                return None
            except AssertionError:
                ctx.check_infra()
                if time.monotonic() >= deadline:
                    return locator


def _fail(step: Step, head: str, found: str) -> StepTimeout:
    return StepTimeout(f"{step.action}: {head} within {step.timeout:g} s; {found}")


def _states(locator: Locator, name: str | None = None) -> list[dict[str, object]]:
    try:
        return list(locator.evaluate_all(_STATE_JS, name))
    except PlaywrightError:
        return []


def _seen(selector: str) -> str:
    """What a person sees of what ``selector`` matches (the browser's seen engine)."""
    return f"{selector} >> {SEEN_ENGINE}=1"


@runs("wait_for", WaitFor)
def wait_for(ctx: StepContext, step: Step, args: WaitFor) -> StepOutcome:
    if args.image is not None:
        return _vision.wait_for_image(ctx, step, args)
    assert args.selector is not None
    if args.state in ("visible", "hidden"):
        return _wait_seen(ctx, step, "wait_for", args.selector, args.frame, args.state)
    no_dialog(ctx, "wait_for")
    page = ctx.browser.page
    with playwright_errors(
        ctx, f"wait_for: {args.selector!r} did not become {args.state}", step.timeout
    ):
        first = locate(page, args.selector, args.frame).first
        ctx.wait(step.timeout, lambda ms: first.wait_for(state=args.state, timeout=ms), "wait_for")
    return StepOutcome()


def _wait_seen(
    ctx: StepContext,
    step: Step,
    what: str,
    selector: str,
    frames: tuple[str, ...],
    state: str,
) -> StepOutcome:
    """Wait until a person sees an element ``selector`` matches (``state`` visible), or
    sees none (hidden); the failure says why each match is not seen, or which is. The
    page's word that one is seen is taken to the screen (_ink.shows): hidden for two
    frames, something in its box must change."""
    no_dialog(ctx, what)
    page = ctx.browser.page
    shown = locate(page, _seen(selector), frames).first
    target: Literal["attached", "detached"] = "attached" if state == "visible" else "detached"
    deadline = time.monotonic() + step.timeout
    dark = ""  # a match the page says is seen, of which the screen shows nothing
    while True:
        remaining = max(0.05, deadline - time.monotonic())
        try:
            with playwright_errors(ctx, f"{what}: {selector!r}", step.timeout, selector=selector):
                ctx.wait(remaining, lambda ms: shown.wait_for(state=target, timeout=ms), what)
                if state == "hidden":
                    return StepOutcome()
                dark = _dark(ctx, page, selector, frames)
            if not dark:
                return StepOutcome()
            if time.monotonic() >= deadline:
                raise StepTimeout("")
            ctx.browser.next_frame(timeout=0.25)
        except StepTimeout:
            if what == "expect_visible":
                head = f"{what}: no visible element matches {selector!r}"
            else:
                head = f"{what}: {selector!r} did not become {state}"
            head += f": not within {step.timeout:g} s"
            if dark:
                head += (
                    f" ({dark} is there but shows nothing on screen: made transparent, no "
                    "pixel of its box changes; something over it, a filter or its colour "
                    "hides it)"
                )
                raise StepTimeout(head) from None
            raise StepTimeout(head + _why_not_seen(page, selector, frames, state)) from None


def _dark(ctx: StepContext, page: Page, selector: str, frames: tuple[str, ...]) -> str:
    """'' when the screen shows one of the (first five) matches the page says a person
    sees; else the first of them, described."""
    handles = locate(page, _seen(selector), frames).element_handles()
    try:
        first = ""
        for handle in handles[:5]:
            box = handle.bounding_box()  # in the top frame's viewport
            if box is None:
                continue
            corners = (box["x"], box["y"], box["x"] + box["width"], box["y"] + box["height"])
            hide = functools.partial(handle.evaluate, HIDE_ELEMENT_JS)
            shown = shows(ctx, page.main_frame, corners, hide)
            if shown:
                return ""
            first = first or str(
                handle.evaluate(f"(el) => {{ {DESCRIBE_EL_JS} return describe(el); }}")
            )
        return first
    finally:
        for handle in handles:
            handle.dispose()


def _why_not_seen(page: Page, selector: str, frames: tuple[str, ...], state: str) -> str:
    """Why the elements ``selector`` matches are not seen (for visible), or what is seen
    (for hidden): "; it matches 2: #a is covered by div.overlay, #b is outside the window"."""
    try:
        found = locate(page, selector, frames).evaluate_all(_WHY_JS)
    except PlaywrightError:
        return ""
    if not found:
        return " (none matches)"
    count = len(found)
    if state == "hidden":
        seen = [str(name) for name, why in found if not why]
        return f"; {len(seen)} visible: {', '.join(seen[:5])}" if seen else ""
    detail = _unseen(found)
    return f" ({count} match but none is visible{detail})" if detail else ""


@runs("expect_visible", ExpectVisible)
def expect_visible(ctx: StepContext, step: Step, args: ExpectVisible) -> StepOutcome:
    return _wait_seen(ctx, step, "expect_visible", args.selector, args.frame, "visible")


@runs("expect_hidden", ExpectHidden)
def expect_hidden(ctx: StepContext, step: Step, args: ExpectHidden) -> StepOutcome:
    return _wait_seen(ctx, step, "expect_hidden", args.selector, args.frame, "hidden")


def _url_matches(actual: str, expected: str) -> bool:
    if any(ch in expected for ch in "*?["):
        return fnmatch.fnmatchcase(actual, expected)
    return actual == expected or actual.rstrip("/") == expected.rstrip("/")


@runs("expect_url", ExpectUrl)
def expect_url(ctx: StepContext, step: Step, args: ExpectUrl) -> StepOutcome:
    expected = ctx.resolve_url(args.url)
    no_dialog(ctx, "expect_url")
    page = ctx.browser.page
    try:
        with playwright_errors(
            ctx, f"expect_url: the URL did not become {expected!r}", step.timeout
        ):
            ctx.wait(
                step.timeout,
                lambda ms: page.wait_for_url(lambda url: _url_matches(url, expected), timeout=ms),
                "expect_url",
            )
    except StepTimeout as exc:
        raise StepTimeout(f"{exc.message}; it is {page.url!r}") from None
    return StepOutcome()


@runs("expect_title", ExpectTitle)
def expect_title(ctx: StepContext, step: Step, args: ExpectTitle) -> StepOutcome:
    want = re.compile(re.escape(args.text))
    deadline = time.monotonic() + step.timeout
    while True:
        no_dialog(ctx, "expect_title")
        page = ctx.browser.page
        remaining = deadline - time.monotonic()
        with playwright_errors(ctx, "expect_title", step.timeout):
            try:
                expect(page).to_have_title(want, timeout=max(50.0, min(remaining, 1.0) * 1000))
                return StepOutcome()
            except AssertionError:
                ctx.check_infra()
                if time.monotonic() >= deadline:
                    title = ctx.browser.title_of(page)
                    break
    raise _fail(step, f"the title does not contain {args.text!r}", f"it is {title!r}")


@runs("expect_value", ExpectValue)
def expect_value(ctx: StepContext, step: Step, args: ExpectValue) -> StepOutcome:
    failed = _retry(
        ctx,
        step,
        args.selector,
        args.frame,
        lambda loc, ms: expect(loc).to_have_value(args.value, timeout=ms),
    )
    if failed is None:
        return StepOutcome()
    states = _states(failed)
    if not states:
        found = "nothing matches"
    elif states[0]["value"] is None:
        found = "it has no value (not an input, textarea or select)"
    else:
        found = f"its value is {states[0]['value']!r}"
    raise _fail(step, f"{args.selector!r} did not get the value {args.value!r}", found)


@runs("expect_checked", ExpectChecked)
def expect_checked(ctx: StepContext, step: Step, args: ExpectChecked) -> StepOutcome:
    failed = _retry(
        ctx,
        step,
        args.selector,
        args.frame,
        lambda loc, ms: expect(loc).to_be_checked(checked=args.checked, timeout=ms),
    )
    if failed is None:
        return StepOutcome()
    states = _states(failed)
    want = "checked" if args.checked else "unchecked"
    if not states:
        found = "nothing matches"
    else:
        state = states[0]["checked"]
        if state is True or state is False:
            found = f"it is {'checked' if state else 'unchecked'}"
        elif state is None:
            found = "it cannot be checked (not a checkbox or radio, no aria-checked)"
        else:
            found = f"its aria-checked is {state!r}"
    raise _fail(step, f"{args.selector!r} did not become {want}", found)


def _enabled_check(
    ctx: StepContext, step: Step, selector: str, frames: tuple[str, ...], on: bool
) -> StepOutcome:
    failed = _retry(
        ctx,
        step,
        selector,
        frames,
        (lambda loc, ms: expect(loc).to_be_enabled(timeout=ms))
        if on
        else (lambda loc, ms: expect(loc).to_be_disabled(timeout=ms)),
    )
    if failed is None:
        return StepOutcome()
    try:
        found = (
            "nothing matches"
            if failed.count() == 0
            else ("it is enabled" if failed.is_enabled(timeout=1000) else "it is disabled")
        )
    except PlaywrightError as exc:
        found = first_line(exc)
    raise _fail(step, f"{selector!r} did not become {'enabled' if on else 'disabled'}", found)


@runs("expect_enabled", ExpectEnabled)
def expect_enabled(ctx: StepContext, step: Step, args: ExpectEnabled) -> StepOutcome:
    return _enabled_check(ctx, step, args.selector, args.frame, True)


@runs("expect_disabled", ExpectDisabled)
def expect_disabled(ctx: StepContext, step: Step, args: ExpectDisabled) -> StepOutcome:
    return _enabled_check(ctx, step, args.selector, args.frame, False)


# Where the keyboard's focus is: the element (through open shadow roots and same-origin
# frames), whether it shows it (:focus-visible), and whether the window has it.
_FOCUS_JS = f"""() => {{
  {DESCRIBE_EL_JS}
  let el = document.activeElement;
  for (;;) {{
    const inner = el && (el.shadowRoot ? el.shadowRoot.activeElement
      : el.contentDocument ? el.contentDocument.activeElement : null);
    if (!inner) break;
    el = inner;
  }}
  const none = !el || el === el.ownerDocument.body || el === el.ownerDocument.documentElement;
  return {{on: none ? null : describe(el), ring: !none && el.matches(':focus-visible'),
           window: document.hasFocus()}};
}}"""


@runs("expect_focused", ExpectFocused)
def expect_focused(ctx: StepContext, step: Step, args: ExpectFocused) -> StepOutcome:
    deadline = time.monotonic() + step.timeout
    what = f"expect_focused: {args.selector!r}"
    while True:
        no_dialog(ctx, "expect_focused")
        page = ctx.browser.page
        locator = locate(page, args.selector, args.frame)
        remaining = deadline - time.monotonic()
        with playwright_errors(ctx, what, step.timeout, selector=args.selector):
            single("expect_focused", args.selector, locator)
            try:
                expect(locator).to_be_focused(timeout=max(50.0, min(remaining, 1.0) * 1000))
                if not args.visible or (
                    locator.evaluate("(el) => el.matches(':focus-visible')")
                    and locate(page, _seen(args.selector), args.frame).count()
                ):
                    return StepOutcome()
                ctx.browser.next_frame(timeout=min(max(remaining, 0.05), 0.25))
            except AssertionError:
                ctx.check_infra()
            if time.monotonic() >= deadline:
                focus = page.evaluate(_FOCUS_JS)
                on_it = locator.count() == 1 and locator.evaluate("(el) => el.matches(':focus')")
                break
    if not focus["window"]:
        found = "the browser window does not have the keyboard focus"
    elif on_it and args.visible and not focus["ring"]:
        raise _fail(
            step,
            f"{args.selector!r} does not show the keyboard focus",
            "it has the focus, but not :focus-visible (focused by the mouse or a script, "
            "so the browser draws no focus ring)",
        )
    elif on_it and args.visible:
        why = _why_not_seen(page, args.selector, args.frame, "visible")
        raise _fail(
            step,
            f"{args.selector!r} does not show the keyboard focus",
            f"it has the focus, but a person does not see it{why}",
        )
    elif focus["on"] is None:
        found = "nothing has the focus (the page's body)"
    else:
        found = f"the focus is on {focus['on']}"
    raise _fail(step, f"{args.selector!r} does not have the keyboard focus", found)


@runs("expect_count", ExpectCount)
def expect_count(ctx: StepContext, step: Step, args: ExpectCount) -> StepOutcome:
    selector = _seen(args.selector) if args.visible else args.selector
    failed = _retry(
        ctx,
        step,
        selector,
        args.frame,
        lambda loc, ms: expect(loc).to_have_count(args.count, timeout=ms),
        one=False,
    )
    if failed is None:
        return StepOutcome()
    try:
        count = failed.count()
    except PlaywrightError as exc:
        raise _fail(step, "counting failed", first_line(exc)) from None
    if not args.visible:
        raise _fail(
            step, f"{args.selector!r} did not match {args.count} element(s)", f"it matches {count}"
        )
    try:
        found = locate(ctx.browser.page, args.selector, args.frame).evaluate_all(_WHY_JS)
    except PlaywrightError:
        found = []
    raise _fail(
        step,
        f"a person did not see {args.count} element(s) {args.selector!r} matches",
        f"they see {count} of its {len(found)} match(es)" + _unseen(found).replace(":", ";", 1),
    )


def _unseen(found: list[list[str]]) -> str:
    """``: <li> "x" is covered by div.overlay, ...`` for the matches a person does not see."""
    told = [f"{name} {why}" for name, why in found if why]
    more = f" and {len(told) - 3} more" if len(told) > 3 else ""
    return f": {', '.join(told[:3])}{more}" if told else ""


@runs("expect_attribute", ExpectAttribute)
def expect_attribute(ctx: StepContext, step: Step, args: ExpectAttribute) -> StepOutcome:
    # Without a value: present, whatever it holds.
    value: str | re.Pattern[str] = args.value if args.value is not None else re.compile(r"[\s\S]*")
    failed = _retry(
        ctx,
        step,
        args.selector,
        args.frame,
        lambda loc, ms: expect(loc).to_have_attribute(args.name, value, timeout=ms),
    )
    if failed is None:
        return StepOutcome()
    states = _states(failed, args.name)
    if not states:
        found = "nothing matches"
    elif states[0]["attribute"] is None:
        found = f"it has no {args.name!r} attribute"
    else:
        found = f"its {args.name!r} is {states[0]['attribute']!r}"
    want = f"{args.value!r}" if args.value is not None else "present"
    raise _fail(step, f"the {args.name!r} of {args.selector!r} did not become {want}", found)


@runs("expect_aria", ExpectAria)
def expect_aria(ctx: StepContext, step: Step, args: ExpectAria) -> StepOutcome:
    failed = _retry(
        ctx,
        step,
        args.selector,
        args.frame,
        lambda loc, ms: expect(loc).to_match_aria_snapshot(args.snapshot, timeout=ms),
    )
    if failed is None:
        return StepOutcome()
    try:
        found = "nothing matches" if failed.count() == 0 else None
        if found is None:
            snapshot = failed.aria_snapshot(timeout=2000)
            found = f"its snapshot is:\n{snapshot[:2000]}"
    except PlaywrightError as exc:
        found = first_line(exc)
    raise _fail(step, f"{args.selector!r} does not match the aria snapshot", found)
