"""Hosting images for the comment: push bundle files to an artifacts branch with git.

GitHub has no API to attach images to a comment, so the screenshots, the preview and a
small video go to a branch (``verifier-artifacts``) of a repository, one folder per run,
and the comment links them by URL.

The commit is built with plumbing in a temporary bare repository (no checkout: the branch
may hold many runs' videos) from a shallow, blob-less clone of the branch tip, or as an
orphan commit when the branch does not exist yet. A push rejected because someone else
pushed first is retried once on the new tip. The token reaches git only as an
``http.<origin>.extraHeader`` in git's environment (``GIT_CONFIG_COUNT``): never in an
argv, a URL or a config file, all of which can be printed or left on disk.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from verifier.errors import PublishError
from verifier.publish._bundles import Asset, Bundle
from verifier.publish._comment import artifact_url
from verifier.publish._errors import mask

__all__ = (
    "Planned",
    "Uploaded",
    "check_branch",
    "check_remote",
    "github_url_base",
    "hosted",
    "plan",
    "upload",
)

_log = logging.getLogger(__name__)

_TIMEOUT_S = 600.0
_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}")
_PASS_ENV = (
    "PATH",
    "HOME",
    "TMPDIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "GIT_SSL_CAINFO",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSH_COMMAND",
    "SSH_AUTH_SOCK",
)
_REJECTED = ("[rejected]", "non-fast-forward", "fetch first", "[remote rejected]")


@dataclass(frozen=True, slots=True)
class Planned:
    """One file to host: where it is, where it goes on the branch, and its URL there."""

    bundle: Bundle
    asset: Asset
    path: str
    url: str


@dataclass(frozen=True, slots=True)
class Uploaded:
    """What a push did: the files' URLs, and the commit (None when nothing was new)."""

    hosted: dict[tuple[str, str], str]
    files: int
    commit: str | None
    branch: str


def check_branch(branch: str) -> str:
    if not _BRANCH.fullmatch(branch) or ".." in branch or branch.endswith((".lock", "/", ".")):
        msg = f"--artifacts-branch {branch!r} is not a usable branch name; try 'verifier-artifacts'"
        raise PublishError(msg)
    return branch


def check_remote(remote: str) -> str:
    """``remote`` as git should get it (a local path made absolute); PublishError if it
    carries credentials, which would be printed and stored."""
    if "://" not in remote and not re.match(r"[^/]+:", remote):
        return str(Path(remote).resolve())
    parts = urlsplit(remote)
    if parts.scheme in ("http", "https") and (parts.username or parts.password):
        msg = (
            "--artifacts-remote must not hold credentials (user:password@); "
            "the token comes from GITHUB_TOKEN"
        )
        raise PublishError(msg)
    return remote


def github_url_base(remote: str, server_url: str) -> str | None:
    """``<server>/<owner>/<repo>/raw/{branch}/`` when ``remote`` is a repository on
    ``server_url`` (GitHub or GitHub Enterprise), else None."""
    server = server_url.rstrip("/")
    if not remote.startswith(server + "/"):
        return None
    path = remote[len(server) + 1 :].removesuffix("/").removesuffix(".git")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", path):
        return None
    return f"{server}/{path}/raw/{{branch}}/"


def plan(
    bundles: Sequence[Bundle], *, url_base: str, branch: str, max_video_bytes: int
) -> list[Planned]:
    """The files to host for ``bundles`` and the URL each will have on ``branch``."""
    base = url_base.replace("{branch}", quote(branch, safe="/"))
    return [
        Planned(
            bundle=bundle,
            asset=asset,
            path=f"{bundle.folder}/{asset.rel}",
            url=artifact_url(base, bundle.folder, asset.rel),
        )
        for bundle in bundles
        for asset in bundle.assets(max_video_bytes=max_video_bytes)
    ]


def hosted(planned: Sequence[Planned]) -> dict[tuple[str, str], str]:
    return {(p.bundle.folder, p.asset.rel): p.url for p in planned}


class _Git:
    """git with an explicit environment, the token only in that environment."""

    def __init__(self, *, remote: str, token: str | None, git: str = "git") -> None:
        self.remote = remote
        self._token = token
        self._git = git
        env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
        env.update(
            LC_ALL="C",
            GIT_TERMINAL_PROMPT="0",
            GIT_AUTHOR_NAME="verifier publish",
            GIT_AUTHOR_EMAIL="verifier-publish@users.noreply.github.com",
            GIT_COMMITTER_NAME="verifier publish",
            GIT_COMMITTER_EMAIL="verifier-publish@users.noreply.github.com",
        )
        # An empty credential.helper clears every configured helper: none may store or
        # offer credentials for this remote.
        config = [("credential.helper", "")]
        parts = urlsplit(remote)
        if token and parts.scheme in ("http", "https"):
            # Scoped to the remote's origin, so a redirect elsewhere does not carry it.
            origin = f"{parts.scheme}://{parts.netloc}/"
            basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
            config.append((f"http.{origin}.extraHeader", f"Authorization: Basic {basic}"))
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for n, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{n}"] = key
            env[f"GIT_CONFIG_VALUE_{n}"] = value
        self.env = env

    def __call__(
        self,
        *args: str,
        cwd: Path | None = None,
        stdin: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        argv = [self._git, *(["-C", str(cwd)] if cwd else []), *args]
        env = {**self.env, **(extra_env or {})}
        try:
            done = subprocess.run(
                argv,
                input=stdin,
                capture_output=True,
                text=True,
                env=env,
                timeout=_TIMEOUT_S,
                check=False,
            )
        except FileNotFoundError:
            msg = f"cannot run {self._git!r}: git is not installed; install git or use --no-upload"
            raise PublishError(msg) from None
        except subprocess.TimeoutExpired:
            msg = f"git {args[0]} did not finish in {_TIMEOUT_S:.0f} s (remote {self.remote!r})"
            raise PublishError(msg) from None
        if check and done.returncode != 0:
            raise self.error(args, done)
        return done

    def error(self, args: Sequence[str], done: subprocess.CompletedProcess[str]) -> PublishError:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        tail = " | ".join(lines[-3:]) or "no message"
        msg = (
            f"git {' '.join(args[:1])} failed (exit {done.returncode}) for --artifacts-remote "
            f"{self.remote!r}: {tail}; check that the remote exists and the token may push "
            "to it (contents: write), or use --no-upload"
        )
        return PublishError(mask(msg, [self._token] if self._token else []))


def _tip(git: _Git, branch: str) -> str | None:
    done = git("ls-remote", "--heads", "--", git.remote, f"refs/heads/{branch}")
    for line in done.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return sha
    return None


def _commit(git: _Git, repo: Path, branch: str, planned: Sequence[Planned]) -> str | None:
    """Make the commit that adds ``planned`` on top of the branch tip; None if no change."""
    parent_sha: str | None = None
    if _tip(git, branch) is not None:
        git(
            *("clone", "--quiet", "--bare", "--depth=1", "--filter=blob:none"),
            *("--single-branch", f"--branch={branch}", "--", git.remote, str(repo)),
        )
        tip = git("rev-parse", "--verify", f"refs/heads/{branch}^{{commit}}", cwd=repo)
        parent_sha = tip.stdout.strip()
    else:
        git("init", "--quiet", "--bare", str(repo))
        parent_sha = None
    index = {"GIT_INDEX_FILE": str(repo / "verifier-publish.index")}
    if parent_sha:
        git("read-tree", parent_sha, cwd=repo, extra_env=index)
    paths = [str(p.asset.path) for p in planned]
    shas = git("hash-object", "-w", "--no-filters", "--", *paths, cwd=repo).stdout.split()
    entries = "".join(f"100644 {sha}\t{p.path}\n" for sha, p in zip(shas, planned, strict=True))
    git("update-index", "--add", "--index-info", cwd=repo, stdin=entries, extra_env=index)
    tree = git("write-tree", "--missing-ok", cwd=repo, extra_env=index).stdout.strip()
    if parent_sha:
        old = git("rev-parse", f"{parent_sha}^{{tree}}", cwd=repo).stdout.strip()
        if old == tree:
            return None
    runs = sorted({p.bundle.folder for p in planned})
    message = f"verifier: evidence of {', '.join(runs)}"[:1_000]
    argv = ["commit-tree", tree, "-m", message] + (["-p", parent_sha] if parent_sha else [])
    return git(*argv, cwd=repo).stdout.strip()


def upload(
    planned: Sequence[Planned],
    *,
    remote: str,
    branch: str,
    token: str | None,
    workdir: Path | None = None,
) -> Uploaded:
    """Push the ``planned`` files to ``branch`` of ``remote`` (created when missing).

    :param workdir: an empty folder to work in, kept afterwards (for tests); by default a
        temporary folder that is removed.
    :raises PublishError: git failed; the message holds git's last lines, token masked.
    """
    check_branch(branch)
    remote = check_remote(remote)
    if not planned:
        return Uploaded(hosted={}, files=0, commit=None, branch=branch)
    git = _Git(remote=remote, token=token)
    with tempfile.TemporaryDirectory(prefix="verifier-publish-") as tmp:
        base = workdir or Path(tmp)
        commit: str | None = None
        for attempt in (1, 2):
            repo = base / f"attempt-{attempt}.git"
            commit = _commit(git, repo, branch, planned)
            if commit is None:
                _log.info("the files are already on %s", branch)
                break
            refspec = f"{commit}:refs/heads/{branch}"
            pushed = git("push", "--quiet", "--", remote, refspec, cwd=repo, check=False)
            if pushed.returncode == 0:
                break
            rejected = any(word in pushed.stderr for word in _REJECTED)
            if attempt == 2 or not rejected:
                raise git.error(("push",), pushed)
            _log.info("push to %s rejected (someone pushed first); retrying on the new tip", branch)
    return Uploaded(hosted=hosted(planned), files=len(planned), commit=commit, branch=branch)
