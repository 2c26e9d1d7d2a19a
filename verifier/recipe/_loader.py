"""Read a recipe file and turn every problem into one line a user can act on."""

from __future__ import annotations

import difflib
import hashlib
import re
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ValidationError

from verifier._git import work_tree_of
from verifier.errors import RecipeError
from verifier.recipe._app import PORTS_REF, AppBlock, app_base_url, services
from verifier.recipe._schema import Recipe, RecipeHead, Step, VideoSpec
from verifier.recipe.step_args import STEP_COMMON_KEYS, STEP_SCHEMAS

__all__ = ("MAX_STEPS", "is_file_url", "load_recipe", "parse_recipe", "parse_step", "upload_file")

MAX_RECIPE_BYTES = 1_000_000
MAX_STEPS = 10_000


def _suggest(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the closest choice (difflib's ratio, at least 0.6); on a
    tie the one listed first (the step table's order), not difflib's reverse-alphabetical
    pick."""
    best, best_score = None, 0.6
    matcher = difflib.SequenceMatcher(b=word)
    for choice in choices:
        matcher.set_seq1(choice)
        score = matcher.ratio()
        if score > best_score or (best is None and score == best_score):
            best, best_score = choice, score
    return f"; did you mean {best!r}?" if best is not None else ""


class _DuplicateKey(yaml.constructor.ConstructorError):
    pass


class _Int(int):
    """A YAML integer that remembers how it was written (``007``, ``0x1F``, ``1_000``)."""

    source: str


class _Float(float):
    """A YAML float that remembers how it was written (``2.50``, ``1e3``)."""

    source: str


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, except that two keys of one name in a mapping are an error
    naming both lines (PyYAML keeps the last one silently: a second ``app:`` block would
    replace the first), and numbers keep their text: ``value: 2.50`` where a step expects
    text is "2.50", not "2.5"."""

    def construct_int(self, node: yaml.ScalarNode) -> int:
        number = _Int(self.construct_yaml_int(node))
        number.source = str(node.value)
        return number

    def construct_float(self, node: yaml.ScalarNode) -> float:
        number = _Float(self.construct_yaml_float(node))
        number.source = str(node.value)
        return number

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            # Merged keys (``<<: *base``) may be overridden; that is what merging is for.
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
                seen.setdefault(key, line)
            except TypeError:  # unhashable: the base class says so
                continue
            if first is not None:
                where = f"lines {first} and {line}" if first != line else f"line {line}, twice"
                msg = f"duplicate key {key!r} ({where})"
                raise _DuplicateKey(None, None, msg, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


# What a browser's URL parser drops: tabs and newlines anywhere, C0 controls and spaces
# around; and the schemes that show another URL's content.
_URL_NOISE = re.compile(r"[\t\n\r]")
_URL_BLANKS = "".join(chr(c) for c in range(0x21))
_WRAPPING_SCHEMES = frozenset({"view-source", "filesystem"})

_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_float)


def upload_file(base_dir: Path, name: str) -> Path:
    """The file an ``upload`` step names, resolved (links followed) beside the recipe.

    :raises RecipeError: it lies outside the recipe's folder and the repository holding
        it: the page under test would be handed a file of the machine.
    """
    path = (base_dir / name).resolve()
    roots = [base_dir.resolve()]
    tree = work_tree_of(base_dir)
    if tree is not None:
        roots.append(tree)
    if not any(path.is_relative_to(root) for root in roots):
        msg = (
            f"{name!r} is outside the recipe's folder and its repository ({path}): "
            "refused, the page under test would get a file of this machine"
        )
        raise RecipeError(msg)
    return path


def is_file_url(url: str) -> bool:
    """Whether ``url`` opens a local file, read as a browser reads it: ``file:`` in any
    case, with tabs and newlines anywhere and blanks or control characters around it
    ignored, and inside ``view-source:`` (which shows the file as well)."""
    text = _URL_NOISE.sub("", url)
    while True:
        text = text.strip(_URL_BLANKS)
        scheme = urlsplit(text).scheme.lower()
        if scheme not in _WRAPPING_SCHEMES:
            return scheme == "file"
        text = text.split(":", 1)[1]


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation can hold, through unions, lists and ``Annotated``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += [m for m in _models_in(arg) if m not in found]
    return found


def _fields(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names of the (nested) model(s) at ``loc``, for suggestions."""
    current: list[type[BaseModel]] = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        nested = [
            m
            for c in current
            if (field := c.model_fields.get(part)) is not None
            for m in _models_in(field.annotation)
        ]
        if not nested:
            break
        current = nested
    names = [field.alias or name for c in current for name, field in c.model_fields.items()]
    return list(dict.fromkeys(names))


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none", "is-instance"})


def _model_names(cls: type[BaseModel] = BaseModel) -> set[str]:
    names = set()
    for sub in cls.__subclasses__():
        names |= {sub.__name__, *_model_names(sub)}
    return names


def _is_branch_tag(part: int | str) -> bool:
    """Pydantic names the branch of a union in an error's location (``str``,
    ``list[str]``, ``function-after[...]``, a model's class name): not a user key."""
    if isinstance(part, int):
        return False
    return (
        "[" in part
        or part in _TYPE_TAGS
        or part.startswith(("function-", "constrained-", "lax-or-strict", "json-or-python"))
        or part in _model_names()
    )


def _explain(exc: ValidationError, model: type[BaseModel], prefix: str) -> str:
    """One line for the first error of a pydantic ValidationError."""
    errors = exc.errors()
    # A misspelt key also shows up as a missing one: name the misspelling, it has the fix.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    kind = err["type"]
    raw_loc = list(err["loc"])
    # The last part of an unknown-key error is the user's key, whatever it looks like.
    key_part = raw_loc.pop() if kind == "extra_forbidden" and raw_loc else None
    loc = tuple(p for p in raw_loc if not _is_branch_tag(p))
    where = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    where = where.lstrip(".")
    if kind == "extra_forbidden":
        key = str(key_part)
        hint = _suggest(key, _fields(model, loc))
        return f"{where or 'the recipe'}: unknown key {key!r}{hint}"
    if kind == "missing":
        return f"{where}: required, but missing"
    msg = err["msg"].removeprefix("Value error, ")
    got = f" (got {_short(err['input'])})" if kind != "value_error" else ""
    return f"{where or 'recipe'}: {msg}{got}"


def parse_step(raw: object, *, index: int = 0, timeout: float = 10.0) -> Step:
    """One step as a recipe writes it (``{"expect_text": "Saved"}``), checked as the
    loader checks a recipe's (``timeout``: its default timeout).

    :raises RecipeError: naming the step, the key and a fix.
    """
    return _parse_step(index, raw, timeout)


def _parse_step(index: int, raw: object, default_timeout: float) -> Step:
    where = f"steps[{index}]"
    if isinstance(raw, str):
        if raw not in STEP_SCHEMAS:
            msg = f"{where}: unknown step {raw!r}{_suggest(raw, STEP_SCHEMAS)}"
            raise RecipeError(msg)
        raw = {raw: None}
    if not isinstance(raw, Mapping) or not raw:
        msg = f"{where}: a step is a mapping like '- click: \"#save\"' (got {_short(raw)})"
        raise RecipeError(msg)
    actions = [k for k in raw if k not in STEP_COMMON_KEYS]
    if len(actions) != 1:
        if not actions:
            msg = f"{where}: no action; a step names one of {', '.join(STEP_SCHEMAS)}"
        else:
            unknown = [str(a) for a in actions if a not in STEP_SCHEMAS]
            if unknown:
                bad = unknown[0]
                msg = f"{where}: unknown step {bad!r}{_suggest(bad, [*STEP_SCHEMAS, 'timeout'])}"
            else:
                msg = f"{where}: one action per step, got {', '.join(map(str, actions))}"
        raise RecipeError(msg)
    action = actions[0]
    if not isinstance(action, str) or action not in STEP_SCHEMAS:
        msg = f"{where}: unknown step {_short(action)}{_suggest(str(action), STEP_SCHEMAS)}"
        raise RecipeError(msg)
    schema, short_field = STEP_SCHEMAS[action]
    value = raw[action]
    if isinstance(value, Mapping):
        data = dict(value)
    elif value is None:
        data = {}
    elif short_field is not None and not isinstance(value, list):
        data = {short_field: value}
    else:
        msg = f"{where} ({action}): expected a value or a mapping of options (got {_short(value)})"
        raise RecipeError(msg)
    for key in STEP_COMMON_KEYS:
        if key in raw:
            data.setdefault(key, raw[key])
    try:
        args = schema.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(_explain(exc, schema, f"{where} ({action})")) from None
    return Step(
        index=index,
        action=action,
        args=args,
        timeout=args.timeout if args.timeout is not None else default_timeout,
    )


def parse_recipe(data: object, *, path: Path | None = None, sha256: str = "") -> Recipe:
    """Validate recipe ``data`` (as YAML would load it) into a Recipe."""
    if not isinstance(data, Mapping):
        msg = f"a recipe is a YAML mapping with name and steps (got {type(data).__name__})"
        raise RecipeError(msg)
    allowed = [*RecipeHead.model_fields, "steps"]
    for key in data:
        if key not in allowed:
            msg = f"unknown top-level key {_short(key)}{_suggest(str(key), allowed)}"
            raise RecipeError(msg)
    head_data = {k: v for k, v in data.items() if k != "steps"}
    try:
        head = RecipeHead.model_validate(head_data)
    except ValidationError as exc:
        raise RecipeError(_explain(exc, RecipeHead, "")) from None
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        msg = "steps: required, a non-empty list of steps"
        raise RecipeError(msg)
    if len(raw_steps) > MAX_STEPS:
        msg = f"steps: {len(raw_steps)} steps is more than the limit of {MAX_STEPS}"
        raise RecipeError(msg)
    steps = tuple(_parse_step(i, raw, head.timeout) for i, raw in enumerate(raw_steps))
    base_url = app_base_url(head.app) or head.url
    base_dir = path.parent if path is not None else Path.cwd()
    for step in steps:
        if step.action == "upload":
            for name in step.args.files:  # type: ignore[attr-defined]
                try:
                    upload_file(base_dir, name)
                except RecipeError as exc:
                    raise RecipeError(f"steps[{step.index}] (upload): {exc.message}") from None
        if step.action != "goto":
            continue
        target = str(step.args.url)  # type: ignore[attr-defined]
        if is_file_url(target) and not head.allow_file_urls:
            msg = (
                f"steps[{step.index}] (goto): {_short(target)} is a file:// URL, refused "
                "unless the recipe says 'allow_file_urls: true' (a page would read local "
                "files into the evidence)"
            )
            raise RecipeError(msg)
        if base_url is None and not target.startswith(
            ("http://", "https://", "about:", "data:", "file:")
        ):
            msg = (
                f"steps[{step.index}] (goto): {target!r} is relative but the recipe has "
                "no base URL; add 'url:' or an 'app:' block"
            )
            raise RecipeError(msg)
    video = head.video if isinstance(head.video, VideoSpec) else VideoSpec(enabled=head.video)
    _check_port_refs(steps, head.app, base_dir)
    recipe = Recipe(
        name=head.name,
        steps=steps,
        app=head.app,
        url=head.url,
        screen=head.screen,
        video=video,
        timeout=head.timeout,
        path=path,
        sha256=sha256,
        secrets=tuple(head.secrets),
        network=head.network,
        allow_file_urls=head.allow_file_urls,
        storage_state=head.storage_state,
    )
    recipe.services()  # a Cursor environment file is read and checked now, not at the run
    return recipe


def load_recipe(path: str | Path) -> Recipe:
    """Load and validate a recipe file.

    :raises RecipeError: with one line naming the file and the field or step at fault.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_RECIPE_BYTES + 1)
    except FileNotFoundError:
        msg = f"{p}: no such recipe file"
        raise RecipeError(msg) from None
    except OSError as exc:
        msg = f"{p}: cannot read: {exc.strerror or exc}"
        raise RecipeError(msg) from None
    if len(raw) > MAX_RECIPE_BYTES:
        msg = f"{p}: larger than {MAX_RECIPE_BYTES:,} bytes; is this a recipe?"
        raise RecipeError(msg)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"{p}: not UTF-8 text (byte {exc.start})"
        raise RecipeError(msg) from None
    if "\0" in text:
        msg = f"{p}: contains a NUL byte; is this a recipe?"
        raise RecipeError(msg)
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader (see _Loader)
    except _DuplicateKey as exc:
        msg = f"{p}: {exc.problem}"
        raise RecipeError(msg) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        msg = f"{p}{where}: invalid YAML: {exc.problem or exc}"
        raise RecipeError(msg) from None
    except (yaml.YAMLError, RecursionError) as exc:
        msg = f"{p}: invalid YAML: {type(exc).__name__}"
        raise RecipeError(msg) from None
    try:
        return parse_recipe(data, path=p.resolve(), sha256=hashlib.sha256(raw).hexdigest())
    except RecipeError as exc:
        raise RecipeError(f"{p}: {exc.message}") from None
    except RecursionError:
        msg = f"{p}: nested too deeply"
        raise RecipeError(msg) from None


def _check_port_refs(steps: tuple[Step, ...], app: AppBlock | None, base_dir: Path) -> None:
    """``{ports.NAME}`` in a step's URL names a service of the app (filled in as it runs:
    how a step reaches a service other than the base URL's)."""
    for step in steps:
        url = getattr(step.args, "url", None)
        refs = PORTS_REF.findall(url) if isinstance(url, str) else []
        if not refs:
            continue
        names = [s.name for s in services(app, base_dir)] if app is not None else []
        for ref in refs:
            if ref not in names:
                known = f" (its services: {', '.join(names)})" if names else " (it starts none)"
                msg = (
                    f"steps[{step.index}] ({step.action}): {{ports.{ref}}} names no service "
                    f"of the app{known}"
                )
                raise RecipeError(msg)
