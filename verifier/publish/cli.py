"""``verifier publish``: flags, defaults from GitHub Actions, and what the terminal shows.

Wired into ``verifier.cli`` by :func:`add_parser` and :func:`run`.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

from verifier._term import say, show_error
from verifier.errors import PublishError, VerifierError
from verifier.publish._actions import ActionsEnv, actions_env, error_annotations
from verifier.publish._bundles import load_bundles
from verifier.publish._comment import check_key
from verifier.publish._errors import mask
from verifier.publish._upload import check_branch, check_remote, github_url_base

if TYPE_CHECKING:
    from verifier.publish._bundles import Bundle
    from verifier.publish._publish import PublishOptions, PublishResult

__all__ = ("add_parser", "run")

_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_SHA = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_DEFAULT_API = "https://api.github.com"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``publish`` command to the CLI's subparsers."""
    p = subparsers.add_parser(
        "publish",
        help="attach evidence bundles to a pull request (comment, status, job summary)",
        description=(
            "Post one sticky comment per pull request (updated in place), a commit status "
            "and the job summary for the given bundles. The token comes from GITHUB_TOKEN; "
            "in GitHub Actions the repository, pull request and commit default to the run's."
        ),
    )
    p.add_argument(
        "bundles", nargs="+", metavar="BUNDLE", help="bundle folders, or a folder of them"
    )
    p.add_argument("--repo", metavar="OWNER/REPO", help="default: $GITHUB_REPOSITORY")
    p.add_argument("--pr", type=int, metavar="N", help="default: the pull request of the event")
    p.add_argument("--sha", help="commit for the status (default: the pull request's head)")
    p.add_argument("--api-url", metavar="URL", help=f"default: $GITHUB_API_URL or {_DEFAULT_API}")
    p.add_argument("--server-url", metavar="URL", help="default: $GITHUB_SERVER_URL or derived")
    p.add_argument(
        "--key", default="verifier", help="one comment and status per key (default: verifier)"
    )
    p.add_argument(
        "--artifacts-remote",
        metavar="URL",
        help="git repository for hosted images (default: the pull request's repository)",
    )
    p.add_argument("--artifacts-branch", default="verifier-artifacts", metavar="BRANCH")
    p.add_argument(
        "--artifacts-url-base",
        metavar="URL",
        help="URL under which the branch's files are served; {branch} is replaced "
        "(default for GitHub: <server>/<owner>/<repo>/raw/{branch}/)",
    )
    p.add_argument(
        "--max-video-mb", type=float, default=10.0, metavar="MB", help="host videos up to this size"
    )
    p.add_argument(
        "--no-upload",
        action="store_true",
        help="push nothing; link to files in the CI artifact (<run-id>/<path>)",
    )
    p.add_argument(
        "--link-base",
        metavar="URL",
        help="prefix of links into the CI artifact that holds the bundles ({run_id} is replaced)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the comment; write nothing")


def _say(stream: TextIO, line: str, token: str | None) -> None:
    say(stream, mask(line, [token] if token else []))


def _url(value: str, flag: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PublishError(f"{flag} {value!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise PublishError(f"{flag} must not hold credentials; the token comes from GITHUB_TOKEN")
    return value.rstrip("/")


def _server_of(api_url: str) -> str:
    """github.com for api.github.com; ``https://HOST`` for Enterprise's ``/api/v3``."""
    parts = urlsplit(api_url)
    if parts.netloc == "api.github.com":
        return "https://github.com"
    if parts.netloc.startswith("api."):  # GitHub Enterprise Cloud with data residency
        return f"{parts.scheme}://{parts.netloc[4:]}"
    return f"{parts.scheme}://{parts.netloc}"


def _options(
    args: argparse.Namespace, env: ActionsEnv, environ: Mapping[str, str]
) -> PublishOptions:
    # httpx and the rest of publishing load only when publishing, not on every CLI start.
    from verifier.publish._publish import PublishOptions

    dry = bool(args.dry_run)
    repo = args.repo or env.repo
    if repo is not None and not _REPO.fullmatch(repo):
        raise PublishError(f"--repo {repo!r} is not OWNER/REPO")
    pr = args.pr if args.pr is not None else env.pr
    if pr is not None and pr <= 0:
        raise PublishError(f"--pr {pr} is not a pull request number")
    sha = args.sha or env.sha
    if sha is not None and not _SHA.fullmatch(sha):
        raise PublishError(f"--sha {sha!r} is not a full commit SHA (40 hex digits)")
    token = environ.get("GITHUB_TOKEN") or None
    if not dry:
        if repo is None:
            raise PublishError("no repository: pass --repo OWNER/REPO (or set GITHUB_REPOSITORY)")
        if pr is None:
            raise PublishError("no pull request: pass --pr N (in Actions, run on pull_request)")
        if token is None:
            raise PublishError("GITHUB_TOKEN is not set; set it to a token that may comment")
        if "\n" in token or "\r" in token or " " in token.strip():
            raise PublishError("GITHUB_TOKEN is not a valid token (it holds spaces or newlines)")
    api_url = _url(args.api_url or env.api_url or _DEFAULT_API, "--api-url")
    server_url = _url(args.server_url or env.server_url or _server_of(api_url), "--server-url")
    key = check_key(args.key)
    branch = check_branch(args.artifacts_branch)
    remote = url_base = None
    if not args.no_upload:
        if args.artifacts_remote:
            remote = check_remote(args.artifacts_remote)
        elif repo is not None:
            remote = f"{server_url}/{repo}.git"
        else:
            raise PublishError("no repository to host images in: pass --repo or --no-upload")
        url_base = args.artifacts_url_base or github_url_base(remote, server_url)
        if url_base is None:
            msg = (
                f"cannot tell the URLs of files pushed to {remote!r}: pass --artifacts-url-base "
                "(or --no-upload)"
            )
            raise PublishError(msg)
    link_base = args.link_base
    if link_base is None and args.no_upload:
        link_base = ""
    if args.max_video_mb < 0:
        raise PublishError(f"--max-video-mb {args.max_video_mb} must not be negative")
    return PublishOptions(
        repo=repo,
        pr=pr,
        sha=sha.lower() if sha else None,
        api_url=api_url,
        token=token,
        key=key,
        upload=not args.no_upload,
        artifacts_remote=remote,
        artifacts_branch=branch,
        artifacts_url_base=url_base,
        link_base=link_base,
        max_video_bytes=int(args.max_video_mb * 1024 * 1024),
        run_url=env.run_url,
        step_summary=None if dry else env.step_summary,
        dry_run=dry,
    )


def _report(result: PublishResult, opts: PublishOptions, bundles: list[Bundle]) -> list[str]:
    lines = [f"Published {len(bundles)} bundle(s) to {opts.repo}#{opts.pr}"]
    if result.comment_url is not None or result.comment_action is not None:
        lines.append(f"comment {result.comment_action}: {result.comment_url or '(no URL)'}")
    if result.status_state is not None and opts.sha:
        lines.append(f"status verifier/{opts.key}: {result.status_state} on {opts.sha[:12]}")
    if result.uploaded is not None:
        up = result.uploaded
        what = f"commit {up.commit[:12]}" if up.commit else "already there"
        lines.append(f"hosted {up.files} file(s) on branch {up.branch} ({what})")
    if opts.step_summary is not None:
        lines.append(f"job summary: {opts.step_summary}")
    return lines


def run(args: argparse.Namespace, *, environ: Mapping[str, str] | None = None) -> int:
    """Run ``verifier publish`` with parsed ``args``; returns the exit code (0 or 2)."""
    from verifier.publish._publish import publish

    environ = os.environ if environ is None else environ
    token = environ.get("GITHUB_TOKEN") or None
    try:
        env = actions_env(environ)
        opts = _options(args, env, environ)
        bundles = load_bundles(args.bundles)
        if opts.dry_run:
            result = publish(bundles, opts)
            # Page text in the comment must not act as a workflow command on stdout.
            stop = secrets.token_hex(16) if env.in_actions else None
            if stop:
                _say(sys.stdout, f"::stop-commands::{stop}", token)
            _say(sys.stdout, result.markdown.rstrip("\n"), token)
            if stop:
                _say(sys.stdout, f"::{stop}::", token)
            return 0
        if env.in_actions:
            for line in error_annotations(bundles, workspace=env.workspace):
                _say(sys.stdout, line, token)
        result = publish(bundles, opts)
    except VerifierError as exc:
        return show_error(exc, mask=lambda line: mask(line, [token] if token else []))
    for line in _report(result, opts, bundles):
        _say(sys.stdout, line, token)
    return 0
