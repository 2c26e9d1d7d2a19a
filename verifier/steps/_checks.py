"""Checks: conditions on the page, each waited for up to the step's timeout."""

from __future__ import annotations

import fnmatch

from playwright.sync_api import Error as PlaywrightError

from verifier.errors import StepTimeout
from verifier.recipe import Step
from verifier.recipe.steps import ExpectText, ExpectUrl, ExpectVisible, WaitFor
from verifier.steps import _vision
from verifier.steps._context import StepContext, StepOutcome, first_line, playwright_errors, runs

__all__ = ()

_VISIBLE_TEXT_JS = """
(sel) => {
  const root = sel ? document.querySelector(sel) : document.body;
  return root ? (root.innerText || '').replace(/\\s+/g, ' ').trim() : null;
}
"""


def normalize(text: str) -> str:
    return " ".join(text.split())


@runs("wait_for", WaitFor)
def wait_for(ctx: StepContext, step: Step, args: WaitFor) -> StepOutcome:
    if args.image is not None:
        return _vision.wait_for_image(ctx, step, args)
    assert args.selector is not None
    with playwright_errors(
        ctx, f"wait_for: {args.selector!r} did not become {args.state}", step.timeout
    ):
        first = ctx.browser.page.locator(args.selector).first
        ctx.wait(step.timeout, lambda ms: first.wait_for(state=args.state, timeout=ms))
    return StepOutcome()


@runs("expect_visible", ExpectVisible)
def expect_visible(ctx: StepContext, step: Step, args: ExpectVisible) -> StepOutcome:
    locator = ctx.browser.page.locator(args.selector)
    try:
        with playwright_errors(
            ctx, f"expect_visible: no visible element matches {args.selector!r}", step.timeout
        ):
            ctx.wait(step.timeout, lambda ms: locator.first.wait_for(state="visible", timeout=ms))
    except StepTimeout as exc:
        try:
            count = locator.count()
        except PlaywrightError:
            raise exc from None
        detail = f" ({count} match but none is visible)" if count else " (none matches)"
        raise StepTimeout(exc.message + detail) from None
    return StepOutcome()


@runs("expect_text", ExpectText)
def expect_text(ctx: StepContext, step: Step, args: ExpectText) -> StepOutcome:
    want = normalize(args.text)
    page = ctx.browser.page
    scope = f" in {args.selector!r}" if args.selector else ""
    try:
        with playwright_errors(
            ctx, f"expect_text: {want!r} not in the visible text{scope}", step.timeout
        ):
            ctx.wait(
                step.timeout,
                lambda ms: page.wait_for_function(
                    f"([sel, want]) => {{ const t = ({_VISIBLE_TEXT_JS})(sel);"
                    " return t !== null && t.includes(want); }",
                    arg=[args.selector, want],
                    polling=50,
                    timeout=ms,
                ),
            )
    except StepTimeout as exc:
        try:
            shown = page.evaluate(_VISIBLE_TEXT_JS, args.selector)
        except PlaywrightError as inner:
            shown = f"<unreadable: {first_line(inner)}>"
        if shown is None:
            detail = f"; {args.selector!r} matches nothing"
        else:
            shown = shown if len(shown) <= 200 else shown[:197] + "..."
            detail = f"; the page shows {shown!r}"
        raise StepTimeout(exc.message + detail) from None
    return StepOutcome()


def _url_matches(actual: str, expected: str) -> bool:
    if any(ch in expected for ch in "*?["):
        return fnmatch.fnmatchcase(actual, expected)
    return actual == expected or actual.rstrip("/") == expected.rstrip("/")


@runs("expect_url", ExpectUrl)
def expect_url(ctx: StepContext, step: Step, args: ExpectUrl) -> StepOutcome:
    expected = ctx.resolve_url(args.url)
    page = ctx.browser.page
    try:
        with playwright_errors(
            ctx, f"expect_url: the URL did not become {expected!r}", step.timeout
        ):
            ctx.wait(
                step.timeout,
                lambda ms: page.wait_for_url(lambda url: _url_matches(url, expected), timeout=ms),
            )
    except StepTimeout as exc:
        raise StepTimeout(f"{exc.message}; it is {page.url!r}") from None
    return StepOutcome()
