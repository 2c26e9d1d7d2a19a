"""Writing a file so that no reader ever sees half of it, and nothing is left behind."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ("write_atomic",)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, durable: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it, then rename it over.

    :param mode: the file's permissions (0o600: its owner's only, from the first byte).
    :param durable: fsync before the rename, so the file survives the machine going down.
    :raises OSError: it cannot be written (a full disk); the temporary file is removed.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        # A new file of ours, never one someone put there (a link to elsewhere): the
        # rename then replaces whatever is at ``path``, a link included, not its target.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), mode)  # the umask may have taken bits away
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
