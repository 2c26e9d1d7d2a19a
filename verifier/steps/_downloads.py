"""``expect_download``: the newest file the pages downloaded, by name, size and text.

The run saves every download into the bundle after each step; this check also saves
the ones that come while it waits, so a slow export is waited for up to its timeout.
"""

from __future__ import annotations

import fnmatch
import time
from pathlib import Path

from verifier.errors import RecipeError, StepTimeout
from verifier.recipe import Step
from verifier.recipe.steps import ExpectDownload
from verifier.steps._context import StepContext, StepOutcome, playwright_errors, runs

__all__ = ()

# The most of a download read for its text checks.
_READ_LIMIT = 64 << 20


@runs("expect_download", ExpectDownload)
def expect_download(ctx: StepContext, step: Step, args: ExpectDownload) -> StepOutcome:
    if ctx.downloads_dir is None:
        msg = "expect_download: downloads are saved only in a run (it has no bundle here)"
        raise RecipeError(msg)
    deadline = time.monotonic() + step.timeout
    while True:
        remaining = deadline - time.monotonic()
        ctx.browser.save_downloads(ctx.downloads_dir, timeout=max(remaining, 1.0))
        saved = ctx.browser.downloaded
        problem = _problem(saved[-1], args) if saved else "no file was downloaded"
        if problem is None:
            name, path = saved[-1]
            return StepOutcome(details={"download": name, "bytes": path.stat().st_size})
        if time.monotonic() >= deadline:
            break
        # The page's events (a download starting) come in while the driver waits.
        with playwright_errors(ctx, "expect_download", step.timeout):
            ctx.browser.page.wait_for_timeout(min(remaining, 0.25) * 1000)
        ctx.check_infra()
    raise StepTimeout(f"expect_download: {problem}; waited {step.timeout:g} s")


def _problem(download: tuple[str, Path], args: ExpectDownload) -> str | None:
    """What is wrong with ``download`` for ``args``; None when nothing is."""
    name, path = download
    if args.name is not None and not fnmatch.fnmatchcase(name, args.name):
        return f"the newest download is {name!r}, whose name does not match {args.name!r}"
    size = path.stat().st_size
    if args.min_bytes is not None and size < args.min_bytes:
        return f"the download {name!r} has {size} bytes, fewer than {args.min_bytes}"
    if args.contains is None and args.not_contains is None:
        return None
    with path.open("rb") as file:
        data = file.read(_READ_LIMIT)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(data) - 3:  # not a character cut at the limit
            return f"the download {name!r} is not UTF-8 text (byte {exc.start})"
        text = data[: exc.start].decode("utf-8")
    if args.contains is not None and args.contains not in text:
        where = f" (in its first {_READ_LIMIT >> 20} MiB)" if size > _READ_LIMIT else ""
        first = text.split("\n", 1)[0].strip()[:200]
        shown = f"; its first line is {first!r}" if text.strip() else "; it is empty"
        return (
            f"the download {name!r} ({size} bytes) does not contain {args.contains!r}{where}{shown}"
        )
    if args.not_contains is not None and args.not_contains in text:
        line = text.count("\n", 0, text.index(args.not_contains))
        shown = text.split("\n")[line].strip()[:200]
        return f"the download {name!r} contains {args.not_contains!r} (line {line + 1}: {shown!r})"
    return None
