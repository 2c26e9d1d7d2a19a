"""What a person sees: the one judge of whether text or an element is on screen (for
the steps, and for Playwright's selectors as :data:`SEEN_ENGINE`).

A check passes on what a person could see at that moment: rendered (not ``display:
none``, ``visibility: hidden``, a closed ``<details>``, ``hidden="until-found"``),
not transparent (opacity under 0.1 on it or an ancestor, a transparent text colour), with
a size, inside the browser window, not clipped away (``clip``, ``clip-path``, a 1 px
screen-reader-only box, an ``overflow: hidden`` ancestor), and not covered by an opaque
element (a hit test over its boxes). Each refusal says which and names the element
responsible: "is there but transparent (opacity 0 on #banner)", "is outside the window",
"is covered by div.overlay", "is clipped by #terms".

:data:`SEEN_JS` is a script fragment for the page: ``seenWhy(el, rects, text)`` answers
'' (seen) or the reason, for an element (its boxes) or a piece of text (the boxes of a
range of a text node, ``el`` its parent). Where the page cannot tell (white text on a
white box), the text checks look at the screen itself (``_text.py``).
"""

from __future__ import annotations

from playwright.sync_api import Playwright

__all__ = ("SEEN_ENGINE", "SEEN_JS", "register_engines")

SEEN_JS = r"""
const seenUp = (n) => n.parentNode || n.host || null;
const seenParent = (n) => {
  for (let p = seenUp(n); p; p = seenUp(p)) if (p.nodeType === 1) return p;
  return null;
};
const seenLabel = (el) => {
  if (!el || el.nodeType !== 1) return 'the page';
  if (el.id) return '#' + el.id;
  const classes = el.classList ? [...el.classList].slice(0, 2) : [];
  return el.localName + (classes.length ? '.' + classes.join('.') : '');
};
const seenWithin = (outer, node) => {
  for (let n = node; n; n = seenUp(n)) if (n === outer) return true;
  return false;
};
const seenAlpha = (color) => {
  if (!color || color === 'transparent') return 0;
  const m = color.match(/\(([^)]*)\)/);
  if (!m) return 1;
  const parts = m[1].split(/[\s,\/]+/).filter(Boolean);
  if (parts.length < 4) return 1;
  const a = parts[parts.length - 1];
  return a.endsWith('%') ? parseFloat(a) / 100 : parseFloat(a);
};
// How much of what is under it an element's background hides (0 to 1): none when it is
// clipped to its text or blended (mix-blend-mode) into what is under it, none for a
// gradient of transparent colours, all for a picture.
const seenBackground = (cs) => {
  if (cs.backgroundClip === 'text' || cs.webkitBackgroundClip === 'text') return 0;
  if (cs.mixBlendMode && cs.mixBlendMode !== 'normal') return 0;
  const image = cs.backgroundImage;
  if (image && image !== 'none') {
    const colours = image.match(/rgba?\([^)]*\)/g) || [];
    const clear = /gradient/.test(image) && !/url\(/.test(image) && colours.length > 0 &&
      colours.every((c) => seenAlpha(c) < 0.1);
    if (!clear) return 1;
  }
  return seenAlpha(cs.backgroundColor);
};
const seenRgb = (color) => {
  const m = (color || '').match(/rgba?\(([^)]*)\)/);
  return m ? m[1].split(/[\s,\/]+/).filter(Boolean).slice(0, 3).map(parseFloat) : null;
};
// Why ``el`` is not rendered, naming the element responsible ('' when it is).
const seenRendered = (el) => {
  const shown = (n) =>
    n.checkVisibility({ visibilityProperty: true, contentVisibilityAuto: false });
  // One that makes no box of its own (display: contents) shows its content in what holds
  // it (or in a slot): that is judged, and the content's own boxes say the rest.
  let box = el;
  while (box && !shown(box) && getComputedStyle(box).display === 'contents') {
    box = seenParent(box);
  }
  if (box === el && shown(el)) return '';
  if (box && shown(box) && getComputedStyle(el).visibility === 'visible') {
    return seenSkipped(el);  // (what holds it may be drawn, but not its content)
  }
  for (let n = el; n; n = seenParent(n)) {
    const cs = getComputedStyle(n);
    const parent = seenParent(n);
    if (cs.display === 'none') {
      if (n.localName === 'dialog') return `is in a closed <dialog> (${seenLabel(n)})`;
      return `is not rendered (display: none on ${seenLabel(n)})`;
    }
    if (n.getAttribute && n.getAttribute('hidden') === 'until-found') {
      return `is hidden until found (hidden="until-found" on ${seenLabel(n)})`;
    }
    if (cs.contentVisibility === 'hidden') {
      return `is not rendered (content-visibility: hidden on ${seenLabel(n)})`;
    }
    if (parent && parent.localName === 'details' && !parent.open && n.localName !== 'summary') {
      return `is inside a closed <details> (${seenLabel(parent)})`;
    }
    const above = parent ? getComputedStyle(parent).visibility : 'visible';
    if (cs.visibility !== 'visible' && above === 'visible') {
      return `is hidden (visibility: ${cs.visibility} on ${seenLabel(n)})`;
    }
  }
  return 'is not rendered';
};
const seenOpacity = (el) => {
  let product = 1, least = null, leastValue = 1;
  for (let n = el; n; n = seenParent(n)) {
    const cs = getComputedStyle(n);
    if (cs.display === 'contents') continue;  // (no box: its opacity does nothing)
    const o = parseFloat(cs.opacity);
    if (!(o >= 0)) continue;
    product *= o;
    if (o < leastValue) { leastValue = o; least = n; }
  }
  return { product, least, leastValue };
};
// The clipping boxes on ``el`` (its own overflow too, for its text: ``own``) and above
// it: [element, [x0, y0, x1, y1]] (padding boxes of overflow-clipping ancestors, ``clip``
// rectangles).
// ``el`` and the ancestors whose overflow can clip it: those in its chain of containing
// blocks (a fixed element leaves every box that is not transformed, an absolute one every
// box until a positioned one), without the root and the body whose overflow is the
// window's (a dialog library's scroll lock sets overflow: hidden on <html>).
const seenHolders = (el) => {
  const out = [];
  const root = document.documentElement;
  const rootShows = (() => {
    const cs = getComputedStyle(root);
    return cs.overflowX === 'visible' && cs.overflowY === 'visible';
  })();
  let need = null;
  for (let n = el; n; n = seenParent(n)) {
    const cs = getComputedStyle(n);
    if (n !== el && need) {
      const contains = cs.transform !== 'none' || cs.perspective !== 'none' ||
        cs.filter !== 'none' || /paint|layout|strict|content/.test(cs.contain || '') ||
        (need === 'positioned' && cs.position !== 'static');
      if (!contains) continue;
      need = null;
    }
    if (n !== root && !(n === document.body && rootShows)) out.push([n, cs]);
    if (cs.position === 'fixed') need = 'transformed';
    else if (cs.position === 'absolute') need = 'positioned';
  }
  return out;
};
// Whether text is painted other than by its colour: an outline (-webkit-text-stroke), or
// a background clipped to the text (gradient text) on it or what holds it.
const seenInkOther = (el) => {
  const cs = getComputedStyle(el);
  if (parseFloat(cs.webkitTextStrokeWidth) > 0 && seenAlpha(cs.webkitTextStrokeColor) >= 0.1) {
    return true;
  }
  for (let n = el; n; n = seenParent(n)) {
    const c = getComputedStyle(n);
    if (c.backgroundClip === 'text' || c.webkitBackgroundClip === 'text') return true;
  }
  return false;
};
const seenClips = (el, own) => {
  const out = [];
  for (const [n, cs] of seenHolders(el)) {
    if ((own || n !== el) && (cs.overflowX !== 'visible' || cs.overflowY !== 'visible')) {
      const r = n.getBoundingClientRect();
      const x0 = r.left + n.clientLeft, y0 = r.top + n.clientTop;
      const w = n === document.scrollingElement ? innerWidth : n.clientWidth;
      const h = n === document.scrollingElement ? innerHeight : n.clientHeight;
      const cx = cs.overflowX !== 'visible', cy = cs.overflowY !== 'visible';
      out.push([n, [cx ? x0 : -1e9, cy ? y0 : -1e9, cx ? x0 + w : 1e9, cy ? y0 + h : 1e9]]);
    }
    const clip = cs.clip;
    const placed = cs.position === 'absolute' || cs.position === 'fixed';
    if (clip && clip.startsWith('rect(') && placed) {
      const v = clip.slice(5, -1).split(/[\s,]+/)
        .map((s) => (s === 'auto' ? null : parseFloat(s)));
      const r = n.getBoundingClientRect();
      const [t, rt, b, l] = v;
      out.push([n, [r.left + (l ?? 0), r.top + (t ?? 0),
                    rt === null ? 1e9 : r.left + rt, b === null ? 1e9 : r.top + b]]);
    }
  }
  return out;
};
const seenCut = (box, clip) => [Math.max(box[0], clip[0]), Math.max(box[1], clip[1]),
                                Math.min(box[2], clip[2]), Math.min(box[3], clip[3])];
const seenArea = (b) => Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
// What hides ``el`` at a point, if anything: {cover: an opaque element that is not
// ``el``, inside it or holding it} or {clip: the element whose clip-path cut it away}.
const seenCoverAt = (el, x, y) => {
  let hit = document.elementFromPoint(x, y);
  while (hit && hit.shadowRoot) {
    const inner = hit.shadowRoot.elementFromPoint(x, y);
    if (!inner || inner === hit) break;
    hit = inner;
  }
  if (!hit || hit === el || seenWithin(el, hit)) return null;
  if (seenWithin(hit, el)) {
    // The point reaches what holds it: ``el`` lets the pointer through there, or a
    // clip-path between them cut it away.
    for (let n = el; n && n !== hit; n = seenParent(n)) {
      if (getComputedStyle(n).clipPath !== 'none') return { clip: n };
    }
    return null;
  }
  const { product } = seenOpacity(hit);
  for (let n = hit; n && !seenWithin(n, el); n = seenParent(n)) {
    const cs = getComputedStyle(n);
    const replaced = ['img', 'video', 'canvas', 'iframe', 'svg', 'object', 'embed', 'input',
                      'textarea', 'select'].includes(n.localName);
    const blended = cs.mixBlendMode && cs.mixBlendMode !== 'normal';
    const paint = replaced ? (blended ? 0 : 1) : seenBackground(cs);
    if (paint * product >= 0.6) return { cover: n };
  }
  return null;  // a see-through layer: what is under it shows through
};
// Why the contents of ``el`` (its text) are skipped though ``el`` is rendered: a closed
// <details> around them (not in its summary), content-visibility: hidden on the way up.
const seenSkipped = (el) => {
  let summary = null;
  for (let n = el; n; n = seenParent(n)) {
    if (n.localName === 'summary') summary = n;
    if (n.localName === 'details' && !n.open && !(summary && summary.parentElement === n)) {
      return `is inside a closed <details> (${seenLabel(n)})`;
    }
    if (getComputedStyle(n).contentVisibility === 'hidden') {
      if (n.getAttribute('hidden') === 'until-found') {
        return `is hidden until found (hidden="until-found" on ${seenLabel(n)})`;
      }
      return `is not rendered (content-visibility: hidden on ${seenLabel(n)})`;
    }
  }
  return '';
};
// '' when a person sees ``el`` (with ``rects``, its boxes or its text's), else why not.
const seenWhy = (el, rects, text) => {
  if (!el || !el.isConnected) return 'is not in the page any more';
  if (!text && !el.getClientRects().length && getComputedStyle(el).display === 'contents') {
    // No box of its own: seen when what holds it shows its content, and something it
    // holds is seen (else the first reason why not).
    let why = seenRendered(el), looked = 0;
    if (why) return why;
    for (const n of el.childNodes) {
      let w;
      if (n.nodeType === 1) {
        w = seenWhy(n, seenBoxes(n), false);
      } else if (n.nodeType === 3 && n.data.trim()) {
        const range = document.createRange();
        range.selectNodeContents(n);
        w = seenWhy(el, range.getClientRects(), true);
      } else {
        continue;
      }
      if (!w) return '';
      why = why || w;
      if (++looked >= 50) break;
    }
    return why || `has nothing in it a person could see (${seenLabel(el)} makes no box)`;
  }
  const rendered = seenRendered(el) || (text ? seenSkipped(el) : '');
  if (rendered) return rendered;
  const { product, least, leastValue } = seenOpacity(el);
  if (product < 0.1) {
    return `is there but transparent (opacity ${+leastValue.toFixed(2)} on ${seenLabel(least)})`;
  }
  if (text) {
    const cs = getComputedStyle(el);
    const fill = cs.webkitTextFillColor;
    if (seenAlpha(cs.color) < 0.1 && (!fill || seenAlpha(fill) < 0.1) && !seenInkOther(el)) {
      return `is there but transparent (the text colour of ${seenLabel(el)} is transparent)`;
    }
    if (parseFloat(cs.fontSize) === 0) return `has no size (font-size: 0 on ${seenLabel(el)})`;
  }
  const boxes = [...rects].map((r) => [r.left, r.top, r.right, r.bottom])
    .filter((b) => seenArea(b) >= 1);
  if (!boxes.length) {
    const [w, h] = [rects[0]?.width || 0, rects[0]?.height || 0].map(Math.round);
    return `has no size on screen (${seenLabel(el)} is ${w}x${h})`;
  }
  const view = [0, 0, innerWidth, innerHeight];
  const inView = boxes.map((b) => seenCut(b, view)).filter((b) => seenArea(b) >= 1);
  if (!inView.length) {
    const [x0, y0, x1, y1] = boxes[0];
    const side = y0 >= innerHeight ? 'below' : y1 <= 0 ? 'above'
      : x0 >= innerWidth ? 'right of' : 'left of';
    return `is outside the window (${side} it; a person would scroll to it first)`;
  }
  const clips = seenClips(el, text);
  let visible = inView, clipper = null;
  for (const [n, clip] of clips) {
    const cut = visible.map((b) => seenCut(b, clip));
    const before = visible.reduce((s, b) => s + seenArea(b), 0);
    const after = cut.reduce((s, b) => s + seenArea(b), 0);
    if (after < before && (!clipper || after < 4)) clipper = n;
    visible = cut.filter((b) => seenArea(b) >= 1);
    if (!visible.length) break;
  }
  const total = boxes.reduce((s, b) => s + seenArea(b), 0);
  const left = visible.reduce((s, b) => s + seenArea(b), 0);
  const slivers = visible.every((b) => b[2] - b[0] < 2 || b[3] - b[1] < 2);
  if (!visible.length || left < 4 || (left < total * 0.2 && slivers)) {
    return `is clipped by ${seenLabel(clipper || el)}`;
  }
  // What is at a few points of what is left: a person sees it where it shows through.
  const points = [];
  for (const b of visible.slice(0, 12)) {
    const y = (b[1] + b[3]) / 2;
    for (const f of [0.2, 0.5, 0.8]) points.push([b[0] + (b[2] - b[0]) * f, y]);
  }
  const covers = new Map();
  let shown = 0;
  for (const [x, y] of points) {
    const hidden = seenCoverAt(el, x, y);
    if (hidden === null) { shown++; continue; }
    const why = hidden.clip ? `is clipped by ${seenLabel(hidden.clip)} (clip-path)`
                            : `is covered by ${seenLabel(hidden.cover)}`;
    covers.set(why, (covers.get(why) || 0) + 1);
  }
  if (shown * 2 >= points.length) return '';
  return [...covers.entries()].sort((a, b) => b[1] - a[1])[0][0];
};
// The boxes of an element for ``seenWhy``.
const seenBoxes = (el) => {
  const rects = el.getClientRects();
  if (!rects.length && getComputedStyle(el).display === 'contents') {
    // No box of its own: what it holds draws for it.
    const range = document.createRange();
    range.selectNodeContents(el);
    const inner = range.getClientRects();
    if (inner.length) return inner;
  }
  return rects.length ? rects : [el.getBoundingClientRect()];
};
"""

# A selector engine that keeps what a person sees of what the selector before it matched:
# ``"button.save >> verifier-seen=1"``. In Playwright's isolated world (a content
# script): the page's own scripts cannot change what it finds.
SEEN_ENGINE = "verifier-seen"
_ENGINE_JS = (
    """{
  query(root, body) { return this.queryAll(root, body)[0] || null; },
  queryAll(root, body) {
    SEEN
    const el = root.nodeType === 1 ? root : root.documentElement;
    return el && !seenWhy(el, seenBoxes(el), false) ? [el] : [];
  }
}"""
).replace("SEEN", SEEN_JS)
_REGISTERED: set[int] = set()


def register_engines(playwright: Playwright) -> None:
    """Make :data:`SEEN_ENGINE` known to ``playwright`` (before its contexts are made)."""
    if id(playwright) in _REGISTERED:
        return
    playwright.selectors.register(SEEN_ENGINE, _ENGINE_JS, content_script=True)
    _REGISTERED.add(id(playwright))
