"""summary.md: the run as Markdown for a pull-request comment or a CI job summary.

Everything in it that came from the recipe, the page or the app is escaped so it renders
as the text it is, never as Markdown, HTML or a broken table. The whole document stays
under ``SUMMARY_LIMIT`` characters (GitHub refuses comments over 65,536) however long the
run: the step table is cut first, with a note pointing at report.html.

This module also holds the small text helpers the other renderers share.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from verifier.errors import BundleError
from verifier.evidence._manifest import Manifest, StepRecord
from verifier.evidence._verify import bundle_rel

__all__ = ()

SUMMARY_LIMIT = 60_000
_MAX_ROWS = 300
_TARGET_CHARS = 200
_ERROR_HEAD, _ERROR_TAIL = 2_500, 1_000

STATUS_ICON = {"passed": "✅", "failed": "❌", "error": "💥", "skipped": "⏭️"}
VERDICT_TITLE = {"passed": "Passed", "failed": "Failed", "error": "Error"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# What can start Markdown mid-line: escapes, code, emphasis, links, HTML, entities, table
# cells, strikethrough, math ($), autolinks (: . @), mentions (@), issue refs (#), emoji (:).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>&|~$:@.!#+])")
_BACKTICKS = re.compile(r"`+")
# Images a step attaches (expect_screenshot's comparison first), and how they are titled.
_ATTACHMENT_TITLES = {"expected": "Expected", "actual": "Actual", "diff": "Diff"}
_MAX_ATTACHMENTS = 6
_DETAIL_ITEMS, _DETAIL_CHARS = 10, 120


def failing_step(manifest: Manifest) -> StepRecord | None:
    """The step that failed or errored (the first one), if any."""
    steps = manifest.get("steps") or []
    for step in steps:
        if step.get("status") in ("failed", "error"):
            return step
    error = manifest.get("error")
    where = error.get("step") if error else None
    return next((s for s in steps if s.get("index") == where), None) if where is not None else None


def attachments(step: Mapping[str, object]) -> list[tuple[str, str]]:
    """The step's extra images as (title, bundle path): expected, actual, diff first."""
    found: list[tuple[str, str]] = []
    entries = step.get("attachments")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        name, rel = entry.get("name"), bundle_rel(entry.get("path"))
        if isinstance(name, str) and rel is not None:
            title = _ATTACHMENT_TITLES.get(name) or one_line(name)[:40].replace("-", " ")
            found.append((title[:1].upper() + title[1:], rel))
    order = list(_ATTACHMENT_TITLES.values())
    found.sort(key=lambda item: order.index(item[0]) if item[0] in order else len(order))
    return found[:_MAX_ATTACHMENTS]


def details_text(step: Mapping[str, object]) -> str:
    """The step's structured details on one line: ``diff_pixels 3070 · threshold 0.1``."""
    details = step.get("details")
    if not isinstance(details, Mapping):
        return ""
    parts = []
    for key, value in list(details.items())[:_DETAIL_ITEMS]:
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        shown = one_line(shown)
        if len(shown) > _DETAIL_CHARS:
            shown = shown[: _DETAIL_CHARS - 1] + "…"
        parts.append(f"{one_line(str(key))[:60]} {shown}")
    return " · ".join(parts)


def step_number(step: Mapping[str, object]) -> object:
    """The step's number for people: 1-based, like screenshot names and video chapters."""
    index = step.get("index")
    return index + 1 if isinstance(index, int) else index


def step_label(step: StepRecord, *, limit: int = 120) -> str:
    """``step 7 (expect_text 7 items left)``, the target clipped to ``limit`` characters."""
    target = one_line(str(step.get("target", "")))
    if len(target) > limit:
        target = target[: limit - 1] + "…"
    return f"step {step_number(step)} ({step.get('action')} {target})".replace(" )", ")")


def optional_field(record: Mapping[str, object], key: str) -> object:
    """A field the manifest may or may not have (``video``, ``preview``, ``raw_screenshot``)."""
    return record.get(key)


def one_line(text: str) -> str:
    """``text`` on one line, without control characters."""
    return _CONTROL.sub("", re.sub(r"\r\n|\r|\n", " ", text))


def clip_middle(text: str, head: int = _ERROR_HEAD, tail: int = _ERROR_TAIL) -> str:
    """``text`` with its middle cut out when longer than ``head + tail`` characters."""
    if len(text) <= head + tail:
        return text
    cut = len(text) - head - tail
    return f"{text[:head]}\n… {cut:,} characters cut, see report.html …\n{text[-tail:]}"


def format_ms(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def format_s(seconds: float | None) -> str:
    return "—" if seconds is None else format_ms(seconds * 1000)


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically; BundleError when it cannot."""
    # "replace": a lone surrogate (JSON allows "\ud800") must not lose the whole file.
    return write_file(path, text.encode("utf-8", "replace"))


def write_file(path: Path, data: bytes) -> Path:
    """Write ``path`` atomically (temporary file, then rename); BundleError when it cannot."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        msg = f"cannot write {str(path)!r}: {exc.strerror or exc}; check the bundle folder"
        raise BundleError(msg) from exc
    return path


def md_text(text: str) -> str:
    """Plain text for Markdown: one line, with every character that could mean markup
    backslash-escaped, so nothing renders as emphasis, a link, raw HTML, an entity, a
    mention or a table-cell break (``\\|`` is a literal pipe even inside a table cell).
    """
    return _MD_SPECIAL.sub(r"\\\1", one_line(text))


def md_fence(text: str, info: str = "text") -> str:
    """A fenced code block whose fence is longer than any backtick run in ``text``."""
    body = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    longest = max((len(run) for run in _BACKTICKS.findall(body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def _link(label: str, link_base: str, path: object) -> str | None:
    rel = bundle_rel(path)
    if rel is None or len(rel) > 1_000:
        return None
    return f"[{md_text(label)}]({link_base}{quote(rel, safe='/')})"


def _row(step: StepRecord) -> str:
    target = one_line(str(step.get("target", "")))
    if len(target) > _TARGET_CHARS:
        target = target[: _TARGET_CHARS - 1] + "…"
    cell = f"<code>{md_text(target)}</code>" if target else ""
    icon = STATUS_ICON.get(str(step.get("status")), "❔")
    action = md_text(str(step.get("action", ""))[:60])
    took = format_ms(step.get("duration_ms"))
    return f"| {step_number(step)} | {icon} | {action} | {cell} | {took} |"


def _figures(step: StepRecord, link_base: str) -> list[str]:
    """The step's images side by side (one table row), and its details below them."""
    images = [
        (title, f"{link_base}{quote(rel, safe='/')}")
        for title, rel in attachments(step)
        if len(rel) <= 1_000
    ]
    out: list[str] = []
    if images:
        out.append("| " + " | ".join(md_text(title) for title, _ in images) + " |")
        out.append("|" + "---|" * len(images))
        out.append("| " + " | ".join(f"![{md_text(t)}]({url})" for t, url in images) + " |")
        out.append("")
    facts = details_text(step)
    if facts:
        out += [md_text(facts), ""]
    return out


def _failure(manifest: Manifest, link_base: str) -> list[str]:
    out: list[str] = []
    step = failing_step(manifest)
    if step is not None:
        out += [f"### {STATUS_ICON.get(str(step.get('status')), '❔')} {md_text(step_label(step))}"]
        out += ["", md_fence(clip_middle(str(step.get("error") or "(no message)"))), ""]
        shot = _link(f"Screenshot of step {step_number(step)}", link_base, step.get("screenshot"))
        out += [shot, ""] if shot else []
        out += _figures(step, link_base)
    error = manifest.get("error")
    same = step is not None and error and step.get("error") == error.get("message")
    if manifest.get("verdict") == "error" and error and not same:
        kind = md_text(str(error.get("type", "Error"))[:100])
        out += [f"### 💥 The run could not verify ({kind})", ""]
        out += [md_fence(clip_middle(str(error.get("message", "")))), ""]
    return out


def render_summary(manifest: Manifest, *, link_base: str = "") -> str:
    """The run as Markdown: verdict, step table, the failure, links into the bundle.

    :param link_base: prepended to every bundle-relative link (e.g. the URL the bundle is
        served from, ending in ``/``); the default keeps links relative.
    :returns: Markdown, always shorter than ``SUMMARY_LIMIT`` characters.
    """
    verdict = str(manifest.get("verdict", "error"))
    recipe = manifest.get("recipe") or {"name": "", "path": None, "sha256": ""}
    steps = manifest.get("steps") or []
    counts = {s: sum(1 for st in steps if st.get("status") == s) for s in STATUS_ICON}
    tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    name = md_text(str(recipe.get("name", ""))[:300])
    head = [
        f"## {STATUS_ICON.get(verdict, '💥')} {VERDICT_TITLE.get(verdict, 'Error')}: {name}",
        "",
        f"**{len(steps)} steps** ({tally or 'none ran'})"
        f" in **{format_s(manifest.get('duration_s'))}**"
        f" · run {md_text(str(manifest.get('run_id', ''))[:100])}",
        "",
    ]
    if not manifest.get("finished", True):
        head += ["⚠️ The run did not finish; this is what it captured.", ""]
    video = optional_field(manifest, "video")
    links = [
        _link("Full report", link_base, "report.html"),
        _link("Video", link_base, video.get("path")) if isinstance(video, Mapping) else None,
        _link("Preview", link_base, optional_field(manifest, "preview")),
    ]
    tail = _failure(manifest, link_base) + [" · ".join(x for x in links if x), ""]
    budget = SUMMARY_LIMIT - 500 - sum(len(line) + 1 for line in head + tail)
    table = ["| # | | Action | Target | Duration |", "|---:|:-:|---|---|---:|"]
    used = sum(len(line) + 1 for line in table)
    for shown, step in enumerate(steps):
        row = _row(step)
        if shown >= _MAX_ROWS or used + len(row) + 1 > budget:
            table += ["", f"… {len(steps) - shown:,} more steps, see report.html"]
            break
        table.append(row)
        used += len(row) + 1
    text = "\n".join(head + (table + [""] if steps else []) + tail)
    if len(text) >= SUMMARY_LIMIT:  # cannot happen with the caps above; never exceed anyway
        text = text[: SUMMARY_LIMIT - 100] + "\n\n… cut, see report.html\n"
    return text


def write_summary(root: Path, manifest: Manifest) -> Path:
    """Write ``root/summary.md`` (see :func:`render_summary`); raises BundleError if it cannot."""
    return write_text(root / "summary.md", render_summary(manifest))
