"""Where the browser is: going to pages, back and forward, reloading, switching tabs,
and answering the dialogs pages open."""

from __future__ import annotations

import time
from asyncio import CancelledError
from collections.abc import Callable

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Response
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from verifier.errors import CheckFailed, RecipeError
from verifier.recipe import Step, is_file_url
from verifier.recipe.step_args import Dialog, GoBack, GoForward, Goto, Reload, SwitchTab
from verifier.steps._aim import raise_page
from verifier.steps._context import StepContext, StepOutcome, no_dialog, playwright_errors, runs

__all__ = ()


def _loaded(ctx: StepContext, what: str, status: int | None) -> StepOutcome:
    if status is not None and status >= 400:
        msg = f"{what}: the server answered HTTP {status}"
        raise CheckFailed(msg)
    # Chromium holds input to a new document until it has painted: wait for its frames,
    # so that the next step's input is not lost.
    ctx.browser.next_frame()
    return StepOutcome()


@runs("goto", Goto, settle=True)
def goto(ctx: StepContext, step: Step, args: Goto) -> StepOutcome:
    url = ctx.resolve_url(args.url)
    if is_file_url(url) and not ctx.allow_file_urls:
        # The loader refuses these too; a relative URL joined to an odd base ends here.
        msg = (
            f"goto: {url[:200]!r} is a file:// URL, refused unless the recipe says "
            "'allow_file_urls: true'"
        )
        raise RecipeError(msg)
    no_dialog(ctx, f"goto {url}")
    return _navigate(ctx, step, f"goto {url}", lambda page, ms: page.goto(url, timeout=ms))


def _navigate(
    ctx: StepContext,
    step: Step,
    what: str,
    go: Callable[[Page, float], Response | None],
) -> StepOutcome:
    """Navigate, waiting for the load event; a page that opens a dialog while it loads
    (an alert in an inline script) is loaded as far as it goes until the dialog is
    answered, by the next steps."""
    page = ctx.browser.page
    try:
        with playwright_errors(ctx, what, step.timeout):
            response = go(page, step.timeout * 1000)
    except CheckFailed:
        if ctx.browser.dialog_on(page) is None:
            raise
        return StepOutcome(note="a dialog opened while the page loaded")
    return _loaded(ctx, what, response.status if response is not None else None)


@runs("reload", Reload, settle=True)
def reload(ctx: StepContext, step: Step, args: Reload) -> StepOutcome:
    no_dialog(ctx, "reload")
    return _navigate(ctx, step, "reload", lambda page, ms: page.reload(timeout=ms))


@runs("go_back", GoBack, settle=True)
def go_back(ctx: StepContext, step: Step, args: GoBack) -> StepOutcome:
    return _history(ctx, step, "go_back", Page.go_back, "before")


@runs("go_forward", GoForward, settle=True)
def go_forward(ctx: StepContext, step: Step, args: GoForward) -> StepOutcome:
    return _history(ctx, step, "go_forward", Page.go_forward, "after")


def _history(
    ctx: StepContext,
    step: Step,
    what: str,
    move: Callable[..., Response | None],
    where: str,
) -> StepOutcome:
    """Back or forward one page in the tab's history (``move``: Page.go_back or
    go_forward); fails when there is no page ``where`` this one."""
    no_dialog(ctx, what)
    page = ctx.browser.page
    before = page.url
    history = _history_of(page)
    if history is not None:
        current, count = history
        if current + (1 if where == "after" else -1) not in range(count):
            msg = f"{what}: there is no page {where} {before!r} in this tab's history"
            raise CheckFailed(msg)
    answers: list[Response | None] = []

    def go(page: Page, ms: float) -> Response | None:
        answers.append(move(page, timeout=ms))
        return answers[-1]

    outcome = _navigate(ctx, step, what, go)
    # Unknown history: a move that went nowhere says there was no page there (an entry
    # of the same URL, pushState's, moves without changing it).
    if history is None and answers == [None] and page.url == before:
        msg = f"{what}: there is no page {where} {before!r} in this tab's history"
        raise CheckFailed(msg)
    return outcome


def _history_of(page: Page) -> tuple[int, int] | None:
    """Where the tab is in its history, and how many entries it has (None: not told)."""
    try:
        cdp = page.context.new_cdp_session(page)
        try:
            history = cdp.send("Page.getNavigationHistory")
        finally:
            cdp.detach()
        return int(history["currentIndex"]), len(history["entries"])
    except (PlaywrightError, KeyError, TypeError, ValueError, CancelledError):
        return None


def _describe_tabs(ctx: StepContext, tabs: list[Page]) -> str:
    shown = []
    for n, page in enumerate(tabs[:10]):
        title = ctx.browser.title_of(page)
        shown.append(f"{n}: {title!r} {page.url}" if title else f"{n}: {page.url}")
    more = f" and {len(tabs) - 10} more" if len(tabs) > 10 else ""
    return "; ".join(shown) + more


def _find_tab(ctx: StepContext, tabs: list[Page], want: int | str) -> Page | None:
    if isinstance(want, int):
        return tabs[want] if want < len(tabs) else None
    needle = want.casefold()
    for page in reversed(tabs):  # the newest that matches
        if needle in page.url.casefold() or needle in ctx.browser.title_of(page).casefold():
            return page
    return None


@runs("switch_tab", SwitchTab, settle=True)
def switch_tab(ctx: StepContext, step: Step, args: SwitchTab) -> StepOutcome:
    """Bring a tab (or popup) to the front, waiting up to the timeout for it to open."""
    browser = ctx.browser
    deadline = time.monotonic() + step.timeout
    while (page := _find_tab(ctx, browser.tabs, args.tab)) is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            msg = (
                f"switch_tab: no tab has {args.tab!r} in its title or URL within {step.timeout:g} s"
                if isinstance(args.tab, str)
                else f"switch_tab: no tab {args.tab} within {step.timeout:g} s"
            )
            raise CheckFailed(f"{msg}; the tabs: {_describe_tabs(ctx, browser.tabs)}")
        try:
            browser.page.context.wait_for_event("page", timeout=min(remaining, 1.0) * 1000)
        except (PlaywrightTimeout, CancelledError):
            ctx.check_infra()
    browser.switch_tab(page, timeout=min(step.timeout, 5.0))
    raise_page(ctx, timeout=min(step.timeout, 2.0))
    return StepOutcome(details={"tab": browser.tab, "url": page.url})


@runs("dialog", Dialog, settle=True)
def dialog(ctx: StepContext, step: Step, args: Dialog) -> StepOutcome:
    """Answer the open dialog; wait up to the timeout for one to open."""
    event = ctx.browser.wait_dialog(step.timeout)
    if event is None:
        msg = f"dialog: no alert, confirm or prompt opened within {step.timeout:g} s"
        if ctx.browser.behind:
            msg += f" (as far as is known: {ctx.browser.lag()})"
        raise CheckFailed(msg)
    facts: dict[str, object] = {"dialog": event.type, "message": event.message}
    if args.expect is not None and " ".join(args.expect.split()) not in " ".join(
        event.message.split()
    ):
        msg = f"dialog: the {event.type} says {event.message!r}, not {args.expect!r}"
        raise CheckFailed(msg, details=facts)
    ctx.browser.answer_dialog(event, accept=args.action == "accept", text=args.text)
    facts["answer"] = event.answer
    if args.text is not None:
        facts["typed"] = args.text
    return StepOutcome(details=facts)
