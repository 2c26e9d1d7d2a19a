"""report.html: one self-contained page that shows a run to a person.

All CSS and the one script are inline; images, the video and log links point at the
bundle's own files by relative path, so the page works from disk and from an unzipped CI
artifact, offline. Everything that came from the recipe, the page or the app is
HTML-escaped and only ever lands in text or quoted attributes, never in the script. A
strict Content-Security-Policy backs that up: the style and script run because their
sha256 is listed, and nothing injected could.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import quote

from verifier.evidence._manifest import Manifest, StepRecord
from verifier.evidence._verify import bundle_file, bundle_rel
from verifier.evidence.text import (
    STATUS_ICON,
    VERDICT_ICON,
    VERDICT_TITLE,
    attachments,
    attempts,
    details_text,
    failing_step,
    format_ms,
    format_s,
    one_line,
    optional_field,
    shown_verdict,
    step_label,
    step_number,
    write_text,
)

__all__ = ("LOG_CAP", "page_events", "render_report", "write_report")

LOG_CAP = 200_000
_SNAPSHOT_CHARS = 6_000  # of a step's aria snapshot in the report (the file has it all)
_LOGS = (
    ("logs/app.log", "App (dev server) log", True),
    ("logs/browser-console.jsonl", "Browser console", True),
    ("logs/verifier.log", "Verifier log", False),
)

_STYLE = """
:root{--ok:#1a7f37;--bad:#cf222e;--err:#9a3412;--skip:#6e7781;--line:#d0d7de;--soft:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,sans-serif;color:#1f2328;background:#fff}
main{padding:0 24px 48px;max-width:1400px}
.banner{padding:18px 24px;color:#fff}
.banner h1{margin:0;font-size:22px;overflow-wrap:anywhere}
.banner p{margin:4px 0 0}
.v-passed{background:var(--ok)}.v-flaky{background:#9a6700}.v-failed{background:var(--bad)}.v-error{background:var(--err)}
h2{margin:28px 0 8px;font-size:17px;border-bottom:1px solid var(--line);padding-bottom:4px}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--soft)}
td.target{overflow-wrap:anywhere;max-width:520px}
td.num{text-align:right;white-space:nowrap}
pre{background:var(--soft);border:1px solid var(--line);padding:8px;overflow:auto;
max-height:480px;white-space:pre-wrap;overflow-wrap:anywhere;margin:4px 0}
.problem{border-left:6px solid var(--bad);background:#ffebe9;padding:8px 16px;margin-top:16px}
.problem.error{border-color:var(--err);background:#fff1e5}
.problem pre{background:#fff}
.s-passed{color:var(--ok)}.s-failed{color:var(--bad);font-weight:600}
.s-error{color:var(--err);font-weight:600}.s-skipped{color:var(--skip)}
tr.r-failed,tr.r-error{background:#ffebe9}tr.r-skipped{color:var(--skip)}
img.thumb{width:160px;height:auto;border:1px solid var(--line);display:block}
img.full{max-width:min(100%,1280px);height:auto;border:1px solid var(--line)}
video{max-width:100%;max-height:70vh;background:#000}
.note{color:var(--skip)}
.sbs{display:flex;gap:12px;align-items:flex-start;margin:8px 0}
.sbs figure{margin:0;flex:1 1 0;min-width:0}
.sbs figcaption{font-weight:600;margin-bottom:4px}
.sbs img.full{width:100%;max-width:100%}
.meta th{width:180px}
.viewer{display:grid;grid-template-columns:minmax(220px,320px) 1fr;gap:16px;align-items:start}
.viewer ol{list-style:none;margin:0;padding:0;max-height:80vh;overflow:auto;
border:1px solid var(--line)}
.viewer li{padding:4px 8px;cursor:pointer;border-bottom:1px solid var(--line);
overflow-wrap:anywhere}
.viewer li[aria-selected="true"]{background:#ddf4ff;outline:2px solid #0969da;outline-offset:-2px}
.viewer li .n{display:inline-block;min-width:2.5em;color:var(--skip)}
.detail{min-width:0}
.detail h3{margin:0 0 8px;font-size:16px;overflow-wrap:anywhere}
.detail h4{margin:12px 0 4px;font-size:14px}
.detail img[data-shot]{max-width:100%;height:auto;border:1px solid var(--line)}
.detail ul{margin:0;padding-left:18px}
.detail .bad,.detail tr.bad td{color:var(--bad)}
"""

_SCRIPT = """
"use strict";
(function () {
  var list = document.querySelector("[data-steps]");
  var detail = document.querySelector("[data-detail]");
  if (!list || !detail) { return; }
  var items = Array.prototype.slice.call(list.querySelectorAll("li[data-step]"));
  var video = document.getElementById("video");
  function seek(item) {
    var offset = Number(item.getAttribute("data-offset"));
    if (!video || !item.hasAttribute("data-offset") || !isFinite(offset)) { return; }
    if (video.readyState >= 1) { video.currentTime = offset; return; }
    video.addEventListener("loadedmetadata", function () { video.currentTime = offset; },
      {once: true});
  }
  function select(n, fromHash) {
    var item = null;
    items.forEach(function (each) {
      var chosen = each.getAttribute("data-step") === String(n);
      each.setAttribute("aria-selected", chosen ? "true" : "false");
      each.tabIndex = chosen ? 0 : -1;
      if (chosen) { item = each; }
    });
    var template = document.getElementById("detail-" + n);
    if (!item || !template) { return false; }
    detail.replaceChildren(template.content.cloneNode(true));
    detail.setAttribute("data-showing", String(n));
    // Keep the item in the list's view without scrolling the page.
    if (item.offsetTop < list.scrollTop) {
      list.scrollTop = item.offsetTop;
    } else if (item.offsetTop + item.offsetHeight > list.scrollTop + list.clientHeight) {
      list.scrollTop = item.offsetTop + item.offsetHeight - list.clientHeight;
    }
    seek(item);
    if (!fromHash) { history.replaceState(null, "", "#step-" + n); }
    return true;
  }
  function fromHash() {
    var match = /^#step-([0-9]+)$/.exec(location.hash);
    if (!match || !select(Number(match[1]), true)) { return false; }
    document.getElementById("viewer").scrollIntoView({block: "start"});
    return true;
  }

  list.addEventListener("click", function (event) {
    var item = event.target instanceof Element ? event.target.closest("li[data-step]") : null;
    if (item) { select(item.getAttribute("data-step"), false); item.focus(); }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") { return; }
    if (event.target instanceof Element && event.target.closest("video, input, textarea")) {
      return;
    }
    // Below the steps (reading the logs, say) the arrows scroll the page.
    var inList = event.target instanceof Element && list.contains(event.target);
    if (!inList && list.getBoundingClientRect().bottom < 0) { return; }
    var shown = Number(detail.getAttribute("data-showing"));
    var at = items.findIndex(function (each) {
      return Number(each.getAttribute("data-step")) === shown;
    });
    var next = items[at + (event.key === "ArrowDown" ? 1 : -1)];
    if (next) {
      event.preventDefault();
      select(next.getAttribute("data-step"), false);
      next.focus();
    }
  });
  window.addEventListener("hashchange", fromHash);
  if (!fromHash()) { select(list.getAttribute("data-open"), true); }
})();
document.addEventListener("click", function (event) {
  var link = event.target instanceof Element ? event.target.closest("a[data-seek]") : null;
  var video = document.getElementById("video");
  if (!link || !video) { return; }
  var offset = Number(link.getAttribute("data-seek"));
  if (!isFinite(offset)) { return; }
  event.preventDefault();
  video.currentTime = offset;
  video.scrollIntoView({block: "nearest"});
});
"""


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# Opened from disk, the page is a file: URL, whose origin is opaque. Chromium lets 'self'
# match file: URLs anyway (tried while writing this), but CSP3 defines 'self' by same
# origin, so a browser that follows the letter would block every image and the video;
# hence `file:` beside it. It loosens nothing that matters: file: sources are reachable
# only from a file: page, and no script but ours runs. Served over http(s), 'self' applies.
# tests/test_report.py loads every image and the video in Chromium under this policy.
_CSP = "; ".join(
    (
        "default-src 'none'",
        "img-src 'self' file: data:",
        "media-src 'self' file:",
        f"style-src {_sha(_STYLE)}",
        f"script-src {_sha(_SCRIPT)}",
        "base-uri 'none'",
        "form-action 'none'",
    )
)


_BAD = ' class="bad"'
# Bidirectional overrides reorder what a reviewer reads: shown as what they are.
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Downloads the report links: kinds a browser shows, never runs (a page names its files).
_SHOWN_DOWNLOADS = frozenset(
    {".csv", ".txt", ".json", ".log", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".zip", ".gz"}
)


def _e(value: object) -> str:
    text = _BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", str(value))
    return html.escape(text, quote=True)


def _href(path: str) -> str:
    return _e(quote(path, safe="/"))


def _file_link(root: Path, path: object, label: str) -> str:
    rel = bundle_rel(path)
    if rel is None:
        return ""
    if bundle_file(root, rel) is None:
        return f'<span class="note">{_e(label)}: missing</span>'
    return f'<a href="{_href(rel)}">{_e(label)}</a>'


def _thumb(root: Path, path: object, alt: str, *, full: bool = False) -> str:
    rel = bundle_rel(path)
    if rel is None or bundle_file(root, rel) is None:
        return '<span class="note">no screenshot</span>' if path else ""
    cls, lazy = ("full", "") if full else ("thumb", ' loading="lazy"')
    img = f'<img class="{cls}" src="{_href(rel)}" alt="{_e(alt)}"{lazy}>'
    return f'<a href="{_href(rel)}" title="open full size">{img}</a>'


def _offset(step: StepRecord) -> float | None:
    value = step.get("video_offset_s")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return max(0.0, float(value))
    return None


def _read_tail(path: Path, cap: int = LOG_CAP) -> tuple[str, int | None]:
    """The last ``cap`` bytes of ``path`` from a line start, and its size when it was cut."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        if size <= cap:
            return fh.read().decode("utf-8", "replace"), None
        fh.seek(size - cap)
        data = fh.read()
    newline = data.find(b"\n", 0, 4096)
    return data[newline + 1 :].decode("utf-8", "replace"), size


def _console_lines(text: str) -> Iterator[str]:
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            yield line
            continue
        where = f"  ({entry.get('url')}:{entry.get('line')})" if entry.get("url") else ""
        level = str(entry.get("level") or entry.get("type") or "")
        yield f"{entry.get('ts', '')} {level:<7} {entry.get('text', '')}{where}"


def _logs(root: Path) -> str:
    out = ['<section id="logs"><h2>Logs</h2>']
    for rel, title, is_open in _LOGS:
        full = bundle_file(root, rel)
        if full is None:
            out.append(f'<p class="note">{_e(title)}: not captured ({_e(rel)})</p>')
            continue
        text, size = _read_tail(full)
        if rel.endswith(".jsonl"):
            text = "\n".join(_console_lines(text))
        cut = (
            f'<p class="note">Cut: showing the last {LOG_CAP // 1000} KB of {size:,} bytes; '
            f"the full log is {_file_link(root, rel, rel)}.</p>"
            if size
            else ""
        )
        summary = f"{_e(title)} ({_file_link(root, rel, rel)})"
        out.append(
            f"<details{' open' if is_open else ''}><summary>{summary}</summary>{cut}"
            f"<pre>{_e(text) or '(empty)'}</pre></details>"
        )
    out.append("</section>")
    return "".join(out)


def _kv_table(rows: Mapping[str, object]) -> str:
    cells = []
    for key, value in rows.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        cells.append(f"<tr><th>{_e(key)}</th><td>{_e(shown)}</td></tr>")
    return f'<table class="meta">{"".join(cells)}</table>' if cells else "<p>(none)</p>"


def _setup_table(setup: Mapping[str, object]) -> str:
    rows = []
    for part, info in setup.items():
        facts = dict(info) if isinstance(info, Mapping) else {"value": info}
        ready = facts.pop("ready_s", None)
        took = format_s(ready) if isinstance(ready, int | float) else "—"
        rest = ", ".join(f"{k}: {v}" for k, v in facts.items())
        rows.append(f"<tr><th>{_e(part)}</th><td class='num'>{took}</td><td>{_e(rest)}</td></tr>")
    head = "<thead><tr><th>part</th><th>ready in</th><th>details</th></tr></thead>"
    return f'<table class="meta">{head}{"".join(rows)}</table>' if rows else "<p>(none)</p>"


def page_events(step: Mapping[str, object], *, downloads: bool = True) -> list[str]:
    """What the page did during the step besides drawing, one line each: the tab it acted
    on (when not the first), the dialogs it showed, the tabs that closed, the files it
    downloaded."""
    lines = []
    tab = step.get("tab")
    if isinstance(tab, int) and tab > 0:
        lines.append(f"on tab {tab}")
    for dialog in step.get("dialogs") or []:  # type: ignore[attr-defined]
        if isinstance(dialog, Mapping):
            message = one_line(str(dialog.get("message", "")))
            message = message if len(message) <= 300 else message[:299] + "…"
            answer = dialog.get("answer", "open")
            lines.append(f"{dialog.get('type', 'dialog')} dialog: “{message}” ({answer})")
    for closed in step.get("tab_closed") or []:  # type: ignore[attr-defined]
        if isinstance(closed, Mapping):
            url = one_line(str(closed.get("url", "")))[:300]
            then = closed.get("next_tab")
            lines.append(
                f"a tab closed: {url}"
                + (f" (steps went on with tab {then})" if isinstance(then, int) else "")
            )
    if downloads:
        for path in step.get("downloads") or []:  # type: ignore[attr-defined]
            lines.append(f"downloaded {path}")
    return lines


def _step_row(root: Path, step: StepRecord, *, has_video: bool) -> str:
    status = str(step.get("status", ""))
    index = step_number(step)
    target = f"{_e(step.get('target', ''))}"
    points = step.get("points") or []
    if points:
        at = ", ".join(f"({_e(p[0])}, {_e(p[1])})" for p in points[:10] if len(p) >= 2)
        target += f' <span class="note">at {at}</span>'
    error = step.get("error")
    if error:
        target += f"<pre>{_e(str(error)[:2000])}</pre>"
    facts = details_text(step)
    if facts:
        target += f'<div class="note">{_e(facts)}</div>'
    for line in page_events(step, downloads=False):
        target += f'<div class="note">{_e(line)}</div>'
    for path in optional_field(step, "downloads") or []:  # type: ignore[attr-defined]
        name = str(path).rsplit("/", 1)[-1]
        shown = Path(name).suffix.lower() in _SHOWN_DOWNLOADS
        link = _file_link(root, path, name) if shown else f"<code>{_e(path)}</code> (not linked)"
        target += f'<div class="note">downloaded {link}</div>'
    raw = optional_field(step, "raw_screenshot")
    more = [p for p in step.get("screenshots") or [] if p not in (step.get("screenshot"), raw)]
    extra = [_file_link(root, p, f"#{n + 2}") for n, p in enumerate(more)]
    extra += [_file_link(root, rel, title.lower()) for title, rel in attachments(step)]
    if raw and raw != step.get("screenshot"):
        extra.append(_file_link(root, raw, "unmarked"))
    shot = _thumb(root, step.get("screenshot"), f"screenshot of step {index}")
    shot += f"<br>{' '.join(extra)}" if any(extra) else ""
    offset = _offset(step) if has_video else None
    seek = (
        f'<a href="#video" data-seek="{offset:.3f}">▶ {offset:.1f} s</a>'
        if offset is not None
        else ""
    )
    return (
        f'<tr class="r-{_e(status)}"><td class="num">{_e(index)}</td><td>{_e(step.get("action"))}'
        f'</td><td class="target">{target}</td><td class="s-{_e(status)}">'
        f"{STATUS_ICON.get(status, '')} {_e(status)}</td>"
        f'<td class="num">{format_ms(step.get("duration_ms"))}</td><td>{shot}</td>'
        f"<td>{seek}</td></tr>"
    )


def _figures(root: Path, step: StepRecord) -> str:
    """The step's attached images side by side (expected, actual, diff), then its details."""
    figures = []
    for title, rel in attachments(step):
        image = _thumb(root, rel, f"{title} (step {step_number(step)})", full=True)
        if image:
            figures.append(f"<figure><figcaption>{_e(title)}</figcaption>{image}</figure>")
    facts = details_text(step)
    return (f'<div class="sbs">{"".join(figures)}</div>' if figures else "") + (
        f'<p class="note">{_e(facts)}</p>' if facts else ""
    )


def _clip_text(text: str, limit: int) -> str:
    return (
        text if len(text) <= limit else text[:limit] + f"\n… {len(text) - limit:,} more characters"
    )


def _snapshot_text(root: Path, step: StepRecord) -> str | None:
    """The step's aria snapshot (its file in the bundle), cut to ``_SNAPSHOT_CHARS``."""
    path = bundle_file(root, optional_field(step, "snapshot"))
    if path is None:
        return None
    try:
        with path.open("rb") as fh:
            data = fh.read(_SNAPSHOT_CHARS * 4 + 4)
    except OSError:
        return None
    return _clip_text(data.decode("utf-8", "replace"), _SNAPSHOT_CHARS)


def _console_items(step: StepRecord) -> str:
    entries = optional_field(step, "console")
    rows = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping):
            level = one_line(str(entry.get("level") or entry.get("type") or ""))[:20]
            text = one_line(str(entry.get("text", "")))
            url = one_line(str(entry.get("url") or ""))[:300]
            line = entry.get("line")
            where = f" <span class='note'>{_e(url)}:{_e(line)}</span>" if url else ""
            bad = ' class="bad"' if level == "error" else ""
            rows.append(f"<li{bad}><b>{_e(level)}</b> {_e(_clip_text(text, 1_000))}{where}</li>")
    return (
        f"<ul data-console>{''.join(rows)}</ul>"
        if rows
        else '<p data-console class="note">none</p>'
    )


def _network_rows(step: StepRecord) -> str:
    entries = optional_field(step, "requests")
    rows = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        ms = entry.get("ms")
        took = f"{ms:,.0f} ms" if isinstance(ms, int | float) else "—"
        status = entry.get("status")
        bad = not isinstance(status, int) or status >= 400
        rows.append(
            f"<tr{_BAD if bad else ''}><td>{_e(entry.get('method', ''))}</td>"
            f'<td class="target">{_e(_clip_text(one_line(str(entry.get("url", ""))), 500))}</td>'
            f"<td>{_e(entry.get('status', ''))}</td><td class='num'>{_e(took)}</td></tr>"
        )
    if not rows:
        return '<p data-network class="note">none</p>'
    head = "<thead><tr><th>method</th><th>URL</th><th>status</th><th>time</th></tr></thead>"
    return f"<table data-network>{head}<tbody>{''.join(rows)}</tbody></table>"


def _detail(root: Path, step: StepRecord) -> str:
    """One step's pane (a template the script shows when the step is selected)."""
    n = step_number(step)
    status = str(step.get("status", ""))
    parts = [
        f"<h3>{STATUS_ICON.get(status, '')} {_e(step_label(step, limit=300))}: {_e(status)}"
        f" <span class='note'>{format_ms(step.get('duration_ms'))}</span></h3>"
    ]
    if step.get("error"):
        parts.append(f"<pre data-error>{_e(_clip_text(str(step.get('error')), 20_000))}</pre>")
    parts.append(_figures(root, step))
    parts += [f'<p class="note">{_e(line)}</p>' for line in page_events(step)]
    rel = bundle_rel(step.get("screenshot"))
    if rel is not None and bundle_file(root, rel) is not None:
        parts.append(
            f'<a href="{_href(rel)}"><img data-shot src="{_href(rel)}" '
            f'alt="screenshot after step {_e(n)}"></a>'
        )
    else:
        parts.append('<p class="note">no screenshot</p>')
    snapshot = _snapshot_text(root, step)
    parts.append("<h4>The page (aria snapshot after the step)</h4>")
    if snapshot is None:
        parts.append('<p data-aria class="note">not captured</p>')
    else:
        parts.append(f"<pre data-aria>{_e(snapshot)}</pre>")
    parts += ["<h4>Console</h4>", _console_items(step)]
    parts += ["<h4>Network (requests started during the step)</h4>", _network_rows(step)]
    return f'<template id="detail-{_e(n)}">{"".join(parts)}</template>'


def _troubled(step: StepRecord) -> bool:
    """Whether the page logged an error or a request failed (or got 4xx/5xx) in the step."""
    said = optional_field(step, "console")
    asked = optional_field(step, "requests")
    errors = any(
        isinstance(e, Mapping) and e.get("level") == "error"
        for e in (said if isinstance(said, list) else [])
    )
    failed = any(
        isinstance(r, Mapping) and (not isinstance(r.get("status"), int) or r["status"] >= 400)
        for r in (asked if isinstance(asked, list) else [])
    )
    return errors or failed


def _viewer(root: Path, manifest: Manifest, video: str) -> str:
    """The step-through viewer: the steps beside the selected one's pane, and the video."""
    steps = manifest.get("steps") or []
    if not steps:
        return video
    failed = failing_step(manifest)
    opening = step_number(failed) if failed is not None else step_number(steps[-1])
    items = []
    for step in steps:
        status = str(step.get("status", ""))
        offset = _offset(step)
        at = f' data-offset="{offset:.3f}"' if offset is not None and video else ""
        target = one_line(str(step.get("target", "")))
        target = target if len(target) <= 80 else target[:79] + "…"
        warn = " ⚠" if _troubled(step) else ""
        items.append(
            f'<li role="option" data-step="{_e(step_number(step))}" aria-selected="false" '
            f'tabindex="-1" class="s-{_e(status)}"{at}><span class="n">'
            f"{_e(step_number(step))}</span>{STATUS_ICON.get(status, '')} "
            f"{_e(step.get('action'))} <span class='note'>{_e(target)}</span>{warn}</li>"
        )
    details = "".join(_detail(root, step) for step in steps)
    return (
        '<section id="viewer"><h2>Step through <span class="note">(↑/↓, or #step-N)</span></h2>'
        f'<div class="viewer"><ol role="listbox" aria-label="steps" data-steps '
        f'data-open="{_e(opening)}">{"".join(items)}</ol>'
        f'<div class="detail" data-detail aria-live="polite"></div></div>{video}{details}'
        "</section>"
    )


def _problems(root: Path, manifest: Manifest) -> str:
    out = []
    step = failing_step(manifest)
    if step is not None:
        out.append(
            f'<section class="problem" id="failure"><h2>{_e(step_label(step, limit=300))}: '
            f"{_e(step.get('status'))}</h2><pre>{_e(step.get('error') or '(no message)')}</pre>"
            f"{_figures(root, step)}"
            f"{_thumb(root, step.get('screenshot'), 'screenshot of the failing step', full=True)}"
            "</section>"
        )
    error = manifest.get("error")
    if manifest.get("verdict") == "error" and error:
        out.append(
            '<section class="problem error" id="run-error"><h2>The run could not verify: '
            f"{_e(error.get('type'))}</h2><pre>{_e(error.get('message'))}</pre></section>"
        )
    return "".join(out)


def _attempts(manifest: Manifest) -> str:
    headline, tries = attempts(manifest)
    if not headline:
        return ""
    items = "".join(
        f'<li><a href="{_href(rel)}">{_e(text)}</a></li>' if rel else f"<li>{_e(text)}</li>"
        for text, rel in tries
    )
    return f'<section id="attempts"><h2>Attempts: {_e(headline)}</h2><ul>{items}</ul></section>'


def _video(root: Path, manifest: Manifest) -> tuple[str, bool]:
    video = optional_field(manifest, "video")
    if not isinstance(video, Mapping):
        return "", False
    rel = bundle_rel(video.get("path"))
    if rel is None or bundle_file(root, rel) is None:
        return '<section><h2>Video</h2><p class="note">listed but missing</p></section>', False
    # The recording starts before the browser window shows: open on the last screenshot.
    shots = [bundle_rel(s.get("screenshot")) for s in manifest.get("steps", [])]
    poster = next((s for s in reversed(shots) if s and bundle_file(root, s)), None)
    poster_attr = f' poster="{_href(poster)}"' if poster else ""
    units = (("duration_s", "s"), ("fps", "fps"), ("codec", ""), ("chapters", "chapters"))
    facts = " · ".join(f"{_e(video[k])} {unit}".strip() for k, unit in units if video.get(k))
    return (
        '<section id="video-section"><h2>Video</h2>'
        f'<video id="video" controls preload="metadata"{poster_attr} src="{_href(rel)}"></video>'
        f'<p class="note">{facts} · {_file_link(root, rel, "download")}</p></section>'
    ), True


def render_report(root: Path, manifest: Manifest) -> str:
    """The report's HTML; ``root`` is read for logs and to leave out missing files."""
    verdict = shown_verdict(manifest)
    recipe = manifest.get("recipe") or {"name": "", "path": None, "sha256": ""}
    steps = manifest.get("steps") or []
    counts = ", ".join(
        f"{n} {s}" for s in STATUS_ICON if (n := sum(1 for x in steps if x.get("status") == s))
    )
    title = VERDICT_TITLE.get(verdict, "Error")
    video, has_video = _video(root, manifest)
    rows = "".join(_step_row(root, s, has_video=has_video) for s in steps)
    unfinished = (
        '<p class="problem error">The run did not finish; this is what it captured.</p>'
        if not manifest.get("finished", True)
        else ""
    )
    setup = manifest.get("setup") or {}
    files = "".join(
        f"<tr><td>{_file_link(root, a.get('path'), str(a.get('path')))}</td><td>"
        f"{_e(a.get('kind'))}</td><td class='num'>{_e(a.get('bytes'))}</td>"
        f"<td><code>{_e(a.get('sha256'))}</code></td></tr>"
        for a in manifest.get("artifacts") or []
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}: {_e(recipe.get("name"))}</title>
<style>{_STYLE}</style></head><body>
<header class="banner v-{_e(verdict if verdict in VERDICT_TITLE else "error")}">
<h1>{VERDICT_ICON.get(verdict, "💥")} {_e(title)}: {_e(recipe.get("name"))}</h1>
<p>{len(steps)} steps ({_e(counts or "none ran")}) in {format_s(manifest.get("duration_s"))}
· started {_e(manifest.get("started_at"))} · run {_e(manifest.get("run_id"))}</p></header><main>
{unfinished}{_attempts(manifest)}
<section id="recipe"><h2>Recipe</h2><table class="meta">
<tr><th>name</th><td>{_e(recipe.get("name"))}</td></tr>
<tr><th>path</th><td>{_e(recipe.get("path") or "—")}</td></tr>
<tr><th>sha256</th><td><code>{_e(recipe.get("sha256"))}</code></td></tr></table></section>
{_problems(root, manifest)}
{_viewer(root, manifest, video)}
<section id="steps"><h2>Steps</h2><table><thead><tr><th>#</th><th>action</th><th>target</th>
<th>status</th><th>duration</th><th>screenshot</th><th>video</th></tr></thead>
<tbody>{rows}</tbody></table></section>
<section id="environment"><h2>Environment</h2>{_kv_table(manifest.get("environment") or {})}
</section><section id="setup"><h2>Setup</h2>{_setup_table(setup)}</section>
{_logs(root)}
<section id="files"><h2>Files</h2><table><thead><tr><th>path</th><th>kind</th><th>bytes</th>
<th>sha256</th></tr></thead><tbody>{files}</tbody></table></section>
</main><script>{_SCRIPT}</script></body></html>
"""


def write_report(root: Path, manifest: Manifest) -> Path:
    """Write ``root/report.html``, the run as one self-contained page.

    :param root: the bundle folder; logs are read from it and links point into it.
    :param manifest: the run's manifest.
    :returns: the path of the report.
    :raises BundleError: when the file cannot be written.
    """
    return write_text(root / "report.html", render_report(root, manifest))
