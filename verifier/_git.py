"""Questions to git about the checkout a recipe lives in (no answer outside one)."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ("git", "git_commit")


def git(folder: Path, *args: str, timeout: float = 10.0) -> str | None:
    """``git -C folder ARGS``'s stripped output, or None when git fails or is missing."""
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def git_commit(folder: Path) -> str | None:
    """The commit checked out at ``folder``, when it is in a git checkout."""
    return git(folder, "rev-parse", "HEAD", timeout=5.0)
