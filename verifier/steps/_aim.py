"""Aiming at an element as a person would: where on the screen its centre is, through
open shadow roots and nested iframes, and whether a click there would reach it.

A person scrolls the element into view (clear of sticky headers and fixed bars), waits
for it to hold still, and clicks its centre. That fails, as it would for the person, when
another element covers the point (an overlay, a cookie banner), when that point of an
iframe is covered in the page around it, or when another window (a popup, another
program) is in front of the browser there.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import ElementHandle, Frame, Locator
from playwright.sync_api import Error as PlaywrightError

from verifier._types import Box
from verifier.browser import FRAME_INSET_JS, NODE_PATH_JS, SEEN_JS
from verifier.desktop import WHEEL_PIXELS, Window
from verifier.errors import CheckFailed, VerifierError
from verifier.steps._context import (
    DESCRIBE_EL_JS,
    StepContext,
    in_frames,
    locate,
    no_dialog,
    playwright_errors,
)

__all__ = (
    "DEEP_HIT_JS",
    "WHEEL_TURNS_JS",
    "Aim",
    "aim",
    "in_the_way",
    "keys_elsewhere",
    "ours",
    "pointer_elsewhere",
    "popup_open",
    "raise_page",
    "viewport_at",
)

# Shared by the scripts below: what a click at a point reaches (inside open shadow roots),
# whether an element is inside another across shadow roots, whether an element is
# pinned (fixed or sticky: scrolling moves the page under it), a short description, and
# a wait until a value holds still over two animation frames.
# A script fragment: ``deepHit(x, y)``, what a click at a viewport point reaches, inside
# open shadow roots.
DEEP_HIT_JS = """
const deepHit = (x, y) => {
  let hit = document.elementFromPoint(x, y);
  while (hit && hit.shadowRoot) {
    const inner = hit.shadowRoot.elementFromPoint(x, y);
    if (!inner || inner === hit) break;
    hit = inner;
  }
  return hit;
};
"""
# A script fragment: ``turns(n, vertical, d)``, whether a wheel turned over ``n`` (by
# ``d`` pixels, up or down, or sideways) scrolls it: it scrolls that way and is not at
# that end yet (the page, ``WHEEL_PAGE``, always takes it). The first that turns, from
# what is under the pointer up, takes the wheel.
WHEEL_TURNS_JS = """
const WHEEL_PAGE = document.scrollingElement || document.documentElement;
const turns = (n, vertical, d) => {
  if (n === WHEEL_PAGE) return true;
  const cs = getComputedStyle(n);
  if (!/(auto|scroll|overlay)/.test(vertical ? cs.overflowY : cs.overflowX)) return false;
  return vertical
    ? (d > 0 ? n.scrollTop + n.clientHeight < n.scrollHeight - 1 : n.scrollTop > 0)
    : (d > 0 ? n.scrollLeft + n.clientWidth < n.scrollWidth - 1 : n.scrollLeft > 0);
};
"""
_HELPERS = (
    DEEP_HIT_JS
    + WHEEL_TURNS_JS
    + SEEN_JS
    + DESCRIBE_EL_JS
    + """
const up = (n) => n.parentNode || n.host || null;
const within = (outer, node) => {
  for (let n = node; n; n = up(n)) if (n === outer) return true;
  return false;
};
const pinned = (node) => {
  for (let n = node; n && n.nodeType === 1; n = up(n)) {
    const p = getComputedStyle(n).position;
    if (p === 'fixed' || p === 'sticky') return true;
  }
  return false;
};
const still = async (read, maxFrames) => {
  let prev = read();
  for (let i = 0; i < maxFrames; i++) {
    // A frame out of view gets no animation frames (Chromium throttles it): a timer
    // stands in for them there.
    await new Promise((r) => { requestAnimationFrame(r); setTimeout(r, 100); });
    const now = read();
    if (now.every((v, k) => v === prev[k])) return now;
    prev = now;
  }
  return null;
};
// Whether a click at ``hit`` reaches ``el``: it is ``el`` or inside it, or a see-through
// part of ``el``'s own control over it that takes the click for the control
// (react-select's input over its placeholder): ``el`` is no control of its own (a
// button under a veil stays covered), ``hit`` is one (an input, a button, a focusable
// element, or inside one), it has no paint of its own, and a common ancestor lies close
// above ``el`` (at most three levels), not the page's body.
const CONTROL = 'a[href], button, input, select, textarea, summary, [contenteditable], ' +
  '[tabindex]:not([tabindex="-1"]), [role=button], [role=combobox], [role=textbox], ' +
  '[role=option], [role=menuitem], [role=checkbox], [role=switch], [role=tab]';
const control = (n, stop) => {
  for (; n && n !== stop; n = up(n)) if (n.nodeType === 1 && n.matches(CONTROL)) return true;
  return false;
};
const reaches = (el, hit) => {
  if (within(el, hit)) return true;
  if (within(hit, el)) return false;  // it lets the pointer through to what holds it
  let common = up(el), depth = 1;
  while (common && !within(common, hit)) { common = up(common); depth++; }
  if (!common || depth > 3 || common === document.body || common === document.documentElement) {
    return false;
  }
  // (react-select's input grows with its value: the box around it takes the click.)
  const takes = control(hit, common) || (hit.nodeType === 1 && hit.querySelector(CONTROL));
  if (control(el, common) || !takes) return false;
  for (let n = hit; n && n !== common; n = up(n)) {
    if (n.nodeType !== 1) continue;
    const cs = getComputedStyle(n);
    const paints = seenBackground(cs) >= 0.1;
    if (paints || (n !== hit && n.localName === 'img')) return false;
  }
  return true;
};
// How a person's wheel brings ``el`` into view (``force``: to the middle of its
// scroller's view even when it is in view, to clear a pinned bar): {point, dx, dy,
// scroller} for the innermost scroller whose view shows something (a scroller itself out
// of sight is brought in first, by what scrolls it), the point over that view where the
// wheel goes to it (null: nowhere); null when no scroller needs to move.
const scrolls = (n) => n === WHEEL_PAGE || ['Y', 'X'].some((a) => {
  const cs = getComputedStyle(n);
  const size = a === 'Y' ? n.scrollHeight > n.clientHeight + 1 : n.scrollWidth > n.clientWidth + 1;
  return size && /(auto|scroll|overlay)/.test(a === 'Y' ? cs.overflowY : cs.overflowX);
});
const wheelPlan = (el, force) => {
  const scrollers = [];
  for (const [n] of seenHolders(el)) {
    if (n !== el && n !== WHEEL_PAGE && n !== document.body && scrolls(n)) scrollers.push(n);
  }
  scrollers.push(WHEEL_PAGE);
  let target = el;
  for (const s of scrollers) {
    let view = [0, 0, innerWidth, innerHeight];
    if (s !== WHEEL_PAGE) {
      const r = s.getBoundingClientRect();
      const x0 = r.left + s.clientLeft, y0 = r.top + s.clientTop;
      view = seenCut(view, [x0, y0, x0 + s.clientWidth, y0 + s.clientHeight]);
      for (const [, clip] of seenClips(s, false)) view = seenCut(view, clip);
    }
    if (seenArea(view) < 16) { target = s; continue; }
    const t = target.getBoundingClientRect();
    const need = (lo, hi, vlo, vhi) => {
      if (!(force && target === el) && lo >= vlo - 0.5 && hi <= vhi + 0.5) return 0;
      if (hi - lo > vhi - vlo) return lo - vlo;  // larger than the view: its start shown
      return (lo + hi) / 2 - (vlo + vhi) / 2;
    };
    const height = s === WHEEL_PAGE ? innerHeight : s.clientHeight;
    const width = s === WHEEL_PAGE ? innerWidth : s.clientWidth;
    let dy = need(t.top, t.bottom, view[1], view[3]);
    let dx = need(t.left, t.right, view[0], view[2]);
    dy = Math.max(-s.scrollTop, Math.min(dy, s.scrollHeight - height - s.scrollTop));
    dx = Math.max(-s.scrollLeft, Math.min(dx, s.scrollWidth - width - s.scrollLeft));
    dy = Math.abs(dy) < 1 ? 0 : dy;
    dx = Math.abs(dx) < 1 ? 0 : dx;
    if (!dx && !dy) {
      if (target !== el) return null;
      continue;
    }
    const scroller = s === WHEEL_PAGE ? 'the page' : seenLabel(s);
    const vertical = dy !== 0;
    for (const fy of [0.5, 0.3, 0.7, 0.1, 0.9]) {
      for (const fx of [0.5, 0.3, 0.7, 0.1, 0.9]) {
        const x = view[0] + (view[2] - view[0]) * fx, y = view[1] + (view[3] - view[1]) * fy;
        const hit = deepHit(x, y);
        if (!hit || ['iframe', 'embed', 'object'].includes(hit.localName)) continue;
        let taker = WHEEL_PAGE;
        for (let n = hit; n && n.nodeType === 1; n = up(n)) {
          if (turns(n, vertical, vertical ? dy : dx)) { taker = n; break; }
        }
        if (taker === s) return { point: [x, y], dx, dy, scroller };
      }
    }
    return { point: null, dx, dy, scroller };
  }
  return null;
};
// Where the pointer is turned off for ``el`` ('' when it is not): pointer-events: none on
// it or what holds it.
const noPointer = (el) => {
  if (getComputedStyle(el).pointerEvents !== 'none') return '';
  let where = el;
  for (let n = up(el); n && n.nodeType === 1; n = up(n)) {
    if (getComputedStyle(n).pointerEvents !== 'none') break;
    where = n;
  }
  return describe(where);
};
"""
)

# On the element, in its own frame. Scroll it into view when it is not all in view, wait
# until its box holds still over two frames (animations, layout), and say what is really
# at its centre ('' when it is the element or inside it). When a pinned element covers
# it, scroll it to the middle (then the end, then the start) of the view first, as a
# person scrolls a button out from under a sticky header. Playwright's
# scroll_into_view_if_needed plus separate calls took ~80 ms a click; this takes ~15.
_AIM_JS = """
async (el, [maxFrames, hitTest, wheel, centred, pathName]) => {
  HELPERS
  if (!el.isConnected) return { box: null, view: [innerWidth, innerHeight] };  // replaced
  const rect = () => {
    const r = el.getBoundingClientRect();
    return [r.x, r.y, r.width, r.height];
  };
  // Still enough to click: its centre holds (a button that pulses in size is clicked).
  const centre = () => {
    const r = el.getBoundingClientRect();
    return [Math.round(r.x + r.width / 2), Math.round(r.y + r.height / 2)];
  };
  const settled = async () => ((await still(centre, maxFrames)) ? rect() : null);
  const [x0, y0, w0, h0] = rect();
  // A box a person cannot scroll (overflow: hidden or clip) keeps what lies outside it
  // out of reach: no script scrolls it for them.
  const r0 = el.getBoundingClientRect();
  for (const [n, cs] of seenHolders(el)) {
    if (n === el || (cs.overflowX === 'visible' && cs.overflowY === 'visible')) continue;
    const b = n.getBoundingClientRect();
    const px0 = b.left + n.clientLeft, py0 = b.top + n.clientTop;
    const outX = r0.right <= px0 || r0.left >= px0 + n.clientWidth;
    const outY = r0.bottom <= py0 || r0.top >= py0 + n.clientHeight;
    const stuck = (v) => v === 'hidden' || v === 'clip';
    if ((outX && stuck(cs.overflowX)) || (outY && stuck(cs.overflowY))) {
      const how = outY ? cs.overflowY : cs.overflowX;
      return { unreachable: `${seenLabel(n)} (overflow: ${how}), which a person cannot scroll` };
    }
  }
  // Out of the window, or out of the view of a box that scrolls it: brought into view.
  let shown = [Math.max(0, x0), Math.max(0, y0),
               Math.min(innerWidth, x0 + w0), Math.min(innerHeight, y0 + h0)];
  for (const [, clip] of seenClips(el, false)) shown = seenCut(shown, clip);
  if (seenArea(shown) < w0 * h0 * 0.99 || shown[2] - shown[0] < 1) {
    // By the wheel over what scrolls it, as a person does (the caller turns it, and
    // asks again); by script where no wheel gets it there.
    const plan = wheel ? wheelPlan(el, false) : null;
    if (plan) return { wheel: plan };
    el.scrollIntoView({ block: 'center', inline: 'center', behavior: 'instant' });
  }
  let box = await settled();
  // (At the pixel the click goes to: a link that wraps has a gap between its lines.)
  const hitAt = (b) => deepHit(Math.floor(b[0] + b[2] / 2), Math.floor(b[1] + b[3] / 2));
  let covering = '', cleared = '', pointer = '';
  if (box !== null && hitTest) {
    let hit = hitAt(box);
    for (const block of ['center', 'end', 'start']) {
      if (!hit || reaches(el, hit) || !pinned(hit)) break;
      cleared = describe(hit);
      const plan = wheel && !centred && block === 'center' ? wheelPlan(el, true) : null;
      if (plan) return { wheel: plan, cleared };
      el.scrollIntoView({ block, inline: 'center', behavior: 'instant' });
      box = await settled();
      if (box === null) break;
      hit = hitAt(box);
    }
    if (box !== null && (!hit || !reaches(el, hit))) {
      covering = describe(hit);
      pointer = noPointer(el);
    }
  }
  // Where what the click reaches is, by the DOM's own getters (see NODE_PATH_JS; null in
  // a document older than verifier's script).
  const nodePath = globalThis[pathName];
  const hit = box !== null && hitTest && nodePath ? nodePath(hitAt(box)) : null;
  const at = nodePath ? nodePath(el) : null;
  return { box, view: [innerWidth, innerHeight], covering, cleared, pointer, hit, at };
}
""".replace("HELPERS", _HELPERS)
# In verifier's own world: what a click at a viewport point reaches (where it is, and
# described), and the box of the element at a path (see NODE_PATH_JS; null when this world
# cannot find it: inside a closed shadow root).
_THERE_JS = (
    "(([x, y, at]) => {"
    + DEEP_HIT_JS
    + NODE_PATH_JS
    + DESCRIBE_EL_JS
    + """
  let el = document;
  for (const step of at.split('/').slice(1)) {
    if (!el) break;
    el = step === 's' ? el.shadowRoot : el.childNodes[+step];
  }
  const r = el && el.nodeType === 1 ? el.getBoundingClientRect() : null;
  const hit = deepHit(x, y);
  const box = r && { x: r.x, y: r.y, width: r.width, height: r.height };
  return [nodePath(hit), describe(hit), box];
})"""
)

# On an iframe element, in the frame around it: where a point of the iframe's viewport is
# in this frame's viewport, scrolled into view and held still, and what is there.
_FRAME_JS = """
async (frame, [px, py, maxFrames, hitTest]) => {
  HELPERS
  INSET
  const [insetX, insetY] = frameInset(frame);  // (not "top": that is the window's)
  const point = () => {
    const r = frame.getBoundingClientRect();
    return [r.x + insetX + px, r.y + insetY + py];
  };
  const out = ([x, y]) => x < 0 || y < 0 || x >= innerWidth || y >= innerHeight;
  const center = () => {
    const [x, y] = point();
    scrollBy({ left: x - innerWidth / 2, top: y - innerHeight / 2, behavior: 'instant' });
  };
  if (out(point())) {
    frame.scrollIntoView({ block: 'center', inline: 'center', behavior: 'instant' });
    if (out(point())) center();
  }
  let at = await still(point, maxFrames);
  let covering = '', cleared = '';
  if (at !== null && hitTest) {
    let hit = deepHit(at[0], at[1]);
    if (hit && hit !== frame && pinned(hit)) {
      cleared = describe(hit);
      center();
      at = await still(point, maxFrames);
      hit = at && deepHit(at[0], at[1]);
    }
    if (at !== null && hit !== frame) covering = describe(hit);
  }
  return { point: at, view: [innerWidth, innerHeight], covering, cleared };
}
""".replace("HELPERS", _HELPERS).replace("INSET", FRAME_INSET_JS)

# Frames (of 60 Hz) an element may take to hold still.
_STILL_FRAMES = 60
# How far the centre of the box the page gives may lie outside the box the browser
# draws (CSS px), and for how long (it may have moved between the two questions).
_SLACK_PX = 1.0
_MISPLACED_S = 1.0
# How far above an element the ancestor it shares with what takes its click may be, and
# the path length of a page's body (document, html, body).
_BESIDE_LEVELS = 3
_BODY_DEPTH = 3
# At most this many notches a turn, and turns an aim (beyond: a script scrolls).
_WHEEL_NOTCHES = 20
_WHEEL_TURNS = 12
# On an iframe element: scroll it into view when none of it is (frames are brought into
# view from the top down before aiming inside them).
_REVEAL_JS = """
(frame) => {
  const r = frame.getBoundingClientRect();
  if (r.bottom <= 0 || r.right <= 0 || r.top >= innerHeight || r.left >= innerWidth) {
    frame.scrollIntoView({ block: 'center', inline: 'center', behavior: 'instant' });
  }
}
"""


@dataclass(frozen=True, slots=True)
class Aim:
    """Where a step aims: the screen point, the element's frame, the browser window."""

    point: tuple[int, int]
    frame: Frame
    window: tuple[int, int, int, int]
    title: str
    cleared: str = ""  # the pinned element the target was scrolled out from under


def aim(
    ctx: StepContext,
    selector: str,
    frames: Sequence[str],
    timeout: float,
    what: str,
    *,
    hit_test: bool = True,
) -> Aim:
    """The screen point of the centre of ``selector``'s element, as a person would aim.

    Waits for it to be visible and still, scrolls it into view, and refuses when another
    element covers that point (a person's click would land there instead), or another
    window does. Several matches are an ambiguous recipe (exit 2).
    """
    no_dialog(ctx, what)
    page = ctx.browser.page
    locator = locate(page, selector, frames)
    with playwright_errors(
        ctx, f"{what}: no visible element matches {selector!r}", timeout, selector=selector
    ):
        ctx.wait(timeout, lambda ms: locator.wait_for(state="visible", timeout=ms), what)
    deadline = time.monotonic() + timeout
    covered_since: float | None = None
    misplaced_since: float | None = None
    handle = _ref_in_a_frame(ctx, locator, selector, timeout, what)
    framed = handle is not None or in_frames(selector, frames)
    # In the page's own frame the wheel scrolls; inside iframes, a script still does.
    wheel = _Wheel(enabled=not framed)
    try:
        while True:  # as Playwright's actionability: until it takes the pointer, or timeout
            with playwright_errors(
                ctx,
                f"{what}: {selector!r} could not be scrolled into view",
                timeout,
                selector=selector,
            ):
                if framed:
                    if handle is None:
                        handle = locator.element_handle(timeout=timeout * 1000)
                    frame = handle.owner_frame() or page.main_frame
                    _reveal(frame)
                    found = handle.evaluate(_AIM_JS, [_STILL_FRAMES, hit_test, False, False])
                else:
                    args = [
                        _STILL_FRAMES,
                        hit_test,
                        wheel.enabled,
                        wheel.centred,
                        ctx.browser.node_path,
                    ]
                    found = locator.evaluate(_AIM_JS, args, timeout=timeout * 1000)
                    frame = page.main_frame
            if found.get("wheel"):
                wheel.turn(ctx, found, deadline, timeout)
                continue
            if found.get("unreachable"):
                msg = (
                    f"{what}: {selector!r} is out of a person's reach: it lies outside "
                    f"{found['unreachable']}"
                )
                raise CheckFailed(msg)
            if found["box"] is None and time.monotonic() < deadline:
                continue  # still moving: look again, until the step's timeout
            lie = None if framed else _lie(ctx, locator, found, what, selector, hit_test)
            if lie is not None:
                # (It may have moved between the two questions: looked at again a moment.)
                now = time.monotonic()
                misplaced_since = misplaced_since if misplaced_since is not None else now
                if now - misplaced_since >= _MISPLACED_S or now >= deadline:
                    raise lie
                ctx.browser.next_frame(timeout=0.25)
                continue
            if not found.get("covering"):
                break
            now = time.monotonic()
            covered_since = covered_since if covered_since is not None else now
            if now >= deadline:
                break
            no_dialog(ctx, what)
            ctx.browser.next_frame(timeout=0.25)  # an animation, a fading overlay: again
        covered_s = time.monotonic() - covered_since if covered_since is not None else 0.0
        point = _through_frames(
            ctx, found, frame, selector, what, hit_test, timeout, covered_s=covered_s
        )
    finally:
        if handle is not None:
            handle.dispose()
    # Where the page is comes from the browser, not from the page's scripts, which may
    # redefine innerWidth and the like (see Browser.place).
    place = ctx.browser.place()
    ox, oy = place.viewport[:2]
    screen = (ox + int(point[0]), oy + int(point[1]))
    cleared = str(found["cleared"]) or wheel.cleared
    at = Aim(screen, frame, place.window, place.title, cleared=cleared)
    if hit_test:
        blocker = in_the_way(ctx, at)
        if blocker is not None:
            msg = (
                f"{what}: another window is in front of {selector!r} at {screen}: "
                f"{blocker}; a person could not click it"
            )
            raise CheckFailed(msg, details={"point": list(screen), "in_the_way": blocker})
    return at


def _drawn_there(found: dict[str, Any]) -> bool:
    """Whether the centre of the box the page gave is inside the box the browser draws."""
    x, y, w, h = (float(v) for v in found["box"])
    drawn = found.get("drawn")
    if drawn is None:
        return False
    dx, dy, dw, dh = (float(drawn[k]) for k in ("x", "y", "width", "height"))
    cx, cy = x + w / 2, y + h / 2
    inside_x = dx - _SLACK_PX <= cx <= dx + dw + _SLACK_PX
    return inside_x and dy - _SLACK_PX <= cy <= dy + dh + _SLACK_PX


def _lie(
    ctx: StepContext,
    locator: Locator,
    found: dict[str, Any],
    what: str,
    selector: str,
    hit_test: bool,
) -> CheckFailed | None:
    """Where the page's word on its element (``found``, in its top frame) and the
    browser's disagree, asked in verifier's own world, where the page's scripts cannot
    redefine the DOM's answers (one question): the centre of the box the page gives is
    not in the box the browser draws (a page that redefined getBoundingClientRect had the
    click land on another button), or, where it says nothing covers the element, what
    a hit test at that pixel finds is not the element, inside it or beside it (one that
    redefined elementFromPoint hid a veil). See _hits_there."""
    theirs, target = found.get("hit"), found.get("at")
    if found["box"] is None or min(found["box"][2:]) <= 0:
        return None  # (an empty box is no lie: there is nothing to click, as it says)
    if not isinstance(target, str):
        return None  # a document older than verifier's script: nothing to compare
    x, y, w, h = (float(v) for v in found["box"])
    point = [math.floor(x + w / 2), math.floor(y + h / 2), target]
    ours, found["there"], drawn = ctx.browser.ask_aside(f"{_THERE_JS}({json.dumps(point)})")
    if drawn is None:  # inside a closed shadow root our world cannot find it: DevTools can
        with contextlib.suppress(PlaywrightError):
            drawn = locator.bounding_box(timeout=1000)
    found["drawn"] = drawn
    if not _drawn_there(found):
        return _misplaced(what, selector, found)
    if not hit_test or found.get("covering") or not isinstance(theirs, str):
        return None
    return None if _hits_there(theirs, ours, target) else _misreported_hit(what, selector, found)


def _hits_there(theirs: str, ours: str, target: str) -> bool:
    """Whether what the page's hit test found (``theirs``) is what ours found, by where
    each is (see NODE_PATH_JS), or the shadow host whose closed root holds it, and that
    is the element (at ``target``), inside it or beside it (see _near)."""
    if theirs.startswith(f"{ours}/s/"):  # in a closed shadow root, which ours cannot enter
        if target.startswith(f"{ours}/s/"):
            return True  # (and so is the element)
        theirs = ours  # judged by its host
    return theirs == ours and _near(target, ours)


def _near(target: str, hit: str) -> bool:
    """Whether, by where they are (see NODE_PATH_JS), ``hit`` is the element at
    ``target`` or inside it, or close beside it as _AIM_JS's ``reaches`` allows (a common
    ancestor at most three levels up, below the body): the page's own word on that used
    getters it may have redefined."""
    ours, theirs = target.split("/"), hit.split("/")
    common = 0
    while common < min(len(ours), len(theirs)) and ours[common] == theirs[common]:
        common += 1
    return common == len(ours) or (len(ours) - common <= _BESIDE_LEVELS and common > _BODY_DEPTH)


def _misreported_hit(what: str, selector: str, found: dict[str, Any]) -> CheckFailed:
    msg = (
        f"{what}: the page says a click at the centre of {selector!r} reaches it, but the "
        f"browser's own hit test finds {found.get('there')} there: a script of the page "
        "misreports what is there (elementFromPoint redefined?), and a person's click would "
        "reach that"
    )
    return CheckFailed(msg, details={"reaches": found.get("there")})


def _misplaced(what: str, selector: str, found: dict[str, Any]) -> CheckFailed:
    x, y, w, h = found["box"]
    drawn = found.get("drawn")
    where = (
        "does not draw it at all"
        if drawn is None
        else "draws it at ({:.0f}, {:.0f}), {:.0f}x{:.0f}".format(
            drawn["x"], drawn["y"], drawn["width"], drawn["height"]
        )
    )
    msg = (
        f"{what}: the page says {selector!r} is at ({x:.0f}, {y:.0f}), {w:.0f}x{h:.0f}, but "
        f"the browser {where}: a script of the page misreports where it is "
        "(getBoundingClientRect redefined?), and a click at the page's word would land "
        "elsewhere"
    )
    return CheckFailed(msg, details={"page_box": [x, y, w, h], "drawn": drawn})


@dataclass(slots=True)
class _Wheel:
    """Scrolling an element into view as a person does: the wheel, over the view of
    what scrolls it, whole notches at a time, until it is in view. Where the wheel does
    not get it there (no point over that view takes the wheel, the page takes the wheel
    for itself, snapping holds it), a script scrolls it, as before."""

    enabled: bool
    centred: bool = False  # turned to the middle of the view once, to clear a pinned bar
    cleared: str = ""  # the pinned element it cleared
    _last: tuple[str, int, int] | None = None
    _turns: int = 0

    def turn(
        self, ctx: StepContext, found: dict[str, Any], deadline: float, timeout: float
    ) -> None:
        """Turn the wheel as ``found["wheel"]`` plans, or give up on the wheel."""
        from verifier.steps._send import wheel_at  # it aims through this module

        plan = found["wheel"]
        if found.get("cleared"):
            self.centred, self.cleared = True, str(found["cleared"])
        again = (str(plan["scroller"]), round(plan["dx"]), round(plan["dy"]))
        if (
            plan["point"] is None
            or again == self._last  # the last turn moved nothing
            or self._turns >= _WHEEL_TURNS
            or time.monotonic() >= deadline
        ):
            self.enabled = False
            return
        self._last, self._turns = again, self._turns + 1
        ox, oy = ctx.browser.place().viewport[:2]
        point = (ox + int(plan["point"][0]), oy + int(plan["point"][1]))
        notches_x, notches_y = (_notches(plan["dx"]), _notches(plan["dy"]))
        wheel_at(
            ctx, point, notches_x, notches_y, timeout=timeout, frame=ctx.browser.page.main_frame
        )
        ctx.browser.settle(timeout=min(timeout, 2.0))


def _notches(distance: float) -> int:
    """Whole wheel notches for ``distance`` CSS pixels: at least one, at most a round's."""
    if not distance:
        return 0
    n = round(distance / WHEEL_PIXELS) or (1 if distance > 0 else -1)
    return max(-_WHEEL_NOTCHES, min(_WHEEL_NOTCHES, n))


def _reveal(frame: Frame) -> None:
    """Scroll each iframe on the way to ``frame`` into view, from the top down."""
    chain = []
    level = frame
    while level.parent_frame is not None:
        chain.append(level.frame_element())
        level = level.parent_frame
    for element in reversed(chain):
        try:
            element.evaluate(_REVEAL_JS)
        finally:
            element.dispose()


def _ref_in_a_frame(
    ctx: StepContext, locator: Locator, selector: str, timeout: float, what: str
) -> ElementHandle | None:
    """The element an aria snapshot's ref (``aria-ref=...``) names, when it is inside an
    iframe (a snapshot's refs reach into frames, and the selector does not say so);
    None for any other selector or element."""
    if not selector.startswith("aria-ref="):
        return None
    with playwright_errors(
        ctx, f"{what}: no visible element matches {selector!r}", timeout, selector=selector
    ):
        handle = locator.element_handle(timeout=timeout * 1000)
        frame = handle.owner_frame()
    if frame is not None and frame.parent_frame is not None:
        return handle  # the aim goes on with it, and disposes of it
    handle.dispose()
    return None


def _through_frames(
    ctx: StepContext,
    found: dict[str, Any],
    frame: Frame,
    selector: str,
    what: str,
    hit_test: bool,
    timeout: float,
    *,
    covered_s: float = 0.0,
) -> tuple[float, float]:
    """The element's centre in the top frame's viewport, checked at every frame
    (``covered_s``: how long its centre has been covered, for the message)."""
    if found["box"] is None:
        msg = f"{what}: {selector!r} kept moving (its centre never held still for two frames)"
        raise CheckFailed(msg)
    x, y, w, h = found["box"]
    if w <= 0 or h <= 0:
        msg = f"{what}: {selector!r} has an empty box ({w}x{h}); there is nothing to click"
        raise CheckFailed(msg)
    vw, vh = found["view"]
    cx, cy = x + w / 2, y + h / 2
    if not (0 <= cx < vw and 0 <= cy < vh):
        msg = f"{what}: the centre of {selector!r} ({cx:.0f}, {cy:.0f}) is outside the viewport"
        raise CheckFailed(msg)
    if found.get("pointer"):
        msg = (
            f"{what}: {selector!r} does not take the pointer (pointer-events: none on "
            f"{found['pointer']}); a person's click would not reach it"
        )
        raise CheckFailed(msg)
    if found["covering"]:
        held = f" (for {covered_s:.1f} s)" if covered_s >= 0.05 else ""
        msg = (
            f"{what}: {selector!r} is covered at its centre by {found['covering']}{held}; "
            "a person could not click it"
        )
        raise CheckFailed(msg)
    level = frame
    while level.parent_frame is not None:
        with playwright_errors(ctx, f"{what}: the frame of {selector!r} went away", timeout):
            outer = level.frame_element()
            try:
                found = outer.evaluate(_FRAME_JS, [cx, cy, _STILL_FRAMES, hit_test])
            finally:
                outer.dispose()
        where = f"the frame {level.name!r}" if level.name else f"its frame ({level.url})"
        if found["point"] is None:
            msg = f"{what}: {where} kept moving (its centre never held still for two frames)"
            raise CheckFailed(msg)
        cx, cy = found["point"]
        vw, vh = found["view"]
        if not (0 <= cx < vw and 0 <= cy < vh):
            msg = f"{what}: {selector!r} in {where} is outside the page's viewport"
            raise CheckFailed(msg)
        if found["covering"]:
            msg = (
                f"{what}: {selector!r} in {where} is covered at its centre by "
                f"{found['covering']}; a person could not click it"
            )
            raise CheckFailed(msg)
        level = level.parent_frame
    return cx, cy


def ours(ctx: StepContext, window: Window, box: tuple[int, int, int, int], title: str) -> bool:
    """Whether ``window`` is the browser window showing the page steps act on: one of the
    browser's (by process), with the page's window box, and, when several of the
    browser's windows share that box, the one titled after the page."""
    if not _browsers(ctx, window) or tuple(window.box) != tuple(box):
        return False
    if not title or window.name.startswith(title):
        return True
    # Another of the browser's windows with that box and the page's title, under this
    # one, is the page's: this one is in front of it.
    return not any(
        w.id != window.id
        and _browsers(ctx, w)
        and tuple(w.box) == tuple(box)
        and w.name.startswith(title)
        for w in ctx.desktop.windows()
    )


def _browsers(ctx: StepContext, window: Window) -> bool:
    if window.pid is not None and ctx.browser.pids:
        return window.pid in ctx.browser.pids
    return "chrom" in window.wm_class.lower()


def in_the_way(ctx: StepContext, at: Aim) -> str | None:
    """What a click at ``at`` would reach instead of the page, described; None when it
    reaches the page."""
    window = ctx.desktop.window_at(*at.point)
    if window is None:
        return "nothing but the bare desktop (the browser's window is not there)"
    if ours(ctx, window, at.window, at.title):
        return None
    return window.describe()


def _page_window(ctx: StepContext) -> tuple[tuple[int, int, int, int], str] | None:
    try:
        return ctx.browser.window()
    except VerifierError:
        return None


def pointer_elsewhere(ctx: StepContext, point: tuple[int, int]) -> bool:
    """Whether a click at ``point`` went to something other than the page: another
    window, a popup of the browser (a select's list), the browser's own bar."""
    return viewport_at(ctx, point) is None


def viewport_at(ctx: StepContext, point: tuple[int, int]) -> Box | None:
    """The page's viewport (its screen box) when a click at ``point`` reaches the page;
    None when it goes to something else (see :func:`pointer_elsewhere`)."""
    try:
        place = ctx.browser.place()
    except (PlaywrightError, VerifierError):
        return None
    window = ctx.desktop.window_at(*point)
    if window is None or not ours(ctx, window, place.window, place.title):
        return None
    vx, vy, vw, vh = place.viewport
    return place.viewport if vx <= point[0] < vx + vw and vy <= point[1] < vy + vh else None


def popup_open(ctx: StepContext) -> bool:
    """Whether a popup of the browser that takes the keys is open (a select's list, a
    menu): keys go to it, not to the page (an X query; the page is not asked)."""
    return any(
        w.override_redirect and w.kind in _POPUP_KINDS and _browsers(ctx, w)
        for w in ctx.desktop.windows()
    )


def keys_elsewhere(ctx: StepContext) -> bool:
    """Whether keys go to something other than the page: another window has the focus
    (a file chooser), or a popup of the browser that takes keys is open (a select's
    list, a menu)."""
    page_window = _page_window(ctx)
    if page_window is None:
        return True
    box, title = page_window
    focused = ctx.desktop.focused_window()
    if focused is None or not ours(ctx, focused, box, title):
        return True
    return popup_open(ctx)


# Windows of the browser that take the keys while they are open.
_POPUP_KINDS = frozenset({"menu", "popup_menu", "dropdown_menu", "combo"})


def raise_page(ctx: StepContext, timeout: float) -> None:
    """Make sure the window showing the page steps act on is in front at the middle of its
    viewport; when the browser's own request did not raise it (a window manager may refuse
    an application that activates itself), ask the window manager, as a taskbar does."""
    try:
        place = ctx.browser.place()
    except (PlaywrightError, VerifierError):
        return
    box, title = place.window, place.title
    vx, vy, vw, vh = place.viewport
    centre = (vx + vw // 2, vy + vh // 2)

    def front(windows: list[Window]) -> Window | None:
        return next((w for w in windows if w.contains(*centre) and w.kind != "tooltip"), None)

    top = front(ctx.desktop.windows())
    if top is not None and ours(ctx, top, box, title):
        return
    mine = next((w for w in ctx.desktop.windows() if ours(ctx, w, box, title)), None)
    if mine is None:
        return
    ctx.desktop.activate_window(mine.id)
    ctx.desktop.wait_windows(
        lambda windows: (w := front(windows)) is not None and w.id == mine.id, timeout=timeout
    )
