"""The shape of ``manifest.json`` (see the bundle contract in DESIGN.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

from verifier.errors import BundleError

__all__ = (
    "ArtifactKind",
    "ArtifactRecord",
    "AttemptRecord",
    "Environment",
    "ErrorInfo",
    "Manifest",
    "RecipeInfo",
    "SCHEMA_VERSION",
    "StepRecord",
    "StepStatus",
    "Verdict",
    "new_step_record",
    "read_manifest",
)

SCHEMA_VERSION = 1

Verdict = Literal["passed", "failed", "error"]
StepStatus = Literal["passed", "failed", "error", "skipped"]
ArtifactKind = Literal[
    "screenshot",
    "snapshot",
    "log",
    "har",
    "video",
    "preview",
    "report",
    "summary",
    "junit",
    "download",
    "other",
]


class ErrorInfo(TypedDict):
    type: str
    message: str
    step: int | None


class RecipeInfo(TypedDict):
    name: str
    path: str | None
    sha256: str


class Environment(TypedDict, total=False):
    screen: str
    display: str
    chromium: str
    verifier: str
    python: str
    platform: str
    network: str
    git_commit: str | None


class StepRecord(TypedDict):
    index: int
    action: str
    target: str
    status: StepStatus
    started_at: str | None
    duration_ms: float | None
    screenshot: str | None
    raw_screenshot: str | None
    screenshots: list[str]
    video_offset_s: float | None
    error: str | None
    points: list[list[int]]
    details: NotRequired[dict[str, object]]
    attachments: NotRequired[list[dict[str, str]]]
    tab: NotRequired[int]  # the tab (0 = the first) the step acted on
    dialogs: NotRequired[list[dict[str, object]]]  # dialogs open during the step
    # Tabs and popups that closed during the step: {"url", "acted_on", "next_tab"}.
    tab_closed: NotRequired[list[dict[str, object]]]
    downloads: NotRequired[list[str]]  # files the page downloaded, bundle-relative
    # The page after the step: its aria snapshot (snapshots/NN-<action>.aria.yml).
    snapshot: NotRequired[str | None]
    # What the pages said during the step ({level, text, url, line}) and the requests
    # they started ({method, url, status, ms}); *_more: how many more were left out.
    console: NotRequired[list[dict[str, object]]]
    console_more: NotRequired[int]
    requests: NotRequired[list[dict[str, object]]]
    requests_more: NotRequired[int]


class AttemptRecord(TypedDict):
    """One attempt of a recipe run with retries: its bundle and how it ended."""

    attempt: int  # from 1
    run_id: str  # its bundle's folder name, beside this one
    bundle: str  # its bundle's path
    verdict: Verdict | None  # None while it runs
    exit_code: int | None
    failed_step: int | None  # from 0, as the steps' index
    error: str | None


class ArtifactRecord(TypedDict):
    path: str
    kind: ArtifactKind
    bytes: int
    sha256: str


class VideoRecord(TypedDict):
    path: str
    duration_s: float
    fps: int
    codec: str
    pix_fmt: str
    chapters: int


class Manifest(TypedDict):
    schema_version: int
    run_id: str
    verdict: Verdict
    finished: bool
    recipe: RecipeInfo
    started_at: str
    finished_at: str | None
    duration_s: float | None
    environment: Environment
    runner: dict[str, object]
    setup: dict[str, object]
    steps: list[StepRecord]
    artifacts: list[ArtifactRecord]
    video: VideoRecord | None
    preview: NotRequired[str | None]
    error: ErrorInfo | None
    # With retries: every attempt so far, this one last; flaky: it passed after one failed.
    attempts: NotRequired[list[AttemptRecord]]
    flaky: NotRequired[bool]
    retried: NotRequired[bool]  # it did not pass, and was run again (no junit.xml)


def new_step_record(index: int, action: str, target: str, status: StepStatus) -> StepRecord:
    """A step's record before anything happened to it."""
    return {
        "index": index,
        "action": action,
        "target": target,
        "status": status,
        "started_at": None,
        "duration_ms": None,
        "screenshot": None,
        "raw_screenshot": None,
        "screenshots": [],
        "video_offset_s": None,
        "error": None,
        "points": [],
    }


def read_manifest(bundle: Path) -> dict[str, Any]:
    """The manifest of the bundle at ``bundle`` (its folder): the one reader of
    ``manifest.json`` for every module (a field renamed shows up here, not as a reader
    that silently finds nothing).

    :raises BundleError: there is none (``details["kind"]`` "missing"), it cannot be read
        ("unreadable"), or it is not a JSON object ("invalid"); ``details["cause"]`` says
        what went wrong, without the path.
    """
    path = bundle / "manifest.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"{str(bundle)!r} is not an evidence bundle (no manifest.json)"
        raise BundleError(msg, details={"kind": "missing", "cause": "no manifest.json"}) from None
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{str(path)!r} cannot be read: {exc}"
        raise BundleError(msg, details={"kind": "unreadable", "cause": str(exc)}) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"{str(path)!r} is not valid JSON: {exc}"
        raise BundleError(msg, details={"kind": "invalid", "cause": str(exc)}) from None
    if not isinstance(data, dict):
        msg = f"{str(path)!r} is not a JSON object"
        raise BundleError(msg, details={"kind": "invalid", "cause": "not an object"})
    return data
