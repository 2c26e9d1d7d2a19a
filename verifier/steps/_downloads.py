"""``expect_download``: the newest file the pages downloaded, by name, size and text.

The run saves every download into the bundle after each step; this check also saves
the ones that come while it waits, so a slow export is waited for up to its timeout.
A download an earlier ``expect_download`` passed on is not checked again (an export
that fails the second time is not vouched for by the first), and a newer one that
failed or never finished fails the check, saying so.
"""

from __future__ import annotations

import codecs
import fnmatch
import time
from pathlib import Path

from verifier.errors import RecipeError, StepTimeout
from verifier.recipe import Step
from verifier.recipe.step_args import ExpectDownload
from verifier.steps._context import StepContext, StepOutcome, playwright_errors, runs

__all__ = ()

_CHUNK = 4 << 20


@runs("expect_download", ExpectDownload)
def expect_download(ctx: StepContext, step: Step, args: ExpectDownload) -> StepOutcome:
    if ctx.downloads_dir is None:
        msg = "expect_download: downloads are saved only in a run (it has no bundle here)"
        raise RecipeError(msg)
    deadline = time.monotonic() + step.timeout
    while True:
        remaining = deadline - time.monotonic()
        ctx.browser.save_downloads(ctx.downloads_dir, timeout=max(remaining, 0.5))
        ended = ctx.browser.downloads
        fresh = ended[ctx.downloads_checked :]
        problem: str | None
        if not fresh:
            problem = (
                "no file was downloaded since the last expect_download"
                if ctx.downloads_checked
                else "no file was downloaded"
            )
        else:
            problem = _problem(fresh[-1], args)
        if problem is None:
            ctx.downloads_checked = len(ended)
            name, path, _ = fresh[-1]
            assert path is not None
            return StepOutcome(details={"download": name, "bytes": path.stat().st_size})
        if time.monotonic() >= deadline:
            break
        # The page's events (a download starting) come in while the driver waits.
        with playwright_errors(ctx, "expect_download", step.timeout):
            ctx.browser.page.wait_for_timeout(min(remaining, 0.25) * 1000)
        ctx.check_infra()
    raise StepTimeout(f"expect_download: {problem}; waited {step.timeout:g} s")


def _problem(download: tuple[str, Path | None, str], args: ExpectDownload) -> str | None:
    """What is wrong with ``download`` for ``args``; None when nothing is."""
    name, path, why = download
    if args.name is not None and not fnmatch.fnmatchcase(name, args.name):
        return f"the newest download is {name!r}, whose name does not match {args.name!r}"
    if path is None:
        return f"the newest download {name!r} was not saved: {why}"
    size = path.stat().st_size
    if args.min_bytes is not None and size < args.min_bytes:
        return f"the download {name!r} has {size} bytes, fewer than {args.min_bytes}"
    needles = [n for n in (args.contains, args.not_contains) if n is not None]
    if not needles:
        return None
    found, first, bad = _scan(path, needles)
    if bad is not None:
        return f"the download {name!r} is not UTF-8 text (byte {bad})"
    if args.contains is not None and found[args.contains] is None:
        shown = f"; its first line is {first!r}" if first else "; its first line is empty"
        return f"the download {name!r} ({size} bytes) does not contain {args.contains!r}{shown}"
    if args.not_contains is not None and (at := found[args.not_contains]) is not None:
        line, text = at
        return f"the download {name!r} contains {args.not_contains!r} (line {line}: {text!r})"
    return None


def _scan(
    path: Path, needles: list[str]
) -> tuple[dict[str, tuple[int, str] | None], str, int | None]:
    """Read the whole file once: where each needle first is (its line number and that
    line, cut), the first line, and the offset of the first byte that is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    found: dict[str, tuple[int, str] | None] = dict.fromkeys(needles)
    # Kept from one chunk to the next: a needle across two is found, and shown in its line.
    keep = max(len(n) for n in needles) + 200
    tail, lines, head, offset = "", 0, "", 0
    with path.open("rb") as file:
        while True:
            data = file.read(_CHUNK)
            try:
                text = decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                return found, _first(head), offset + max(0, exc.start)
            offset += len(data)
            window = tail + text
            if "\n" not in head and len(head) < 1000:
                head += text[:1000]
            for needle in needles:
                if found[needle] is None and (at := window.find(needle)) >= 0:
                    line = lines + window.count("\n", 0, at)
                    start = window.rfind("\n", 0, at) + 1
                    stop = window.find("\n", at)
                    shown = window[start : stop if stop >= 0 else None].strip()[:200]
                    found[needle] = (line + 1, shown)
            if not data:
                return found, _first(head), None
            cut = max(0, len(window) - keep)
            lines += window.count("\n", 0, cut)
            tail = window[cut:]


def _first(head: str) -> str:
    return head.split("\n", 1)[0].strip()[:200]
