"""The MCP server: it lists the registered tools (``_registry``) and answers each call.

Every call that touches the desktop or the browser runs on the owner's thread, within the
tool's deadline. Whatever goes wrong in a call is a tool error with one line saying what
to do (never a dropped connection).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import mcp_types as types
from mcp.server.lowlevel import Server

from verifier import __version__
from verifier.browser import Browser, Unanswered
from verifier.errors import VerifierError
from verifier.mcp._agent import Agent
from verifier.mcp._registry import TOOLS, Answer, Tool

__all__ = ("Handoff", "build_server")

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


class Handoff(Protocol):
    """Runs ``fn`` on the thread that owns the desktop and browser; awaits its result."""

    def __call__(self, fn: Callable[[], _T], /) -> Awaitable[_T]: ...


def _error(message: str) -> types.CallToolResult:
    line = " ".join(message.split()) or "failed"
    return types.CallToolResult(content=[types.TextContent(text=f"Error: {line}")], is_error=True)


def _answer(answer: Answer) -> types.CallToolResult:
    content: list[types.ContentBlock] = [
        types.ImageContent(data=image.base64(), mime_type=image.mime) for image in answer.images
    ]
    content.append(types.TextContent(text=answer.text))
    return types.CallToolResult(content=content, structured_content=answer.structured)


def _bounded(agent: Agent, tool: Tool, args: dict[str, Any]) -> Answer:
    """The tool's answer (on the owner) with everything it asks the browser bounded; a
    page that answers nothing within it is an error the agent reads."""
    browser = agent.session.computer.browser
    if browser is None or tool.budget is None:
        return tool.call(agent, args)
    duration = args.get("duration")
    extra = float(duration) if isinstance(duration, int | float) and duration > 0 else 0.0
    budget = tool.budget + extra
    with browser.deadline(budget, f"the {tool.name} tool") as limit:
        try:
            return tool.call(agent, args)
        except asyncio.CancelledError:
            if not limit.expired:
                raise
        except VerifierError as exc:
            if not limit.expired:
                raise
            raise _unanswered(browser, tool.name, budget) from exc
    raise _unanswered(browser, tool.name, budget)


def _unanswered(browser: Browser, name: str, budget: float) -> Unanswered:
    return Unanswered(f"{name}: no answer within {budget:g} s: {browser.silence()}")


def build_server(agent: Agent, run: Handoff, *, on_finished: Callable[[], None]) -> Server[Any]:
    """The MCP server of every tool in :data:`~verifier.mcp._registry.TOOLS`; ``run``
    hands work to the owner; ``on_finished`` is called once a call ended the session."""
    session = agent.session
    tools = [
        types.Tool(name=t.name, description=t.describe(agent), input_schema=t.input_schema(agent))
        for t in TOOLS.values()
    ]

    async def list_tools(
        _ctx: Any, _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        name = params.name
        args = dict(params.arguments or {})
        tool = TOOLS.get(name)
        if tool is None:
            return _error(f"unknown tool {name!r}; the tools are {', '.join(TOOLS)}")
        agent.note_logs()
        if session.result is not None and not tool.after_end:
            return _error(f"the session is finished; its bundle is {session.result.bundle}")
        try:
            answer = await run(lambda: _bounded(agent, tool, args))
        except VerifierError as exc:
            return _error(agent.clean(exc.message))
        except Exception as exc:  # noqa: BLE001 - a bug of ours: the agent gets a line, the log the rest
            _log.exception("tool %s failed", name)
            return _error(agent.clean(f"{name} failed unexpectedly: {type(exc).__name__}: {exc}"))
        if answer.ends:
            on_finished()
        return _answer(answer)

    return Server(
        "verifier",
        version=__version__,
        instructions=(
            "Drive the desktop with `computer`; read the page with `snapshot`, check it with "
            "`expect`, open URLs with "
            "`navigate`, switch tabs with `tabs`, read the app's and the page's logs with "
            "`logs`, run the project's recipes with `verify`; call `finish` when you are done."
        ),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
