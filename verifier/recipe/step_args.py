"""The argument schema of every recipe step, in short and long form."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

__all__ = (
    "Click",
    "Confidence",
    "Coord",
    "Dialog",
    "DoubleClick",
    "Drag",
    "ExpectAria",
    "ExpectAttribute",
    "ExpectChecked",
    "ExpectCount",
    "ExpectDisabled",
    "ExpectDownload",
    "ExpectFocused",
    "ExpectEnabled",
    "ExpectHidden",
    "ExpectImage",
    "ExpectNoConsoleErrors",
    "ExpectNoFailedRequests",
    "ExpectNoImage",
    "ExpectNoText",
    "ExpectScreenshot",
    "ExpectText",
    "ExpectTitle",
    "ExpectUrl",
    "ExpectValue",
    "ExpectVisible",
    "Frames",
    "GoBack",
    "GoForward",
    "Goto",
    "Hover",
    "ImagePath",
    "Length",
    "Mask",
    "Offset",
    "Point",
    "Press",
    "Rect",
    "Reload",
    "STEP_COMMON_KEYS",
    "STEP_SCHEMAS",
    "SaveStorageState",
    "Screenshot",
    "Scroll",
    "Select",
    "Selector",
    "Shift",
    "StepArgs",
    "SwitchTab",
    "Text",
    "Timeout",
    "Type",
    "Upload",
    "Wait",
    "WaitFor",
)

Timeout = Annotated[float, Field(gt=0, le=3600)]


def _as_text(value: object) -> object:
    """A YAML number or boolean written where a step expects text is that text:
    ``value: 3`` is "3", ``value: 2.50`` is "2.50" (as written), ``value: true`` is
    "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(getattr(value, "source", value))
    return value


_AS_TEXT = BeforeValidator(_as_text)
Text = Annotated[str, _AS_TEXT, Field(max_length=100_000)]
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


def _listed(value: object) -> object:
    """A lone value where a list is expected is a list of one."""
    return [value] if isinstance(value, str | int | float) else value


# The iframes to look in, outermost first: ``frame: "#app"``, or nested: ``["#a", "#b"]``.
Frames = Annotated[tuple[Selector, ...], Field(max_length=20)]


class _InFrame(StepArgs):
    """A step that takes a selector also takes ``frame:``."""

    frame: Frames = ()

    @field_validator("frame", mode="before")
    @classmethod
    def _one_or_more_frames(cls, value: object) -> object:
        return _listed(value)

    def _frame_needs_selector(self, *selectors: object) -> None:
        if self.frame and all(s is None or not isinstance(s, str) for s in selectors):
            msg = "frame applies to a selector; give selector: too, or remove frame"
            raise ValueError(msg)


class Goto(StepArgs):
    url: Text


class Reload(StepArgs):
    """Load the page again, as the browser's reload button does."""


class GoBack(StepArgs):
    """Go back one page in the tab's history, as the browser's back button does."""


class GoForward(StepArgs):
    """Go forward one page in the tab's history, as the browser's forward button does."""


class SwitchTab(StepArgs):
    """Bring a tab (or popup window) to the front: its index (0 = the first tab) or a text
    in its title or URL. Later steps act on it."""

    tab: (
        Annotated[int, Field(ge=0, le=10_000)]
        | Annotated[str, Field(min_length=1, max_length=2000)]
    )


class Dialog(StepArgs):
    """Answer the open alert/confirm/prompt (waiting for it to open up to the timeout)."""

    action: Literal["accept", "dismiss"] = "accept"
    text: Text | None = None  # typed into a prompt() before accepting
    expect: Text | None = None  # a part of the message the dialog must show

    @model_validator(mode="after")
    def _text_accepts(self) -> Dialog:
        if self.text is not None and self.action != "accept":
            msg = "text is typed into a prompt that is accepted; use action: accept"
            raise ValueError(msg)
        return self


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


class Click(_InFrame):
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
        self._frame_needs_selector(self.selector)
        return self


class DoubleClick(Click):
    pass


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    x: Coord
    y: Coord


class Hover(_InFrame):
    """Move the pointer over an element (or a point) and leave it there."""

    selector: Selector | None = None
    x: Coord | None = None
    y: Coord | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Hover:
        if (self.selector is None) == (self.x is None or self.y is None):
            msg = "give a selector or both x and y"
            raise ValueError(msg)
        self._frame_needs_selector(self.selector)
        return self


class Wait(StepArgs):
    """Let time pass (a timer, a debounce, an animation). When there is something to wait
    for, ``wait_for`` is faster and says what never came."""

    seconds: Annotated[float, Field(gt=0, le=600)]


class Drag(_InFrame):
    """Press at ``from``, move through the way, release at ``to`` (selectors or points;
    ``frame:`` applies to both selectors)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: Selector | Point = Field(alias="from")
    to: Selector | Point

    @model_validator(mode="after")
    def _frame_for_selectors(self) -> Drag:
        self._frame_needs_selector(self.from_, self.to)
        return self


class Type(_InFrame):
    text: Text | None = None
    secret: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    selector: Selector | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Type:
        if (self.text is None) == (self.secret is None):
            msg = "give exactly one of text or secret"
            raise ValueError(msg)
        self._frame_needs_selector(self.selector)
        return self


class Press(StepArgs):
    key: Annotated[str, _AS_TEXT, Field(min_length=1, max_length=200)]


class Scroll(_InFrame):
    """Scroll by CSS pixels with the wheel: whole notches through the OS, the rest of the
    distance (under one notch) by the scroller under the pointer."""

    dx: Annotated[int, Field(ge=-100_000, le=100_000)] = 0
    dy: Annotated[int, Field(ge=-100_000, le=100_000)] = 0
    x: Coord | None = None
    y: Coord | None = None
    selector: Selector | None = None

    @model_validator(mode="after")
    def _frame_for_selector(self) -> Scroll:
        self._frame_needs_selector(self.selector)
        return self


class WaitFor(_InFrame):
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
        self._frame_needs_selector(self.selector)
        return self


class ExpectText(_InFrame):
    """Text a person sees (open shadow roots included), whitespace-normalized: a part of
    it (default), some element's whole text (``exact: true``), or a ``pattern``. With
    ``visible: false``, text in the page, shown or not (a live region for screen
    readers)."""

    text: Text | None = None
    pattern: Annotated[str, _AS_TEXT, Field(min_length=1, max_length=10_000)] | None = None
    exact: bool = False
    selector: Selector | None = None  # only the text of what this matches
    visible: bool = True

    @model_validator(mode="after")
    def _text_or_pattern(self) -> ExpectText:
        if (self.text is None) == (self.pattern is None):
            msg = "give either text or pattern"
            raise ValueError(msg)
        if self.text is not None and not self.text.strip():
            msg = "text is empty: every page holds it; give the text to look for"
            raise ValueError(msg)
        if self.pattern is not None:
            if self.exact:
                msg = "exact applies to text, not to a pattern (anchor it: ^...$)"
                raise ValueError(msg)
            try:
                re.compile(self.pattern)
            except re.error as exc:
                msg = f"pattern {self.pattern!r} is not a valid regular expression: {exc}"
                raise ValueError(msg) from None
        return self


class ExpectNoText(ExpectText):
    """The text (or pattern) is not visible, or stops being visible within the timeout."""


class ExpectVisible(_InFrame):
    selector: Selector


class ExpectHidden(_InFrame):
    """No element the selector matches is visible (none matches, or all are hidden)."""

    selector: Selector


class ExpectEnabled(_InFrame):
    selector: Selector


class ExpectDisabled(ExpectEnabled):
    pass


class ExpectFocused(_InFrame):
    """The element has the keyboard focus (its window too); with ``visible: true`` it
    also shows it as the keyboard's focus (``:focus-visible``: a focus ring)."""

    selector: Selector
    visible: bool = False


class ExpectValue(_InFrame):
    """The value of an input, textarea or select (its selected option's value)."""

    selector: Selector
    value: Text


class ExpectChecked(_InFrame):
    """A checkbox or radio (or an element with aria-checked) is checked, or with
    ``checked: false`` is not."""

    selector: Selector
    checked: bool = True


class ExpectCount(_InFrame):
    """How many elements the selector matches; with ``visible: true``, how many of them a
    person sees."""

    selector: Selector
    count: Annotated[int, Field(ge=0, le=1_000_000)]
    visible: bool = False


class ExpectTitle(StepArgs):
    """The page's title contains this text."""

    text: Text


class ExpectAttribute(_InFrame):
    """An attribute has this value (or, without ``value``, is present)."""

    selector: Selector
    name: Annotated[str, Field(min_length=1, max_length=1000)]
    value: Text | None = None


class ExpectAria(_InFrame):
    """The element's accessibility tree matches a snapshot (Playwright's aria snapshot
    YAML, matched as Playwright's ``to_match_aria_snapshot`` does)."""

    selector: Selector
    snapshot: Annotated[str, Field(min_length=1, max_length=100_000)]


# An option's label (its text) or, when no label matches, its value.
_Option = Annotated[str, _AS_TEXT, Field(max_length=10_000)]


class Select(_InFrame):
    """Open a dropdown and pick an option, as a person does (several options for a
    ``<select multiple>``)."""

    selector: Selector
    option: _Option | Annotated[tuple[_Option, ...], Field(min_length=1, max_length=1000)]


class Upload(_InFrame):
    """Attach files (relative to the recipe) through the file chooser that clicking the
    element opens (or, for a hidden file input, to the input itself)."""

    selector: Selector
    files: Annotated[tuple[ImagePath, ...], Field(min_length=1, max_length=1000)]

    @field_validator("files", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        return _listed(value)


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


class ExpectScreenshot(_InFrame):
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

    @model_validator(mode="after")
    def _frame_for_selector(self) -> ExpectScreenshot:
        self._frame_needs_selector(self.selector)
        return self


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


class ExpectDownload(StepArgs):
    """The newest file the pages downloaded since the last ``expect_download`` passed
    (waited for up to the timeout): its name matches the glob ``name``, its UTF-8 text
    contains ``contains`` and not ``not_contains``, and it has at least ``min_bytes``
    bytes."""

    name: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    contains: Annotated[Text, Field(min_length=1)] | None = None
    not_contains: Annotated[Text, Field(min_length=1)] | None = None
    min_bytes: Annotated[int, Field(ge=0, le=1 << 40)] | None = None


class SaveStorageState(StepArgs):
    """Write the browser's cookies and localStorage to ``path`` (beside the recipe; 0600,
    never in the bundle), for other recipes' ``storage_state:``."""

    path: Annotated[str, Field(min_length=1, max_length=4096)]


# action -> (schema, the field a short form fills, or None when there is no short form).
# The order is the step table's (README, DESIGN.md): did-you-mean prefers earlier steps.
STEP_SCHEMAS: dict[str, tuple[type[StepArgs], str | None]] = {
    "goto": (Goto, "url"),
    "click": (Click, "selector"),
    "double_click": (DoubleClick, "selector"),
    "hover": (Hover, "selector"),
    "type": (Type, "text"),
    "press": (Press, "key"),
    "scroll": (Scroll, "dy"),
    "drag": (Drag, None),
    "select": (Select, None),
    "upload": (Upload, None),
    "dialog": (Dialog, "action"),
    "switch_tab": (SwitchTab, "tab"),
    "reload": (Reload, None),
    "go_back": (GoBack, None),
    "go_forward": (GoForward, None),
    "wait": (Wait, "seconds"),
    "wait_for": (WaitFor, "selector"),
    "screenshot": (Screenshot, "name"),
    "save_storage_state": (SaveStorageState, "path"),
    "expect_text": (ExpectText, "text"),
    "expect_no_text": (ExpectNoText, "text"),
    "expect_visible": (ExpectVisible, "selector"),
    "expect_hidden": (ExpectHidden, "selector"),
    "expect_url": (ExpectUrl, "url"),
    "expect_title": (ExpectTitle, "text"),
    "expect_value": (ExpectValue, None),
    "expect_checked": (ExpectChecked, "selector"),
    "expect_enabled": (ExpectEnabled, "selector"),
    "expect_disabled": (ExpectDisabled, "selector"),
    "expect_focused": (ExpectFocused, "selector"),
    "expect_count": (ExpectCount, None),
    "expect_attribute": (ExpectAttribute, None),
    "expect_aria": (ExpectAria, None),
    "expect_screenshot": (ExpectScreenshot, "name"),
    "expect_image": (ExpectImage, "image"),
    "expect_no_image": (ExpectNoImage, "image"),
    "expect_no_console_errors": (ExpectNoConsoleErrors, None),
    "expect_no_failed_requests": (ExpectNoFailedRequests, None),
    "expect_download": (ExpectDownload, "name"),
}

# Keys allowed beside the action in a step mapping: `- click: "#a"` + `timeout: 5`.
STEP_COMMON_KEYS = ("timeout",)
