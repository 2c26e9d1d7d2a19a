"""Writes a run's evidence bundle: files under one folder, indexed by manifest.json.

The manifest is rewritten atomically after every change (on a thread, at most one change
behind), so whatever happens to the verifier, the folder holds valid JSON that says how
far the run got. Until the run
finishes, its verdict reads ``error`` ("did not finish").
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from verifier._files import write_atomic
from verifier._process import process_identity
from verifier._types import Image
from verifier.errors import BundleError
from verifier.evidence._junit import write_junit
from verifier.evidence._manifest import (
    SCHEMA_VERSION,
    ArtifactKind,
    ArtifactRecord,
    Environment,
    ErrorInfo,
    Manifest,
    RecipeInfo,
    StepRecord,
    Verdict,
)
from verifier.evidence._preview import write_preview
from verifier.evidence._report import write_report
from verifier.evidence._summary import write_summary
from verifier.evidence._verify import sha256_of

__all__ = ("BundleWriter", "slug", "utc_now")

_log = logging.getLogger(__name__)

_UNFINISHED = "the run did not finish: the verifier stopped before it wrote a verdict"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def slug(text: str, *, limit: int = 40) -> str:
    """A safe file-name fragment: lower-case letters, digits and dashes, bounded."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return cleaned[:limit].rstrip("-") or "x"


def _runner_identity() -> dict[str, object]:
    pid, starttime = process_identity()
    return {"pid": pid, "starttime": starttime, "host": socket.gethostname()}


def new_run_id(name: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{slug(name, limit=32)}-{secrets.token_hex(3)}"


class BundleWriter:
    """One run's bundle folder: ``<out>/<run-id>/`` with screenshots/ and logs/."""

    def __init__(
        self,
        out: Path,
        *,
        recipe: RecipeInfo,
        run_id: str | None = None,
        redact: Callable[[Any], Any] | None = None,
    ) -> None:
        self._redact = redact
        self.run_id = run_id or new_run_id(recipe["name"])
        self.root = (out / self.run_id).resolve()
        try:
            (self.root / "screenshots").mkdir(parents=True, exist_ok=False)
            (self.root / "logs").mkdir()
        except OSError as exc:
            msg = f"cannot create the bundle folder {str(self.root)!r}: {exc.strerror or exc}"
            raise BundleError(msg) from exc
        self._t0 = time.monotonic()
        self._artifacts_lock = threading.Lock()  # the screenshot writer lists them too
        self.manifest: Manifest = {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "verdict": "error",
            "finished": False,
            "recipe": recipe,
            "started_at": utc_now(),
            "finished_at": None,
            "duration_s": None,
            "environment": {},
            "runner": _runner_identity(),
            "setup": {},
            "steps": [],
            "artifacts": [],
            "video": None,
            "error": {"type": "Unfinished", "message": _UNFINISHED, "step": None},
        }
        self._progress = _LatestWriter(self._replace_manifest)
        # The first one is on disk before the run starts: the folder always has one.
        self._replace_manifest(self._manifest_text(indent=None))

    # -- paths ----------------------------------------------------------------------------

    def path(self, rel: str) -> Path:
        """The absolute path of a bundle-relative path (which must stay inside the bundle)."""
        full = (self.root / rel).resolve()
        if not full.is_relative_to(self.root):
            msg = f"bundle path {rel!r} escapes the bundle folder"
            raise BundleError(msg)
        return full

    def screenshot_rel(self, index: int, action: str, suffix: str = "") -> str:
        name = f"{index + 1:02d}-{slug(action, limit=24)}"
        if suffix:
            name += f"-{slug(suffix, limit=40)}"
        rel = f"screenshots/{name}.png"
        n = 2
        while self.path(rel).exists():
            rel = f"screenshots/{name}-{n}.png"
            n += 1
        return rel

    def snapshot_rel(self, index: int, action: str) -> str:
        """Where step ``index``'s aria snapshot goes: ``snapshots/NN-<action>.aria.yml``."""
        return f"snapshots/{index + 1:02d}-{slug(action, limit=24)}.aria.yml"

    # -- records --------------------------------------------------------------------------

    def set_environment(self, env: Environment) -> None:
        self.manifest["environment"].update(env)
        self.write_manifest()

    def set_setup(self, key: str, value: object) -> None:
        self.manifest["setup"][key] = value
        self.write_manifest()

    def set_steps(self, steps: list[StepRecord]) -> None:
        self.manifest["steps"] = steps
        self.write_manifest()

    def add_artifact(
        self, rel: str, kind: ArtifactKind, *, digest: tuple[str, int] | None = None
    ) -> ArtifactRecord | None:
        """List (or refresh) a file of the bundle with its size and sha256: ``digest``
        (sha256, size) when the writer took it from the bytes it wrote, else read now.
        Safe from any thread."""
        full = self.path(rel)
        if digest is None:
            if not full.is_file():
                return None
            digest = sha256_of(full), full.stat().st_size
        record: ArtifactRecord = {
            "path": rel,
            "kind": kind,
            "bytes": digest[1],
            "sha256": digest[0],
        }
        with self._artifacts_lock:
            arts = [a for a in self.manifest["artifacts"] if a["path"] != rel]
            arts.append(record)
            self.manifest["artifacts"] = arts
        return record

    def preview_job(self, decoded: Mapping[Path, Image] | None = None) -> Callable[[], Path | None]:
        """A job that writes preview.gif from the steps as they stand now, for a worker
        thread to run while teardown goes on; hand it to :meth:`finish` once it is done.
        Call it only once the steps are final: the job works on a copy of them.
        ``decoded`` holds screenshots still in memory, by path (see write_preview)."""
        manifest = self._redact(self.manifest) if self._redact is not None else self.manifest
        return functools.partial(write_preview, self.root, copy.deepcopy(manifest), decoded=decoded)

    def finish(
        self,
        verdict: Verdict,
        error: ErrorInfo | None,
        *,
        preview: Callable[[], Path | None] | None = None,
    ) -> None:
        """Record the verdict, list the logs, and render preview, summary, JUnit and report.

        ``preview``, when given, returns the preview that :meth:`preview_job` already
        wrote (or raises what it raised). A renderer that fails is logged and skipped: it
        never costs the manifest.
        """
        for log in sorted((self.root / "logs").glob("*")):
            if log.is_file():
                self.add_artifact(f"logs/{log.name}", "log")
        self.manifest["verdict"] = verdict
        self.manifest["error"] = error
        self.manifest["finished"] = True
        self.manifest["finished_at"] = utc_now()
        self.manifest["duration_s"] = round(time.monotonic() - self._t0, 3)
        if self._redact is not None:
            # The renderers read the manifest in memory: hand them the redacted one.
            self.manifest = self._redact(self.manifest)
        self.write_manifest()
        self._render(preview or functools.partial(write_preview, self.root, self.manifest))
        self.write_manifest(durable=True)

    def _render(self, render_preview: Callable[[], Path | None]) -> None:
        try:
            preview = render_preview()
        except (BundleError, OSError) as exc:
            _log.warning("preview not written: %s", exc)
            preview = None
        if preview is not None:
            self.manifest["preview"] = preview.name
            self.add_artifact(preview.name, "preview")
        # The report comes last so that it lists every other artifact.
        renderers = (("summary", write_summary), ("junit", write_junit), ("report", write_report))
        for kind, render in renderers:
            if kind == "junit" and self.manifest.get("retried"):
                continue  # the attempt that ends the series reports the test
            try:
                path = render(self.root, self.manifest)
            except (BundleError, OSError) as exc:
                _log.warning("%s not written: %s", kind, exc)
                continue
            self.add_artifact(path.name, kind)  # type: ignore[arg-type]

    def write_manifest(self, *, durable: bool = False) -> None:
        """Replace manifest.json atomically (temporary file, rename).

        A crash of the verifier never leaves a torn manifest. The progress written during
        a run goes to disk on a thread (ext4 flushes a file renamed over another: ~1.5 ms
        a write, twice a step), at most one change behind; the final one, ``durable``,
        waits for that, is written here and fsynced, so it survives the machine going
        down too, indented for people to read.
        """
        if durable:
            self._progress.close()
            self._replace_manifest(self._manifest_text(indent=2), durable=True)
        else:
            # On one line: C's encoder, where an indent takes Python's (4x the time, which
            # grew with every step of a long agent session).
            self._progress.submit(self._manifest_text(indent=None))

    def _manifest_text(self, *, indent: int | None) -> str:
        manifest = self._redact(self.manifest) if self._redact is not None else self.manifest
        return json.dumps(manifest, indent=indent, ensure_ascii=False) + "\n"

    def _replace_manifest(self, data: str, *, durable: bool = False) -> None:
        target = self.root / "manifest.json"
        try:
            write_atomic(target, data.encode("utf-8"), durable=durable)
        except OSError as exc:
            msg = f"cannot write {str(target)!r}: {exc.strerror or exc}"
            raise BundleError(msg) from exc


class _LatestWriter:
    """Writes the newest of a stream of texts on a thread; older unwritten ones are
    dropped. A write that failed is raised by the next submit() or by close()."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._changed = threading.Condition()
        self._pending: str | None = None
        self._busy = False
        self._closed = False
        self._error: BundleError | None = None
        self._thread: threading.Thread | None = None

    def submit(self, data: str) -> None:
        with self._changed:
            self._raise_error()
            if self._closed:
                self._write(data)  # after close(): in the caller's thread
                return
            self._pending = data
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="verifier-manifest", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def _run(self) -> None:
        while True:
            with self._changed:
                while self._pending is None and not self._closed:
                    self._changed.wait()
                if self._pending is None:
                    return
                data, self._pending, self._busy = self._pending, None, True
            try:
                self._write(data)
            except BundleError as exc:
                with self._changed:
                    self._error = exc
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

    def close(self) -> None:
        """Wait until the newest text is written and stop the thread; idempotent."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            while self._pending is not None or self._busy:
                self._changed.wait()
            self._raise_error()
        if self._thread is not None:
            self._thread.join()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
