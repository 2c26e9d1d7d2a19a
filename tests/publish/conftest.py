"""Fixtures of the publish tests: a fresh token in GITHUB_TOKEN and no GitHub Actions
variables from the machine (for every test here), a fake GitHub, a bare git remote."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.publish.github_fake import FakeGitHub
from tests.publish.helpers import PR, REPO, git


@pytest.fixture
def token() -> str:
    return "ghp_" + secrets.token_hex(18)


@pytest.fixture(autouse=True)
def environ(token: str) -> Iterator[None]:
    """No GitHub Actions variables from the machine; the token in GITHUB_TOKEN."""
    for name in [n for n in os.environ if n.startswith(("GITHUB_", "RUNNER_"))]:
        del os.environ[name]
    os.environ["GITHUB_TOKEN"] = token
    yield


@pytest.fixture
def github(token: str) -> Iterator[FakeGitHub]:
    with FakeGitHub(token=token, pulls={REPO: {PR}}) as fake:
        yield fake


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    bare = tmp_path / "artifacts.git"
    git("init", "--quiet", "--bare", str(bare))
    return bare
