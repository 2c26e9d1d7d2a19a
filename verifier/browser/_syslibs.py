"""What Playwright's driver needs from the system, said in one line when it is missing.

Playwright's wheel carries its own Node.js, linked against libraries that a minimal
Debian lacks (``libatomic.so.1``, from the package ``libatomic1``). When one is missing,
the dynamic loader prints a line on the driver's stderr and exits, and Playwright only
raises "Connection closed while reading from the driver". :class:`DriverStderr` hands the
driver a pipe for its stderr and copies what comes through to ours, holding back the
loader's line; :meth:`DriverStderr.failure` turns it into a message that names the Debian
package to install.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from types import TracebackType
from typing import Any, Self, TextIO, cast

__all__ = ("DriverStderr",)

# The libraries Playwright's node links (``ldd .../playwright/driver/node``) and the
# Debian 12 packages that ship them.
_PACKAGES = {
    "libatomic.so.1": "libatomic1",
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
    "libc.so.6": "libc6",
    "libdl.so.2": "libc6",
    "libm.so.6": "libc6",
    "libpthread.so.0": "libc6",
}
# glibc's ld.so: "<binary>: error while loading shared libraries: <library>: <reason>".
_LOADER_LINE = re.compile(
    r"(?P<binary>.*?): error while loading shared libraries: (?P<library>[^:]+): (?P<reason>.*)"
)
# How long the loader's line may take to come through the pipe once the driver is gone.
_DRAIN_TIMEOUT = 2.0


class _Stderr:
    """``sys.stderr`` while the driver spawns: Python's writes go to the real stream, and
    the file descriptor that Playwright hands the driver (``sys.stderr.fileno()``) is the
    pipe's."""

    def __init__(self, real: TextIO, fd: int) -> None:
        self._real = real
        self._fd = fd

    def fileno(self) -> int:
        return self._fd

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class DriverStderr:
    """Around ``sync_playwright().start()``: the driver's stderr goes through a pipe that
    a thread copies to ours for as long as the driver lives, except a dynamic loader's
    complaint, which :meth:`failure` reports instead."""

    def __init__(self) -> None:
        self._saved: TextIO | None = None
        self._stand_in: _Stderr | None = None
        self._write_fd = -1
        self._copier: threading.Thread | None = None
        self._loader_line: re.Match[str] | None = None

    def __enter__(self) -> Self:
        real = sys.stderr
        if real is None:  # pythonw: Playwright gives the driver no stderr either
            return self
        try:
            target = os.dup(_fileno(real))
        except OSError:
            return self
        try:
            read_fd, self._write_fd = os.pipe()
        except OSError:
            os.close(target)
            return self
        self._copier = threading.Thread(
            target=self._copy, args=(read_fd, target), name="verifier-driver-stderr", daemon=True
        )
        self._copier.start()
        self._saved, self._stand_in = real, _Stderr(real, self._write_fd)
        sys.stderr = cast(TextIO, self._stand_in)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    def failure(self, exc: Exception) -> str:
        """The one-line message for a driver that did not start with ``exc``."""
        self._release()
        if self._copier is not None:
            self._copier.join(_DRAIN_TIMEOUT)
        found = self._loader_line
        if found is None:
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            return f"Playwright's driver did not start: {lines[0]}"
        library, reason = found["library"], found["reason"].strip()
        name = os.path.basename(library)  # a path when LD_LIBRARY_PATH held a bad copy
        package = _PACKAGES.get(name)
        install = (
            f"install the Debian package {package} (apt-get install {package})"
            if package
            else f"install the Debian package that ships it (apt-file search {name})"
        )
        return (
            f"Playwright's driver cannot start: {found['binary']!r} needs {library} "
            f"({reason}); {install}, or run desktop-image/provision.sh"
        )

    def _release(self) -> None:
        """Put ``sys.stderr`` back and close our end of the pipe (the driver has its own),
        so the copier sees the end of the driver's output when the driver exits."""
        if self._saved is not None:
            if sys.stderr is self._stand_in:
                sys.stderr = self._saved
            self._saved = self._stand_in = None
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1

    def _copy(self, read_fd: int, target: int) -> None:
        pending = b""
        try:
            with open(read_fd, "rb", buffering=0) as pipe:
                while chunk := pipe.read(65536):
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        self._pass(line + b"\n", target)
                if pending:
                    self._pass(pending, target)
        finally:
            os.close(target)

    def _pass(self, line: bytes, target: int) -> None:
        found = _LOADER_LINE.fullmatch(line.decode("utf-8", "replace").rstrip("\n"))
        if found is not None:
            self._loader_line = self._loader_line or found
            return
        view = memoryview(line)
        with contextlib.suppress(OSError):  # our stderr is gone: keep draining the pipe
            while view:
                view = view[os.write(target, view) :]


def _fileno(stream: TextIO) -> int:
    """The descriptor Playwright would hand the driver for ``stream`` (2 when it has none)."""
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation, pytest's capture
        return 2
