"""``verifier mcp``: one agent session, start to finish, served over MCP.

The session stands on a :class:`~verifier.stage.Stage`, exactly as a run does (redaction,
``network:``, the app's environment, the video, signals, the log). The main thread starts
it and then runs every tool call itself, in turn, from a queue (``_owner.py``); the MCP
server runs its event loop on a second thread (``_server_thread.py``) over stdio
(``_stdio.py``) or streamable HTTP (``_http.py``), with the tools of ``_registry.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import signal
import socket
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

from verifier.computer import Computer
from verifier.errors import Interrupted, VerifierError
from verifier.evidence import ErrorInfo
from verifier.mcp._agent import Agent
from verifier.mcp._http import bind, serve_http
from verifier.mcp._options import McpOptions
from verifier.mcp._queue import OwnerQueue
from verifier.mcp._server import build_server
from verifier.mcp._server_thread import ServerThread
from verifier.mcp._stdio import StdioWire, serve_stdio
from verifier.recipe import Recipe, VideoSpec, load_recipe
from verifier.session import ReplaySpec, Session, SessionResult, replay_head, replay_start
from verifier.stage import Stage, error_info

__all__ = ("serve_session",)

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_DEFAULT_SCREEN = "1280x800"


def _session_recipe(options: McpOptions, recipe: Recipe | None) -> Recipe:
    """What the session's stage starts: the recipe's app, url, secrets and network (its
    steps are the agent's), or a bare desktop and browser without one. ``file:`` URLs
    load only where the recipe allows them or the person began the session on one."""
    screen = options.screen or (recipe.screen if recipe is not None else _DEFAULT_SCREEN)
    on_file = urlsplit(options.url or "").scheme == "file"
    if recipe is not None:
        allow = recipe.allow_file_urls or on_file
        return dataclasses.replace(recipe, steps=(), screen=screen, allow_file_urls=allow)
    return Recipe(
        name="Agent session",
        steps=(),
        app=None,
        url=None,
        screen=screen,
        video=VideoSpec(),
        timeout=10.0,
        path=None,
        sha256="",
        allow_file_urls=on_file,
    )


def serve_session(options: McpOptions, *, announce: Callable[[str], None]) -> SessionResult:
    """Start the stage, serve MCP until the client leaves (or finishes, over HTTP), and
    write the session's bundle.

    :param announce: gets the lines a person should see (where to connect, the bundle).
    :raises Interrupted: on SIGINT/SIGTERM, after the bundle is written.
    :raises VerifierError: when the stage cannot start (the bundle says so too).
    """
    recipe: Recipe | None = load_recipe(options.recipe) if options.recipe else None
    listen: socket.socket | None = None
    if options.http is not None:
        listen = bind(*options.http)
    token = options.token or secrets.token_urlsafe(32)
    shown = token if options.token is None else "<your token>"  # only a new one is printed
    # Over HTTP too, stdout stays quiet (python-xlib prints warnings there): one rule.
    std = StdioWire()
    try:
        wire = std if options.http is None else None
        return _serve(options, recipe, wire, listen, _Token(token, shown), announce)
    finally:
        std.release()
        if listen is not None:
            listen.close()


@dataclasses.dataclass(frozen=True, slots=True)
class _Token:
    """The bearer token, and what is printed of it (a token the user gave is not)."""

    value: str
    shown: str


def _serve(
    options: McpOptions,
    recipe: Recipe | None,
    wire: StdioWire | None,
    listen: socket.socket | None,
    token: _Token,
    announce: Callable[[str], None],
) -> SessionResult:
    name = f"Agent session: {recipe.name}" if recipe is not None else "Agent session"
    staged = _session_recipe(options, recipe)
    stage = Stage(
        staged,
        out=options.out,
        display=options.display,
        video=options.video,
        title=name,
        loggers={"mcp": logging.INFO},
        live=options.live,
        private=(options.token_file,) if options.token_file is not None else (),
        # (The session runs none of the recipe's steps, but verify may run the recipe.)
        protect=recipe.inputs() if recipe is not None else (),
    )
    with stage:
        _log.info("mcp session %s (%s)", stage.bundle.run_id, "stdio" if wire else "http")
        try:
            stage.start()
            assert stage.browser is not None and stage.desktop is not None
            base = stage.base_url
            start = _start_url(options.url, base)
            if start is not None:
                stage.browser.open(start)
                # The agent's first screenshot shows the page, not a frame before it.
                region = stage.browser.next_frame()
                stage.desktop.wait_stable(quiet=0.035, region=region)
        except BaseException as exc:
            stage.close()
            stage.finish("error", error_info(exc))
            if isinstance(exc, (VerifierError, Interrupted)):
                exc.details["bundle"] = str(stage.bundle.root)
            raise
        # A dialog stays on screen until the agent answers it, as in a run (and as in the
        # session's replay, which is a run).
        stage.browser.hold_dialogs = True
        computer = Computer(
            stage.desktop,
            browser=stage.browser,
            scale=options.scale,
            image_format=options.image_format,
        )
        if start is not None:
            # The first screenshot shows the page, not the window before it painted (the
            # load event can come before the first frame reaches the screen).
            stage.browser.next_frame()
            computer.settle()
        stage.bundle.set_setup(
            "mcp",
            {
                "transport": "stdio" if wire else "http",
                "screenshot_size": "{}x{}".format(*computer.size),
                "image_format": options.image_format,
            },
        )
        session = Session(
            computer,
            stage.bundle,
            replay=ReplaySpec(
                name=f"{name} {stage.bundle.run_id}",
                head=replay_head(recipe, screen=staged.screen, url=options.url),
                start=replay_start(start, base),
            ),
            stage=stage,
        )
        run_args = ["--out", str(options.out.resolve())]
        if options.video is False:
            run_args.append("--no-video")
        # The recipes it verifies run apps too: none may see the token, or change the
        # session's recipe.
        if options.token_file is not None:
            run_args += ["--private", str(options.token_file)]
        if options.recipe is not None:
            run_args += ["--protect", str(options.recipe.resolve())]
        agent = Agent(
            session,
            logs=stage.bundle.root / "logs",
            base_url=base,
            allow_file=urlsplit(start or "").scheme == "file",
            run_args=run_args,
            redact=stage.redactor.text if stage.redactor else None,
            screenshots=options.screenshots == "always",
        )
        return _run_session(session, agent, stage, wire, listen, token, announce)


def _start_url(url: str | None, base: str | None) -> str | None:
    """Where the browser opens: ``url`` (relative to the app's or recipe's), else the base."""
    if url is None:
        return base
    return urljoin(base, url) if base else url


def _run_session(
    session: Session,
    agent: Agent,
    stage: Stage,
    wire: StdioWire | None,
    listen: socket.socket | None,
    token: _Token,
    announce: Callable[[str], None],
) -> SessionResult:
    jobs = OwnerQueue()

    async def on_owner(fn: Callable[[], _T]) -> _T:
        return await asyncio.wrap_future(jobs.submit(fn))

    thread: ServerThread | None = None

    def finished() -> None:
        announce(f"verifier mcp: session finished -> {session.bundle.root}")
        if wire is None and thread is not None:
            thread.stop(delay=0.5)  # over HTTP the session is the server's life

    server = build_server(agent, on_owner, on_finished=finished)
    if wire is not None:
        thread = ServerThread(lambda stop: serve_stdio(server, wire, stop))
        where = "stdio"
    else:
        assert listen is not None
        host, port = listen.getsockname()[:2]
        thread = ServerThread(lambda stop: serve_http(server, listen, host, token.value, stop))
        shown = f"[{host}]" if ":" in host else host
        where = f"http://{shown}:{port}/mcp; send Authorization: Bearer {token.shown}"
    error: ErrorInfo | None = None
    try:
        thread.start()
        announce(f"verifier mcp: serving {where} (bundle {session.bundle.root})")
        jobs.run(thread.done)
        if thread.error is not None:
            error = error_info(thread.error)
            _log.error("the MCP server failed: %s", error["message"])
        elif not session.finished:
            error = {
                "type": "Disconnected",
                "message": "the MCP client left before calling finish",
                "step": None,
            }
    except (Interrupted, KeyboardInterrupt) as exc:
        interrupted = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
        stage.signals.quiet = True
        thread.stop()
        jobs.close()
        result = session.finish("error", error=error_info(interrupted))
        interrupted.details["bundle"] = str(result.bundle)
        raise interrupted from None
    finally:
        stage.signals.quiet = True
        thread.stop()
        jobs.close()
        thread.join(timeout=5)
    if error is not None:
        return session.finish("error", error=error)
    assert session.result is not None
    return session.result
