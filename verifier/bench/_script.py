"""Running the bench's peer scripts: plain Playwright (or our CLI) in a child process."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ("playwright_video_env", "run_script")


def playwright_video_env(tmp: Path) -> dict[str, str] | None:
    """The environment for a Playwright script that records video, with Debian's ffmpeg
    standing in for Playwright's own build (looked for by this path); None without it."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    browsers = tmp / "pw-browsers"
    link = browsers / "ffmpeg-1013" / "ffmpeg-linux"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(ffmpeg)
    return {**os.environ, "PLAYWRIGHT_BROWSERS_PATH": str(browsers)}


def run_script(
    argv: list[str], *, env: dict[str, str] | None = None, timeout: float | None = None
) -> str:
    """Run ``argv`` (interpreter, then a script or ``-m module``, then arguments) and
    return its stdout; a RuntimeError naming it and quoting its last stderr line when it
    fails."""
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, check=False, timeout=timeout
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        what = " ".join(Path(arg).name for arg in argv[1:3])  # "x.py ARG" or "-m verifier"
        raise RuntimeError(f"{what} exited {done.returncode}: {last}")
    return done.stdout
