"""The argument schema of every recipe step, in short and long form."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = (
    "Click",
    "Confidence",
    "Coord",
    "DoubleClick",
    "Drag",
    "ExpectImage",
    "ExpectNoConsoleErrors",
    "ExpectNoFailedRequests",
    "ExpectNoImage",
    "ExpectScreenshot",
    "ExpectText",
    "ExpectUrl",
    "ExpectVisible",
    "Goto",
    "Hover",
    "ImagePath",
    "Length",
    "Mask",
    "Offset",
    "Point",
    "Press",
    "Rect",
    "STEP_COMMON_KEYS",
    "STEP_SCHEMAS",
    "Screenshot",
    "Scroll",
    "Selector",
    "Shift",
    "StepArgs",
    "Text",
    "Timeout",
    "Type",
    "Wait",
    "WaitFor",
)

Timeout = Annotated[float, Field(gt=0, le=3600)]
Text = Annotated[str, Field(max_length=100_000)]
Selector = Annotated[str, Field(min_length=1, max_length=10_000)]
Coord = Annotated[int, Field(ge=0, le=100_000)]
Length = Annotated[int, Field(ge=1, le=100_000)]
Shift = Annotated[int, Field(ge=-100_000, le=100_000)]
# A picture file, relative to the recipe's folder.
ImagePath = Annotated[str, Field(min_length=1, max_length=4096)]
Confidence = Annotated[float, Field(gt=0, le=1)]
_BASELINE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class StepArgs(BaseModel):
    """Options every step takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: Timeout | None = None


class Goto(StepArgs):
    url: Text


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rect(_Shape):
    """A rectangle in pixels: screen coordinates for a search region, page (viewport)
    coordinates for a screenshot mask."""

    x: Coord
    y: Coord
    width: Length
    height: Length


class Offset(_Shape):
    x: Shift = 0
    y: Shift = 0


def _image_options(args: Click | WaitFor) -> None:
    """confidence, region and offset refine an image target and mean nothing without one."""
    if args.image is None:
        given = [name for name in ("confidence", "region", "offset") if getattr(args, name, None)]
        if given:
            msg = f"{given[0]} applies to an image target; add image: PATH or remove it"
            raise ValueError(msg)


class Click(StepArgs):
    selector: Selector | None = None
    x: Coord | None = None
    y: Coord | None = None
    image: ImagePath | None = None  # click the centre of where this picture is on screen
    confidence: Confidence | None = None  # image match score needed (default 0.9)
    region: Rect | None = None  # search only this part of the screen
    offset: Offset | None = None  # click this far from the match's centre
    button: Literal["left", "middle", "right"] = "left"

    @model_validator(mode="after")
    def _one_target(self) -> Click:
        has_point = self.x is not None or self.y is not None
        targets = (self.selector is not None) + has_point + (self.image is not None)
        if targets == 0:
            msg = "give a selector, an image, or both x and y"
            raise ValueError(msg)
        if targets > 1:
            msg = "give one target: a selector, an image, or x and y"
            raise ValueError(msg)
        if has_point and (self.x is None or self.y is None):
            msg = "give both x and y"
            raise ValueError(msg)
        _image_options(self)
        return self


class DoubleClick(Click):
    pass


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    x: Coord
    y: Coord


class Hover(StepArgs):
    """Move the pointer over an element (or a point) and leave it there."""

    selector: Selector | None = None
    x: Coord | None = None
    y: Coord | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Hover:
        if (self.selector is None) == (self.x is None or self.y is None):
            msg = "give a selector or both x and y"
            raise ValueError(msg)
        return self


class Wait(StepArgs):
    """Let time pass (a timer, a debounce, an animation). When there is something to wait
    for, ``wait_for`` is faster and says what never came."""

    seconds: Annotated[float, Field(gt=0, le=600)]


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
    selector: Selector | None = None
    image: ImagePath | None = None
    confidence: Confidence | None = None
    region: Rect | None = None
    state: Literal["visible", "attached", "hidden", "detached"] = "visible"

    @model_validator(mode="after")
    def _one_target(self) -> WaitFor:
        if (self.selector is None) == (self.image is None):
            msg = "give either a selector or an image"
            raise ValueError(msg)
        if self.image is not None and self.state not in ("visible", "hidden"):
            msg = f"state {self.state!r} is for selectors; an image is 'visible' or 'hidden'"
            raise ValueError(msg)
        _image_options(self)
        return self


class ExpectText(StepArgs):
    text: Text
    selector: Selector | None = None


class ExpectVisible(StepArgs):
    selector: Selector


class ExpectUrl(StepArgs):
    url: Text


class Screenshot(StepArgs):
    name: Annotated[str, Field(min_length=1, max_length=100)] = "screenshot"


class Mask(_Shape):
    """Part of the page left out of a screenshot comparison: the elements a selector
    matches, or a rectangle in page (viewport) pixels. A bare string is a selector."""

    selector: Selector | None = None
    x: Coord | None = None
    y: Coord | None = None
    width: Length | None = None
    height: Length | None = None

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: object) -> object:
        return {"selector": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_kind(self) -> Mask:
        sides = (self.x, self.y, self.width, self.height)
        if self.selector is not None and any(v is not None for v in sides):
            msg = "a mask is a selector or a rectangle (x, y, width, height), not both"
            raise ValueError(msg)
        if self.selector is None and any(v is None for v in sides):
            msg = "a mask is a selector, or a rectangle with all of x, y, width and height"
            raise ValueError(msg)
        return self


class ExpectScreenshot(StepArgs):
    """Compare the page (or one element) with ``<recipe-stem>.baselines/NAME.png``."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    selector: Selector | None = None  # compare only this element's box
    threshold: Annotated[float, Field(ge=0, le=1)] = 0.1  # per-pixel colour distance (YIQ)
    max_diff_pixels: Annotated[int, Field(ge=0)] | None = None
    max_diff_ratio: Annotated[float, Field(ge=0, le=1)] | None = None
    mask: Annotated[tuple[Mask, ...], Field(max_length=100)] = ()
    full_page: bool = False

    @field_validator("name")
    @classmethod
    def _file_name(cls, value: str) -> str:
        if not _BASELINE_NAME.fullmatch(value):
            msg = (
                f"{value!r} cannot name a baseline file: use letters, digits, '_', '-' and "
                "'.', like 'home' or 'cart-empty'"
            )
            raise ValueError(msg)
        return value

    @field_validator("mask", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        return [value] if isinstance(value, str | dict) else value

    @field_validator("full_page")
    @classmethod
    def _viewport_only(cls, value: bool) -> bool:
        if value:
            msg = (
                "true is not supported: the check compares what is on the screen; scroll "
                "first, or give a selector"
            )
            raise ValueError(msg)
        return value


class ExpectImage(StepArgs):
    """A picture is on the screen (found by template matching) within the timeout."""

    image: ImagePath
    confidence: Confidence | None = None
    region: Rect | None = None


class ExpectNoImage(ExpectImage):
    """A picture is not on the screen (any more) within the timeout."""


class ExpectNoConsoleErrors(StepArgs):
    """No console error or uncaught page error so far, but those ``allow`` matches."""

    allow: Annotated[tuple[Annotated[str, Field(max_length=1000)], ...], Field(max_length=100)] = ()

    @field_validator("allow")
    @classmethod
    def _regexes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for n, pattern in enumerate(value):
            try:
                re.compile(pattern)
            except re.error as exc:
                msg = f"item {n} ({pattern!r}) is not a valid regular expression: {exc}"
                raise ValueError(msg) from None
        return value


class ExpectNoFailedRequests(ExpectNoConsoleErrors):
    """No request failed or answered 4xx/5xx so far, but those whose URL ``allow`` matches."""


# action -> (schema, the field a short form fills, or None when there is no short form)
STEP_SCHEMAS: dict[str, tuple[type[StepArgs], str | None]] = {
    "goto": (Goto, "url"),
    "click": (Click, "selector"),
    "double_click": (DoubleClick, "selector"),
    "drag": (Drag, None),
    "hover": (Hover, "selector"),
    "wait": (Wait, "seconds"),
    "type": (Type, "text"),
    "press": (Press, "key"),
    "scroll": (Scroll, "dy"),
    "wait_for": (WaitFor, "selector"),
    "expect_text": (ExpectText, "text"),
    "expect_visible": (ExpectVisible, "selector"),
    "expect_url": (ExpectUrl, "url"),
    "screenshot": (Screenshot, "name"),
    "expect_screenshot": (ExpectScreenshot, "name"),
    "expect_image": (ExpectImage, "image"),
    "expect_no_image": (ExpectNoImage, "image"),
    "expect_no_console_errors": (ExpectNoConsoleErrors, None),
    "expect_no_failed_requests": (ExpectNoFailedRequests, None),
}

# Keys allowed beside the action in a step mapping: `- click: "#a"` + `timeout: 5`.
STEP_COMMON_KEYS = ("timeout",)
