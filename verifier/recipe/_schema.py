"""The recipe: what to start, where to point the browser, and the steps to run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from verifier._types import SCREEN_PATTERN, parse_screen
from verifier.recipe._app import (
    URL_PATTERN,
    AppBlock,
    AppSpec,
    EnvironmentSpec,
    ServiceSpec,
    app_base_url,
    services,
)
from verifier.recipe.step_args import StepArgs, Timeout

__all__ = ("Recipe", "RecipeHead", "Step", "VideoSpec")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VideoSpec(_Model):
    """Screen video options (recorded by the recorder, when present)."""

    enabled: bool = True
    fps: Annotated[int, Field(ge=1, le=60)] = 15
    crf: Annotated[int, Field(ge=0, le=51)] = 30


class RecipeHead(_Model):
    """Every top-level field but the steps (steps are parsed one by one for clear errors)."""

    name: Annotated[str, Field(min_length=1, max_length=500)]
    app: AppBlock | None = None
    url: Annotated[str, Field(pattern=URL_PATTERN, max_length=2000)] | None = None
    screen: Annotated[
        str, Field(max_length=40, json_schema_extra={"pattern": f"^{SCREEN_PATTERN}$"})
    ] = "1280x800"
    video: bool | VideoSpec = True
    timeout: Timeout = 10.0
    # loopback: the app and the browser reach only 127.0.0.1/::1 (see verifier/_netns.py).
    network: Literal["host", "loopback"] = "host"
    # Environment variables whose values are never written anywhere (see verifier/_redact.py).
    secrets: Annotated[
        list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]], Field(max_length=1000)
    ] = Field(default_factory=list)
    # goto may open file:// URLs (refused by default: a page would read local files into
    # the evidence).
    allow_file_urls: bool = False
    # Cookies and localStorage to load before the first step (Playwright's storage-state
    # format, relative to the recipe; a login recipe writes it with save_storage_state).
    storage_state: Annotated[str, Field(min_length=1, max_length=4096)] | None = None

    @field_validator("screen", mode="after")
    @classmethod
    def _screen(cls, value: str) -> str:
        parse_screen(value, what="")  # the one WIDTHxHEIGHT grammar, and Xvfb's range
        return value

    @field_validator("video", mode="after")
    @classmethod
    def _video(cls, value: bool | VideoSpec) -> bool | VideoSpec:
        return VideoSpec(enabled=value) if isinstance(value, bool) else value


@dataclass(frozen=True, slots=True)
class Step:
    """One parsed step: its position, action name, arguments and effective timeout."""

    index: int
    action: str
    args: StepArgs
    timeout: float

    @property
    def target(self) -> str:
        """A short human description of what the step acts on or checks."""
        a = self.args
        if self.action == "drag":
            ends = [getattr(a, "from_", None), getattr(a, "to", None)]
            return " -> ".join(
                e if isinstance(e, str) else f"({e.x}, {e.y})"  # type: ignore[union-attr]
                for e in ends
            )
        if getattr(a, "secret", None):
            return f"secret {a.secret}"  # type: ignore[attr-defined]
        if self.action == "select":
            option = a.option  # type: ignore[attr-defined]
            picked = ", ".join(option) if isinstance(option, tuple) else option
            return f"{a.selector} -> {picked}"  # type: ignore[attr-defined]
        if self.action == "switch_tab":
            return str(a.tab)  # type: ignore[attr-defined]
        if self.action == "dialog":
            return a.action  # type: ignore[attr-defined, no-any-return]
        if getattr(a, "pattern", None) is not None:
            return f"/{a.pattern}/"  # type: ignore[attr-defined]
        for field in ("selector", "image", "url", "text", "key", "name", "path"):
            value = getattr(a, field, None)
            if value is not None:
                return str(value)
        if getattr(a, "x", None) is not None:
            return f"({a.x}, {a.y})"  # type: ignore[attr-defined]
        if self.action == "scroll":
            return f"dx={a.dx} dy={a.dy}"  # type: ignore[attr-defined]
        return ""


@dataclass(frozen=True, slots=True)
class Recipe:
    """A loaded, validated recipe. ``path`` is where it was read from (None if built in code)."""

    name: str
    steps: tuple[Step, ...]
    app: AppSpec | list[AppSpec] | EnvironmentSpec | None
    url: str | None
    screen: str
    video: VideoSpec
    timeout: float
    path: Path | None
    sha256: str
    secrets: tuple[str, ...] = ()
    network: str = "host"
    allow_file_urls: bool = False
    storage_state: str | None = None

    def typed_text(self) -> str:
        """Everything the ``type`` steps type, secrets read from the environment."""
        parts: list[str] = []
        for step in self.steps:
            if step.action != "type":
                continue
            text = getattr(step.args, "text", None)
            secret = getattr(step.args, "secret", None)
            parts.append(text if text is not None else os.environ.get(secret or "", ""))
        return "".join(parts)

    @property
    def typed_secrets(self) -> list[str]:
        """The secrets ``type`` steps type into pages."""
        typed = [getattr(s.args, "secret", None) for s in self.steps if s.action == "type"]
        return sorted({t for t in typed if t})

    @property
    def secret_names(self) -> list[str]:
        """The declared secrets and every secret a ``type`` step types."""
        typed = [getattr(s.args, "secret", None) for s in self.steps if s.action == "type"]
        return sorted({*self.secrets, *(t for t in typed if t)})

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()

    @property
    def base_url(self) -> str | None:
        return app_base_url(self.app) if self.app is not None else self.url

    def services(self) -> tuple[ServiceSpec, ...]:
        """What the app block starts, in order (reads a Cursor environment file).

        :raises RecipeError: the environment file is missing or malformed.
        """
        return services(self.app, self.base_dir)

    def inputs(self) -> list[Path]:
        """The files a run reads beside the recipe as it goes: the recipe itself, its
        baselines folder, the pictures it looks for and the files it uploads (the app
        under test may read them, never change them)."""
        base = self.base_dir
        found = [self.path] if self.path is not None else []
        if self.path is not None:
            found.append(base / f"{self.path.stem}.baselines")
        if isinstance(self.app, EnvironmentSpec):
            found.append(base / self.app.environment)
        for step in self.steps:
            image = getattr(step.args, "image", None)
            if isinstance(image, str):
                found.append(base / image)
            files = getattr(step.args, "files", None)
            if isinstance(files, tuple):
                found.extend(base / name for name in files if isinstance(name, str))
        return found

    def private_files(self) -> list[Path]:
        """The files a run reads or writes that hold credentials: the saved logins it
        loads and saves (the app under test must never see them)."""
        found = [self.storage_state_path] if self.storage_state_path is not None else []
        for step in self.steps:
            if step.action == "save_storage_state":
                found.append((self.base_dir / str(getattr(step.args, "path", ""))).resolve())
        return found

    def compares_screenshots(self) -> bool:
        """Whether a step compares the screen with a baseline beside the recipe."""
        return any(step.action == "expect_screenshot" for step in self.steps)

    @property
    def storage_state_path(self) -> Path | None:
        """The storage-state file the recipe loads, resolved beside it."""
        if self.storage_state is None:
            return None
        return (self.base_dir / self.storage_state).resolve()
