"""The argument schema of every recipe step, in short and long form."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ()

Timeout = Annotated[float, Field(gt=0, le=3600)]
Text = Annotated[str, Field(max_length=100_000)]
Selector = Annotated[str, Field(min_length=1, max_length=10_000)]
Coord = Annotated[int, Field(ge=0, le=100_000)]


class StepArgs(BaseModel):
    """Options every step takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: Timeout | None = None


class Goto(StepArgs):
    url: Text


class Click(StepArgs):
    selector: Selector | None = None
    x: Coord | None = None
    y: Coord | None = None
    button: Literal["left", "middle", "right"] = "left"

    @model_validator(mode="after")
    def _one_target(self) -> Click:
        has_point = self.x is not None or self.y is not None
        if self.selector is None and not has_point:
            msg = "give a selector or both x and y"
            raise ValueError(msg)
        if self.selector is not None and has_point:
            msg = "give either a selector or x and y, not both"
            raise ValueError(msg)
        if has_point and (self.x is None or self.y is None):
            msg = "give both x and y"
            raise ValueError(msg)
        return self


class DoubleClick(Click):
    pass


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    x: Coord
    y: Coord


class Drag(StepArgs):
    """Press at ``from``, move through the way, release at ``to`` (selectors or points)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: Selector | Point = Field(alias="from")
    to: Selector | Point


class Type(StepArgs):
    text: Text | None = None
    secret: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    selector: Selector | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Type:
        if (self.text is None) == (self.secret is None):
            msg = "give exactly one of text or secret"
            raise ValueError(msg)
        return self


class Press(StepArgs):
    key: Annotated[str, Field(min_length=1, max_length=200)]


class Scroll(StepArgs):
    dx: Annotated[int, Field(ge=-100_000, le=100_000)] = 0
    dy: Annotated[int, Field(ge=-100_000, le=100_000)] = 0
    x: Coord | None = None
    y: Coord | None = None
    selector: Selector | None = None


class WaitFor(StepArgs):
    selector: Selector
    state: Literal["visible", "attached", "hidden", "detached"] = "visible"


class ExpectText(StepArgs):
    text: Text
    selector: Selector | None = None


class ExpectVisible(StepArgs):
    selector: Selector


class ExpectUrl(StepArgs):
    url: Text


class Screenshot(StepArgs):
    name: Annotated[str, Field(min_length=1, max_length=100)] = "screenshot"


# action -> (schema, the field a short form fills, or None when there is no short form)
STEP_SCHEMAS: dict[str, tuple[type[StepArgs], str | None]] = {
    "goto": (Goto, "url"),
    "click": (Click, "selector"),
    "double_click": (DoubleClick, "selector"),
    "drag": (Drag, None),
    "type": (Type, "text"),
    "press": (Press, "key"),
    "scroll": (Scroll, "dy"),
    "wait_for": (WaitFor, "selector"),
    "expect_text": (ExpectText, "text"),
    "expect_visible": (ExpectVisible, "selector"),
    "expect_url": (ExpectUrl, "url"),
    "screenshot": (Screenshot, "name"),
}

# Keys allowed beside the action in a step mapping: `- click: "#a"` + `timeout: 5`.
STEP_COMMON_KEYS = ("timeout",)
