"""summary.md: the run as Markdown for a pull-request comment or a CI job summary.

Everything in it that came from the recipe, the page or the app is escaped so it renders
as the text it is, never as Markdown, HTML or a broken table. The whole document stays
under ``SUMMARY_LIMIT`` characters (GitHub refuses comments over 65,536) however long the
run: the step table is cut first, with a note pointing at report.html.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from verifier.evidence._manifest import Manifest, StepRecord
from verifier.evidence._report import page_events
from verifier.evidence._verify import bundle_rel
from verifier.evidence.text import (
    STATUS_ICON,
    VERDICT_ICON,
    VERDICT_TITLE,
    attachments,
    attempts,
    clip_middle,
    details_text,
    failing_step,
    format_ms,
    format_s,
    md_fence,
    md_text,
    one_line,
    optional_field,
    shown_verdict,
    step_label,
    step_number,
    write_text,
)

__all__ = ("SUMMARY_LIMIT", "render_summary", "write_summary")

SUMMARY_LIMIT = 60_000
_MAX_ROWS = 300
_TARGET_CHARS = 200


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
    events = " · ".join(page_events(step))
    if events:
        events = events if len(events) <= _TARGET_CHARS else events[: _TARGET_CHARS - 1] + "…"
        cell += f" {md_text(events)}"
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
        out += [f"- {md_text(line)}" for line in page_events(step)[:10]]
        out += [""] if page_events(step) else []
        shot = _link(f"Screenshot of step {step_number(step)}", link_base, step.get("screenshot"))
        report = _link(f"Step {step_number(step)} in the report", link_base, "report.html")
        if report is not None:  # the report opens on that step
            report = report[:-1] + f"#step-{step_number(step)})"
        out += [" · ".join(x for x in (report, shot) if x), ""] if shot or report else []
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
    verdict = shown_verdict(manifest)
    recipe = manifest.get("recipe") or {"name": "", "path": None, "sha256": ""}
    steps = manifest.get("steps") or []
    counts = {s: sum(1 for st in steps if st.get("status") == s) for s in STATUS_ICON}
    tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    name = md_text(str(recipe.get("name", ""))[:300])
    head = [
        f"## {VERDICT_ICON.get(verdict, '💥')} {VERDICT_TITLE.get(verdict, 'Error')}: {name}",
        "",
        f"**{len(steps)} steps** ({tally or 'none ran'})"
        f" in **{format_s(manifest.get('duration_s'))}**"
        f" · run {md_text(str(manifest.get('run_id', ''))[:100])}",
        "",
    ]
    if not manifest.get("finished", True):
        head += ["⚠️ The run did not finish; this is what it captured.", ""]
    headline, tries = attempts(manifest)
    if headline:
        end = ":" if tries else "."
        head += [f"**{md_text(headline[:1].upper() + headline[1:] + end)}**", ""]
        for text, rel in tries:
            line = md_text(text)
            head.append(f"- [{line}]({link_base}{quote(rel, safe='/.')})" if rel else f"- {line}")
        head.append("")
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
