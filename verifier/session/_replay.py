"""A session as a recipe: ``session.yaml``, which ``verifier run`` replays.

Each action becomes the recipe step a person would write: a click on a unique selector
where the point hit an interactive element that one names, else at screen coordinates;
``type``, ``press``, ``scroll``, ``drag``, ``hover`` and ``wait`` as they were sent. What a
recipe cannot express (holding a key, zooming) stays in the file as a comment, so the
human who adds the expectations sees the whole session.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from verifier.computer import Op
from verifier.recipe import AppSpec, EnvironmentSpec, Recipe

__all__ = ("render_recipe", "replay_head", "replay_start")

Step = tuple[dict[str, Any] | None, str | None]  # (recipe step, comment)


def _xy(point: tuple[int, int]) -> dict[str, int]:
    return {"x": point[0], "y": point[1]}


def _click_steps(op: Op) -> list[Step]:
    point = op.points[0]
    selector = op.target.selector if op.target is not None else None
    by_ref = op.target is not None and op.target.by_ref
    comment = f"at ({point[0]}, {point[1]})" if selector and not by_ref else None
    if selector is None and op.target is not None:
        comment = op.target.description
    if op.modifiers:
        comment = f"{comment or ''} with {op.modifiers} held (not replayed)".strip()
    args: dict[str, Any] = {"selector": selector} if selector else _xy(point)
    if op.button != "left":
        args["button"] = op.button
    short: Any = selector if selector and op.button == "left" else args
    if op.count == 1:
        return [({"click": short}, comment)]
    if op.count == 2:
        return [({"double_click": short}, comment)]
    # A triple click: a double click and a click at the same point make the third.
    return [
        ({"double_click": short}, f"triple_click {comment or ''}".strip()),
        ({"click": short}, None),
    ]


def replay_steps(ops: Sequence[Op]) -> list[Step]:
    """The recipe steps (and comments) that redo ``ops``."""
    steps: list[Step] = []
    pressed: Op | None = None
    for op in ops:
        kind = op.kind
        if kind == "click":
            steps += _click_steps(op)
        elif kind == "drag":
            start, end = op.points[0], op.points[-1]
            through = f"through {len(op.points)} points" if len(op.points) > 2 else None
            steps.append(({"drag": {"from": _xy(start), "to": _xy(end)}}, through))
        elif kind == "mouse_down":
            pressed = op
        elif kind == "mouse_up":
            if pressed is None:
                steps.append((None, f"mouse_up at {op.points[0]} without a mouse_down"))
            elif pressed.points[0] == op.points[0]:
                steps.append(({"click": _xy(op.points[0])}, "mouse_down + mouse_up"))
            else:
                drag = {"from": _xy(pressed.points[0]), "to": _xy(op.points[0])}
                steps.append(({"drag": drag}, "mouse_down, move, mouse_up"))
            pressed = None
        elif kind == "scroll":
            args: dict[str, int | str] = {}
            if op.delta[0]:
                args["dx"] = op.delta[0]
            if op.delta[1] or not op.delta[0]:
                args["dy"] = op.delta[1]
            selector = op.target.selector if op.target is not None else None
            args.update({"selector": selector} if selector else _xy(op.points[0]))
            held = f"with {op.modifiers} held (not replayed)" if op.modifiers else None
            steps.append(({"scroll": args}, held))
        elif kind == "type":
            selector = op.target.selector if op.target is not None else None
            typed = {"selector": selector, "text": op.text} if selector else op.text
            steps.append(({"type": typed}, None))
        elif kind == "key":
            steps += [({"press": combo}, None) for combo in op.keys]
        elif kind == "move":
            selector = op.target.selector if op.target is not None else None
            steps.append(({"hover": selector or _xy(op.points[0])}, None))
        elif kind == "hold_key":
            steps.append(
                (None, f"hold_key {' '.join(op.keys)} for {op.duration:g} s (not replayed)")
            )
        elif kind == "wait":
            steps.append(({"wait": op.duration}, None))
        elif kind == "goto":
            steps.append(({"goto": op.text}, None))
        elif kind == "switch_tab":
            steps.append(({"switch_tab": op.count}, None))
        elif kind == "expect" and op.check is not None:
            if op.failed is None:
                steps.append((dict(op.check), None))
            else:  # the app or the agent's guess was wrong then: not a check to replay
                one = " ".join(_dump(dict(op.check)).split())
                why = " ".join(op.failed.split())[:300]
                steps.append((None, f"{one} failed in the session: {why}"))
        elif kind == "zoom" and op.box is not None:
            steps.append((None, f"zoomed into screen box {list(op.box)}"))
    if pressed is not None:
        steps.append((None, f"mouse_down at {pressed.points[0]} never released"))
    return steps


class _Dumper(yaml.SafeDumper):
    """Text with line breaks as one double-quoted line ("a\\nb"), not a folded block."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = '"' if any(c in data for c in "\n\r\t") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def _dump(value: object, *, flow_leaves: bool = False) -> str:
    # Never folded; with flow_leaves the innermost mappings stay on one line ({x: 1, y: 2}).
    return yaml.dump(
        value,
        Dumper=_Dumper,
        allow_unicode=True,
        sort_keys=False,
        width=1_000_000,
        default_flow_style=None if flow_leaves else False,
    )


def render_recipe(
    ops: Sequence[Op],
    *,
    name: str,
    head: Mapping[str, Any],
    start: str | None,
    intro: str,
) -> str:
    """The text of ``session.yaml``: ``head`` (app/url/screen), a goto ``start``, the steps."""
    lines = [f"# {line}" if line else "#" for line in intro.splitlines()]
    lines.append(_dump({"name": name, **head}).rstrip("\n"))
    lines.append("steps:")
    steps: list[Step] = [({"goto": start}, "where the session began")] if start is not None else []
    steps += replay_steps(ops)
    if not any(step is not None for step, _ in steps):
        steps.append(({"screenshot": "end-of-session"}, "the session did nothing a recipe replays"))
    for step, told in steps:
        comment = _one_line(told) if told else None
        if step is None:
            lines.append(f"  # {comment}")
            continue
        (value,) = step.values()
        body = _dump(step, flow_leaves=isinstance(value, dict)).rstrip("\n").splitlines()
        if comment:
            body[-1] += f"  # {comment}"
        lines += [f"  - {body[0]}", *(f"    {line}" for line in body[1:])]
    return "\n".join(lines) + "\n"


# Whatever ends a line for YAML or for a reader: a comment holding one (an element's id,
# its name: the page's words) would start a line of its own, a step the page wrote.
_BREAKS = re.compile("[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def _one_line(text: str) -> str:
    """``text`` as one comment line: line breaks of every kind become spaces."""
    return _BREAKS.sub(" ", text)


def replay_start(start: str | None, base: str | None) -> str | None:
    """The replay's first ``goto`` for a session opened at ``start`` on a site whose base
    URL was ``base``: relative to the base URL when the session began on its site (the
    replay's dev server gets another port), else the absolute start URL."""
    if start is None or base is None:
        return start
    s, b = urlsplit(start), urlsplit(base)
    if (s.scheme, s.netloc) != (b.scheme, b.netloc):
        return start
    return (
        (s.path or "/")
        + (f"?{s.query}" if s.query else "")
        + (f"#{s.fragment}" if s.fragment else "")
    )


def replay_head(recipe: Recipe | None, *, screen: str, url: str | None) -> dict[str, object]:
    """``app``/``url``/``screen``/``secrets``/``network``/``allow_file_urls`` of the replay
    recipe: the session's, with ``cwd`` absolute (session.yaml lives in the bundle, not
    beside the original recipe); a session begun on a file URL has no base URL."""
    head: dict[str, object] = {}
    if recipe is not None and recipe.app is not None:
        head["app"] = _absolute_app(recipe.app, recipe.base_dir)
    elif recipe is not None and recipe.url is not None:
        head["url"] = recipe.url
    elif url is not None and urlsplit(url).scheme == "file":
        head["allow_file_urls"] = True  # the replay's first goto opens it; no base URL
    elif url is not None:
        head["url"] = url
    if recipe is not None and recipe.allow_file_urls:
        head["allow_file_urls"] = True
    head["screen"] = screen
    if recipe is not None and not recipe.video.enabled:
        head["video"] = False
    if recipe is not None and recipe.secrets:
        head["secrets"] = list(recipe.secrets)
    if recipe is not None and recipe.network != "host":
        head["network"] = recipe.network
    return head


def _absolute_app(app: AppSpec | list[AppSpec] | EnvironmentSpec, base: Path) -> Any:
    """The recipe's app block with its paths absolute (session.yaml lives in the bundle)."""
    if isinstance(app, list):
        return [_absolute_app(spec, base) for spec in app]
    data = app.model_dump(exclude_defaults=True)
    if isinstance(app, EnvironmentSpec):
        data["environment"] = str((base / app.environment).resolve())
    else:
        data["cwd"] = str((base / app.cwd).resolve())
    return data
