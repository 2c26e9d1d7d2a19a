"""GitHub Actions: defaults from the workflow's environment, the job summary, annotations.

See https://docs.github.com/en/actions/reference/workflows-and-actions/variables and
https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-commands.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from verifier.errors import PublishError
from verifier.evidence.text import one_line, step_label
from verifier.publish._bundles import Bundle

__all__ = (
    "ActionsEnv",
    "actions_env",
    "append_step_summary",
    "error_annotations",
    "escape_data",
    "escape_property",
)

_PULL_REF = re.compile(r"refs/pull/(\d+)/(?:merge|head)")
_MESSAGE_LIMIT = 4_000


@dataclass(frozen=True, slots=True)
class ActionsEnv:
    """What the workflow's environment says about where to publish (None: not known)."""

    repo: str | None
    pr: int | None
    sha: str | None
    api_url: str | None
    server_url: str | None
    run_url: str | None
    step_summary: Path | None
    in_actions: bool
    workspace: Path | None


def _event(path: str | None) -> dict[str, object]:
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _number(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _pr_of(event: Mapping[str, object], ref: str | None) -> tuple[int | None, str | None]:
    """(pull request number, head commit) from the event payload or the ref."""
    pull = event.get("pull_request")
    if isinstance(pull, dict):
        head = pull.get("head")
        sha = head.get("sha") if isinstance(head, dict) else None
        return _number(pull.get("number")), sha if isinstance(sha, str) else None
    issue = event.get("issue")
    if isinstance(issue, dict) and issue.get("pull_request"):  # issue_comment on a PR
        return _number(issue.get("number")), None
    match = _PULL_REF.fullmatch(ref or "")
    return (int(match.group(1)) if match else None), None


def actions_env(environ: Mapping[str, str]) -> ActionsEnv:
    """Read the GitHub Actions variables from ``environ`` (any of them may be missing)."""
    event = _event(environ.get("GITHUB_EVENT_PATH"))
    pr, head_sha = _pr_of(event, environ.get("GITHUB_REF"))
    repo = environ.get("GITHUB_REPOSITORY") or None
    server = environ.get("GITHUB_SERVER_URL") or None
    run_id = environ.get("GITHUB_RUN_ID")
    run_url = (
        f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}" if server and repo and run_id else None
    )
    summary = environ.get("GITHUB_STEP_SUMMARY")
    workspace = environ.get("GITHUB_WORKSPACE")
    return ActionsEnv(
        repo=repo,
        pr=pr,
        # On pull_request events GITHUB_SHA is a merge commit nobody sees; statuses belong
        # on the head commit of the pull request.
        sha=head_sha or environ.get("GITHUB_SHA") or None,
        api_url=environ.get("GITHUB_API_URL") or None,
        server_url=server,
        run_url=run_url,
        step_summary=Path(summary) if summary else None,
        in_actions=environ.get("GITHUB_ACTIONS") == "true",
        workspace=Path(workspace) if workspace else None,
    )


def append_step_summary(path: Path, markdown: str) -> None:
    """Append ``markdown`` to the job summary file; PublishError when it cannot."""
    try:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
            fh.write("\n")
    except OSError as exc:
        msg = f"cannot append to GITHUB_STEP_SUMMARY {str(path)!r}: {exc.strerror or exc}"
        raise PublishError(msg) from exc


def escape_data(text: str) -> str:
    """A workflow command's message: ``%``, CR and LF percent-encoded."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: as a message, plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _relative_file(recipe_path: object, workspace: Path | None) -> str | None:
    if not isinstance(recipe_path, str) or workspace is None:
        return None
    try:
        rel = Path(recipe_path).resolve().relative_to(workspace.resolve())
    except (OSError, ValueError):
        return None
    return rel.as_posix()


def error_annotations(bundles: Sequence[Bundle], *, workspace: Path | None = None) -> list[str]:
    """One ``::error`` workflow command per bundle that did not pass.

    When the recipe lies inside the workspace the annotation names it as ``file``, so
    GitHub shows it on the recipe in the pull request's diff.
    """
    lines: list[str] = []
    for bundle in bundles:
        if bundle.verdict == "passed":
            continue
        step = bundle.failing_step()
        if step is not None:
            where = step_label(step, limit=80)
            message = str(step.get("error") or "(no message)")
        else:
            error: Mapping[str, object] = bundle.manifest["error"] or {}
            where = "the run could not verify"
            message = str(error.get("message") or "(no message)")
        if len(message) > _MESSAGE_LIMIT:
            message = message[: _MESSAGE_LIMIT - 1] + "…"
        title = one_line(f"verifier: {bundle.name[:150]}: {where}")
        props = [f"title={escape_property(title)}"]
        file = _relative_file(bundle.manifest["recipe"].get("path"), workspace)
        if file:
            props.insert(0, f"file={escape_property(file)}")
        lines.append(f"::error {','.join(props)}::{escape_data(message)}")
    return lines
