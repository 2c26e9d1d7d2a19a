"""The computer-use interface: a model drives the desktop; every session becomes evidence.

.. code-block:: python

    from verifier import Desktop
    from verifier.computer import Computer, anthropic_action

    with Desktop() as desk:
        computer = Computer(desk, scale=(1024, 768))
        shot = computer.screenshot().image()          # PNG/JPEG bytes at model size
        anthropic_action(computer, {"action": "left_click", "coordinate": [512, 300]})

``verifier mcp`` serves it over MCP (``verifier.mcp._serve``, loaded on demand).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from verifier._lazy import lazy_exports

if TYPE_CHECKING:
    from verifier.computer._adapters import (
        ANTHROPIC_ACTIONS,
        OPENAI_ACTIONS,
        anthropic_action,
        computer_tool_schema,
        describe,
        openai_action,
    )
    from verifier.computer._computer import Computer, Op, Outcome
    from verifier.computer._image import (
        EncodedImage,
        ScreenScale,
        decode,
        encode,
        fit_within,
        mark_region,
    )
    from verifier.computer._page import Target

__all__ = (
    "ANTHROPIC_ACTIONS",
    "OPENAI_ACTIONS",
    "Computer",
    "EncodedImage",
    "Op",
    "Outcome",
    "ScreenScale",
    "Target",
    "anthropic_action",
    "computer_tool_schema",
    "decode",
    "describe",
    "encode",
    "fit_within",
    "mark_region",
    "openai_action",
)

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ANTHROPIC_ACTIONS": "verifier.computer._adapters",
        "Computer": "verifier.computer._computer",
        "EncodedImage": "verifier.computer._image",
        "OPENAI_ACTIONS": "verifier.computer._adapters",
        "Op": "verifier.computer._computer",
        "Outcome": "verifier.computer._computer",
        "ScreenScale": "verifier.computer._image",
        "Target": "verifier.computer._page",
        "anthropic_action": "verifier.computer._adapters",
        "computer_tool_schema": "verifier.computer._adapters",
        "decode": "verifier.computer._image",
        "describe": "verifier.computer._adapters",
        "encode": "verifier.computer._image",
        "fit_within": "verifier.computer._image",
        "mark_region": "verifier.computer._image",
        "openai_action": "verifier.computer._adapters",
    },
)
