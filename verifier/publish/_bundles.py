"""The bundles to publish: their manifests, the files worth hosting, the overall verdict.

A bundle is read-only here: publishing never writes into it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from verifier.errors import BundleError, PublishError
from verifier.evidence import Manifest, StepRecord, Verdict, bundle_file, read_manifest
from verifier.evidence.text import failing_step

__all__ = ("Asset", "Bundle", "State", "load_bundles", "overall_state", "tally")

AssetRole = Literal["failure", "attachment", "final", "preview", "video"]
State = Literal["success", "failure", "error"]

_VERDICTS: tuple[Verdict, ...] = ("passed", "failed", "error")
_SAFE_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# Path parts that git and every URL accept as they are; ".git" and dot-files are not.
_SAFE_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
_IMAGE_LIMIT = 10 * 1024 * 1024
_MAX_ATTACHMENTS = 3


@dataclass(frozen=True, slots=True)
class Asset:
    """A bundle file worth hosting: ``rel`` inside the bundle, ``path`` on disk."""

    role: AssetRole
    rel: str
    path: Path
    size: int


@dataclass(frozen=True, slots=True)
class Bundle:
    """One run's bundle: its folder, its manifest, and ``folder``, a name safe in URLs."""

    root: Path
    manifest: Manifest
    folder: str

    @property
    def verdict(self) -> Verdict:
        return self.manifest["verdict"]

    @property
    def flaky(self) -> bool:
        """It passed on a retry, after an attempt that did not."""
        return self.verdict == "passed" and self.manifest.get("flaky") is True

    @property
    def name(self) -> str:
        return str(self.manifest["recipe"].get("name") or self.root.name)

    def failing_step(self) -> StepRecord | None:
        return failing_step(self.manifest)

    def failure_attachments(self) -> list[tuple[str, str]]:
        """(name, bundle path) of the images the failing step attached (expected, actual,
        diff of a screenshot comparison), at most three."""
        step = self.failing_step()
        entries = step.get("attachments") if step else None
        found: list[tuple[str, str]] = []
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                found.append((str(entry.get("name") or "attachment"), str(entry["path"])))
        return found[:_MAX_ATTACHMENTS]

    def exists(self, rel: object) -> Path | None:
        """The regular file ``rel`` names inside the bundle, if there is one."""
        return bundle_file(self.root, rel)

    def assets(self, *, max_video_bytes: int) -> list[Asset]:
        """The files a reviewer should see without downloading the bundle: the failing
        step's screenshot, the last screenshot, the preview, and the video when small."""
        found: list[Asset] = []
        step = self.failing_step()
        shots = [s.get("screenshot") for s in self.manifest["steps"] if s.get("screenshot")]
        wanted: list[tuple[AssetRole, object, int]] = [
            ("failure", step.get("screenshot") if step else None, _IMAGE_LIMIT),
            *(("attachment", rel, _IMAGE_LIMIT) for _, rel in self.failure_attachments()),
            ("final", shots[-1] if shots else None, _IMAGE_LIMIT),
            ("preview", self.manifest.get("preview"), _IMAGE_LIMIT),
        ]
        video = self.manifest.get("video")
        if isinstance(video, Mapping):
            wanted.append(("video", video.get("path"), max_video_bytes))
        seen: set[str] = set()
        for role, rel, limit in wanted:
            path = self.exists(rel)
            if path is None or not isinstance(rel, str) or rel in seen:
                continue
            if not all(_SAFE_PART.fullmatch(part) for part in rel.split("/")):
                continue
            size = path.stat().st_size
            if size <= limit:
                seen.add(rel)
                found.append(Asset(role=role, rel=rel, path=path, size=size))
        return found


def _as_steps(raw: object) -> list[StepRecord]:
    steps = raw if isinstance(raw, list) else []
    return [cast(StepRecord, s) for s in steps if isinstance(s, dict)]


def _normalized(data: dict[str, object]) -> Manifest:
    """The manifest with the fields publishing relies on made well-typed."""
    verdict = data.get("verdict")
    recipe = data.get("recipe")
    error = data.get("error")
    data["verdict"] = verdict if verdict in _VERDICTS else "error"
    data["recipe"] = recipe if isinstance(recipe, dict) else {"name": "", "path": None}
    data["steps"] = _as_steps(data.get("steps"))
    data["error"] = error if isinstance(error, dict) else None
    if not isinstance(data.get("run_id"), str):
        data["run_id"] = ""
    return cast(Manifest, data)


def _folder(manifest: Manifest, root: Path, taken: set[str]) -> str:
    run_id = manifest["run_id"]
    if not _SAFE_RUN_ID.fullmatch(run_id):
        digest = hashlib.sha256(f"{run_id}\0{root}".encode("utf-8", "replace")).hexdigest()
        cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-.")[:60]
        run_id = f"{cleaned or 'run'}-{digest[:8]}"
    folder, n = run_id, 2
    while folder in taken:
        folder, n = f"{run_id}-{n}", n + 1
    taken.add(folder)
    return folder


def _read(root: Path) -> dict[str, object]:
    try:
        return read_manifest(root)
    except BundleError as exc:
        then = "pass a run folder" if exc.details["kind"] == "missing" else "re-run the recipe"
        msg = f"{exc.message}; {then}"
        raise PublishError(msg) from None


def _expand(paths: Iterable[str]) -> list[Path]:
    """Bundle folders; a folder without a manifest that holds bundles stands for them all."""
    roots: list[Path] = []
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            msg = f"{given!r} is not a folder; pass a bundle folder (<out>/<run-id>/)"
            raise PublishError(msg)
        if not (path / "manifest.json").exists():
            inner = sorted(p.parent for p in path.glob("*/manifest.json"))
            if inner:
                roots.extend(inner)
                continue
        roots.append(path)
    return roots


def load_bundles(paths: Sequence[str]) -> list[Bundle]:
    """Read each bundle's manifest, in the order given (a folder of bundles sorted by start).

    :raises PublishError: a path is not a bundle, or its manifest cannot be read.
    """
    bundles: list[Bundle] = []
    taken: set[str] = set()
    seen: set[Path] = set()
    for root in _expand(paths):
        key = root.resolve()
        if key in seen:
            continue
        seen.add(key)
        manifest = _normalized(_read(root))
        bundles.append(Bundle(root=key, manifest=manifest, folder=_folder(manifest, key, taken)))
    if not bundles:
        raise PublishError("no bundle to publish; pass one or more bundle folders")
    # An attempt that a later one retried (--retries) is not a verdict of its own: the
    # last attempt's bundle stands for the recipe, and links the others.
    retried = {
        str(entry.get("run_id"))
        for b in bundles
        for entry in (b.manifest.get("attempts") or [])[:-1]
        if isinstance(entry, dict)
    }
    kept = [
        b
        for b in bundles
        if b.manifest["run_id"] not in retried and b.manifest.get("retried") is not True
    ]
    return kept or bundles


def overall_state(bundles: Sequence[Bundle]) -> State:
    """The commit status: ``error`` if any run could not verify, ``failure`` if any failed."""
    verdicts = {b.verdict for b in bundles}
    if "error" in verdicts:
        return "error"
    return "failure" if "failed" in verdicts else "success"


def tally(bundles: Sequence[Bundle]) -> str:
    """``2 recipes: 1 failed, 1 passed`` (errors first: they matter most)."""
    counts = {v: sum(1 for b in bundles if b.verdict == v) for v in ("error", "failed", "passed")}
    words = {"error": "could not verify", "failed": "failed", "passed": "passed"}
    parts = [f"{n} {words[v]}" for v, n in counts.items() if n]
    flaky = sum(1 for b in bundles if b.flaky)
    if flaky:
        parts[-1] += f" ({flaky} flaky: on a retry)"
    noun = "recipe" if len(bundles) == 1 else "recipes"
    return f"{len(bundles)} {noun}: " + ", ".join(parts)
