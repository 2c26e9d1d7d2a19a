"""One publish: host the images, then the job summary, the sticky comment, the status.

The job summary comes before the API calls on purpose: a pull request from a fork gets a
read-only token, and the summary is then the only place the evidence shows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from verifier.errors import PublishError
from verifier.publish._actions import append_step_summary
from verifier.publish._bundles import Bundle, State, overall_state
from verifier.publish._comment import Links, is_ours, render_comment, status_description
from verifier.publish._github import GitHub
from verifier.publish._upload import Planned, Uploaded, hosted, plan, upload

__all__ = ("PublishOptions", "PublishResult", "publish")

_log = logging.getLogger(__name__)

CommentAction = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class PublishOptions:
    """Where and how to publish (the CLI fills it from flags and the Actions environment).

    :param artifacts_url_base: URL prefix of the artifacts branch's files; ``{branch}`` in it
        is replaced by the branch. None when not uploading.
    :param link_base: prefix for links to files in the CI artifact (None: no such links).
    """

    repo: str | None
    pr: int | None
    sha: str | None
    api_url: str
    token: str | None
    key: str = "verifier"
    upload: bool = True
    artifacts_remote: str | None = None
    artifacts_branch: str = "verifier-artifacts"
    artifacts_url_base: str | None = None
    link_base: str | None = None
    max_video_bytes: int = 10 * 1024 * 1024
    run_url: str | None = None
    step_summary: Path | None = None
    dry_run: bool = False
    max_wait: float = 60.0


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What a publish did (``comment_url`` and friends are None in a dry run)."""

    markdown: str
    comment_url: str | None = None
    comment_action: CommentAction | None = None
    status_state: str | None = None
    uploaded: Uploaded | None = None
    planned_files: int = 0


# Authors who may not write to the repository: a marker in their comment is not ours, and
# editing it would put the evidence under a name that can later edit it back.
_OUTSIDERS = {"NONE", "FIRST_TIMER", "FIRST_TIME_CONTRIBUTOR", "CONTRIBUTOR", "MANNEQUIN"}


def _trusted(comment: dict[str, object]) -> bool:
    user = comment.get("user")
    if isinstance(user, dict) and user.get("type") == "Bot":  # github-actions[bot], apps
        return True
    return comment.get("author_association") not in _OUTSIDERS


def _sticky(github: GitHub, opts: PublishOptions, pr: int, body: str) -> tuple[str, CommentAction]:
    marked = [c for c in github.issue_comments(pr) if is_ours(c.get("body"), opts.key)]
    ours = [c for c in marked if _trusted(c)]
    if len(ours) < len(marked):
        _log.warning("ignoring %d marked comments by outside authors", len(marked) - len(ours))
    if not ours:
        made = github.create_comment(pr, body)
        return str(made.get("html_url") or ""), "created"
    # Two publishes racing may both have created one: keep editing the oldest.
    first = ours[0]
    if len(ours) > 1:
        _log.warning("%d comments carry the marker for %r; updating the first", len(ours), opts.key)
    comment_id = first.get("id")
    if not isinstance(comment_id, int):
        msg = f"GitHub listed a comment without an id on {opts.repo}#{pr}; cannot update it"
        raise PublishError(msg)
    if first.get("body") == body:
        return str(first.get("html_url") or ""), "unchanged"
    edited = github.update_comment(comment_id, body)
    return str(edited.get("html_url") or first.get("html_url") or ""), "updated"


def publish(bundles: Sequence[Bundle], opts: PublishOptions) -> PublishResult:
    """Publish ``bundles`` to a pull request: see the module docstring for the order.

    :raises PublishError: a missing option, a git failure, or a GitHub API error; the
        message is one line and never holds the token.
    """
    planned: list[Planned] = []
    if opts.upload:
        if opts.artifacts_url_base is None or opts.artifacts_remote is None:
            raise PublishError("uploading needs --artifacts-remote and --artifacts-url-base")
        planned = plan(
            bundles,
            url_base=opts.artifacts_url_base,
            branch=opts.artifacts_branch,
            max_video_bytes=opts.max_video_bytes,
        )
    links = Links(hosted=hosted(planned), link_base=opts.link_base, run_url=opts.run_url)
    if opts.dry_run:
        markdown = render_comment(bundles, links, key=opts.key, sha=opts.sha)
        return PublishResult(markdown=markdown, planned_files=len(planned))
    if opts.repo is None or opts.pr is None or not opts.token:
        raise PublishError("publishing needs a repository, a pull request and GITHUB_TOKEN")
    uploaded: Uploaded | None = None
    failed_upload: PublishError | None = None
    if planned and opts.artifacts_remote is not None:
        try:
            uploaded = upload(
                planned,
                remote=opts.artifacts_remote,
                branch=opts.artifacts_branch,
                token=opts.token,
            )
        except PublishError as exc:
            failed_upload = exc
            links = Links(hosted={}, link_base=opts.link_base, run_url=opts.run_url)
    markdown = render_comment(bundles, links, key=opts.key, sha=opts.sha)
    if opts.step_summary is not None:
        append_step_summary(opts.step_summary, markdown)
    if failed_upload is not None:
        raise failed_upload
    with GitHub(
        api_url=opts.api_url, repo=opts.repo, token=opts.token, max_wait=opts.max_wait
    ) as github:
        url, action = _sticky(github, opts, opts.pr, markdown)
        state: State | None = None
        if opts.sha:
            state = overall_state(bundles)
            github.create_status(
                opts.sha,
                state=state,
                context=f"verifier/{opts.key}",
                description=status_description(bundles),
                target_url=url or opts.run_url,
            )
    return PublishResult(
        markdown=markdown,
        comment_url=url or None,
        comment_action=action,
        status_state=state,
        uploaded=uploaded,
        planned_files=len(planned),
    )
