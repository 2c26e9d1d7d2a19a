"""The MCP tools an agent sees, one entry each (as steps have ``@runs``).

A tool is a method of :class:`~verifier.mcp._agent.Agent` registered with :func:`tool`:
its name, what the model reads of it, its arguments' JSON schema, and how long it may
ask the browser. Adding a tool is adding one method; the server (``_server.py``) lists
and calls whatever is here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from verifier.computer import EncodedImage
    from verifier.mcp._agent import Agent

__all__ = ("NAVIGATE_S", "TOOLS", "TOOL_S", "Answer", "Tool", "tool")

# How long a tool may ask the browser (DESIGN: "Every question to the browser has a
# deadline"); a call's own ``duration`` (wait, hold_key) comes on top.
TOOL_S = 10.0
NAVIGATE_S = 30.0


@dataclass(slots=True)
class Answer:
    """A tool's answer: images, text for the model, and the same as structured content.

    :param ends: the call ended the session (``finish``).
    """

    text: str
    images: list[EncodedImage] = field(default_factory=list)
    structured: dict[str, Any] | None = None
    ends: bool = False


# What the model reads of a tool and its schema may depend on the session (its screen).
Said = str | Callable[["Agent"], str]
Schema = dict[str, Any] | Callable[["Agent"], dict[str, Any]]
Call = Callable[["Agent", dict[str, Any]], Answer]


@dataclass(frozen=True, slots=True)
class Tool:
    """One MCP tool.

    :param budget: how long a call may ask the browser, in seconds; None: the tool
        bounds its own calls (a recipe's steps, a finish's teardown).
    :param after_end: it may be called once the session has ended (it answers again
        what the end said).
    """

    name: str
    description: Said
    schema: Schema
    call: Call
    budget: float | None = TOOL_S
    after_end: bool = False

    def describe(self, agent: Agent) -> str:
        return self.description(agent) if callable(self.description) else self.description

    def input_schema(self, agent: Agent) -> dict[str, Any]:
        return self.schema(agent) if callable(self.schema) else self.schema


TOOLS: dict[str, Tool] = {}


def tool(
    name: str,
    *,
    description: Said,
    schema: Schema,
    budget: float | None = TOOL_S,
    after_end: bool = False,
) -> Callable[[Call], Call]:
    """Register ``name``, answered by the decorated method of the Agent."""

    def register(fn: Call) -> Call:
        if name in TOOLS:
            msg = f"the MCP tool {name!r} is registered twice"
            raise AssertionError(msg)
        TOOLS[name] = Tool(name, description, schema, fn, budget, after_end)
        return fn

    return register
