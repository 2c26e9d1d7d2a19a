"""What a step runs against, what it reports, and the one registry of step runners."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import FrameLocator, Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from verifier._types import Image
from verifier.browser import Browser
from verifier.desktop import Desktop
from verifier.errors import BrowserError, CheckFailed, RecipeError, StepTimeout
from verifier.recipe import PORTS_REF, Step, StepArgs

__all__ = (
    "DESCRIBE_EL_JS",
    "DESCRIBE_JS",
    "RUNNERS",
    "SETTLING",
    "StepContext",
    "StepOutcome",
    "TabClosed",
    "ambiguous",
    "first_line",
    "in_frames",
    "locate",
    "no_dialog",
    "playwright_errors",
    "runs",
    "single",
)

# A script fragment: ``describe(el)``, a short description of an element for messages:
# <tag#id.class> "text".
DESCRIBE_EL_JS = """
const describe = (el) => {
  if (!el) return 'nothing (the point is outside the page)';
  const id = el.id ? '#' + el.id : '';
  const cls = el.classList && el.classList.length
    ? '.' + [...el.classList].slice(0, 3).join('.') : '';
  const text = (el.innerText || el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 40);
  return '<' + el.localName + id + cls + '>' + (text ? ' "' + text + '"' : '');
};
"""
# The first five of several elements, described.
DESCRIBE_JS = f"(els) => {{ {DESCRIBE_EL_JS} return els.slice(0, 5).map(describe); }}"


class TabClosed(BrowserError):
    """The tab a step acted on closed while it did (Chromium lives on): the step goes on
    with the tab that opened it (see :func:`verifier.steps.run_step`)."""


@dataclass(slots=True)
class StepContext:
    """The live run a step acts on."""

    desktop: Desktop
    browser: Browser
    base_url: str | None
    recipe_path: Path | None = None  # baselines and image targets live beside the recipe
    update_baselines: bool = False  # --update-baselines: (re)write baselines and pass
    attach_fn: Callable[[str, Image], str] | None = None
    infra_check: Callable[[], None] | None = None
    allow_file_urls: bool = False  # the recipe's allow_file_urls
    # Each service of the app that has a URL: its name and origin in this run.
    services: dict[str, str] = field(default_factory=dict)
    downloads_dir: Path | None = None  # where the pages' downloads are saved
    downloads_checked: int = 0  # the downloads an expect_download passed on, and those before

    def attach(self, name: str, image: Image) -> str | None:
        """Save an extra evidence image (RGB) for the current step, e.g. a visual diff.

        Returns its bundle-relative path (None outside a run). The runner lists it on the
        step's record under ``attachments``.
        """
        return self.attach_fn(name, image) if self.attach_fn is not None else None

    def check_infra(self) -> None:
        """Raise if the display, app, recorder or browser has died (exit 2)."""
        if self.infra_check is not None:
            self.infra_check()
        else:
            self.browser.check_alive()

    def wait(self, timeout: float, wait: Callable[[float], object], what: str = "") -> None:
        """Run a Playwright wait (``wait(timeout_ms)``) in slices of at most a second.

        Between slices it checks that what the run stands on is alive, so a dev server or
        Xvfb dying during a 60 s wait fails the run at once, naming what died; and that no
        dialog has opened, which holds up the page (``what``: the step, for the message).
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                wait(max(50.0, min(remaining, 1.0) * 1000))
                return
            except PlaywrightTimeout:
                self.check_infra()
                no_dialog(self, what or "the step")
                if time.monotonic() >= deadline:
                    raise

    def resolve_url(self, url: str) -> str:
        """``url`` with ``{ports.NAME}`` filled in (a service's port in this run), joined
        to the base URL.

        :raises RecipeError: it names a service this run has no URL of.
        """

        def port(ref: re.Match[str]) -> str:
            number = urlsplit(self.services.get(ref[1], "")).port
            if number is None:
                msg = f"{url!r}: {{ports.{ref[1]}}}: no service {ref[1]!r} with a port in this run"
                raise RecipeError(msg)
            return str(number)

        url = PORTS_REF.sub(port, url)
        return urljoin(self.base_url, url) if self.base_url else url


@dataclass(slots=True)
class StepOutcome:
    """What a step did: screen points it acted on, and a label for its screenshot."""

    points: list[tuple[int, int]] = field(default_factory=list)
    path: bool = False  # the points are one gesture (a drag), not separate clicks
    label: str = ""
    # Structured facts for the manifest's step record (a match score and box, diff counts).
    # A failing check passes them as CheckFailed(..., details=...).
    details: dict[str, object] = field(default_factory=dict)
    note: str = ""


A = TypeVar("A", bound=StepArgs)
Runner = Callable[[StepContext, Step], StepOutcome]
RUNNERS: dict[str, Runner] = {}
# Steps whose evidence screenshot waits for the page to hold still over two frames (a
# check's waits for one): actions, and the screenshot step, which shows a settled page.
SETTLING: set[str] = set()


TypedRunner = Callable[[StepContext, Step, A], StepOutcome]


def runs(
    action: str, args_type: type[A], *, settle: bool = False
) -> Callable[[TypedRunner[A]], Runner]:
    """Register the runner of ``action``; it receives the step's typed arguments.

    :param settle: the step changes what is on screen (see ``SETTLING``).
    """

    def register(fn: TypedRunner[A]) -> Runner:
        def runner(ctx: StepContext, step: Step) -> StepOutcome:
            assert isinstance(step.args, args_type)
            return fn(ctx, step, step.args)

        runner.__name__ = fn.__name__
        RUNNERS[action] = runner
        if settle:
            SETTLING.add(action)
        return runner

    return register


def in_frames(selector: str, frames: Sequence[str]) -> bool:
    """Whether the element is inside iframes (``frame:``, or Playwright's enter-frame)."""
    return bool(frames) or "internal:control=enter-frame" in selector


def locate(page: Page, selector: str, frames: Sequence[str] = ()) -> Locator:
    """``selector`` in the page, inside the iframes ``frames`` names, outermost first."""
    scope: Page | FrameLocator = page
    for frame in frames:
        scope = scope.frame_locator(frame)
    return scope.locator(selector)


def ambiguous(what: str, selector: str, matches: Sequence[str], count: int) -> RecipeError:
    """Exit 2: a step that needs one element got several, so the recipe does not say
    which one it means."""
    shown = [m if len(m) <= 100 else m[:99] + "…" for m in matches[:5]]
    listed = " ".join(f"{n}) {m}" for n, m in enumerate(shown, start=1))
    more = f" and {count - 5} more" if count > 5 else ""
    msg = (
        f"{what}: the recipe is ambiguous: {selector!r} matches {count} elements where one "
        f"is needed: {listed}{more}; make the selector match one (a more precise selector, "
        "or >> nth=0)"
    )
    return RecipeError(msg)


_STRICT = re.compile(r"resolved to (\d+) elements")
_STRICT_ITEM = re.compile(r"^\s*\d+\) (.+?)(?: aka .*)?$", re.MULTILINE)


def single(what: str, selector: str, locator: Locator) -> None:
    """Raise :func:`ambiguous` when ``locator`` matches several elements now."""
    count = locator.count()
    if count > 1:
        raise ambiguous(what, selector, locator.evaluate_all(DESCRIBE_JS), count)


def no_dialog(ctx: StepContext, what: str) -> None:
    """A step that needs the page fails, saying so, while a dialog holds the page."""
    event = ctx.browser.dialog
    if event is not None:
        msg = (
            f"{what}: a dialog is open on the page ({event.describe()}), and nothing on it "
            "can be reached until it is answered: add a step '- dialog: accept' (or "
            "dismiss), or press Enter"
        )
        raise CheckFailed(msg, details={"dialog": event.record()})


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # Playwright appends a call log after a blank line or "Call log:"; keep the headline.
    head = text.split("Call log:")[0].strip().splitlines()
    return head[0] if head else type(exc).__name__


@contextlib.contextmanager
def playwright_errors(
    ctx: StepContext, what: str, timeout: float, *, selector: str | None = None
) -> Iterator[None]:
    """Translate Playwright's exceptions into ours at the step boundary (``what`` starts
    with the step's action; ``selector`` is named when it proves ambiguous)."""
    try:
        yield
    except asyncio.CancelledError:
        # Called off because a dialog holds the page (Browser._unstick).
        ctx.check_infra()
        no_dialog(ctx, what.partition(":")[0])
        raise
    except PlaywrightTimeout as exc:
        ctx.check_infra()
        msg = f"{what}: not within {timeout:g} s"
        if not ctx.browser.answers():
            msg += f"; {ctx.browser.silence()}"
        raise StepTimeout(msg) from exc
    except PlaywrightError as exc:
        # A dead X server or dev server explains a browser error better than the browser.
        ctx.check_infra()
        text = str(exc)
        if "strict mode violation" in text and (found := _STRICT.search(text)):
            items = _STRICT_ITEM.findall(text.split("Call log:")[0])
            step = what.partition(":")[0]
            raise ambiguous(step, selector or "the selector", items, int(found[1])) from None
        if "Target page, context or browser has been closed" in text:
            if ctx.browser.lost_tab():
                msg = f"{what}: the tab it acted on closed"
                raise TabClosed(msg) from exc
            msg = f"browser died during {what}"
            raise BrowserError(msg) from exc
        msg = f"{what}: {first_line(exc)}"
        raise CheckFailed(msg) from exc
