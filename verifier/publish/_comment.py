"""The sticky pull-request comment: one Markdown document for all the bundles published.

It starts with a hidden marker (``<!-- verifier:KEY -->``) by which the next publish finds
it and edits it in place. Every piece of text that came from a recipe, a page or an app is
escaped with the evidence renderers' helpers, so it shows as the text it is. However many
bundles there are, the comment stays under GitHub's limit (65,536 characters): rows and
sections that do not fit are replaced by a note saying how many were left out.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from verifier.errors import PublishError
from verifier.evidence.text import (
    STATUS_ICON,
    VERDICT_ICON,
    clip_middle,
    format_s,
    md_fence,
    md_text,
    one_line,
    step_label,
    step_number,
)
from verifier.publish._bundles import Bundle, overall_state, tally

__all__ = (
    "COMMENT_LIMIT",
    "Links",
    "artifact_url",
    "check_key",
    "is_ours",
    "render_comment",
    "status_description",
)

COMMENT_LIMIT = 65_536
# What we aim for; the margin absorbs the difference between Python's and GitHub's counts
# of characters such as emoji with variation selectors.
_BUDGET = 60_000
_MAX_ROWS = 500
_THUMB_WIDTH = 400
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,49}")
_TITLE = {
    "success": "✅",
    "failure": "❌",
    "error": "💥",
}


def check_key(key: str) -> str:
    """``key`` if it can live inside the HTML marker and a status context, else PublishError."""
    if not _KEY.fullmatch(key):
        msg = f"--key {key!r} is not valid: use 1-50 letters, digits, '.', '_' or '-'"
        raise PublishError(msg)
    return key


def marker(key: str) -> str:
    """The hidden first line by which the comment for ``key`` is found again."""
    return f"<!-- verifier:{check_key(key)} -->"


def is_ours(body: object, key: str) -> bool:
    """Whether a comment body is the sticky comment for ``key``."""
    return isinstance(body, str) and body.split("\n", 1)[0].strip() == marker(key)


def artifact_url(base: str, folder: str, rel: str) -> str:
    """``rel`` inside the bundle ``folder``, under ``base`` (``{run_id}`` in it is replaced)."""
    path = quote(rel, safe="/")
    if "{run_id}" in base:
        return base.replace("{run_id}", quote(folder, safe="")) + path
    return f"{base}{quote(folder, safe='')}/{path}"


@dataclass(frozen=True, slots=True)
class Links:
    """Where the comment links each bundle file.

    :param hosted: ``(bundle folder, rel) -> URL`` for files pushed to the artifacts branch.
    :param link_base: prefix for the other files, as found in the CI artifact that holds the
        bundles (``""``: links relative to that artifact); None: do not link them.
    :param run_url: the CI run's page, where the artifact can be downloaded.
    """

    hosted: Mapping[tuple[str, str], str] = field(default_factory=dict)
    link_base: str | None = ""
    run_url: str | None = None

    def url(self, bundle: Bundle, rel: object) -> str | None:
        if not isinstance(rel, str) or bundle.exists(rel) is None:
            return None
        hosted = self.hosted.get((bundle.folder, rel))
        if hosted is not None:
            return hosted
        if self.link_base is None:
            return None
        return artifact_url(self.link_base, bundle.root.name, rel)


def _is_absolute(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def _md_link(label: str, url: str | None) -> str | None:
    if url is None or len(url) > 2_000:
        return None
    # Parentheses and spaces are percent-encoded by quote(); a bare ")" from a user-given
    # base would end the link early, so encode it too.
    safe = url.replace("(", "%28").replace(")", "%29").replace(" ", "%20")
    return f"[{md_text(label)}]({safe})"


def _thumb(url: str | None, alt: str) -> str | None:
    if url is None or not _is_absolute(url) or len(url) > 2_000:
        return None
    src = html.escape(url, quote=True)
    text = html.escape(one_line(alt)[:200], quote=True)
    return f'<a href="{src}"><img src="{src}" width="{_THUMB_WIDTH}" alt="{text}"></a>'


def _html_text(text: str) -> str:
    """Text for raw HTML, where Markdown escapes do not work: entities for markup, and a
    word joiner after ``@`` and ``#`` so no one is mentioned and no issue is linked."""
    return html.escape(text, quote=True).replace("@", "@\u2060").replace("#", "#\u2060")


def _clip(text: str, limit: int) -> str:
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _steps_cell(bundle: Bundle) -> str:
    steps = bundle.manifest["steps"]
    counts = {s: sum(1 for st in steps if st.get("status") == s) for s in STATUS_ICON}
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none ran"


def _problem(bundle: Bundle) -> tuple[str, str] | None:
    """(where, message) of what went wrong in a bundle that did not pass."""
    if bundle.verdict == "passed":
        return None
    step = bundle.failing_step()
    if step is not None:
        return step_label(step, limit=80), str(step.get("error") or "(no message)")
    error: Mapping[str, object] = bundle.manifest["error"] or {}
    kind = str(error.get("type") or "Error")
    return f"the run could not verify ({kind})", str(error.get("message") or "(no message)")


def _evidence(bundle: Bundle, links: Links, label: str, rel: object) -> str | None:
    """A link to a bundle file; when it is neither hosted nor in a linked CI artifact, a
    link to the CI run (where the artifact is), or else the file's name."""
    if not isinstance(rel, str) or bundle.exists(rel) is None:
        return None
    found = _md_link(label, links.url(bundle, rel))
    found = found or _md_link(f"{label} (CI artifact)", links.run_url)
    name = html.escape(f"{bundle.root.name[:120]}/{rel[:200]}").replace("|", "&#124;")
    return found or f"{html.escape(label)}: <code>{name}</code>"


def _links(bundle: Bundle, links: Links) -> str:
    video = bundle.manifest.get("video")
    found = [
        # report.html cannot be hosted (raw files are served as text): never in `hosted`.
        _evidence(bundle, links, "Report", "report.html"),
        _evidence(bundle, links, "Video", video.get("path"))
        if isinstance(video, Mapping)
        else None,
        _md_link("Preview", links.url(bundle, bundle.manifest.get("preview"))),
    ]
    return " · ".join(x for x in found if x)


def _row(bundle: Bundle, links: Links) -> str:
    icon = VERDICT_ICON["flaky"] if bundle.flaky else STATUS_ICON.get(bundle.verdict, "💥")
    name = md_text(_clip(bundle.name, 150)) + (
        " (flaky: passed on a retry)" if bundle.flaky else ""
    )
    problem = _problem(bundle)
    failing = ""
    if problem is not None:
        failing = f"{md_text(_clip(problem[0], 120))}: {md_text(_clip(problem[1], 200))}"
    took = format_s(bundle.manifest.get("duration_s"))
    cells = [icon, name, _steps_cell(bundle), took, failing, _links(bundle, links)]
    return "| " + " | ".join(cells) + " |"


def _section(bundle: Bundle, links: Links) -> list[str]:
    """The failure in full (message, screenshot, preview), or a passing run's thumbnails."""
    name = md_text(_clip(bundle.name, 200))
    problem = _problem(bundle)
    step = bundle.failing_step()
    preview = _thumb(links.url(bundle, bundle.manifest.get("preview")), "Preview of the run")
    if problem is None:
        shots = [s for s in bundle.manifest["steps"] if s.get("screenshot")]
        last = shots[-1] if shots else None
        final = (
            _thumb(links.url(bundle, last.get("screenshot")), f"Step {step_number(last)}")
            if last
            else None
        )
        images = [x for x in (final, preview) if x]
        if not images:
            return []
        summary = f"{STATUS_ICON['passed']} {_html_text(_clip(bundle.name, 200))}"
        return [
            f"<details><summary>{summary}</summary>",
            "",
            " ".join(images),
            "",
            "</details>",
            "",
        ]
    where, message = problem
    out = [f"### {STATUS_ICON.get(bundle.verdict, '💥')} {name}", ""]
    out += [f"**{md_text(_clip(where, 200))}**", ""]
    out += [md_fence(clip_middle(message, 1_500, 500)), ""]
    shot = step.get("screenshot") if step else None
    failure = _thumb(links.url(bundle, shot), f"Screenshot of step {step_number(step or {})}")
    attached = [_thumb(links.url(bundle, rel), name) for name, rel in bundle.failure_attachments()]
    images = [x for x in (failure, *attached, preview) if x]
    if images:
        out += [" ".join(images), ""]
    elif shot_link := _md_link("Screenshot of the failing step", links.url(bundle, shot)):
        out += [shot_link, ""]
    return out


def _size(lines: Sequence[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def render_comment(
    bundles: Sequence[Bundle],
    links: Links,
    *,
    key: str = "verifier",
    sha: str | None = None,
) -> str:
    """The sticky comment's Markdown for ``bundles``.

    :returns: Markdown starting with the marker for ``key``, at most ``COMMENT_LIMIT``
        characters long.
    """
    state = overall_state(bundles)
    who = "verifier" if key == "verifier" else f"verifier ({key})"
    failed = sum(1 for b in bundles if b.verdict != "passed")
    if len(bundles) == 1:
        title = {"success": "passed", "failure": "failed", "error": "could not verify"}[state]
    elif state == "success":
        title = f"all {len(bundles)} recipes passed"
    else:
        title = f"{failed} of {len(bundles)} recipes did not pass"
    facts = [f"**{md_text(tally(bundles))}**"]
    if sha:
        facts.append(f"commit `{sha[:12]}`")
    if run := _md_link("CI run", links.run_url):
        facts.append(run)
    head = [marker(key), f"## {_TITLE[state]} {who}: {title}", "", " · ".join(facts), ""]
    foot = ["<sub>Posted by <code>verifier publish</code>; updated in place on every run.</sub>"]
    table = [
        "| | Recipe | Steps | Duration | Failing step | Evidence |",
        "|:-:|---|---|---:|---|---|",
    ]
    budget = _BUDGET - _size(head) - _size(foot) - 400
    shown: list[Bundle] = []
    for bundle in bundles:
        row = _row(bundle, links)
        if len(shown) >= _MAX_ROWS or _size(table) + len(row) + 1 > budget // 2:
            left = len(bundles) - len(shown)
            table += ["", f"… {left:,} more recipes not listed here; see the CI job summary."]
            break
        table.append(row)
        shown.append(bundle)
    body: list[str] = table + [""]
    # Failures first: they are what the reviewer needs to see.
    ordered = [b for b in shown if b.verdict != "passed"] + [
        b for b in shown if b.verdict == "passed"
    ]
    for n, bundle in enumerate(ordered):
        section = _section(bundle, links)
        if _size(body) + _size(section) > budget:
            left = sum(1 for b in ordered[n:] if b.verdict != "passed")
            if left:
                body += [f"… details of {left:,} more failing recipes left out (size limit).", ""]
            break
        body += section
    text = "\n".join(head + body + foot) + "\n"
    if len(text) > COMMENT_LIMIT:  # cannot happen with the budget above; never exceed anyway
        text = text[: COMMENT_LIMIT - 200] + "\n\n… cut to GitHub's comment size limit.\n"
    return text


def status_description(bundles: Sequence[Bundle]) -> str:
    """The commit status description: counts, at most 140 characters."""
    return _clip(tally(bundles), 140)
