"""``verifier show``: a bundle's report in the browser of the desktop the user is on."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from verifier.browser import CHROMIUM, CHROMIUM_FLAGS
from verifier.errors import BundleError, VerifierError
from verifier.evidence import bundle_file, list_runs, read_manifest

__all__ = ("show_report",)


def _report_of(path: Path, step: int | None) -> Path:
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
    # The bundle's own file: not a link to elsewhere (a bundle is data from a run).
    report = bundle_file(root.resolve(), "report.html")
    if report is None:
        msg = f"{root}: the bundle has no report.html of its own (did the run finish?)"
        raise VerifierError(msg)
    if step is not None:
        steps = _step_count(root)
        if not 1 <= step <= max(steps, 1):
            msg = f"--step {step}: the run has steps 1 to {steps}"
            raise VerifierError(msg)
    return report


def _step_count(root: Path) -> int:
    try:
        data = read_manifest(root)
    except BundleError:
        return 0
    steps = data.get("steps")
    return len(steps) if isinstance(steps, list) else 0


def show_report(path: Path, *, step: int | None = None) -> tuple[Path, str, bool]:
    """Open the report of the bundle at ``path`` (or of the newest bundle in it) in the
    desktop's Chromium, a new window left running for the user (a Chromium already
    running with the same profile takes it as a tab). Returns the report's path, its URL
    (on ``step``) and whether a browser was started (not without ``DISPLAY``)."""
    report = _report_of(path, step)
    url = report.as_uri() + (f"#step-{step}" if step is not None else "")
    if not os.environ.get("DISPLAY"):
        return report, url, False
    # Chromium refuses to run as root without --no-sandbox; a user's keeps its sandbox.
    flags = [f for f in CHROMIUM_FLAGS if f != "--no-sandbox" or os.geteuid() == 0]
    # A profile of its own: reports are not opened in the user's browsing profile.
    profile = Path.home() / ".cache" / "verifier" / "show-profile"
    profile.mkdir(parents=True, exist_ok=True, mode=0o700)
    argv = [CHROMIUM, *flags, f"--user-data-dir={profile}", "--new-window", "--", url]
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
    return report, url, True
