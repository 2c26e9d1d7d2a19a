"""Questions to git about the checkout a recipe lives in (no answer outside one)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ("git", "git_commit", "work_tree_of")


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


def work_tree_of(folder: Path) -> Path | None:
    """The git work tree holding ``folder`` (found by its ``.git``, without running git:
    the checkout may be hostile). A work tree that holds the home folder (a dotfiles
    repository) or is ``/`` does not count: None then, as outside any checkout."""
    folder = folder.resolve()
    home = Path(os.environ["HOME"]).resolve() if os.environ.get("HOME") else None
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            if candidate == Path("/") or (home is not None and home.is_relative_to(candidate)):
                return None
            return candidate
    return None
