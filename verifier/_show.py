"""``verifier show``: a bundle's report in the browser of the desktop the user is on."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from verifier.browser import CHROMIUM, CHROMIUM_FLAGS
from verifier.errors import VerifierError
from verifier.evidence import list_runs

__all__ = ("show_report",)


def _report_of(path: Path, step: int | None) -> str:
    if not path.is_dir():
        msg = f"{path}: no such folder (give a bundle, or the --out folder of runs)"
        raise VerifierError(msg)
    root = path
    if not (path / "manifest.json").is_file():
        runs = [r for r in list_runs(path) if (r.path / "report.html").is_file()]
        if not runs:
            msg = f"{path}: neither a bundle nor a folder of bundles with a report"
            raise VerifierError(msg)
        root = runs[-1].path  # the newest
    report = root.resolve() / "report.html"
    if not report.is_file():
        msg = f"{root}: the bundle has no report.html (did the run finish?)"
        raise VerifierError(msg)
    if step is not None and step < 1:
        msg = f"--step counts from 1 (got {step})"
        raise VerifierError(msg)
    return report.as_uri() + (f"#step-{step}" if step is not None else "")


def show_report(path: Path, *, step: int | None = None) -> tuple[str, bool]:
    """Open the report of the bundle at ``path`` (or of the newest bundle in it) in the
    desktop's Chromium, a new window left running for the user (a Chromium already
    running with the same profile takes it as a tab). Returns the report's URL and
    whether a browser was started (not without ``DISPLAY``)."""
    url = _report_of(path, step)
    if not os.environ.get("DISPLAY"):
        return url, False
    # Chromium refuses to run as root without --no-sandbox; a user's keeps its sandbox.
    flags = [f for f in CHROMIUM_FLAGS if f != "--no-sandbox" or os.geteuid() == 0]
    argv = [CHROMIUM, *flags, "--new-window", url]
    try:
        subprocess.Popen(  # the user's browser: it outlives this command, as with xdg-open
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        msg = f"cannot start {argv[0]}: {exc.strerror or exc}"
        raise VerifierError(msg) from None
    return url, True
