"""``verifier mcp``: the computer-use interface served over MCP (stdio or streamable HTTP).

Threads. The main thread starts the desktop, app, recorder and browser, and then runs
every tool call itself, in turn, from a queue: it owns the X connections and Playwright
(whose sync API refuses to run in a thread with an event loop), and the processes'
PR_SET_PDEATHSIG follows it, so they live exactly as long as the session. The MCP
server runs its asyncio loop on a second thread and hands each call over.

On stdio, fd 1 is the wire: before anything starts, the wire moves to private
descriptors and fds 0 and 1 point at /dev/null and stderr, so no child and no stray
print can write into the protocol.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import hmac
import io
import logging
import os
import queue
import secrets
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TypeVar, cast

import anyio
import mcp_types as types
import uvicorn
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from starlette.types import ASGIApp, Receive, Scope, Send

from verifier import __version__
from verifier._process import become_subreaper
from verifier.computer._adapters import computer_tool_schema, describe
from verifier.computer._computer import Computer
from verifier.computer._options import McpOptions
from verifier.computer._session import ReplaySpec, Session, SessionResult
from verifier.computer._stage import check_alive, replay_head, replay_start, start_stage
from verifier.errors import Interrupted, VerifierError, message_of
from verifier.evidence import BundleWriter, ErrorInfo
from verifier.recipe import Recipe, load_recipe

__all__ = ()

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_LINE_LIMIT = 64 * 1024 * 1024  # one JSON-RPC message per line


# -- the main thread's work queue ---------------------------------------------------------


class _Jobs:
    """Tool calls, run one at a time on the thread that owns the desktop and browser."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._queue = queue.SimpleQueue()
        self.closed = False

    def submit(self, fn: Callable[[], _T]) -> concurrent.futures.Future[_T]:
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        if self.closed:
            future.set_exception(VerifierError("the server is shutting down"))
        else:
            self._queue.put((fn, future))
        return future

    def run(self, done: threading.Event) -> None:
        """Run jobs until ``done`` is set. A signal's Interrupted ends it (and the job)."""
        while not done.is_set():
            try:
                fn, future = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except (Interrupted, KeyboardInterrupt) as exc:
                future.set_exception(VerifierError("the server was interrupted"))
                raise exc
            except Exception as exc:
                future.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        while True:
            try:
                _fn, future = self._queue.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(VerifierError("the server is shutting down"))


# -- the MCP server --------------------------------------------------------------------------


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=f"Error: {message}")], is_error=True
    )


_FINISH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {
            "type": "string",
            "enum": ["passed", "failed"],
            "description": "did what you verified work? (default passed)",
        },
        "summary": {"type": "string", "description": "what you checked and what you saw"},
    },
    "additionalProperties": False,
}


class _Owner(Protocol):
    """Runs ``fn`` on the thread that owns the desktop and browser; awaits its result."""

    def __call__(self, fn: Callable[[], _T], /) -> Awaitable[_T]: ...


def build_server(
    session: Session,
    run: _Owner,
    *,
    on_finished: Callable[[], None],
) -> Server[Any]:
    """The MCP server: tools ``computer`` and ``finish``; ``run`` hands work to the owner."""
    width, height = session.computer.size
    tools = [
        types.Tool(
            name="computer",
            description=(
                f"Use the mouse and keyboard on a {width}x{height} desktop showing a web "
                "browser, and take screenshots. Coordinates are screenshot pixels. Every "
                "action answers with a screenshot taken once the screen has settled."
            ),
            input_schema=computer_tool_schema(session.computer.size),
        ),
        types.Tool(
            name="finish",
            description=(
                "End the session: writes its evidence bundle (every action with screenshots, "
                "video, report) and session.yaml, a recipe that replays it with `verifier run`."
            ),
            input_schema=_FINISH_SCHEMA,
        ),
    ]

    async def list_tools(
        _ctx: Any, _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        args = dict(params.arguments or {})
        if params.name == "computer":
            try:
                out = await run(lambda: session.anthropic(args))
            except VerifierError as exc:
                return _error(exc.message)
            text = types.TextContent(text=describe(str(args.get("action")), out))
            if out.op.kind == "cursor_position":
                return types.CallToolResult(content=[text])
            image = out.image()
            picture = types.ImageContent(data=image.base64(), mime_type=image.mime)
            return types.CallToolResult(content=[picture, text])
        if params.name == "finish":
            verdict = args.get("verdict", "passed")
            summary = args.get("summary")
            if verdict not in ("passed", "failed") or not isinstance(summary, str | None):
                return _error("finish: 'verdict' is passed or failed, 'summary' a string")
            try:
                result = await run(lambda: session.finish(verdict, summary=summary))
            except VerifierError as exc:
                return _error(exc.message)
            on_finished()
            return types.CallToolResult(
                content=[
                    types.TextContent(
                        text=f"bundle: {result.bundle}\nsession recipe: {result.recipe}"
                    )
                ],
                structured_content={
                    "verdict": result.verdict,
                    "bundle": str(result.bundle),
                    "session_recipe": str(result.recipe),
                },
            )
        return _error(f"unknown tool {params.name!r}; the tools are computer and finish")

    return Server(
        "verifier",
        version=__version__,
        instructions="Drive the desktop with `computer`; call `finish` when you are done.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


class _BearerGuard:
    """Refuses (401) every HTTP request without ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                body = b'{"error": "unauthorized: send Authorization: Bearer <token>"}\n'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="verifier"'),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self._app(scope, receive, send)


class _StdioWire:
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


class _ServerThread(threading.Thread):
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
        except BaseException as exc:  # reported by the owner; the thread must not die loudly
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


async def _serve_stdio(server: Server[Any], wire: _StdioWire, stop: anyio.Event) -> None:
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            await stop.wait()
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        stdin = cast("anyio.AsyncFile[str]", _LineFile(wire.lines()))
        async with stdio_server(stdin=stdin, stdout=wire.writer()) as (read, write):
            await server.run(read, write, server.create_initialization_options())
        tg.cancel_scope.cancel()


async def _serve_http(
    server: Server[Any], sock: socket.socket, host: str, token: str, stop: anyio.Event
) -> None:
    app = _BearerGuard(server.streamable_http_app(host=host), token)
    config = uvicorn.Config(
        app, log_config=None, lifespan="on", ws="none", timeout_graceful_shutdown=2
    )
    web = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            await stop.wait()
            web.should_exit = True

        tg.start_soon(watch)
        await web.serve(sockets=[sock])
        tg.cancel_scope.cancel()


# -- one session, start to finish -----------------------------------------------------------


class _Signals:
    """SIGINT/SIGTERM raise Interrupted on the main thread while serving; later, only logged."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self.quiet = False

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        if self.quiet:
            _log.warning("%s during teardown: still tearing down", signal.Signals(signum).name)
            return
        self.quiet = True
        raise Interrupted(signum)

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


@contextlib.contextmanager
def _session_log(path: Path) -> Iterator[None]:
    """verifier's and the MCP SDK's log records into the bundle's logs/verifier.log."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [
        (logging.getLogger("verifier"), logging.DEBUG),
        (logging.getLogger("mcp"), logging.INFO),
    ]
    saved = [(lg, lg.level) for lg, _ in loggers]
    for lg, level in loggers:
        lg.addHandler(handler)
        if lg.level == logging.NOTSET or lg.level > level:
            lg.setLevel(level)
    try:
        yield
    finally:
        for lg, level in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)
        handler.close()


def _error_info(exc: BaseException) -> ErrorInfo:
    return {"type": type(exc).__name__, "message": message_of(exc), "step": None}


def serve(options: McpOptions, *, announce: Callable[[str], None]) -> SessionResult:
    """Start the stage, serve MCP until the client leaves (or finishes, over HTTP), and
    write the session's bundle.

    :param announce: gets the lines a person should see (where to connect, the bundle).
    :raises Interrupted: on SIGINT/SIGTERM, after the bundle is written.
    :raises VerifierError: when the stage cannot start (the bundle says so too).
    """
    recipe: Recipe | None = load_recipe(options.recipe) if options.recipe else None
    listen: socket.socket | None = None
    if options.http is not None:
        listen = _bind(*options.http)
    token = options.token or secrets.token_urlsafe(32)
    become_subreaper()
    # Over HTTP too, stdout stays quiet (python-xlib prints warnings there): one rule.
    std = _StdioWire()
    try:
        return _serve(
            options, recipe, std if options.http is None else None, listen, token, announce
        )
    finally:
        std.release()
        if listen is not None:
            listen.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        msg = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        raise VerifierError(msg) from exc
    return sock


def _serve(
    options: McpOptions,
    recipe: Recipe | None,
    wire: _StdioWire | None,
    listen: socket.socket | None,
    token: str,
    announce: Callable[[str], None],
) -> SessionResult:
    name = f"Agent session: {recipe.name}" if recipe is not None else "Agent session"
    bundle = BundleWriter(
        options.out,
        recipe={
            "name": name,
            "path": str(recipe.path) if recipe is not None and recipe.path else None,
            "sha256": recipe.sha256 if recipe is not None else "",
        },
    )
    screen = options.screen or (recipe.screen if recipe is not None else "1280x800")
    video = options.video if options.video is not None else (recipe is None or recipe.video.enabled)
    with _Signals() as signals, contextlib.ExitStack() as stack:
        stack.enter_context(_session_log(bundle.root / "logs" / "verifier.log"))
        _log.info("mcp session %s (%s)", bundle.run_id, "stdio" if wire else "http")
        try:
            stage = start_stage(
                stack,
                bundle,
                recipe=recipe,
                screen=screen,
                display=options.display,
                video=video,
                url=options.url,
            )
        except BaseException as exc:
            signals.quiet = True
            stack.close()
            bundle.finish("error", _error_info(exc))
            if isinstance(exc, (VerifierError, Interrupted)):
                exc.details["bundle"] = str(bundle.root)
            raise
        computer = Computer(
            stage.desktop,
            browser=stage.browser,
            scale=options.scale,
            image_format=options.image_format,
        )
        bundle.set_setup(
            "mcp",
            {
                "transport": "stdio" if wire else "http",
                "screenshot_size": "{}x{}".format(*computer.size),
                "image_format": options.image_format,
            },
        )
        session = Session(
            computer,
            bundle,
            recorder=stage.recorder,
            replay=ReplaySpec(
                name=f"{name} {bundle.run_id}",
                head=replay_head(recipe, screen=screen, url=options.url),
                start=replay_start(stage),
            ),
            teardown=stack.close,
            check_alive=lambda: check_alive(stage),
        )
        return _run_session(session, signals, wire, listen, token, announce)


def _run_session(
    session: Session,
    signals: _Signals,
    wire: _StdioWire | None,
    listen: socket.socket | None,
    token: str,
    announce: Callable[[str], None],
) -> SessionResult:
    jobs = _Jobs()

    async def on_owner(fn: Callable[[], _T]) -> _T:
        return await asyncio.wrap_future(jobs.submit(fn))

    thread: _ServerThread | None = None

    def finished() -> None:
        announce(f"verifier mcp: session finished -> {session.bundle.root}")
        if wire is None and thread is not None:
            thread.stop(delay=0.5)  # over HTTP the session is the server's life

    server = build_server(session, on_owner, on_finished=finished)
    if wire is not None:
        thread = _ServerThread(lambda stop: _serve_stdio(server, wire, stop))
        where = "stdio"
    else:
        assert listen is not None
        host, port = listen.getsockname()[:2]
        thread = _ServerThread(lambda stop: _serve_http(server, listen, host, token, stop))
        shown = f"[{host}]" if ":" in host else host
        where = f"http://{shown}:{port}/mcp; send Authorization: Bearer {token}"
    error: ErrorInfo | None = None
    try:
        thread.start()
        announce(f"verifier mcp: serving {where} (bundle {session.bundle.root})")
        jobs.run(thread.done)
        if thread.error is not None:
            error = _error_info(thread.error)
            _log.error("the MCP server failed: %s", error["message"])
        elif not session.finished:
            error = {
                "type": "Disconnected",
                "message": "the MCP client left before calling finish",
                "step": None,
            }
    except (Interrupted, KeyboardInterrupt) as exc:
        interrupted = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
        error = _error_info(interrupted)
        signals.quiet = True
        thread.stop()
        jobs.close()
        result = session.finish("error", error=error)
        interrupted.details["bundle"] = str(result.bundle)
        raise interrupted from None
    finally:
        signals.quiet = True
        thread.stop()
        jobs.close()
        thread.join(timeout=5)
    if error is not None:
        return session.finish("error", error=error)
    assert session.result is not None
    return session.result
