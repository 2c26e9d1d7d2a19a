"""Secrets never reach the bundle or the terminal, even when the page echoes them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import SITE, server_command
from verifier._redact import Redactor
from verifier.errors import RecipeError

SECRET = "s3cr3t-Tok3n-d9f8e7c6b5a4"


@pytest.mark.usefixtures("no_leaks")
def test_typed_secret_echoed_by_the_page_is_nowhere(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    recipe = write_recipe(
        {
            "name": "token form",
            "secrets": ["MY_SECRET"],
            "app": {
                "command": server_command("serve", str(SITE)),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [
                {"goto": "/secret.html?download=1"},
                {"type": {"secret": "MY_SECRET", "selector": "#token"}},
                {"click": "#save"},
                {"expect_text": "Saved"},
                # Fails, and its message quotes the page, which shows the secret.
                {"expect_text": {"text": "Stored", "timeout": 1}},
            ],
        }
    )
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "verifier", "run", str(recipe), "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "MY_SECRET": SECRET},
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert SECRET not in done.stdout and SECRET not in done.stderr
    assert "the page shows 'Save Saved [secret:MY_SECRET]'" in done.stderr
    (bundle,) = out.iterdir()
    files = [p for p in bundle.rglob("*") if p.is_file()]
    assert {"manifest.json", "report.html", "summary.md", "junit.xml"} <= {p.name for p in files}
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
        assert SECRET not in str(path.relative_to(bundle)), path
    # The page handed the secret back as a file's name: kept, under a redacted name.
    assert (bundle / "downloads" / "token-[secret:MY_SECRET].txt").is_file()
    # The page did echo it: the markers prove redaction happened where it was written.
    logs = bundle / "logs"
    assert "saving token [secret:MY_SECRET]" in (logs / "browser-console.jsonl").read_text()
    assert "GET /echo?token=[secret:MY_SECRET]" in (logs / "app.log").read_text()
    assert "[secret:MY_SECRET]" in (bundle / "summary.md").read_text()


def test_redactor_collects_declared_and_guessed_secrets() -> None:
    environ = {
        "MY_SECRET": "abcdef-1",
        "GITHUB_TOKEN": "ghp_0123456789abcdef",  # the verifier's: the app never gets it
        "HOME": "/root",
    }
    redactor = Redactor.collect(
        declared=["MY_SECRET"],
        environ=environ,
        app_env={"DB_PASSWORD": "hunter2hunter2", "MODE": "dev", "DISABLE_AUTH_TOKEN": "true"},
    )
    assert redactor.names == ["DB_PASSWORD", "MY_SECRET"]
    text = "abcdef-1 hunter2hunter2 true /root dev"
    assert redactor.text(text) == "[secret:MY_SECRET] [secret:DB_PASSWORD] true /root dev"
    assert Redactor.collect(declared=[], environ={"HOME": "/x"}, app_env={}).names == []


def test_short_secrets_are_refused_and_structure_is_never_rewritten() -> None:
    with pytest.raises(RecipeError, match="secret PIN is 4 characters long; a secret needs 6"):
        Redactor.collect(declared=["PIN"], environ={"PIN": "2026"}, app_env={})
    redactor = Redactor({"S": "artifacts-20261129"})
    manifest = {
        "run_id": "20261129-x-artifacts-20261129",
        "artifacts": [{"path": "artifacts-20261129.png", "sha256": "artifacts-20261129"}],
        "artifacts-20261129": "artifacts-20261129",
    }
    assert redactor.obj(manifest) == {
        "run_id": "20261129-x-artifacts-20261129",
        "artifacts": [{"path": "artifacts-20261129.png", "sha256": "artifacts-20261129"}],
        "artifacts-20261129": "[secret:S]",
    }


def test_typed_secrets_prefixes_are_secret_too() -> None:
    redactor = Redactor({"PW": "correct-horse"}, typed=["PW"])
    logged = [f"value={'correct-horse'[:n]}" for n in range(1, 14)]
    shown = [redactor.text(line) for line in logged]
    assert shown[:5] == ["value=c", "value=co", "value=cor", "value=corr", "value=corre"]
    assert all(line == "value=[secret:PW]" for line in shown[5:])
    # Any part of 6 or more characters, in any case: a page can echo a slice of it.
    assert redactor.text("x=ct-horse y=RECT-HO") == "x=[secret:PW] y=[secret:PW]"


def test_a_secret_as_serializers_and_urls_write_it_is_redacted() -> None:
    """An aria snapshot writes a value in YAML's double quotes, a URL percent-encodes it,
    an accessible name squeezes its blanks: each form is the secret."""
    value = 'Pa"ss: w\\ord  99é'
    redactor = Redactor({"PW": value})
    forms = [
        'textbox "Pass": "Pa\\"ss: w\\\\ord  99é"',  # YAML / JSON escapes
        "name: Pa\\u0022",  # not the secret: too short a piece
        "/login?pw=Pa%22ss%3A%20w%5Cord%20%2099%C3%A9",
        "/login?pw=pa%22ss%3a%20w%5cord%20%2099%c3%a9",
        "/login?pw=Pa%22ss%3A+w%5Cord++99%C3%A9",
        'button "Pa"ss: w\\ord 99é"',
    ]
    shown = [redactor.text(form) for form in forms]
    assert "ss: w" not in " ".join(shown[:1] + shown[2:]) and "%5C" not in " ".join(shown)
    assert shown[1] == forms[1]
    assert all("[secret:PW]" in line for line in shown[:1] + shown[2:]), shown


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_a_secret_split_across_chunks_is_still_redacted(chunk: int) -> None:
    redactor = Redactor({"T": "tok-123456", "U": "tok-1234567890"})
    stream = redactor.stream()
    text = "a tok-123456 b tok-1234567890 c tok-12345 d" * 3
    out = "".join(stream.feed(text[i : i + chunk]) for i in range(0, len(text), chunk))
    out += stream.flush()
    assert out == redactor.text(text)
    assert "tok-123456 " not in out and "[secret:U]" in out


def test_github_tokens_are_redacted_with_no_secret_declared() -> None:
    """An app that finds the CI's token (in a checkout's git config, say) and shows it
    gets "[secret:github-token]" into the evidence, whatever the recipe declared."""
    from verifier._redact import NO_SECRETS

    token = "ghs_" + "A1b2" * 9
    pat = "github_pat_" + "x" * 30
    text = f"x-access-token:{token} and {pat}."
    assert NO_SECRETS.text(text) == (
        "x-access-token:[secret:github-token] and [secret:github-token]."
    )
    assert NO_SECRETS.obj({"error": token, "run_id": "r"}) == {
        "error": "[secret:github-token]",
        "run_id": "r",
    }
    stream = NO_SECRETS.stream()  # a token split across two chunks of a log
    out = stream.feed(f"log {token[:10]}") + stream.feed(f"{token[10:]} done\n") + stream.flush()
    assert out == "log [secret:github-token] done\n"
    assert NO_SECRETS.text("ghs_short and my_var_name") == "ghs_short and my_var_name"
