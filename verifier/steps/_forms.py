"""Form controls that open the browser's own popups: a select's list, a file chooser.

``select`` clicks the dropdown open and picks the option with the keyboard, as a person
does (the list is a popup window of the browser: keys go to it, never to the page, so
nothing waits for the page to see them); a list box (``multiple`` or ``size``) is
clicked on the option itself. ``upload`` clicks what opens the file chooser and answers
the chooser through the browser's file-chooser hook (the GTK dialog is not driven).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from verifier.desktop import Window
from verifier.errors import CheckFailed, RecipeError, StepTimeout
from verifier.recipe import Step, upload_file
from verifier.recipe.step_args import Select, Upload
from verifier.steps._aim import aim
from verifier.steps._context import (
    StepContext,
    StepOutcome,
    locate,
    no_dialog,
    playwright_errors,
    runs,
)
from verifier.steps._send import click_at

__all__ = ()

# The select's options as its list shows them, and what it has selected.
_OPTIONS_JS = """
(el) => {
  if (el.localName !== 'select') return null;
  const opts = [...el.options].map((o) => ({
    label: (o.label || o.text).replace(/\\s+/g, ' ').trim(),
    value: o.value,
    usable: !o.disabled && !(o.parentElement && o.parentElement.localName === 'optgroup'
                             && o.parentElement.disabled)
            && getComputedStyle(o).display !== 'none',
  }));
  return { options: opts, multiple: el.multiple, size: el.size, disabled: el.disabled,
           selected: [...el.selectedOptions].map((o) => o.index) };
}
"""
_SELECTED_JS = "([el, want]) => want.every((i) => el.options[i] && el.options[i].selected)"
# Kinds of window a dropdown's list is.
_LIST_KINDS = frozenset({"menu", "popup_menu", "dropdown_menu", "combo"})


def _pick(options: list[dict[str, Any]], want: str) -> int | None:
    """The option a person means by ``want``: its label, else its value."""
    norm = " ".join(want.split())
    for key in ("label", "value"):
        for index, option in enumerate(options):
            if (option[key] if key == "value" else option["label"]) == (
                want if key == "value" else norm
            ):
                return index
    return None


def _list_open(before: set[int]) -> Any:
    def ready(windows: list[Window]) -> bool:
        return any(
            w.override_redirect and w.id not in before and w.kind in _LIST_KINDS for w in windows
        )

    return ready


@runs("select", Select, settle=True)
def select(ctx: StepContext, step: Step, args: Select) -> StepOutcome:
    what = "select"
    wanted = [args.option] if isinstance(args.option, str) else list(args.option)
    at = aim(ctx, args.selector, args.frame, step.timeout, what)
    locator = locate(ctx.browser.page, args.selector, args.frame)
    with playwright_errors(ctx, f"{what}: {args.selector!r}", step.timeout, selector=args.selector):
        info = locator.evaluate(_OPTIONS_JS)
    if info is None:
        msg = f"{what}: {args.selector!r} is not a <select>; click its options instead"
        raise RecipeError(msg)
    if info["disabled"]:
        msg = f"{what}: {args.selector!r} is disabled"
        raise CheckFailed(msg)
    options: list[dict[str, Any]] = info["options"]
    indexes = []
    for want in wanted:
        index = _pick(options, want)
        if index is None:
            shown = ", ".join(repr(o["label"]) for o in options[:20])
            msg = f"{what}: {args.selector!r} has no option {want!r}; it has {shown}"
            raise CheckFailed(msg)
        if not options[index]["usable"]:
            msg = f"{what}: the option {want!r} of {args.selector!r} is disabled"
            raise CheckFailed(msg)
        indexes.append(index)
    if len(indexes) > 1 and not info["multiple"]:
        msg = f"{what}: {args.selector!r} takes one option, not {len(indexes)}"
        raise RecipeError(msg)
    points = [at.point]
    if info["multiple"] or info["size"] > 1:
        points = _pick_in_list(ctx, step, args, indexes)
    else:
        _pick_in_dropdown(ctx, step, at.point, at.frame, options, indexes[0])
    # The page has the pick once the list has handed it over (input, change events).
    with playwright_errors(ctx, f"{what}: {args.selector!r}", step.timeout):
        handle = locator.element_handle(timeout=step.timeout * 1000)
        try:
            (handle.owner_frame() or ctx.browser.page.main_frame).wait_for_function(
                _SELECTED_JS,
                arg=[handle, indexes],
                polling=10,
                timeout=min(step.timeout, 5.0) * 1000,
            )
        except PlaywrightTimeout:
            now = handle.evaluate("(el) => [...el.selectedOptions].map((o) => o.label)")
            msg = f"{what}: {', '.join(map(repr, wanted))} was not selected; it shows {now!r}"
            raise StepTimeout(msg) from None
        finally:
            handle.dispose()
    return StepOutcome(points=points, details={"option": wanted if len(wanted) > 1 else wanted[0]})


def _pick_in_dropdown(
    ctx: StepContext,
    step: Step,
    point: tuple[int, int],
    frame: Any,
    options: list[dict[str, Any]],
    index: int,
) -> None:
    """Click the dropdown open, then Home, Down to the option (the list skips disabled
    ones), Enter: keys into the browser's list window, which the page never sees."""
    before = {w.id for w in ctx.desktop.windows()}
    click_at(ctx, point, frame=frame, timeout=step.timeout)
    if not ctx.desktop.wait_windows(_list_open(before), timeout=min(step.timeout, 5.0)):
        msg = f"select: clicking {step.target!r} opened no list of options"
        raise CheckFailed(msg)
    downs = sum(1 for option in options[:index] if option["usable"])
    ctx.desktop.key("Home")
    for _ in range(downs):
        ctx.desktop.key("Down")
    ctx.desktop.key("Return")
    ctx.desktop.wait_windows(
        lambda windows: not _list_open(before)(windows), timeout=min(step.timeout, 2.0)
    )


def _pick_in_list(
    ctx: StepContext, step: Step, args: Select, indexes: list[int]
) -> list[tuple[int, int]]:
    """A list box: click each option (Control held for the second and later)."""
    points = []
    for n, index in enumerate(indexes):
        option = f"{args.selector} >> option >> nth={index}"
        at = aim(ctx, option, args.frame, step.timeout, "select")
        if n:
            ctx.desktop.key_down("Control")
        try:
            click_at(ctx, at.point, frame=at.frame, timeout=step.timeout)
        finally:
            if n:
                ctx.desktop.key_up("Control")
        points.append(at.point)
    return points


@runs("upload", Upload, settle=True)
def upload_files(ctx: StepContext, step: Step, args: Upload) -> StepOutcome:
    what = "upload"
    base = ctx.recipe_path.parent if ctx.recipe_path is not None else Path.cwd()
    try:  # again now: a link beside the recipe may have changed since it was loaded
        files = [upload_file(base, name) for name in args.files]
    except RecipeError as exc:
        raise RecipeError(f"{what}: {exc.message}") from None
    for name, path in zip(args.files, files, strict=True):
        if not path.is_file():
            msg = f"{what}: no file {name!r} (looked for {path})"
            raise RecipeError(msg)
    no_dialog(ctx, what)
    page = ctx.browser.page
    locator = locate(page, args.selector, args.frame)
    with playwright_errors(
        ctx, f"{what}: nothing matches {args.selector!r}", step.timeout, selector=args.selector
    ):
        ctx.wait(step.timeout, lambda ms: locator.wait_for(state="attached", timeout=ms), what)
        hidden_input = locator.evaluate(
            "(el) => el.localName === 'input' && el.type === 'file' && !el.checkVisibility()"
        )
    facts: dict[str, object] = {"files": list(args.files)}
    if hidden_input:
        # A styled page hides its file input behind a button or label; a person clicks
        # that. Given the input itself, the files go to it as the chooser would put them.
        with playwright_errors(ctx, f"{what}: {args.selector!r}", step.timeout):
            locator.set_input_files(files, timeout=step.timeout * 1000)
        facts["through"] = "the hidden file input"
        return StepOutcome(details=facts)
    at = aim(ctx, args.selector, args.frame, step.timeout, what)
    try:
        with page.expect_file_chooser(timeout=step.timeout * 1000) as chooser:
            # The browser hands us the chooser once it knows we listen: a round trip to
            # the page makes sure it does before the click.
            page.evaluate("0")
            click_at(ctx, at.point, frame=at.frame, timeout=step.timeout)
    except PlaywrightTimeout:
        msg = f"{what}: clicking {args.selector!r} opened no file chooser"
        raise CheckFailed(msg) from None
    except PlaywrightError as exc:
        raise CheckFailed(f"{what}: {exc}") from exc
    try:
        chooser.value.set_files(files, timeout=step.timeout * 1000)
    except PlaywrightError as exc:
        if "multiple" in str(exc).lower():
            msg = f"{what}: {args.selector!r} takes one file, not {len(files)}"
            raise RecipeError(msg) from None
        raise CheckFailed(f"{what}: {exc}") from exc
    facts["through"] = "the file chooser"
    return StepOutcome(points=[at.point], details=facts)
