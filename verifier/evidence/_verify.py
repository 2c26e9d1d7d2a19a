"""Re-checks a bundle against its manifest: every listed file is there, unchanged.

A bundle travels (CI artifact, zip, PR attachment); ``verify_bundle`` tells whether what
arrived is what the run wrote. It also holds the one rule every renderer follows for paths
that come out of a manifest: bundle-relative, POSIX, and never outside the bundle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

from verifier.errors import BundleError
from verifier.evidence._manifest import read_manifest

__all__ = ("bundle_file", "bundle_rel", "sha256_of", "verify_bundle")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundle_rel(path: object) -> str | None:
    """``path`` if it is a usable bundle-relative path, else None (absolute, ``..``, junk)."""
    if not isinstance(path, str) or not path or "\\" in path or "\0" in path:
        return None
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from JSON: no file can have that name
        return None
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts or pure.parts == (".",):
        return None
    return path


def bundle_file(root: Path, path: object) -> Path | None:
    """The existing regular file ``path`` names inside ``root`` (symlinks may not leave it)."""
    rel = bundle_rel(path)
    if rel is None:
        return None
    base = root.resolve()
    full = (base / rel).resolve()
    if not full.is_relative_to(base) or not full.is_file():
        return None
    return full


def _name(path: object) -> str:
    return path if isinstance(path, str) and path.isprintable() and path else repr(path)


def _check_artifact(base: Path, where: str, art: object) -> Iterator[str]:
    if not isinstance(art, Mapping):
        yield f"manifest.json: {where} is not an object"
        return
    path = art.get("path")
    name = _name(path)
    rel = bundle_rel(path)
    if rel is None:
        yield f"{name}: {where} path is not a relative path inside the bundle"
        return
    full = (base / rel).resolve()
    if not full.is_relative_to(base):
        yield f"{name}: {where} resolves outside the bundle (a symlink?)"
        return
    if not full.is_file():
        yield f"{name}: missing (listed in the manifest, not in the bundle)"
        return
    size = full.stat().st_size
    want_bytes = art.get("bytes")
    if not isinstance(want_bytes, int) or isinstance(want_bytes, bool):
        yield f"{name}: {where} has no byte count"
    elif size != want_bytes:
        yield f"{name}: {size} bytes, the manifest says {want_bytes}"
    want_sha = art.get("sha256")
    if not isinstance(want_sha, str):
        yield f"{name}: {where} has no sha256"
    elif sha256_of(full) != want_sha.lower():
        yield f"{name}: sha256 differs from the manifest (the file changed after the run)"


def _referenced(data: Mapping[str, object]) -> Iterator[tuple[str, object]]:
    """(who, path) for every file the manifest points at outside ``artifacts``."""
    steps = data.get("steps")
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, Mapping):
            continue
        index = step.get("index")
        who = f"step {index + 1 if isinstance(index, int) else repr(index)}"
        for key in ("screenshot", "raw_screenshot"):
            if step.get(key) is not None:
                yield who, step.get(key)
        more = step.get("screenshots")
        yield from ((who, p) for p in (more if isinstance(more, list) else []))
    video = data.get("video")
    if isinstance(video, Mapping):
        yield "video", video.get("path")
    if data.get("preview") is not None:
        yield "preview", data.get("preview")


def verify_bundle(root: Path) -> list[str]:
    """Re-check a bundle folder against its ``manifest.json``.

    Every artifact the manifest lists must exist inside the bundle with the recorded size
    and sha256, and every file a step, the video or the preview points at must be listed.

    :param root: the bundle folder (``<out>/<run-id>/``).
    :returns: one line per problem, each naming the file; empty when the bundle is intact.
    """
    try:
        data = read_manifest(root)
    except BundleError as exc:
        kind, cause = exc.details["kind"], exc.details["cause"]
        if kind == "missing":
            return [f"manifest.json: missing from {str(root)!r}; is this a bundle folder?"]
        if kind == "unreadable":
            return [f"manifest.json: cannot be read: {cause}"]
        if cause == "not an object":
            return ["manifest.json: not a JSON object"]
        return [f"manifest.json: not valid JSON: {cause}"]
    problems: list[str] = []
    version = data.get("schema_version")
    if version is None:
        problems.append("manifest.json: no schema_version")
    elif not isinstance(version, int) or isinstance(version, bool):
        problems.append(f"manifest.json: schema_version {version!r} is not an integer")
    artifacts = data.get("artifacts")
    if not isinstance(artifacts, list):
        problems.append("manifest.json: artifacts is missing or not a list")
        return problems
    base = root.resolve()
    listed: set[str] = set()
    for n, art in enumerate(artifacts):
        path = art.get("path") if isinstance(art, Mapping) else None
        if isinstance(path, str):
            if path in listed:
                problems.append(f"{_name(path)}: listed twice in artifacts")
                continue
            listed.add(path)
        problems.extend(_check_artifact(base, f"artifacts[{n}]", art))
    reported: set[str] = set()
    for who, path in _referenced(data):
        if _name(path) in reported:
            continue
        reported.add(_name(path))
        if bundle_rel(path) is None:
            problems.append(f"{_name(path)}: {who} points outside the bundle")
        elif path not in listed and (base / str(path)).is_file():
            problems.append(f"{path}: used by {who} but not listed in artifacts (no sha256)")
        elif path not in listed:
            problems.append(f"{path}: used by {who} but missing from the bundle")
    return problems
