"""Evidence as text: the helpers every renderer (summary, report, JUnit, preview, the
pull-request comment) shares, so a step, a duration or a page's text reads the same
everywhere, and nothing from the page can render as markup or break a line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from verifier._files import write_atomic
from verifier.errors import BundleError
from verifier.evidence._manifest import Manifest, StepRecord
from verifier.evidence._verify import bundle_rel

__all__ = (
    "STATUS_ICON",
    "VERDICT_ICON",
    "VERDICT_TITLE",
    "attachments",
    "attempts",
    "clip_middle",
    "details_text",
    "failing_step",
    "format_ms",
    "format_s",
    "md_fence",
    "md_text",
    "one_line",
    "optional_field",
    "shown_verdict",
    "step_label",
    "step_number",
    "write_file",
    "write_text",
)

_ERROR_HEAD, _ERROR_TAIL = 2_500, 1_000
STATUS_ICON = {"passed": "✅", "failed": "❌", "error": "💥", "skipped": "⏭️"}
VERDICT_TITLE = {"passed": "Passed", "failed": "Failed", "error": "Error", "flaky": "Flaky"}
VERDICT_ICON = {**STATUS_ICON, "flaky": "🔁"}
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
# Control characters, and the bidirectional overrides that reorder what a reader sees.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# What can start Markdown mid-line: escapes, code, emphasis, links, HTML, entities, table
# cells, strikethrough, math ($), autolinks (: . @), mentions (@), issue refs (#), emoji (:).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>&|~$:@.!#+])")
_BACKTICKS = re.compile(r"`+")
# Images a step attaches (expect_screenshot's comparison first), and how they are titled.
_ATTACHMENT_TITLES = {"expected": "Expected", "actual": "Actual", "diff": "Diff"}
_MAX_ATTACHMENTS = 6
_DETAIL_ITEMS, _DETAIL_CHARS = 10, 120


def shown_verdict(manifest: Manifest) -> str:
    """The verdict as people read it: ``flaky`` for a pass that followed a failed attempt."""
    verdict = str(manifest.get("verdict", "error"))
    return "flaky" if verdict == "passed" and manifest.get("flaky") is True else verdict


def attempts(manifest: Manifest) -> tuple[str, list[tuple[str, str | None]]]:
    """With retries: a headline ("passed on attempt 2, after 1 failed attempt") and a
    line per attempt with the link to its report (none for this run's own); ``("", [])``
    for a single run."""
    listed = manifest.get("attempts")
    entries = [a for a in listed if isinstance(a, Mapping)] if isinstance(listed, list) else []
    if manifest.get("retried") is True:
        n = len(entries) or 1
        head = (
            f"attempt {n} {manifest.get('verdict')}, and the recipe was run again "
            "(--retries): the last attempt's bundle says how it ended"
        )
        earlier = [e for e in entries if e.get("run_id") != manifest.get("run_id")]
        return head, [_attempt_line(manifest, e) for e in earlier]
    if len(entries) < 2:
        return "", []
    lines = [_attempt_line(manifest, entry) for entry in entries]
    verdict = shown_verdict(manifest)
    if verdict == "flaky":
        tried = len(entries) - 1
        head = f"passed on attempt {len(entries)}, after {tried} failed attempt" + "s" * (tried > 1)
    else:
        head = f"{verdict} on all {len(entries)} attempts"
    return head, lines


def _attempt_line(manifest: Manifest, entry: Mapping[str, object]) -> tuple[str, str | None]:
    verdict = str(entry.get("verdict") or "running")
    text = f"attempt {entry.get('attempt')}: {verdict}"
    step = entry.get("failed_step")
    if verdict != "passed" and isinstance(step, int):
        text += f" at step {step + 1}"
    if verdict != "passed" and entry.get("error"):
        error = one_line(str(entry.get("error")))
        text += f": {error if len(error) <= 300 else error[:299] + '…'}"
    run_id = str(entry.get("run_id", ""))
    own = run_id == manifest.get("run_id")
    link = f"../{run_id}/report.html" if _RUN_ID.fullmatch(run_id) and not own else None
    return text + (" (this run)" if own else ""), link


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
    try:
        write_atomic(path, data)
    except OSError as exc:
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
