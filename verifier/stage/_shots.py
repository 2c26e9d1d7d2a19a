"""Screenshots written to the bundle on a background thread, while a run goes on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from verifier._types import Image
from verifier.desktop import downscale, write_png
from verifier.errors import VerifierError

__all__ = ("ShotWriter", "Written")

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

# Screenshots kept in memory, downscaled, for the preview GIF (~0.75 MB each): reading
# them back from PNG and scaling them took ~0.15 s of CPU in teardown. Past this many,
# the preview reads the rest from their files.
_PREVIEW_KEEP = 80
_PREVIEW_WIDTH = 640


# Told of each screenshot as it is written: its path, sha256 and size.
Written = Callable[[Path, str, int], None]


class ShotWriter:
    """Encodes screenshots to PNG on one background thread (cv2 releases the GIL), so a
    step or an agent's action never waits for it; keeps small copies for the preview.

    Each file's sha256 is taken from the bytes it writes (:attr:`digests`) and handed to
    ``on_written`` then: a later change to the file shows against the manifest.
    """

    def __init__(self, on_written: Written | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="verifier-png")
        self._pending: list[Future[Path]] = []
        self._written: list[Path] = []
        self._on_written = on_written
        self.small: dict[Path, Image] = {}  # for the preview, by path
        self.digests: dict[Path, tuple[str, int]] = {}  # sha256 and size, by path

    def write(self, path: Path, image: Image | Callable[[], Image]) -> None:
        """Write ``image`` (or what ``image()`` draws, on the thread) to ``path``."""

        def job() -> Path:
            frame = image() if callable(image) else image
            digest = write_png(frame, path)
            self.digests[path] = digest
            if self._on_written is not None:
                self._on_written(path, *digest)
            if len(self.small) < _PREVIEW_KEEP:
                self.small[path] = downscale(frame, _PREVIEW_WIDTH)
            return path

        self._pending.append(self._pool.submit(job))

    def submit(self, job: Callable[[], _T]) -> Future[_T]:
        """Run ``job`` on the writer's thread, after every write submitted so far."""
        return self._pool.submit(job)

    def drain(self) -> list[Path]:
        """Wait for every pending write; every file written so far, in order."""
        for future in self._pending:
            try:
                self._written.append(future.result())
            except VerifierError as exc:
                _log.warning("screenshot not written: %s", exc)
        self._pending.clear()
        return list(self._written)

    def close(self) -> list[Path]:
        written = self.drain()
        self._pool.shutdown(wait=True)
        return written
