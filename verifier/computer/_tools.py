"""The MCP tools an agent sees, and how each call is answered.

``computer`` and ``finish`` drive and end the session; ``verify``, ``snapshot``, ``expect``,
``logs``, ``navigate`` and ``tabs`` (``_agent.py``) let the agent check its own work.
Every call that touches the desktop or the browser runs on the owner's thread. Whatever
goes wrong in a call is a tool error with one line saying what to do (never a dropped
connection).
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
from verifier.computer._computer import Outcome
from verifier.computer._logs import LOG_SOURCES
from verifier.computer._session import LOOKS, Session
from verifier.computer._verify import MAX_RECIPES
from verifier.errors import VerifierError

__all__ = ("Owner", "build_server")

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

TOOL_NAMES = ("computer", "finish", "verify", "snapshot", "expect", "logs", "navigate", "tabs")


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
    "properties": {
        "ref": {"type": "string", "description": "only this element (a ref of the last one)"},
        "selector": {"type": "string", "description": "only the element this selector matches"},
        "depth": {"type": "integer", "minimum": 1, "maximum": 100, "description": "levels"},
        "viewport_only": {"type": "boolean", "description": "leave out what is off screen"},
    },
    "additionalProperties": False,
}
_EXPECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "step": {
            "type": ["object", "string"],
            "description": (
                'one recipe check, as a recipe writes it: {"expect_text": "1 item left"}, '
                '{"expect_visible": "#list li"}, {"expect_url": "/done"}, '
                '{"expect_count": {"selector": "li", "count": 2}, "timeout": 3}'
            ),
        }
    },
    "required": ["step"],
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


def _tools(session: Session, *, screenshots: bool) -> list[types.Tool]:
    width, height = session.computer.size
    schema = computer_tool_schema(session.computer.size)
    schema["properties"]["screenshot"] = {
        "type": "boolean",
        "description": "answer with a screenshot this time (default: "
        + ("true" if screenshots else "false, except for screenshot and zoom")
        + ")",
    }
    answers = (
        "Every action answers with a screenshot taken once the screen has settled"
        if screenshots
        else "An action answers with a screenshot only when it asks (screenshot: true)"
    )
    return [
        types.Tool(
            name="computer",
            description=(
                f"Use the mouse and keyboard on a {width}x{height} desktop showing a web "
                "browser, and take screenshots. Coordinates are screenshot pixels; clicks, "
                "mouse_move, scroll and type also take a snapshot's ref instead. "
                f"{answers}, and its text says what it hit and what changed (URL, title, "
                "tabs, dialogs)."
            ),
            input_schema=schema,
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
                "ref, and its box [x,y,width,height] in screenshot pixels: pass the ref to "
                "`computer` (or click the box's centre) to hit that element. Cheaper than a "
                "screenshot; cut at 20,000 characters: scope it with ref, selector, depth or "
                "viewport_only."
            ),
            input_schema=_SNAPSHOT_SCHEMA,
        ),
        types.Tool(
            name="expect",
            description=(
                "Check the page now with any recipe check (expect_text, expect_visible, "
                "expect_url, expect_count, ...), waiting up to its timeout (default 5 s) as "
                "`verifier run` does; answers passed or failed with the check's message. A "
                "passed check is kept in session.yaml, so its replay proves it again."
            ),
            input_schema=_EXPECT_SCHEMA,
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
    if browser is None or name in ("verify", "finish", "expect"):  # (they bound their own)
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


def _page_state(browser: Browser | None) -> tuple[str, str | None, int] | None:
    """The tab in front's URL and title (None: not known), and how many tabs are open;
    asked of the browser process, not the page (None: no browser, or it did not say)."""
    if browser is None:
        return None
    try:
        page = browser.page
        return page.url, browser.browser_title(page), len(browser.tabs)
    except VerifierError:
        return None


def _changes(
    before: tuple[str, str | None, int] | None,
    after: tuple[str, str | None, int] | None,
    clean: Callable[[str], str],
) -> str:
    """What an action changed of the page: "; now at URL ('title'); a tab opened"."""
    if before is None or after is None:
        return ""
    said = []
    title = f" ({clean(after[1])!r})" if after[1] else ""
    if after[0] != before[0]:
        said.append(f"now at {clean(after[0])}{title}")
    elif after[1] is not None and before[1] is not None and after[1] != before[1]:
        said.append(f"the title is now {clean(after[1])!r}")
    if after[2] > before[2]:
        said.append(f"{after[2] - before[2]} tab(s) opened: {after[2]} open")
    elif after[2] < before[2]:
        said.append(f"{before[2] - after[2]} tab(s) closed: {after[2]} open")
    return "; " + "; ".join(said) if said else "; the URL, title and tabs did not change"


def build_server(
    session: Session,
    run: Owner,
    *,
    agent: Agent,
    on_finished: Callable[[], None],
    screenshots: bool = True,
) -> Server[Any]:
    """The MCP server: the tools of :data:`TOOL_NAMES`; ``run`` hands work to the owner.

    :param screenshots: every ``computer`` action answers with a screenshot; else only
        one that asks (``screenshot: true``).
    """
    tools = _tools(session, screenshots=screenshots)
    agent_tools: dict[str, Callable[[dict[str, Any]], Answer]] = {
        "verify": agent.verify,
        "snapshot": agent.snapshot,
        "expect": agent.expect,
        "logs": agent.read_logs,
        "navigate": agent.navigate,
        "tabs": agent.tabs,
    }

    async def list_tools(
        _ctx: Any, _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def computer(args: dict[str, Any]) -> types.CallToolResult:
        want = args.pop("screenshot", None)
        if want is not None and not isinstance(want, bool):
            return _error(f"computer: 'screenshot' is true or false (got {want!r})")
        action = str(args.get("action"))
        show = (want if want is not None else screenshots) or action in ("screenshot", "zoom")

        def act() -> tuple[Outcome, str]:
            browser = session.computer.browser
            before = _page_state(browser) if action not in LOOKS else None
            out = session.anthropic(args)
            after = _page_state(browser) if before is not None else None
            return out, _changes(before, after, agent.clean)

        out, changed = await run(lambda: _bounded(session, "computer", args, act))
        # What it says of the page (the element hit, a dialog's message) is redacted.
        said = agent.clean(describe(action, out)) + changed
        text = types.TextContent(text=said)
        if out.op.kind == "cursor_position" or not show:
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
        except Exception as exc:  # noqa: BLE001 - a bug of ours: the agent gets a line, the log the rest
            _log.exception("tool %s failed", name)
            return _error(agent.clean(f"{name} failed unexpectedly: {type(exc).__name__}: {exc}"))
        return _error(f"unknown tool {name!r}; the tools are {', '.join(TOOL_NAMES)}")

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
