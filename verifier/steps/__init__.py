"""Steps: the one registry of recipe actions and checks, run against a live desktop."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

from verifier.errors import BrowserError, CheckFailed, StepTimeout, VerifierError
from verifier.recipe import STEP_SCHEMAS, Step
from verifier.steps import (  # noqa: F401 - they register their runners
    _actions,
    _checks,
    _downloads,
    _forms,
    _pages,
    _state,
    _text,
    _vision,
)
from verifier.steps._aim import DEEP_HIT_JS, Aim, aim, pointer_elsewhere, viewport_at
from verifier.steps._context import (
    RUNNERS,
    SETTLING,
    StepContext,
    StepOutcome,
    TabClosed,
    no_dialog,
)
from verifier.steps._send import click_at, drag_between, frame_at, keys, pointer_input, wheel_at

__all__ = (
    "DEEP_HIT_JS",
    "RUNNERS",
    "Aim",
    "SETTLING",
    "STEP_GRACE_S",
    "StepContext",
    "StepOutcome",
    "aim",
    "click_at",
    "drag_between",
    "frame_at",
    "keys",
    "pointer_elsewhere",
    "pointer_input",
    "run_step",
    "step_budget",
    "viewport_at",
    "wheel_at",
)

_log = logging.getLogger(__name__)

_missing = set(STEP_SCHEMAS) ^ set(RUNNERS)
assert not _missing, f"steps without a schema or a runner: {_missing}"


# What a step may take past its own timeout before everything it asks is called off.
STEP_GRACE_S = 5.0
# How often a check that met a browser whose news was behind is checked again, and the
# least time it is given then.
_RECHECKS = 2
_RECHECK_S = 1.0


def step_budget(step: Step) -> float:
    """How long ``step`` may ask the browser: its timeout (a wait: its seconds) plus
    :data:`STEP_GRACE_S`."""
    seconds = getattr(step.args, "seconds", None)
    own = max(step.timeout, seconds if isinstance(seconds, int | float) else 0.0)
    return own + STEP_GRACE_S


def run_step(ctx: StepContext, step: Step) -> StepOutcome:
    """Run one step within :func:`step_budget`; raises CheckFailed (the app is wrong) or
    another VerifierError. A page that answers nothing within it fails the step."""
    budget = step_budget(step)
    with ctx.browser.deadline(budget, f"step {step.index + 1} ({step.action})") as limit:
        try:
            if _looks(step):
                return _on_news(ctx, step)
            if ctx.browser.behind:  # an action acts on the tab in front by then, too
                ctx.browser.sync()
            return _on_open_tab(ctx, step)
        except asyncio.CancelledError:
            if not limit.expired:
                # A call to the page was called off: a dialog opened and holds it.
                no_dialog(ctx, step.action)
                msg = f"{step.action}: a call to the browser was cancelled"
                raise BrowserError(msg) from None
            raise _unanswered(ctx, step, budget) from None
        except VerifierError as exc:
            if limit.expired and not isinstance(exc, CheckFailed):
                raise _unanswered(ctx, step, budget) from exc
            raise


def _on_news(ctx: StepContext, step: Step) -> StepOutcome:
    """Run a check (or a wait) on all the browser has said before it. Behind a page's
    flood (100,000 console lines at once, say) a round trip to the browser goes unanswered
    and what it said meanwhile is not in: a check then passed on the tab before the one
    that had opened, or on the URL before a navigation. So a check that passed while the
    news was behind (it started so, or met such a round trip), or while news came (a
    tab opened, it navigated, a dialog), takes the news in and is checked again; while
    the news stays behind, it fails. (One that fails, fails.)"""
    browser = ctx.browser
    began = time.monotonic()
    checked = ctx.downloads_checked
    for attempt in range(_RECHECKS + 1):
        behind, missed, news = browser.behind, browser.missed, browser.news()
        outcome = _on_open_tab(ctx, step)
        stale = behind or browser.missed != missed
        if not stale and (browser.news() == news or attempt == _RECHECKS):
            return outcome
        browser.sync()
        if browser.behind:
            break
        why = "was behind" if stale else "came meanwhile"
        _log.info("step %d: the browser's news %s: checking again", step.index + 1, why)
        ctx.downloads_checked = checked  # (the download it passed on counts again)
        left = step.timeout - (time.monotonic() - began)
        step = dataclasses.replace(step, timeout=round(max(left, _RECHECK_S), 1))
    msg = (
        f"{step.action}: the browser's news stayed behind ({browser.lag()}): a tab, "
        "navigation or dialog may have come that the check would not see"
    )
    raise StepTimeout(msg)


def _on_open_tab(ctx: StepContext, step: Step) -> StepOutcome:
    """Run ``step``; when the tab it acts on closes meanwhile (an OAuth popup, a print
    view): an action whose key or button went out is done; one whose input never went
    out fails (its target went with the tab: it is not tried on another); a check goes
    on with the tab that opened it, for the rest of its timeout."""
    began = time.monotonic()
    closed: list[str] = []  # what happened, for a check that fails on the next tab
    while True:
        pressed = ctx.desktop.presses
        try:
            return RUNNERS[step.action](ctx, step)
        except TabClosed as exc:
            ctx.check_infra()  # no tab left: said so
            if ctx.desktop.presses != pressed:  # a key or button of its went out: it acted
                return StepOutcome(note="its tab closed after its input")
            if not _looks(step):
                gone = ctx.browser.closed_tabs
                where = f" ({gone[-1]['url']})" if gone else ""
                msg = f"{step.action}: the tab it acted on{where} closed before its input went out"
                raise CheckFailed(msg) from exc
            after = time.monotonic() - began
            left = round(step.timeout - after, 1)
            closed.append(f"the tab it acted on closed itself after {after:.1f} s")
            if left <= 0:
                raise CheckFailed(f"{exc.message}, with no time left to check again") from exc
            step = dataclasses.replace(step, timeout=left)
        except CheckFailed as exc:
            if not closed:
                raise
            then = f"; {', then '.join(closed)}, and the step went on with tab {ctx.browser.tab}"
            raise CheckFailed(exc.message + then, details=exc.details) from exc


def _looks(step: Step) -> bool:
    """Whether ``step`` only looks at the page (a check, or a wait for something)."""
    return step.action.startswith("expect_") or step.action == "wait_for"


def _unanswered(ctx: StepContext, step: Step, budget: float) -> StepTimeout:
    browser = ctx.browser
    why = browser.lag() if browser.behind else browser.silence()
    return StepTimeout(f"{step.action}: not within {budget - STEP_GRACE_S:g} s: {why}")
