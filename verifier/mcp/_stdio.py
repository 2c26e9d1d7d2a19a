"""MCP over stdio: fd 1 is the wire, so nothing else may write to it.

Before anything starts, the wire moves to private descriptors and fds 0 and 1 point at
/dev/null and stderr, so no child and no stray print can write into the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import os
import sys
from collections.abc import AsyncIterator
from typing import Any, cast

import anyio
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

__all__ = ("StdioWire", "serve_stdio")

_LINE_LIMIT = 64 * 1024 * 1024  # one JSON-RPC message per line


class StdioWire:
    """The MCP wire on private copies of fds 0 and 1; the standard fds point elsewhere."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self.in_fd = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
        self.out_fd = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(2, 1)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            sys.stdout.flush()
            os.dup2(self.in_fd, 0)
            os.dup2(self.out_fd, 1)
        for fd in (self.in_fd, self.out_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    async def lines(self) -> AsyncIterator[str]:
        """Lines from the client; cancellable (an asyncio pipe, not a blocked thread)."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_LINE_LIMIT)
        pipe = os.fdopen(self.in_fd, "rb", buffering=0, closefd=False)
        try:
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        except ValueError:  # a regular file: read it in a thread
            async for text in anyio.wrap_file(io.TextIOWrapper(pipe, encoding="utf-8")):
                yield text
            return
        while raw := await reader.readline():
            yield raw.decode("utf-8", "replace")

    def writer(self) -> anyio.AsyncFile[str]:
        raw = os.fdopen(self.out_fd, "wb", buffering=0, closefd=False)
        return anyio.wrap_file(io.TextIOWrapper(raw, encoding="utf-8", write_through=True))


class _LineFile:
    """What stdio_server reads: an async iterator of lines."""

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self._lines = lines

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines


async def serve_stdio(server: Server[Any], wire: StdioWire, stop: anyio.Event) -> None:
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            await stop.wait()
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        stdin = cast("anyio.AsyncFile[str]", _LineFile(wire.lines()))
        async with stdio_server(stdin=stdin, stdout=wire.writer()) as (read, write):
            await server.run(read, write, server.create_initialization_options())
        tg.cancel_scope.cancel()
