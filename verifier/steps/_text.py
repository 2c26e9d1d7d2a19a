"""Text checks: what a person reads on the page, open shadow roots included.

The visible text is read the way ``innerText`` reads it (hidden elements left out,
whitespace normalized), but through open shadow roots and the slots that place content
in them, which ``innerText`` does not enter. ``expect_text`` finds a part of it, some
element's whole text (``exact``), or a regular expression (``pattern``);
``expect_no_text`` the opposite. Each waits in the page until it holds.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import time
from typing import Any

from playwright.sync_api import ElementHandle, Frame
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from verifier.errors import RecipeError, StepTimeout
from verifier.recipe import Step
from verifier.recipe.steps import ExpectNoText, ExpectText
from verifier.steps._context import (
    StepContext,
    StepOutcome,
    first_line,
    locate,
    no_dialog,
    playwright_errors,
    runs,
)

__all__ = ()

# The visible text under each root ({text, parts}); with ``keep``, every element's own
# whole text too (for exact matches and for the closest text in a failure message).
_TEXT_JS = """
(roots, keep) => {
  const parts = keep ? [] : null;
  const skip = new Set(['script', 'style', 'template', 'noscript', 'head', 'title']);
  const shown = new Map();
  const visible = (el) => {
    let v = shown.get(el);
    if (v === undefined) {
      v = el.checkVisibility ? el.checkVisibility({ visibilityProperty: true }) : true;
      shown.set(el, v);
    }
    return v;
  };
  const inline = (el) => {
    const d = getComputedStyle(el).display;
    return d.startsWith('inline') || d === 'contents' || d.startsWith('ruby');
  };
  const walk = (node) => {
    if (node.nodeType === 3) {
      const parent = node.parentElement || (node.parentNode && node.parentNode.host);
      return parent && !visible(parent) ? '' : node.data;
    }
    if (node.nodeType === 11) return kids(node.childNodes);
    if (node.nodeType !== 1 || skip.has(node.localName)) return '';
    const el = node;
    if (el.localName === 'br') return '\\n';
    if (!el.checkVisibility({ contentVisibilityAuto: false }) &&
        getComputedStyle(el).display !== 'contents') return '';
    let text;
    if (el.localName === 'slot') {
      const assigned = el.assignedNodes({ flatten: true });
      text = kids(assigned.length ? assigned : el.childNodes);
    } else {
      text = kids((el.shadowRoot || el).childNodes);
    }
    if (parts) {
      const whole = text.replace(/\\s+/g, ' ').trim();
      if (whole) parts.push(whole);
    }
    return inline(el) ? text : ' ' + text + ' ';
  };
  const kids = (list) => { let s = ''; for (const n of list) s += walk(n); return s; };
  const text = roots.map((r) => walk(r)).join(' ').replace(/\\s+/g, ' ').trim();
  return { text, parts };
}
"""

# Whether the visible text under the roots matches: mode sub / exact / pattern.
_MATCH_JS = """
([roots, mode, want, flags]) => {
  const read = TEXT;
  const all = roots && roots.length ? roots : [document.body || document.documentElement];
  const { text, parts } = read(all, mode === 'exact');
  if (mode === 'exact') return parts.includes(want);
  if (mode === 'pattern') return new RegExp(want, flags).test(text);
  return text.includes(want);
}
""".replace("TEXT", _TEXT_JS.strip())
_SHOW_JS = """
(roots) => {
  const read = TEXT;
  const all = roots && roots.length ? roots : [document.body || document.documentElement];
  return read(all, true);
}
""".replace("TEXT", _TEXT_JS.strip())

_CANDIDATES = 2000  # element texts compared for the closest one


def _normalize(text: str) -> str:
    return " ".join(text.split())


def _pattern(pattern: str) -> tuple[str, str]:
    """A Python-style pattern as JavaScript's RegExp source and flags: a leading ``(?i)``
    (and ``m``, ``s``) becomes a flag; the rest is the same in both for ordinary use."""
    flags = ""
    if found := re.match(r"\(\?([ims]+)\)", pattern):
        flags = "".join(sorted(set(found[1])))
        pattern = pattern[found.end() :]
    return pattern, flags


def _roots(
    ctx: StepContext, args: ExpectText, what: str
) -> tuple[Frame, list[ElementHandle]] | None:
    """The frame to read and the elements whose text counts (none: the whole page);
    None while the scope matches nothing yet."""
    page = ctx.browser.page
    if args.selector is None and not args.frame:
        return page.main_frame, []
    locator = locate(page, args.selector or ":root", args.frame)
    handles = locator.element_handles()
    if not handles:
        return None
    frame = handles[0].owner_frame() or page.main_frame
    return frame, ([] if args.selector is None else handles)


def _closest(want: str, parts: list[str]) -> str | None:
    shorter = [p for p in dict.fromkeys(parts) if len(p) <= 3 * len(want) + 40][-_CANDIDATES:]
    found = difflib.get_close_matches(want, shorter, n=1, cutoff=0.3)
    return found[0] if found else None


def _text_check(ctx: StepContext, step: Step, args: ExpectText, *, present: bool) -> StepOutcome:
    what = step.action
    if args.pattern is not None:
        mode, (want, flags) = "pattern", _pattern(args.pattern)
        shown_want = f"/{args.pattern}/"
    else:
        assert args.text is not None
        mode, want, flags = ("exact" if args.exact else "sub"), _normalize(args.text), ""
        shown_want = repr(want)
    condition = f"({'!' if not present else ''}(TEST)(arg))".replace("TEST", _MATCH_JS.strip())
    deadline = time.monotonic() + step.timeout
    scope = ""
    if args.selector:
        scope += f" in {args.selector!r}"
    if args.frame:
        scope += f" in the frame {' > '.join(args.frame)!r}"
    while True:
        no_dialog(ctx, what)
        remaining = deadline - time.monotonic()
        with playwright_errors(ctx, f"{what}: reading the text{scope}", step.timeout):
            found = _roots(ctx, args, what)
            if found is None and not present:
                return StepOutcome()  # nothing to show it in: it is not shown
            if found is None:  # the scope is not there yet: wait until it is
                with contextlib.suppress(PlaywrightTimeout):
                    locate(ctx.browser.page, args.selector or ":root", args.frame).first.wait_for(
                        state="attached", timeout=max(50.0, min(remaining, 1.0) * 1000)
                    )
            else:
                frame, roots = found
                try:
                    frame.wait_for_function(
                        f"(arg) => {condition}",
                        arg=[roots, mode, want, flags],
                        polling=50,
                        timeout=max(50.0, min(remaining, 1.0) * 1000),
                    )
                    return StepOutcome()
                except PlaywrightTimeout:
                    pass
                except PlaywrightError as exc:
                    if "Invalid regular expression" in str(exc):
                        msg = f"{what}: pattern {args.pattern!r}: {first_line(exc)}"
                        raise RecipeError(msg) from None
                    if "Execution context was destroyed" not in str(exc):
                        raise
                finally:
                    for handle in roots:
                        handle.dispose()
        ctx.check_infra()
        if time.monotonic() >= deadline:
            break
    if present:
        kind = "as some element's whole text" if mode == "exact" else "in the visible text"
        head = f"{what}: {shown_want} not {kind}{scope} within {step.timeout:g} s"
    else:
        head = f"{what}: {shown_want} still in the visible text{scope} after {step.timeout:g} s"
    raise StepTimeout(head + _found(ctx, args, want if mode != "pattern" else "", present))


def _found(ctx: StepContext, args: ExpectText, want: str, present: bool) -> str:
    """What the page shows, for the failure message."""
    try:
        found = _roots(ctx, args, "")
        if found is None:
            return f"; {args.selector or ':root'!r} matches nothing"
        frame, roots = found
        shown: dict[str, Any] = frame.evaluate(_SHOW_JS, roots)
        for handle in roots:
            handle.dispose()
    except PlaywrightError as exc:
        return f"; the text could not be read: {first_line(exc)}"
    text = str(shown["text"])
    clipped = text if len(text) <= 200 else text[:197] + "..."
    detail = f"; the page shows {clipped!r}"
    if present and want:
        near = _closest(want, [str(p) for p in shown["parts"]])
        if near is not None and near != want:
            detail += f"; the closest visible text is {near!r}"
    elif not present and want:
        holders = [str(p) for p in shown["parts"] if want in str(p)]
        if holders:
            holder = min(holders, key=len)
            detail = f"; it is in {holder[:200]!r}"
    return detail


@runs("expect_text", ExpectText)
def expect_text(ctx: StepContext, step: Step, args: ExpectText) -> StepOutcome:
    return _text_check(ctx, step, args, present=True)


@runs("expect_no_text", ExpectNoText)
def expect_no_text(ctx: StepContext, step: Step, args: ExpectNoText) -> StepOutcome:
    return _text_check(ctx, step, args, present=False)
