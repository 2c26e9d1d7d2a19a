"""The MCP tools an agent sees, and how each call is answered.

``computer`` and ``finish`` drive and end the session; ``verify``, ``snapshot``, ``logs``,
``navigate`` and ``tabs`` (``_agent.py``) let the agent check its own work. Every call that
touches the desktop or the browser runs on the owner's thread. Whatever goes wrong in a
call is a tool error with one line saying what to do (never a dropped connection).
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
from verifier.computer._adapters import computer_tool_schema, describe
from verifier.computer._agent import Agent, Answer
from verifier.computer._logs import LOG_SOURCES
from verifier.computer._session import Session
from verifier.computer._verify import MAX_RECIPES
from verifier.errors import VerifierError

__all__ = ("Owner", "build_server")

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

TOOL_NAMES = ("computer", "finish", "verify", "snapshot", "logs", "navigate", "tabs")


def _error(message: str) -> types.CallToolResult:
    line = " ".join(message.split()) or "failed"
    return types.CallToolResult(content=[types.TextContent(text=f"Error: {line}")], is_error=True)


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
_VERIFY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "recipes": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "maxItems": MAX_RECIPES,
            "description": "recipe files (YAML), relative to the server's working directory",
        }
    },
    "required": ["recipes"],
    "additionalProperties": False,
}
_SNAPSHOT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {},
    "additionalProperties": False,
}
_LOGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "source": {
            "type": "string",
            "enum": list(LOG_SOURCES),
            "description": "app: the dev server's output; console: the page's console and "
            "errors; network: failed requests and 4xx/5xx answers",
        },
        "since": {
            "type": "number",
            "minimum": 0,
            "description": "only lines from the last SECONDS (default: all)",
        },
        "lines": {
            "type": "integer",
            "minimum": 1,
            "maximum": 2000,
            "description": "the most lines to return, the newest (default 200)",
        },
    },
    "required": ["source"],
    "additionalProperties": False,
}
_NAVIGATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "url": {
            "type": "string",
            "description": "a URL, or a path relative to the app's URL (like /todos)",
        }
    },
    "required": ["url"],
    "additionalProperties": False,
}
_TABS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "select": {
            "type": "integer",
            "minimum": 0,
            "description": "bring tab N (0 = the first) to the front; without it, list the tabs",
        }
    },
    "additionalProperties": False,
}


class Owner(Protocol):
    """Runs ``fn`` on the thread that owns the desktop and browser; awaits its result."""

    def __call__(self, fn: Callable[[], _T], /) -> Awaitable[_T]: ...


def _tools(session: Session) -> list[types.Tool]:
    width, height = session.computer.size
    return [
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
        types.Tool(
            name="verify",
            description=(
                "Run recipes (YAML test scripts) as `verifier run` does, each on a fresh "
                "desktop of its own; answers each verdict, bundle, failed step (counted from "
                "1) and its message, with the failed step's screenshot."
            ),
            input_schema=_VERIFY_SCHEMA,
        ),
        types.Tool(
            name="snapshot",
            description=(
                "The active page's accessibility tree as text: each element's role, name, a "
                "ref, and its box [x,y,width,height] in screenshot pixels: click a box's "
                "centre with `computer` to hit that element. Cheaper than a screenshot."
            ),
            input_schema=_SNAPSHOT_SCHEMA,
        ),
        types.Tool(
            name="logs",
            description=(
                "Recent lines of the app's dev server output (app), the page's console "
                "messages and errors (console), or failed requests (network); secrets are "
                "redacted."
            ),
            input_schema=_LOGS_SCHEMA,
        ),
        types.Tool(
            name="navigate",
            description=(
                "Open a URL in the active tab (a path is relative to the app's URL) and "
                "answer with the settled screenshot."
            ),
            input_schema=_NAVIGATE_SCHEMA,
        ),
        types.Tool(
            name="tabs",
            description=(
                "List the browser's tabs (index, title, URL, which is in front); with "
                "`select`, bring that tab to the front and answer with a screenshot."
            ),
            input_schema=_TABS_SCHEMA,
        ),
    ]


def _answer(answer: Answer) -> types.CallToolResult:
    content: list[types.ContentBlock] = [
        types.ImageContent(data=image.base64(), mime_type=image.mime) for image in answer.images
    ]
    content.append(types.TextContent(text=answer.text))
    return types.CallToolResult(content=content, structured_content=answer.structured)


# How long a tool may ask the browser (DESIGN: "Every question to the browser has a
# deadline"); a computer action's own duration (wait, hold_key) comes on top.
TOOL_S = 10.0
NAVIGATE_S = 30.0


def _bounded(session: Session, name: str, args: dict[str, Any], fn: Callable[[], _T]) -> _T:
    """``fn()`` (a tool, on the owner) with everything it asks the browser bounded; a
    page that answers nothing within it is an error the agent reads."""
    browser = session.computer.browser
    if browser is None or name in ("verify", "finish"):  # (they bound their own parts)
        return fn()
    duration = args.get("duration")
    extra = float(duration) if isinstance(duration, int | float) and duration > 0 else 0.0
    budget = (NAVIGATE_S if name == "navigate" else TOOL_S) + extra
    with browser.deadline(budget, f"the {name} tool") as limit:
        try:
            return fn()
        except asyncio.CancelledError:
            if not limit.expired:
                raise
        except VerifierError as exc:
            if not limit.expired:
                raise
            raise _unanswered(browser, name, budget) from exc
    raise _unanswered(browser, name, budget)


def _unanswered(browser: Browser, name: str, budget: float) -> Unanswered:
    return Unanswered(f"{name}: no answer within {budget:g} s: {browser.silence()}")


def build_server(
    session: Session,
    run: Owner,
    *,
    agent: Agent,
    on_finished: Callable[[], None],
) -> Server[Any]:
    """The MCP server: the tools of :data:`TOOL_NAMES`; ``run`` hands work to the owner."""
    tools = _tools(session)
    agent_tools: dict[str, Callable[[dict[str, Any]], Answer]] = {
        "verify": agent.verify,
        "snapshot": agent.snapshot,
        "logs": agent.read_logs,
        "navigate": agent.navigate,
        "tabs": agent.tabs,
    }

    async def list_tools(
        _ctx: Any, _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def computer(args: dict[str, Any]) -> types.CallToolResult:
        out = await run(
            lambda: _bounded(session, "computer", args, lambda: session.anthropic(args))
        )
        # What it says of the page (the element hit, a dialog's message) is redacted.
        text = types.TextContent(text=agent.clean(describe(str(args.get("action")), out)))
        if out.op.kind == "cursor_position":
            return types.CallToolResult(content=[text])
        image = out.image()
        picture = types.ImageContent(data=image.base64(), mime_type=image.mime)
        return types.CallToolResult(content=[picture, text])

    async def finish(args: dict[str, Any]) -> types.CallToolResult:
        verdict = args.get("verdict", "passed")
        summary = args.get("summary")
        if verdict not in ("passed", "failed") or not isinstance(summary, str | None):
            return _error("finish: 'verdict' is passed or failed, 'summary' a string")
        result = await run(lambda: session.finish(verdict, summary=summary))
        on_finished()
        return types.CallToolResult(
            content=[
                types.TextContent(text=f"bundle: {result.bundle}\nsession recipe: {result.recipe}")
            ],
            structured_content={
                "verdict": result.verdict,
                "bundle": str(result.bundle),
                "session_recipe": str(result.recipe),
            },
        )

    async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        name = params.name
        args = dict(params.arguments or {})
        agent.note_logs()
        try:
            if name == "computer":
                return await computer(args)
            if name == "finish":
                return await finish(args)
            if name in agent_tools:
                if session.finished:
                    assert session.result is not None
                    return _error(f"the session is finished; its bundle is {session.result.bundle}")
                tool = agent_tools[name]
                return _answer(await run(lambda: _bounded(session, name, args, lambda: tool(args))))
        except VerifierError as exc:
            return _error(agent.clean(exc.message))
        except Exception as exc:  # a bug of ours: the agent gets a line, the log the rest
            _log.exception("tool %s failed", name)
            return _error(agent.clean(f"{name} failed unexpectedly: {type(exc).__name__}: {exc}"))
        return _error(f"unknown tool {name!r}; the tools are {', '.join(TOOL_NAMES)}")

    return Server(
        "verifier",
        version=__version__,
        instructions=(
            "Drive the desktop with `computer`; read the page with `snapshot`, open URLs with "
            "`navigate`, switch tabs with `tabs`, read the app's and the page's logs with "
            "`logs`, run the project's recipes with `verify`; call `finish` when you are done."
        ),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
