"""The MCP tools an agent sees, and how each call is answered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import mcp_types as types
from mcp.server.lowlevel import Server

from verifier import __version__
from verifier.computer._adapters import computer_tool_schema, describe
from verifier.computer._session import Session
from verifier.errors import VerifierError

__all__ = ("Owner", "build_server")

_T = TypeVar("_T")


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


class Owner(Protocol):
    """Runs ``fn`` on the thread that owns the desktop and browser; awaits its result."""

    def __call__(self, fn: Callable[[], _T], /) -> Awaitable[_T]: ...


def build_server(
    session: Session,
    run: Owner,
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
