"""The MCP server's event loop, on a thread of its own beside the owner's."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable

import anyio

__all__ = ("ServerThread",)


class ServerThread(threading.Thread):
    """The MCP server's event loop, on its own thread; ``done`` is set when it ends."""

    def __init__(self, serve: Callable[[anyio.Event], Awaitable[None]]) -> None:
        super().__init__(name="verifier-mcp", daemon=True)
        self._serve = serve
        self.done = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: anyio.Event | None = None
        self._stopping = False
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            anyio.run(self._main)
        except BaseException as exc:  # noqa: BLE001 - reported by the owner; the thread must not die loudly
            self.error = exc
        finally:
            self.done.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = anyio.Event()
        if self._stopping:
            return
        await self._serve(self._stop_event)

    def stop(self, *, delay: float = 0.0) -> None:
        """Ask the server to end (after ``delay`` s, to let a last answer out); thread-safe."""
        self._stopping = True
        loop, stop = self._loop, self._stop_event
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.call_later, delay, stop.set)
