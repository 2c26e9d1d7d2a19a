"""verifier publish against a loopback fake of GitHub's API and real git repositories."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.publish.github_fake import FakeGitHub, GitHttp
from tests.publish.helpers import (
    PR,
    REPO,
    SHA,
    URL_BASE,
    branch_files,
    cli,
    files_holding,
    git,
    leaks,
    make_bundle,
    target,
)
from verifier.errors import VerifierError
from verifier.evidence import read_manifest
from verifier.publish import COMMENT_LIMIT, PublishError, load_bundles
from verifier.publish._actions import escape_data, escape_property
from verifier.publish._comment import Links, render_comment
from verifier.publish._errors import mask
from verifier.publish._upload import plan, upload

# -- the scenario ----------------------------------------------------------------------------


def test_one_sticky_comment_updated_to_show_the_failure(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    github: FakeGitHub,
    remote: Path,
    token: str,
) -> None:
    summary = tmp_path / "step-summary.md"
    os.environ["GITHUB_STEP_SUMMARY"] = str(summary)
    bundles = tmp_path / "bundles"
    passing = make_bundle(bundles, name="Adding a todo shows it")
    # Other people's comments push the sticky one onto a later page of the listing.
    for n in range(130):
        github.add_comment(REPO, PR, f"comment {n}")

    code, out, err = cli(capsys, str(passing), *target(github, remote))
    assert (code, err) == (0, "")
    assert "comment created: https://github.com/octo/app/pull/7#issuecomment-" in out
    assert "status verifier/verifier: success on 0123456789ab" in out
    ours = [c for c in github.comments_on(REPO, PR) if "verifier:" in c["body"]]
    assert len(ours) == 1
    assert ours[0]["body"].startswith("<!-- verifier:verifier -->\n## ✅ verifier: passed")
    assert github.statuses[-1]["state"] == "success"

    for n in range(120):
        github.add_comment(REPO, PR, f"later comment {n}")
    failing = make_bundle(bundles, verdict="failed", name="Completing a todo counts it")
    code, out, err = cli(capsys, str(passing), str(failing), *target(github, remote))
    assert (code, err) == (0, "")
    assert "comment updated:" in out

    # Exactly one comment, edited in place (PATCH), found past the first page.
    ours = [c for c in github.comments_on(REPO, PR) if c["body"].startswith("<!-- verifier:")]
    assert len(ours) == 1
    body = ours[0]["body"]
    assert body.startswith(
        "<!-- verifier:verifier -->\n## ❌ verifier: 1 of 2 recipes did not pass"
    )
    assert "Completing a todo counts it" in body and "Adding a todo shows it" in body
    assert "step 3 \\(expect\\_text 7 items left\\)" in body
    assert "expect_text: '7 items left' not in the visible text" in body
    posts = [r for r in github.requests if r.method == "POST" and r.path.endswith("/comments")]
    patches = [r for r in github.requests if r.method == "PATCH"]
    assert len(posts) == 1 and len(patches) == 1
    assert patches[0].path == f"/repos/{REPO}/issues/comments/{ours[0]['id']}"
    pages = [r.query.get("page") for r in github.requests if r.method == "GET"]
    assert ["2"] in pages and ["3"] in pages
    assert all(
        r.query.get("per_page") in (["100"], None) for r in github.requests if r.method == "GET"
    )

    # A failure status on the commit, with counts.
    status = github.statuses[-1]
    assert status["state"] == "failure" and status["context"] == "verifier/verifier"
    assert status["description"] == "2 recipes: 1 failed, 1 passed"
    assert status["_sha"] == SHA and status["target_url"] == ours[0]["html_url"]

    # Every request carried the token, and GitHub's headers; the fake found nothing wrong.
    assert github.requests
    assert {r.headers["authorization"] for r in github.requests} == {f"Bearer {token}"}
    assert {r.headers["x-github-api-version"] for r in github.requests} == {"2022-11-28"}
    assert github.problems == []

    # The images are on the artifacts branch, one folder per run, and linked by URL.
    files = branch_files(remote)
    fail_shot = f"{failing.name}/screenshots/03-click-failed.png"
    assert fail_shot in files
    assert {f"{failing.name}/preview.gif", f"{failing.name}/video.mp4"} <= files
    assert {f"{passing.name}/preview.gif", f"{passing.name}/screenshots/03-click.png"} <= files
    assert f'<img src="https://git.example/raw/verifier-artifacts/{fail_shot}"' in body
    assert f"[Video](https://git.example/raw/verifier-artifacts/{failing.name}/video.mp4)" in body
    clone = tmp_path / "clone"
    git("clone", "--quiet", "--branch", "verifier-artifacts", str(remote), str(clone))
    shot = clone / fail_shot
    assert shot.read_bytes() == (failing / "screenshots" / "03-click-failed.png").read_bytes()

    # The job summary got the same Markdown, once per publish.
    text = summary.read_text(encoding="utf-8")
    assert text.count("<!-- verifier:verifier -->") == 2
    assert body in text

    # The token is nowhere: output, comments, statuses, files on disk, git's config.
    everything = out + err + json.dumps(github.comments) + json.dumps(github.statuses)
    assert leaks(token, everything) == []
    assert files_holding(token, tmp_path) == []
    assert token not in git("--git-dir", str(remote), "config", "--list")


def test_republishing_the_same_bundles_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], github: FakeGitHub, remote: Path
) -> None:
    bundle = make_bundle(tmp_path / "b", verdict="failed")
    assert cli(capsys, str(bundle), *target(github, remote))[0] == 0
    tip = git("--git-dir", str(remote), "rev-parse", "refs/heads/verifier-artifacts")
    code, out, _ = cli(capsys, str(bundle), *target(github, remote))
    assert code == 0
    assert "comment unchanged" in out and "(already there)" in out
    assert git("--git-dir", str(remote), "rev-parse", "refs/heads/verifier-artifacts") == tip
    assert [r.method for r in github.requests].count("PATCH") == 0
    assert len(github.comments_on(REPO, PR)) == 1


def test_keys_keep_separate_comments_and_statuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], github: FakeGitHub
) -> None:
    bundle = make_bundle(tmp_path / "b")
    assert cli(capsys, str(bundle), *target(github))[0] == 0
    assert cli(capsys, str(bundle), *target(github), "--key", "mobile")[0] == 0
    assert cli(capsys, str(bundle), *target(github), "--key", "mobile")[0] == 0
    bodies = [c["body"].split("\n", 1)[0] for c in github.comments_on(REPO, PR)]
    assert bodies == ["<!-- verifier:verifier -->", "<!-- verifier:mobile -->"]
    assert {s["context"] for s in github.statuses} == {"verifier/verifier", "verifier/mobile"}


def test_a_marker_from_an_outsider_is_not_ours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], github: FakeGitHub
) -> None:
    fake = "<!-- verifier:verifier -->\n## ✅ verifier: passed"
    theirs = github.add_comment(REPO, PR, fake, login="mallory", association="NONE")
    bundle = make_bundle(tmp_path / "b", verdict="failed")
    assert cli(capsys, str(bundle), *target(github))[0] == 0
    assert cli(capsys, str(make_bundle(tmp_path / "c")), *target(github))[0] == 0
    assert github.comments[theirs]["body"] == fake
    ours = [c for c in github.comments_on(REPO, PR) if c["id"] != theirs]
    assert len(ours) == 1 and ours[0]["user"]["login"] == "github-actions[bot]"
    assert "## ✅ verifier: passed" in ours[0]["body"]
    assert [r.method for r in github.requests].count("PATCH") == 1


def test_a_folder_of_bundles_and_the_error_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], github: FakeGitHub
) -> None:
    make_bundle(tmp_path / "all", verdict="failed")
    make_bundle(tmp_path / "all", verdict="error", name="Dev server starts")
    make_bundle(tmp_path / "all")
    code, _, err = cli(capsys, str(tmp_path / "all"), *target(github))
    assert (code, err) == (0, "")
    assert github.statuses[-1]["state"] == "error"
    assert github.statuses[-1]["description"] == "3 recipes: 1 could not verify, 1 failed, 1 passed"
    body = github.comments_on(REPO, PR)[0]["body"]
    assert "the run could not verify \\(DevServerError\\)" in body
    assert "dev server never got ready" in body


# -- GitHub Actions --------------------------------------------------------------------------


def test_defaults_come_from_the_actions_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], github: FakeGitHub
) -> None:
    head = "fedcba9876543210fedcba9876543210fedcba98"
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps({"number": PR, "pull_request": {"number": PR, "head": {"sha": head}}})
    )
    os.environ.update(
        GITHUB_ACTIONS="true",
        GITHUB_REPOSITORY=REPO,
        GITHUB_EVENT_PATH=str(event),
        GITHUB_SHA="1" * 40,  # the merge commit: not where the status belongs
        GITHUB_API_URL=github.url,
        GITHUB_SERVER_URL="https://github.example",
        GITHUB_RUN_ID="99",
    )
    bundle = make_bundle(tmp_path / "b")
    code, out, err = cli(capsys, str(bundle), "--no-upload")
    assert (code, err) == (0, "")
    assert github.statuses[-1]["_sha"] == head
    body = github.comments_on(REPO, PR)[0]["body"]
    assert "[CI run](https://github.example/octo/app/actions/runs/99)" in body
    assert github.problems == []


def test_error_annotations_for_failing_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], github: FakeGitHub
) -> None:
    workspace = tmp_path / "ws"
    (workspace / "recipes").mkdir(parents=True)
    os.environ.update(GITHUB_ACTIONS="true", GITHUB_WORKSPACE=str(workspace))
    bundle = make_bundle(
        tmp_path / "b",
        verdict="failed",
        name="Totals: 100%, really",
        error="expected 100% done,\nsaw 50%\r\nof: them",
        recipe_path=str(workspace / "recipes" / "a,b.yaml"),
    )
    make_bundle(tmp_path / "b")  # a passing one: no annotation
    code, out, _ = cli(capsys, str(tmp_path / "b"), *target(github))
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith("::")]
    assert lines == [
        "::error file=recipes/a%2Cb.yaml,"
        "title=verifier%3A Totals%3A 100%25%2C really%3A step 3 (expect_text 7 items left)"
        "::expected 100%25 done,%0Asaw 50%25%0D%0Aof: them"
    ]
    assert bundle.name in github.comments_on(REPO, PR)[0]["body"]


def test_no_annotations_outside_actions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], github: FakeGitHub
) -> None:
    bundle = make_bundle(tmp_path / "b", verdict="failed")
    code, out, _ = cli(capsys, str(bundle), *target(github))
    assert code == 0 and "::error" not in out


def test_workflow_command_escaping() -> None:
    assert escape_data("a%b\rc\nd:e,f") == "a%25b%0Dc%0Ad:e,f"
    assert escape_property("a%b\rc\nd:e,f") == "a%25b%0Dc%0Ad%3Ae%2Cf"


# -- dry run ---------------------------------------------------------------------------------


def test_dry_run_prints_the_comment_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], github: FakeGitHub, remote: Path
) -> None:
    summary = tmp_path / "summary.md"
    os.environ["GITHUB_STEP_SUMMARY"] = str(summary)
    bundle = make_bundle(tmp_path / "b", verdict="failed")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, out, err = cli(capsys, str(bundle), *target(github, remote), "--dry-run")
    assert (code, err) == (0, "")
    assert out.startswith("<!-- verifier:verifier -->\n## ❌ verifier:")
    assert f"https://git.example/raw/verifier-artifacts/{bundle.name}/preview.gif" in out
    assert github.requests == []
    assert not summary.exists()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert git("--git-dir", str(remote), "branch", "--list") == ""


def test_dry_run_needs_no_token_and_fences_workflow_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    del os.environ["GITHUB_TOKEN"]
    os.environ["GITHUB_ACTIONS"] = "true"
    bundle = make_bundle(tmp_path / "b", verdict="failed", error="::add-mask::x\n::error::boom")
    code, out, err = cli(capsys, str(bundle), "--no-upload", "--dry-run")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    stop = re.fullmatch(r"::stop-commands::([0-9a-f]{32})", lines[0])
    assert stop and lines[-1] == f"::{stop[1]}::"
    assert "[Report](" in out and f"({bundle.name}/report.html)" in out


# -- limits ----------------------------------------------------------------------------------


def test_comment_stays_under_githubs_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], github: FakeGitHub
) -> None:
    for n in range(60):
        make_bundle(
            tmp_path / "many",
            verdict="failed" if n % 2 else "passed",
            name=f"recipe {n} " + "long name | with *markup* " * 8,
            error="boom `x` " * 600,
        )
    code, _, err = cli(
        capsys, str(tmp_path / "many"), *target(github), "--link-base", "https://ci.example/a/"
    )
    assert (code, err) == (0, "")
    body = github.comments_on(REPO, PR)[0]["body"]
    assert len(body) <= COMMENT_LIMIT
    assert "more failing recipes left out (size limit)" in body
    assert github.problems == []


def test_rows_are_cut_with_a_note_when_there_are_hundreds(tmp_path: Path) -> None:
    for _ in range(5):
        make_bundle(tmp_path / "b", verdict="failed", name="x" * 300, error="e " * 3000)
    bundles = load_bundles([str(tmp_path / "b")]) * 120  # 600 runs
    text = render_comment(bundles, Links(link_base="https://ci.example/" + "p" * 900 + "/"))
    assert len(text) <= COMMENT_LIMIT
    assert "more recipes not listed here" in text


def test_big_videos_are_not_hosted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], github: FakeGitHub, remote: Path
) -> None:
    bundle = make_bundle(tmp_path / "b", video_bytes=300_000)
    code, _, _ = cli(capsys, str(bundle), *target(github, remote), "--max-video-mb", "0.1")
    assert code == 0
    files = branch_files(remote)
    assert f"{bundle.name}/preview.gif" in files and f"{bundle.name}/video.mp4" not in files
    body = github.comments_on(REPO, PR)[0]["body"]
    assert f"[Video](https://git.example/raw/verifier-artifacts/{bundle.name}/" not in body
    assert f"Video: <code>{bundle.name}/video.mp4</code>" in body


def test_the_failing_steps_attachments_are_hosted_and_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], github: FakeGitHub, remote: Path
) -> None:
    names = ("expected", "actual", "diff", "extra")
    bundle = make_bundle(tmp_path / "b", verdict="failed", attachments=names)
    assert cli(capsys, str(bundle), *target(github, remote))[0] == 0
    files = branch_files(remote)
    body = github.comments_on(REPO, PR)[0]["body"]
    for name in names[:3]:
        rel = f"{bundle.name}/screenshots/03-{name}.png"
        assert rel in files
        assert f'verifier-artifacts/{rel}" width="400" alt="{name}">' in body
    assert f"{bundle.name}/screenshots/03-extra.png" not in files  # three at most


def test_no_upload_links_into_the_ci_artifact(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", verdict="failed")
    bundles = load_bundles([str(bundle)])
    relative = render_comment(bundles, Links(link_base=""))
    assert f"[Video]({bundle.name}/video.mp4)" in relative
    assert "<img" not in relative  # a relative image would not render in a comment
    based = render_comment(bundles, Links(link_base="https://ci.example/a/{run_id}/files/"))
    assert f"[Report](https://ci.example/a/{bundle.name}/files/report.html)" in based
    assert (
        f'<img src="https://ci.example/a/{bundle.name}/files/screenshots/03-click-failed.png"'
        in based
    )


def test_hostile_text_cannot_break_the_comment(tmp_path: Path) -> None:
    evil = "<!-- verifier:verifier --> </details><img src=x onerror=alert(1)> | @team #1"
    make_bundle(tmp_path / "b", verdict="failed", name=evil, error=evil + "\n```\n" + evil)
    make_bundle(tmp_path / "b", name=evil)
    text = render_comment(
        load_bundles([str(tmp_path / "b")]), Links(link_base="https://ci.example/")
    )
    lines = text.splitlines()
    assert lines[0] == "<!-- verifier:verifier -->"
    assert lines.count("<!-- verifier:verifier -->") == 1
    prose = re.sub(r"(?ms)^(`{3,})text$.*?^\1$", "", text)  # the fenced message is code
    assert re.findall(r"(?<!\\)<(?:img src=x|/details><img)", prose) == []
    assert re.findall(r"(?<![\\\u2060])@team", prose) == []


# -- errors ----------------------------------------------------------------------------------


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ") and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("status", "body", "headers", "says"),
    [
        (
            403,
            {"message": "Resource not accessible by integration"},
            {},
            "403 (Resource not accessible",
        ),
        (
            422,
            {"message": "Validation Failed", "errors": [{"message": "body is too long"}]},
            {},
            "422",
        ),
        (
            403,
            {"message": "API rate limit exceeded for installation ID 1."},
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4102444800"},
            "rate limited",
        ),
        (429, {"message": "Too many requests"}, {"Retry-After": "3600"}, "rate limited for 3600 s"),
        (500, {"message": "Server Error"}, {}, "500"),
    ],
)
def test_api_errors_give_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    github: FakeGitHub,
    token: str,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    says: str,
) -> None:
    github.fail("POST", r"/comments$", status, body, headers=headers, times=5)
    bundle = make_bundle(tmp_path / "b")
    code, out, err = cli(capsys, str(bundle), *target(github))
    assert code == 2
    line = one_error_line(err)
    assert f"cannot comment on {REPO}#{PR}: GitHub answered {status}" in line
    assert says in line
    assert leaks(token, out, err) == []
    assert github.statuses == []


def test_bad_token_is_a_401(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], github: FakeGitHub
) -> None:
    os.environ["GITHUB_TOKEN"] = "ghp_wrong_token_0123456789"
    code, _, err = cli(capsys, str(make_bundle(tmp_path / "b")), *target(github))
    assert code == 2
    assert "GitHub answered 401 (Bad credentials): GITHUB_TOKEN is wrong" in one_error_line(err)
    assert "ghp_wrong_token" not in err


def test_unknown_pull_request_is_a_404(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], github: FakeGitHub
) -> None:
    bundle = make_bundle(tmp_path / "b")
    argv = [str(bundle), *target(github)]
    argv[argv.index("--pr") + 1] = "404"
    code, _, err = cli(capsys, *argv)
    assert code == 2
    line = one_error_line(err)
    assert "cannot list the comments of octo/app#404: GitHub answered 404 (Not Found)" in line
    assert "check --repo 'octo/app' and --pr" in line


def test_a_short_rate_limit_is_waited_out_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], github: FakeGitHub
) -> None:
    github.fail("GET", r"/comments$", 429, {"message": "slow down"}, headers={"Retry-After": "1"})
    code, _, err = cli(capsys, str(make_bundle(tmp_path / "b")), *target(github))
    assert (code, err) == (0, "")
    assert [r.method for r in github.requests][:3] == ["GET", "GET", "POST"]


def test_api_unreachable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--repo", REPO, "--pr", "1", "--api-url", "http://127.0.0.1:9", "--no-upload"]
    code, _, err = cli(capsys, str(make_bundle(tmp_path / "b")), *argv)
    assert code == 2
    assert "cannot reach http://127.0.0.1:9" in one_error_line(err)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--repo", "not-a-repo"], "--repo 'not-a-repo' is not OWNER/REPO"),
        (["--sha", "abc"], "--sha 'abc' is not a full commit SHA"),
        (["--key", "x -->"], "--key 'x -->' is not valid"),
        (["--api-url", "ftp://x"], "--api-url 'ftp://x' is not an http(s) URL"),
        (["--artifacts-remote", "https://me:pw@example.com/r.git"], "must not hold credentials"),
        (["--artifacts-remote", "/tmp/x.git"], "pass --artifacts-url-base"),
    ],
)
def test_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    base = ["--repo", REPO, "--pr", "1"]
    code, _, err = cli(capsys, str(make_bundle(tmp_path / "b")), *base, *argv)
    assert code == 2
    assert says in one_error_line(err)


def test_missing_token_repo_and_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = str(make_bundle(tmp_path / "b"))
    del os.environ["GITHUB_TOKEN"]
    code, _, err = cli(capsys, bundle, "--repo", REPO, "--pr", "1")
    assert code == 2 and "GITHUB_TOKEN is not set" in one_error_line(err)
    os.environ["GITHUB_TOKEN"] = "t0ken-value"
    code, _, err = cli(capsys, bundle, "--pr", "1")
    assert code == 2 and "no repository: pass --repo" in one_error_line(err)
    code, _, err = cli(capsys, str(tmp_path), "--repo", REPO, "--pr", "1")
    assert code == 2 and "is not an evidence bundle (no manifest.json)" in one_error_line(err)


def test_publish_error_is_a_verifier_error() -> None:
    assert issubclass(PublishError, VerifierError) and PublishError.exit_code == 2
    assert mask("a ghp_secret b", ["ghp_secret"]) == "a *** b"


# -- git: auth over HTTP, no token on disk, races --------------------------------------------


def test_push_over_http_sends_the_token_only_as_a_header(tmp_path: Path, token: str) -> None:
    root = tmp_path / "srv"
    git("init", "--quiet", "--bare", str(root / "octo" / "app.git"))
    bundle = make_bundle(tmp_path / "b", verdict="failed")
    planned = plan(
        load_bundles([str(bundle)]),
        url_base=URL_BASE,
        branch="verifier-artifacts",
        max_video_bytes=10 << 20,
    )
    work = tmp_path / "work"
    work.mkdir()
    with GitHttp(root, token=token) as server:
        remote = f"{server.url}/octo/app.git"
        done = upload(
            planned, remote=remote, branch="verifier-artifacts", token=token, workdir=work
        )
        assert done.commit is not None and done.files == len(planned) == 3
        assert any(a and a.startswith("Basic ") for a in server.auth_seen)
        # The temporary clone kept for inspection holds the token nowhere, config included.
        assert files_holding(token, work) == []
        assert list(work.glob("*.git"))
        for repo in work.glob("*.git"):
            config = (repo / "config").read_text()
            assert token not in config and "extraheader" not in config.lower()
            assert f"url = {remote}" in config or "url" not in config
        # A wrong token: one line, the remote named, the token masked.
        with pytest.raises(PublishError) as caught:
            upload(planned, remote=remote, branch="other", token="ghp_" + "x" * 36)
    assert "\n" not in caught.value.message
    assert "ghp_" + "x" * 36 not in caught.value.message
    assert f"--artifacts-remote '{remote}'" in caught.value.message
    assert branch_files(root / "octo" / "app.git") == {p.path for p in planned}


def test_a_push_race_is_retried_on_the_new_tip(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from verifier.publish import _upload

    ours = make_bundle(tmp_path / "b", verdict="failed")
    theirs = make_bundle(tmp_path / "c")
    planned_theirs = plan(
        load_bundles([str(theirs)]),
        url_base=URL_BASE,
        branch="verifier-artifacts",
        max_video_bytes=10 << 20,
    )
    real_commit = _upload._commit
    calls: list[str | None] = []

    def racing(*args: Any, **kwargs: Any) -> str | None:
        made = real_commit(*args, **kwargs)
        calls.append(made)
        if len(calls) == 1:  # someone else publishes between our commit and our push
            with monkeypatch.context() as m:
                m.setattr(_upload, "_commit", real_commit)
                upload(planned_theirs, remote=str(remote), branch="verifier-artifacts", token=None)
        return made

    monkeypatch.setattr(_upload, "_commit", racing)
    planned = plan(
        load_bundles([str(ours)]),
        url_base=URL_BASE,
        branch="verifier-artifacts",
        max_video_bytes=10 << 20,
    )
    done = upload(planned, remote=str(remote), branch="verifier-artifacts", token=None)
    assert len(calls) == 2 and done.commit == calls[1]
    files = branch_files(remote)
    assert {p.path for p in planned} | {p.path for p in planned_theirs} <= files
    log = git("--git-dir", str(remote), "log", "--format=%s", "refs/heads/verifier-artifacts")
    assert log.splitlines() == [
        f"verifier: evidence of {ours.name}",
        f"verifier: evidence of {theirs.name}",
    ]


# -- real runs -------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_bundles_of_the_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], github: FakeGitHub, remote: Path, token: str
) -> None:
    from tests.bundles import run_demo

    (tmp_path / "pass").mkdir()
    (tmp_path / "fail").mkdir()
    passing = run_demo(tmp_path / "pass")
    failing = run_demo(tmp_path / "fail", fail=True)
    capsys.readouterr()
    code, out, err = cli(capsys, str(passing), str(failing), *target(github, remote))
    assert (code, err) == (0, "")
    body = github.comments_on(REPO, PR)[0]["body"]
    assert "## ❌ verifier: 1 of 2 recipes did not pass" in body
    assert "step 8 \\(expect\\_text 7 items left\\)" in body
    failing_step = next(s for s in read_manifest(failing)["steps"] if s["status"] == "failed")
    shot = f"{failing.name}/{failing_step['screenshot']}"
    files = branch_files(remote)
    assert {shot, f"{failing.name}/preview.gif", f"{failing.name}/video.mp4"} <= files
    assert f"https://git.example/raw/verifier-artifacts/{shot}" in body
    assert github.statuses[-1]["state"] == "failure" and github.problems == []
    assert files_holding(token, tmp_path) == [] and leaks(token, out, err, body) == []
