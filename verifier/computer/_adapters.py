"""Computer-use tool calls as the models send them, onto :class:`Computer`.

* Anthropic's ``computer_20250124`` tool input (``action``, ``coordinate``, ``text``...)
  plus ``zoom`` (``region``) from ``computer_20251124``: :func:`anthropic_action`.
* OpenAI's computer-use actions (``{"type": "click", "x": .., "y": .., "button": ..}``):
  :func:`openai_action`.

Arguments are checked before anything moves, and every problem is one line naming the
action, the argument and what to send instead.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from typing import Any

from verifier.computer._computer import (
    MAX_DURATION_S,
    SCROLL_DIRECTIONS,
    Button,
    Computer,
    Outcome,
    ScrollDirection,
)
from verifier.computer._keys import openai_keys
from verifier.errors import InputError

__all__ = (
    "ANTHROPIC_ACTIONS",
    "OPENAI_ACTIONS",
    "anthropic_action",
    "computer_tool_schema",
    "describe",
    "openai_action",
)

ANTHROPIC_ACTIONS = (
    "screenshot",
    "left_click",
    "right_click",
    "middle_click",
    "double_click",
    "triple_click",
    "mouse_move",
    "left_click_drag",
    "left_mouse_down",
    "left_mouse_up",
    "scroll",
    "type",
    "key",
    "hold_key",
    "wait",
    "cursor_position",
    "zoom",
)
_ANTHROPIC_KEYS = (
    "action",
    "coordinate",
    "start_coordinate",
    "text",
    "scroll_direction",
    "scroll_amount",
    "duration",
    "region",
)
OPENAI_ACTIONS = (
    "click",
    "double_click",
    "scroll",
    "type",
    "keypress",
    "move",
    "drag",
    "wait",
    "screenshot",
)
_OPENAI_BUTTONS: dict[str, Button] = {"left": "left", "right": "right", "wheel": "middle"}
_OPENAI_NAV = {"back": "alt+Left", "forward": "alt+Right"}
OPENAI_WAIT_S = 1.0


def computer_tool_schema(size: tuple[int, int]) -> dict[str, Any]:
    """JSON Schema of the ``computer`` tool's input for a screen of ``size`` (model pixels)."""
    width, height = size
    point = {
        "type": "array",
        "items": {"type": "integer", "minimum": 0},
        "minItems": 2,
        "maxItems": 2,
    }
    return {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": list(ANTHROPIC_ACTIONS)},
            "coordinate": {
                **point,
                "description": (
                    f"[x, y] in screenshot pixels, 0 <= x < {width}, 0 <= y < {height}; "
                    "required by clicks, mouse_move and scroll"
                ),
            },
            "ref": {
                "type": "string",
                "description": (
                    "instead of coordinate, for clicks, mouse_move, scroll and type: an "
                    "element's ref from the latest snapshot (like 'e5'): it is scrolled into "
                    "view and hit at its centre, as a recipe step aims"
                ),
            },
            "start_coordinate": {**point, "description": "left_click_drag: where to press"},
            "text": {
                "type": "string",
                "description": (
                    "type: the text (a newline presses Enter); key/hold_key: xdotool keys "
                    "like 'ctrl+s' or 'Return'; "
                    "clicks and scroll: modifier keys to hold, like 'shift'"
                ),
            },
            "scroll_direction": {"type": "string", "enum": list(SCROLL_DIRECTIONS)},
            "scroll_amount": {"type": "integer", "minimum": 0, "description": "wheel notches"},
            "duration": {"type": "number", "minimum": 0, "maximum": MAX_DURATION_S},
            "region": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0},
                "minItems": 4,
                "maxItems": 4,
                "description": "zoom: [x0, y0, x1, y1] in screenshot pixels",
            },
        },
        "required": ["action"],
        "additionalProperties": False,
    }


def _suggest(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{what} must be an integer (got {value!r})"
        raise InputError(msg)
    if isinstance(value, float) and not math.isfinite(value):
        msg = f"{what} must be a finite number (got {value!r})"
        raise InputError(msg)
    return round(value)


def _ints(value: object, n: int, what: str, form: str) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or len(value) != n:
        msg = f"{what} must be {form} (got {value!r})"
        raise InputError(msg)
    return tuple(_int(v, what) for v in value)


def _number(value: object, what: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{what} must be a number of seconds (got {value!r})"
        raise InputError(msg)
    return float(value)


def anthropic_action(computer: Computer, args: Mapping[str, Any]) -> Outcome:
    """Run one ``computer_20250124`` (+ ``zoom``) tool call on ``computer``.

    :raises InputError: for an unknown action, a missing or malformed argument, or a
        point outside the screen; nothing has been done then.
    """
    action = args.get("action")
    if not isinstance(action, str) or action not in ANTHROPIC_ACTIONS:
        hint = _suggest(action, ANTHROPIC_ACTIONS) if isinstance(action, str) else ""
        msg = f"unknown action {action!r}{hint}; one of {', '.join(ANTHROPIC_ACTIONS)}"
        raise InputError(msg)
    for key in args:
        if key not in _ANTHROPIC_KEYS:
            msg = f"{action}: unknown argument {key!r}{_suggest(str(key), _ANTHROPIC_KEYS)}"
            raise InputError(msg)

    def point(key: str) -> tuple[int, int] | None:
        value = args.get(key)
        if value is None:
            return None
        x, y = _ints(value, 2, f"{action}: '{key}'", "[x, y] with two integers")
        return x, y

    def needed(key: str) -> tuple[int, int]:
        found = point(key)
        if found is None:
            got = "null" if key in args else "missing"
            msg = (
                f"{action}: '{key}' is required, as [x, y] in screenshot pixels ({got}); "
                "nothing was done"
            )
            raise InputError(msg)
        return found

    def text(*, what: str = "text") -> str:
        value = args.get("text")
        if not isinstance(value, str) or not value:
            msg = f"{action}: 'text' is required, {what}"
            raise InputError(msg)
        return value

    def modifiers() -> str | None:
        value = args.get("text")
        if value is not None and not isinstance(value, str):
            msg = f"{action}: 'text' (modifier keys to hold) must be a string like 'shift'"
            raise InputError(msg)
        return value or None

    if action == "screenshot":
        return computer.screenshot()
    if action in ("left_click", "right_click", "middle_click", "double_click", "triple_click"):
        button: Button = (
            "right" if action == "right_click" else "middle" if action == "middle_click" else "left"
        )
        count = {"double_click": 2, "triple_click": 3}.get(action, 1)
        # Where the pointer happens to be is no target: a click names its point.
        return computer.click(
            needed("coordinate"), button=button, count=count, modifiers=modifiers()
        )
    if action == "mouse_move":
        return computer.move(needed("coordinate"))
    if action == "left_click_drag":
        end = needed("coordinate")
        return computer.drag([point("start_coordinate"), end])
    if action == "left_mouse_down":
        return computer.mouse_down(point("coordinate"))
    if action == "left_mouse_up":
        return computer.mouse_up(point("coordinate"))
    if action == "scroll":
        amount = args.get("scroll_amount", 3)
        return computer.scroll(
            _scroll_direction(args.get("scroll_direction")),
            _int(amount, "scroll: 'scroll_amount'"),
            coordinate=needed("coordinate"),
            modifiers=modifiers(),
        )
    if action == "type":
        return computer.type(text(what="the text to type"))
    if action == "key":
        return computer.key(text(what="keys like 'Return' or 'ctrl+s'"))
    if action == "hold_key":
        keys = text(what="keys like 'shift'")
        if args.get("duration") is None:
            msg = "hold_key: 'duration' is required, in seconds"
            raise InputError(msg)
        return computer.hold_key(keys, _number(args["duration"], "hold_key: 'duration'", 0.0))
    if action == "wait":
        return computer.wait(_number(args.get("duration"), "wait: 'duration'", 1.0))
    if action == "cursor_position":
        return computer.cursor_position()
    region = args.get("region")
    if region is None:
        msg = "zoom: 'region' is required, as [x0, y0, x1, y1]"
        raise InputError(msg)
    x0, y0, x1, y1 = _ints(region, 4, "zoom: 'region'", "[x0, y0, x1, y1] with four integers")
    return computer.zoom((x0, y0, x1, y1))


def _scroll_direction(value: object) -> ScrollDirection:
    for direction in SCROLL_DIRECTIONS:
        if value == direction:
            return direction
    choices = ", ".join(SCROLL_DIRECTIONS)
    msg = f"scroll: 'scroll_direction' must be one of {choices} (got {value!r})"
    raise InputError(msg)


def openai_action(computer: Computer, action: Mapping[str, Any]) -> Outcome:
    """Run one OpenAI computer-use action (the ``action`` object of a ``computer_call``).

    ``back``/``forward`` buttons are sent as Alt+Left/Alt+Right (what they do in a
    browser); held ``keys`` on pointer actions are modifiers.

    :raises InputError: for an unknown action type or a malformed argument.
    """
    kind = action.get("type")
    if not isinstance(kind, str) or kind not in OPENAI_ACTIONS:
        hint = _suggest(kind, OPENAI_ACTIONS) if isinstance(kind, str) else ""
        msg = f"unknown action type {kind!r}{hint}; one of {', '.join(OPENAI_ACTIONS)}"
        raise InputError(msg)

    def xy(obj: Mapping[str, Any], what: str) -> tuple[int, int]:
        if "x" not in obj or "y" not in obj:
            msg = f"{what}: 'x' and 'y' are required"
            raise InputError(msg)
        return _int(obj["x"], f"{what}: 'x'"), _int(obj["y"], f"{what}: 'y'")

    def held() -> str | None:
        keys = action.get("keys")
        if not keys:
            return None
        if not isinstance(keys, list):
            msg = f"{kind}: 'keys' must be a list of key names (got {keys!r})"
            raise InputError(msg)
        return openai_keys([str(k) for k in keys])

    handlers: dict[str, Callable[[], Outcome]] = {
        "screenshot": computer.screenshot,
        "click": lambda: _openai_click(computer, action, xy(action, "click"), held()),
        "double_click": lambda: computer.click(
            xy(action, "double_click"), count=2, modifiers=held()
        ),
        "scroll": lambda: computer.scroll_by(
            _int(action.get("scroll_x", 0), "scroll: 'scroll_x'"),
            _int(action.get("scroll_y", 0), "scroll: 'scroll_y'"),
            coordinate=xy(action, "scroll"),
            modifiers=held(),
        ),
        "type": lambda: computer.type(_openai_text(action)),
        "keypress": lambda: computer.key(_openai_keypress(action)),
        "move": lambda: computer.move(xy(action, "move")),
        "drag": lambda: computer.drag(_openai_path(action, xy), modifiers=held()),
        "wait": lambda: computer.wait(OPENAI_WAIT_S),
    }
    return handlers[kind]()


def _openai_click(
    computer: Computer, action: Mapping[str, Any], point: tuple[int, int], held: str | None
) -> Outcome:
    button = action.get("button", "left")
    if button in _OPENAI_NAV:
        computer.scale.check(*point)
        out = computer.key(_OPENAI_NAV[button])
        out.note = f"the {button} button was sent as {_OPENAI_NAV[button]}"
        return out
    if button not in _OPENAI_BUTTONS:
        choices = ", ".join([*_OPENAI_BUTTONS, *_OPENAI_NAV])
        msg = f"click: 'button' must be one of {choices} (got {button!r})"
        raise InputError(msg)
    return computer.click(point, button=_OPENAI_BUTTONS[button], modifiers=held)


def _openai_text(action: Mapping[str, Any]) -> str:
    text = action.get("text")
    if not isinstance(text, str) or not text:
        msg = "type: 'text' must be a non-empty string"
        raise InputError(msg)
    return text


def _openai_keypress(action: Mapping[str, Any]) -> str:
    keys = action.get("keys")
    if not isinstance(keys, list):
        msg = f"keypress: 'keys' must be a list of key names like ['CTRL', 'A'] (got {keys!r})"
        raise InputError(msg)
    return openai_keys([str(k) for k in keys])


def _openai_path(
    action: Mapping[str, Any], xy: Callable[[Mapping[str, Any], str], tuple[int, int]]
) -> list[tuple[int, int] | None]:
    path = action.get("path")
    if not isinstance(path, list) or len(path) < 2 or not all(isinstance(p, Mapping) for p in path):
        msg = "drag: 'path' must be a list of at least 2 points like {'x': 10, 'y': 20}"
        raise InputError(msg)
    return [xy(p, f"drag: path[{i}]") for i, p in enumerate(path)]


def describe(name: str, out: Outcome) -> str:
    """A short line for the model: what was done, where, and whether the screen settled."""
    op, scale = out.op, out.view.shape
    if op.kind == "cursor_position" and out.cursor is not None:
        return f"X={out.cursor[0]},Y={out.cursor[1]}"
    if op.kind == "screenshot":
        text = f"screenshot {scale[1]}x{scale[0]}"
    elif op.kind == "zoom":
        text = f"zoomed region at {scale[1]}x{scale[0]}"
    elif op.kind == "type":
        text = f"typed {len(op.text or '')} characters"
    elif op.kind in ("key", "hold_key"):
        text = f"{name}: {' '.join(op.keys)}"
    else:
        text = name
    if op.target is not None:
        text += f" on {op.target.description}"
    if out.note:
        text += f" ({out.note})"
    if not out.settled:
        text += "; the screen was still changing when this screenshot was taken"
    return text
