"""The recipe's ``app:``: one service, a list of named services, or a Cursor environment.

Whatever the form, :func:`services` turns it into the services to start, in order
(:class:`ServiceSpec`): one or more long-running servers, and for a Cursor environment
(``.cursor/environment.json``) its ``install`` and ``start`` commands first. The forms:

* a mapping: one service, as before (``logs/app.log``);
* a list of ``{name, command, url...}``: started in order, each ready before the next;
  ``{port}`` is a service's own free port, ``{ports.NAME}`` another's, in commands, URLs
  and ``env`` alike; the last service's ``url`` is the base URL (``logs/app-NAME.log``);
* ``{environment: PATH, url: URL}``: Cursor's environment file, relative to the recipe;
  its commands run in the folder that holds ``.cursor/``; ``install`` and ``start`` must
  exit 0, then every ``terminals`` entry starts (together, in file order) and the run
  waits for ``url``. Keys Cursor knows and we do not use are ignored, as Cursor does.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from verifier.errors import RecipeError
from verifier.recipe.step_args import Timeout

__all__ = (
    "PORTS_REF",
    "URL_PATTERN",
    "AppBlock",
    "AppLimits",
    "AppSpec",
    "EnvironmentSpec",
    "ServiceSpec",
    "app_base_url",
    "services",
)

# http(s), a host (a name, an IPv4 address or [IPv6]) and a port that is a number or a
# placeholder ({port}, {ports.NAME}); then a path. "127.0.0.1:@PORT@" is no URL.
URL_PATTERN = (
    r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)"
    r"(:(\d{1,5}|\{port\}|\{ports\.[A-Za-z0-9._-]+\}))?([/?#]\S*)?$"
)
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
PORTS_REF = re.compile(r"\{ports\.([^{}]*)\}")
_ENV_NAME = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
DEFAULT_LOG_LIMIT = 10 * 1024 * 1024
_MIB = 1024 * 1024
_SIZE = re.compile(r"^\s*(\d+)\s*(?:([KMGT])(i?)B?|B)?\s*$", re.IGNORECASE)
# The names the app never gets, even when a recipe asks: the verifier's own (a token).
_OURS = re.compile(r"^VERIFIER_", re.IGNORECASE)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _size(value: object) -> object:
    """``"2GiB"``, ``"512MiB"``, ``"1G"`` or a number of bytes -> bytes."""
    if not isinstance(value, str):
        return value
    match = _SIZE.match(value)
    if match is None:
        msg = f"{value!r} is not a size like 512MiB or 2GiB"
        raise ValueError(msg)
    number, unit, binary = match.groups()
    base = 1024 if binary or not unit else 1000
    power = "KMGT".index(unit.upper()) + 1 if unit else 0
    return int(number) * base**power


def _not_ours(names: list[str]) -> list[str]:
    for name in names:
        if _OURS.match(name):
            msg = f"{name!r}: the app never gets the verifier's own VERIFIER_* variables"
            raise ValueError(msg)
    return names


class AppLimits(_Model):
    """``app.limits``: what each service's process tree may use (a cgroup where the
    machine allows one, else a limit on each process)."""

    memory: Annotated[int, BeforeValidator(_size), Field(ge=32 * _MIB, le=1 << 50)] = 2048 * _MIB
    pids: Annotated[int, Field(ge=16, le=4_194_304)] = 1024


class _Common(_Model):
    """What every form of ``app:`` takes."""

    ready_timeout: Timeout = 60.0
    env: dict[_ENV_NAME, Annotated[str, Field(max_length=100_000)]] = Field(default_factory=dict)
    # The verifier's variables the app also gets (it gets only PATH, HOME, LANG, TERM,
    # TMPDIR, PORT and env otherwise; see verifier/app.py).
    pass_env: Annotated[list[_ENV_NAME], Field(max_length=1000), AfterValidator(_not_ours)] = Field(
        default_factory=list
    )
    limits: AppLimits = Field(default_factory=AppLimits)
    # The most bytes a service's log keeps: head and tail, with a line saying what was cut.
    log_limit: Annotated[int, Field(ge=4096, le=1 << 40)] = DEFAULT_LOG_LIMIT


class AppSpec(_Common):
    """One service of the app (its dev server, an API...)."""

    name: Annotated[str, Field(pattern=_NAME)] | None = None
    command: (
        Annotated[str, Field(min_length=1, max_length=10_000)]
        | Annotated[
            list[Annotated[str, Field(max_length=10_000)]], Field(min_length=1, max_length=1000)
        ]
    )
    # The readiness probe (and, for the last service, the base URL). In a list, a service
    # without one (a file watcher) is started and not waited for.
    url: Annotated[str, Field(pattern=URL_PATTERN, max_length=2000)] | None = None
    cwd: Annotated[str, Field(min_length=1, max_length=4096)] = "."


class EnvironmentSpec(_Common):
    """Cursor's ``.cursor/environment.json``, and the URL that says the app is up."""

    environment: Annotated[str, Field(min_length=1, max_length=4096)]
    url: Annotated[str, Field(pattern=URL_PATTERN, max_length=2000)]
    # How long install may take (default: ready_timeout).
    install_timeout: Timeout | None = None


def _kind(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "list[AppSpec]"
    if isinstance(value, dict) and "environment" in value:
        return "EnvironmentSpec"
    if isinstance(value, AppSpec | EnvironmentSpec):
        return type(value).__name__
    return "AppSpec"


def _check_services(value: list[AppSpec]) -> list[AppSpec]:
    if not value:
        msg = "a list of services needs at least one"
        raise ValueError(msg)
    names = [s.name for s in value]
    for n, spec in enumerate(value):
        if spec.name is None:
            msg = f"[{n}].name: required in a list of services (it names its log and port)"
            raise ValueError(msg)
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        msg = f"two services are named {dup!r}; each needs a name of its own"
        raise ValueError(msg)
    if value[-1].url is None:
        msg = f"[{len(value) - 1}].url: required for the last service (it is the base URL)"
        raise ValueError(msg)
    for n, spec in enumerate(value):
        texts = [spec.url or "", *spec.env.values()]
        texts += [spec.command] if isinstance(spec.command, str) else spec.command
        for text in texts:
            for ref in PORTS_REF.findall(text):
                if ref not in names:
                    msg = f"[{n}] ({spec.name}): {{ports.{ref}}} names no service of the app"
                    raise ValueError(msg)
    return value


class _One(AppSpec):
    """The mapping form: one service, whose ``url`` is required (the base URL)."""

    @model_validator(mode="after")
    def _url(self) -> _One:
        if self.url is None:
            msg = "url: required (the readiness probe and base URL)"
            raise ValueError(msg)
        return self


AppBlock = Annotated[
    Annotated[_One, Tag("AppSpec")]
    | Annotated[list[AppSpec], AfterValidator(_check_services), Tag("list[AppSpec]")]
    | Annotated[EnvironmentSpec, Tag("EnvironmentSpec")],
    Discriminator(_kind),
]


def app_base_url(app: AppSpec | list[AppSpec] | EnvironmentSpec | None) -> str | None:
    """The base URL an ``app:`` block gives (``{port}`` not filled in yet)."""
    if app is None:
        return None
    if isinstance(app, list):
        return app[-1].url
    return app.url


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One process of the app to start, as the stage starts it.

    ``kind``: ``serve`` keeps running (probed at ``url`` when it has one); ``install``
    must exit 0 and leaves nothing behind; ``start`` must exit 0, and what it leaves
    running stays up until the run ends.
    """

    name: str
    command: str | tuple[str, ...]
    url: str | None
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    pass_env: tuple[str, ...] = ()
    ready_timeout: float = 60.0
    log_limit: int = DEFAULT_LOG_LIMIT
    kind: Literal["serve", "install", "start"] = "serve"
    log_name: str = "app.log"
    wants_port: bool = True  # gets a free port ({port}, PORT)
    limits: AppLimits = field(default_factory=AppLimits)


def services(
    app: AppSpec | list[AppSpec] | EnvironmentSpec | None, base_dir: Path
) -> tuple[ServiceSpec, ...]:
    """The services ``app`` starts, in order; reads a Cursor environment file.

    :raises RecipeError: the environment file is missing or malformed (naming the file
        and the JSON position).
    """
    if app is None:
        return ()
    if isinstance(app, EnvironmentSpec):
        return _cursor_services(app, base_dir)
    specs = app if isinstance(app, list) else [app]
    return tuple(
        ServiceSpec(
            name=spec.name or "app",
            command=spec.command if isinstance(spec.command, str) else tuple(spec.command),
            url=spec.url,
            cwd=(base_dir / spec.cwd).resolve(),
            env=dict(spec.env),
            pass_env=tuple(spec.pass_env),
            ready_timeout=spec.ready_timeout,
            log_limit=spec.log_limit,
            limits=spec.limits,
            log_name="app.log" if not isinstance(app, list) else f"app-{_slug(spec.name)}.log",
        )
        for spec in specs
    )


def _slug(name: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name or "app").strip("-.").lower()[:60] or "app"


def _cursor_services(spec: EnvironmentSpec, base_dir: Path) -> tuple[ServiceSpec, ...]:
    path = (base_dir / spec.environment).resolve()
    data = _read_environment(path)
    root = path.parent.parent if path.parent.name == ".cursor" else path.parent
    common: dict[str, Any] = {
        "cwd": root,
        "env": dict(spec.env),
        "pass_env": tuple(spec.pass_env),
        "log_limit": spec.log_limit,
        "limits": spec.limits,
        "wants_port": False,
    }
    found: list[ServiceSpec] = []
    for key, kind in (("install", "install"), ("start", "start")):
        command = data.get(key)
        if command is None or command == "":
            continue
        if not isinstance(command, str):
            msg = f"{path}: {key!r} is a {type(command).__name__}; Cursor takes a command string"
            raise RecipeError(msg)
        timeout = (spec.install_timeout or spec.ready_timeout) if key == "install" else None
        found.append(
            ServiceSpec(
                name=key,
                command=command,
                url=None,
                kind=kind,  # type: ignore[arg-type]
                ready_timeout=timeout or spec.ready_timeout,
                log_name=f"app-{key}.log",
                **common,
            )
        )
    terminals = data.get("terminals") or []
    if not isinstance(terminals, list):
        msg = f"{path}: 'terminals' is a {type(terminals).__name__}; Cursor takes a list"
        raise RecipeError(msg)
    names: set[str] = set()
    for n, terminal in enumerate(terminals):
        if not isinstance(terminal, dict) or not isinstance(terminal.get("command"), str):
            msg = f"{path}: terminals[{n}] needs a 'command' string"
            raise RecipeError(msg)
        name = str(terminal.get("name") or f"terminal-{n + 1}")
        slug = _slug(name)
        while slug in names:
            slug += "-2"
        names.add(slug)
        found.append(
            ServiceSpec(
                name=name,
                command=terminal["command"],
                url=None,
                ready_timeout=spec.ready_timeout,
                log_name=f"app-{slug}.log",
                **common,
            )
        )
    if not any(s.kind in ("serve", "start") for s in found):
        msg = f"{path}: no 'start' and no 'terminals': nothing would serve {spec.url}"
        raise RecipeError(msg)
    return tuple(found)


_ENVIRONMENT_MAX = 1024 * 1024


def _read_environment(path: Path) -> dict[str, Any]:
    """The file's JSON object; it must be a regular file of at most 1 MiB (a link to
    /dev/zero or a FIFO would be read forever)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                msg = f"{path}: is not a regular file (app.environment names Cursor's JSON file)"
                raise RecipeError(msg)
            raw = fh.read(_ENVIRONMENT_MAX + 1)
        if len(raw) > _ENVIRONMENT_MAX:
            msg = f"{path}: is larger than 1 MiB; Cursor's environment.json is a small file"
            raise RecipeError(msg)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        msg = f"{path}: no such file (app.environment names Cursor's environment.json)"
        raise RecipeError(msg) from None
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot be read: {getattr(exc, 'strerror', None) or exc}"
        raise RecipeError(msg) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}"
        raise RecipeError(msg) from None
    if not isinstance(data, dict):
        msg = f"{path}: is a JSON {type(data).__name__}; Cursor's environment is an object"
        raise RecipeError(msg)
    return data
