"""Writing a file so that no reader ever sees half of it, and nothing is left behind."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

__all__ = ("write_atomic", "write_beneath")


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


def write_beneath(base: Path, name: str, data: bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``name`` (relative to the folder ``base``; its folders made),
    atomically, following no symbolic link on the way: the app under test may write in
    the folders below ``base`` (its checkout), and a link it leaves there must not send
    the file elsewhere. Returns the path written.

    :raises OSError: it cannot be written; ``ELOOP`` when a folder on the way is a link.
    """
    root = base.resolve()  # every folder of a resolved path is a real one
    path = Path(os.path.normpath(root / name))
    start = Path(os.path.commonpath([root, path]))
    fd = os.open(start, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in path.parent.relative_to(start).parts:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            try:
                inner = os.open(
                    part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd
                )
            except NotADirectoryError as exc:  # a link to a file, or a file
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), part) from exc
            os.close(fd)
            fd = inner
        temp = f".{path.name}.{secrets.token_hex(6)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        out = os.open(temp, flags, mode, dir_fd=fd)
        try:
            try:
                os.write(out, data)
                os.fsync(out)
                os.fchmod(out, mode)
            finally:
                os.close(out)
            os.replace(temp, path.name, src_dir_fd=fd, dst_dir_fd=fd)  # a link there goes
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=fd)
            raise
    finally:
        os.close(fd)
    return path
