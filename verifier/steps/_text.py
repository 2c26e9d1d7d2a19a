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

from verifier.browser import SEEN_JS as _SEEN_JS
from verifier.errors import RecipeError, StepTimeout
from verifier.recipe import Step
from verifier.recipe.step_args import ExpectNoText, ExpectText
from verifier.steps._context import (
    StepContext,
    StepOutcome,
    first_line,
    locate,
    no_dialog,
    playwright_errors,
    runs,
)
from verifier.steps._ink import VEIL_JS, shows

__all__ = ()

# Reads the text under roots the way ``innerText`` does (hidden elements left out, unless
# ``all``; whitespace normalized), through open shadow roots and slots, and keeps where
# each character came from (its text node and offset), so that what matched can be judged
# as a person would see it (``verifier/browser/_seen.py``).
_READ_JS = r"""
const readText = (roots, all, keepParts) => {
  const skip = new Set(['script', 'style', 'template', 'noscript', 'head', 'title']);
  const raw = [], rawMap = [], parts = keepParts ? [] : null;
  const push = (s, node) => {
    for (let i = 0; i < s.length; i++) { raw.push(s[i]); rawMap.push(node ? [node, i] : null); }
  };
  const shown = new Map();
  const visible = (el) => {
    let v = shown.get(el);
    if (v === undefined) {
      v = el.checkVisibility ? el.checkVisibility({ visibilityProperty: true }) : true;
      // (One that makes no box of its own shows its text in what holds it, which the
      // walk went through.)
      if (!v) {
        const cs = getComputedStyle(el);
        v = cs.display === 'contents' && cs.visibility === 'visible';
      }
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
      if (!all && parent && !visible(parent)) return;
      push(node.data, node);
      return;
    }
    if (node.nodeType === 11) { kids(node.childNodes); return; }
    if (node.nodeType !== 1 || skip.has(node.localName)) return;
    const el = node;
    if (el.localName === 'br') { push('\n', null); return; }
    if (!all && !el.checkVisibility({ contentVisibilityAuto: false }) &&
        getComputedStyle(el).display !== 'contents') return;
    const start = raw.length, block = !inline(el);
    if (block) push(' ', null);
    if (el.localName === 'slot') {
      const assigned = el.assignedNodes({ flatten: true });
      kids(assigned.length ? assigned : el.childNodes);
    } else {
      kids((el.shadowRoot || el).childNodes);
    }
    if (block) push(' ', null);
    if (parts) parts.push([el, start, raw.length]);
  };
  const kids = (list) => { for (const n of list) walk(n); };
  for (const r of roots) { walk(r); push(' ', null); }
  // Into an array, joined once: a string grown a character at a time and read at its
  // end is flattened at every read (2,000 table rows took 2 s, 5,000 took 20).
  const out = [];
  const map = [], norm = new Array(raw.length + 1);
  for (let i = 0; i < raw.length; i++) {
    norm[i] = out.length;
    const ch = raw[i];
    if (ch === ' ' || ch === '\n' || ch === '\t' || ch === '\r' || ch === '\f' || ch === '\u00a0') {
      if (out.length && out[out.length - 1] !== ' ') { out.push(' '); map.push(rawMap[i]); }
    } else {
      out.push(ch);
      map.push(rawMap[i]);
    }
  }
  norm[raw.length] = out.length;
  if (out.length && out[out.length - 1] === ' ') { out.pop(); map.pop(); }
  const text = out.join('');
  const whole = parts && parts.map(([el, a, b]) => {
    const x = norm[a], y = Math.min(norm[b], text.length);
    const t = text.slice(x, y), lead = t.length - t.trimStart().length;
    return [el, x + lead, x + lead + t.trim().length];
  });
  return { text, map, parts: whole };
};
// The occurrences of what is wanted in a read text: [start, end) pairs, at most 20.
const occurrences = (read, mode, want, flags) => {
  const found = [];
  if (mode === 'exact') {
    for (const [, a, b] of read.parts) {
      if (b - a === want.length && read.text.slice(a, b) === want) found.push([a, b]);
      if (found.length >= 20) break;
    }
  } else if (mode === 'pattern') {
    const re = new RegExp(want, flags.includes('g') ? flags : flags + 'g');
    let m;
    while ((m = re.exec(read.text)) && found.length < 20) {
      found.push([m.index, m.index + m[0].length]);
      if (m[0].length === 0) re.lastIndex++;
    }
  } else {
    let at = read.text.indexOf(want);
    while (at >= 0 && found.length < 20) {
      found.push([at, at + want.length]);
      at = read.text.indexOf(want, at + Math.max(1, want.length));
    }
  }
  return found;
};
// Each text node's part of an occurrence: [node, from, to].
const piecesOf = (read, [a, b]) => {
  const pieces = new Map();
  for (let i = a; i < b; i++) {
    const at = read.map[i];
    if (!at) continue;
    const [node, offset] = at;
    const p = pieces.get(node);
    if (p) p[1] = Math.max(p[1], offset + 1);
    else pieces.set(node, [offset, offset + 1]);
  }
  return [...pieces.entries()].map(([node, [from, to]]) => [node, from, to]);
};
// '' when a person sees the occurrence, else why not; and, when seen, its box and the
// elements whose text it is.
const judge = (read, occurrence) => {
  let box = null, high = 0, wide = 0;
  const els = [];
  for (const [node, from, to] of piecesOf(read, occurrence)) {
    const el = node.parentElement || (node.parentNode && node.parentNode.host);
    if (el && !els.includes(el)) els.push(el);
    const range = document.createRange();
    range.setStart(node, from);
    range.setEnd(node, to);
    const rects = range.getClientRects();
    const why = seenWhy(el, rects, true);
    if (why) return { why };
    for (const r of rects) {
      if (r.width < 1 || r.height < 1) continue;
      high = Math.max(high, r.height);
      wide += r.width;
      box = box ? [Math.min(box[0], r.left), Math.min(box[1], r.top),
                   Math.max(box[2], r.right), Math.max(box[3], r.bottom)]
                : [r.left, r.top, r.right, r.bottom];
    }
  }
  // Too small to read: under 5 px high (font-size: 1px, scale(0.05)), or squeezed under
  // 1.5 px a character (rotateY(88deg)).
  const chars = occurrence[1] - occurrence[0];
  if (box && high < 5) return { why: `is too small to read (${high.toFixed(1)} px high)` };
  if (box && chars > 1 && wide / chars < 1.5) {
    return { why: `is squeezed too narrow to read (${(wide / chars).toFixed(1)} px a character)` };
  }
  return { why: '', box, els };
};
"""
_ENGINE = _SEEN_JS + _READ_JS
# Whether a person sees what is wanted now: the first occurrence seen ({box}),
# or null. With ``all`` (visible: false): whether it is in the page at all.
_MATCH_JS = """
([roots, mode, want, flags, all, skipBox]) => {
  ENGINE
  const within = roots && roots.length ? roots : [document.body || document.documentElement];
  const read = readText(within, all, mode === 'exact');
  const found = occurrences(read, mode, want, flags);
  if (all) return found.length ? { box: null } : null;
  for (const occurrence of found) {
    const seen = judge(read, occurrence);
    if (seen.why) continue;
    if (skipBox && seen.box && seen.box.every((v, i) => Math.abs(v - skipBox[i]) < 1)) continue;
    // Kept for the screen's test (_INK_JS): the elements whose text it is.
    window[Symbol.for('verifier.ink')] = seen.els;
    return { box: seen.box };
  }
  return null;
}
""".replace("ENGINE", _ENGINE)
# What the page shows, for a failure message: the text a person sees (without what is
# transparent, clipped or outside the window), each element's whole text for the closest
# match, why the occurrences of what was wanted are not seen, and whether it is in the
# page at all, hidden (and why).
_SHOW_JS = """
([roots, mode, want, flags]) => {
  ENGINE
  const within = roots && roots.length ? roots : [document.body || document.documentElement];
  const read = readText(within, false, true);
  // Whether a person sees a text node (all of it), judged once per node, for the first
  // few hundred nodes (a failure message quotes 200 characters).
  const judged = new Map();
  const seenNode = (node) => {
    let v = judged.get(node);
    if (v === undefined) {
      if (judged.size >= 400) return false;
      const el = node.parentElement || (node.parentNode && node.parentNode.host);
      const range = document.createRange();
      range.selectNodeContents(node);
      v = !seenWhy(el, range.getClientRects(), true);
      judged.set(node, v);
    }
    return v;
  };
  let text = '';
  for (let i = 0; i < read.text.length && text.length < 2000; i++) {
    const at = read.map[i];
    if (!at || read.text[i] === ' ' || seenNode(at[0])) text += read.text[i];
  }
  text = text.replace(/\\s+/g, ' ').trim();
  const parts = read.parts
    .filter(([, a, b]) => read.map.slice(a, b).some((at) => at && judged.get(at[0])))
    .map(([, a, b]) => read.text.slice(a, b));
  const reasons = [];
  if (want) {
    for (const occurrence of occurrences(read, mode, want, flags)) {
      const { why } = judge(read, occurrence);
      if (why && !reasons.includes(why)) reasons.push(why);
    }
    if (!reasons.length) {
      const everything = readText(within, true, mode === 'exact');
      for (const occurrence of occurrences(everything, mode, want, flags).slice(0, 5)) {
        const [[node]] = piecesOf(everything, occurrence);
        const el = node.parentElement || (node.parentNode && node.parentNode.host);
        const why = seenWhy(el, [el.getBoundingClientRect()], true);
        if (why && !reasons.includes(why)) reasons.push(why);
      }
    }
  }
  return { text, parts, reasons };
}
""".replace("ENGINE", _ENGINE)

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
    everywhere = not args.visible  # visible: false: in the page, shown or not
    start = time.monotonic()
    deadline = start + step.timeout
    scope = ""
    if args.selector:
        scope += f" in {args.selector!r}"
    if args.frame:
        scope += f" in the frame {' > '.join(args.frame)!r}"
    watch = _Watch(want if mode != "pattern" else "", start)
    no_ink: str | None = None
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
                # Short slices: between them the page is looked at, so that a text
                # that changes during the wait is told (_Watch).
                slice_ms = max(50.0, min(remaining, _LOOK_EVERY_S) * 1000)
                try:
                    if present:
                        seen = _wait_seen(frame, roots, [mode, want, flags, everywhere], slice_ms)
                        no_ink = _ink_missing(ctx, frame, seen)
                        if no_ink is None:
                            return StepOutcome()
                    else:
                        frame.wait_for_function(
                            f"(arg) => !({_MATCH_JS.strip()})(arg)",
                            arg=[roots, mode, want, flags, everywhere, None],
                            polling=50,
                            timeout=slice_ms,
                        )
                        return StepOutcome()
                except PlaywrightTimeout:
                    if not present:  # the page says it is seen: does the screen agree?
                        seen = frame.evaluate(
                            _MATCH_JS, [roots, mode, want, flags, everywhere, None]
                        )
                        if isinstance(seen, dict) and _ink_missing(ctx, frame, seen):
                            return StepOutcome()
                    watch.look(frame, roots, [mode, want, flags])
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
        reasons = [no_ink] if no_ink else []
    else:
        head = f"{what}: {shown_want} still in the visible text{scope} after {step.timeout:g} s"
        reasons = []
    found_text = _found(ctx, args, [mode, want, flags], present, reasons)
    raise StepTimeout(head + found_text + watch.story(found_text))


def _wait_seen(
    frame: Frame, roots: list[ElementHandle], query: list[Any], timeout_ms: float
) -> dict[str, Any]:
    """Wait (at most ``timeout_ms``) until a person sees what is wanted: its box and
    whether the screen must confirm its ink."""
    handle = frame.wait_for_function(
        f"(arg) => ({_MATCH_JS.strip()})(arg)",
        arg=[roots, *query, None],
        polling=50,
        timeout=timeout_ms,
    )
    try:
        value = handle.json_value()
    finally:
        handle.dispose()
    return value if isinstance(value, dict) else {}


# For the screen's test of a text the page says is seen: its elements' text made
# transparent and two frames drawn (``on``), or as it was (not ``on``).
_INK_JS = """
(on) => {
  VEIL
  const key = Symbol.for('verifier.ink'), bgKey = Symbol.for('verifier.inkbg');
  if (!on) {
    for (const el of window[key] || []) unveil(el, key);  // in the reverse order
    for (const n of window[bgKey] || []) unveil(n, bgKey);
    delete window[bgKey];
    delete window[key];
    return null;
  }
  const els = window[key] || [];
  // A background clipped to the text paints it too (gradient text).
  const painters = [];
  for (const el of els) {
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
      const c = getComputedStyle(n);
      if ((c.backgroundClip === 'text' || c.webkitBackgroundClip === 'text') &&
          !painters.includes(n)) painters.push(n);
    }
  }
  window[bgKey] = painters;
  for (const n of painters) {
    veil(n, bgKey, { 'background-image': 'none', 'background-color': 'transparent' });
  }
  const clear = 'transparent';
  for (const el of els) {
    veil(el, key, { color: clear, '-webkit-text-fill-color': clear, 'text-shadow': 'none',
                    '-webkit-text-stroke-color': clear, fill: clear, stroke: clear });
  }
  return twoFrames();
}
""".replace("VEIL", VEIL_JS)
# How often a waiting text check looks at what the page shows (for its failure message).
_LOOK_EVERY_S = 0.3


def _ink_missing(ctx: StepContext, frame: Frame, seen: dict[str, Any]) -> str | None:
    """Why the screen shows nothing of a text the page says is seen, or None: it does
    (the screen's test, _ink.shows: its text made transparent, does its box change?)."""
    box = seen.get("box")
    if not box:
        return None
    shown = shows(ctx, frame, box, lambda on: frame.evaluate(_INK_JS, on))
    if shown is None:
        return "is outside the screen"
    if shown:
        return None
    return (
        "is there but shows nothing on screen (made transparent, no pixel of its box "
        "changes: something over it, a filter or its colour hides it)"
    )


class _Watch:
    """What the page showed while a text check waited: the closest text to the wanted
    one, each time it changed, for the failure message."""

    def __init__(self, want: str, start: float) -> None:
        self._want = want
        self._start = start
        self._seen: list[tuple[float, str]] = []
        self._why: list[tuple[float, str]] = []  # why it was not seen, when it was there

    def look(self, frame: Frame, roots: list[ElementHandle], query: list[Any]) -> None:
        if not self._want:
            return
        try:
            shown: dict[str, Any] = frame.evaluate(_SHOW_JS, [roots, *query])
        except PlaywrightError:
            return
        at = time.monotonic() - self._start
        near = _closest(self._want, [str(p) for p in shown.get("parts", [])])
        if near is not None and (not self._seen or self._seen[-1][1] != near):
            self._seen.append((at, near))
        for why in shown.get("reasons", []):
            if all(told != why for _, told in self._why):
                self._why.append((at, str(why)))

    def story(self, told: str) -> str:
        """``; while it waited the page showed 'a' (at 0.2 s), 'b' (at 1.4 s)`` when the
        closest text changed during the wait, and ``; at 0.4 s it was there but is outside
        the window`` for reasons it was not seen that ``told`` (the message) does not say
        (a toast that showed off screen, then went)."""
        story = ""
        if len(self._seen) >= 2:
            shown = ", ".join(f"{text[:80]!r} (at {at:.1f} s)" for at, text in self._seen[-4:])
            story += f"; while it waited the page showed {shown}"
        for at, why in self._why[:3]:
            if why not in told:
                story += f"; at {at:.1f} s it was there but {why}"
        return story


def _found(
    ctx: StepContext, args: ExpectText, query: list[Any], present: bool, reasons: list[str]
) -> str:
    """What the page shows, for the failure message: why the text is not seen where it is
    in the page, the text a person sees, the closest text."""
    want = query[1] if query[0] != "pattern" else ""
    try:
        found = _roots(ctx, args, "")
        if found is None:
            return f"; {args.selector or ':root'!r} matches nothing"
        frame, roots = found
        shown: dict[str, Any] = frame.evaluate(_SHOW_JS, [roots, *query])
        for handle in roots:
            handle.dispose()
    except PlaywrightError as exc:
        return f"; the text could not be read: {first_line(exc)}"
    why = [*reasons, *(str(r) for r in shown.get("reasons", []) if r not in reasons)]
    detail = ""
    if present and why:
        more = f" (and {len(why) - 1} more)" if len(why) > 1 else ""
        detail += f"; it {why[0]}{more}"
    text = str(shown["text"])
    clipped = text if len(text) <= 200 else text[:197] + "..."
    detail += f"; the page shows {clipped!r}"
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
