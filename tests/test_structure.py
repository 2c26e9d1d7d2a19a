"""The house rules the structure must keep, read from the source (no imports run).

* A private module (``_name``) belongs to its package: code outside that package (and
  its subpackages) reaches it only through the package's ``__init__`` or a public
  module. The scripts in ``bench/`` are outside every package.
* Each module's ``__all__`` lists what it gives others: every name another module
  imports from it, and only names it defines (a package's may load them lazily).
* Step names live in one registry: every step the recipe schema knows has a runner, and
  the steps whose screenshots wait for the page to settle are runners' own flags.
* Habits: plain ``mypy`` checks the product, its tests and bench, all strictly (an
  ignore that silences nothing is an error); every ``type: ignore`` names its error
  code, and every ``noqa`` names rules that ruff's config selects; tests read a
  manifest with the product's ``read_manifest``.
* One step protocol (``stage/_steps.py``) records a recipe's steps and an agent's
  actions; one input layer (``steps/_send.py``) waits for the page to see OS input, with
  one hit test and one viewport origin.
* The agents' interfaces import downward: ``computer`` < ``session`` < ``mcp``; MCP tools
  are registered methods (``@tool``), the server names none.
* A private module at the top of ``verifier/`` serves more than one owner; a public name
  means one thing; no module is named as a package.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "verifier"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _sources() -> Iterator[Path]:
    yield from sorted(PACKAGE.rglob("*.py"))
    yield from sorted((ROOT / "bench").glob("*.py"))


def _imports(path: Path) -> Iterator[tuple[str, list[str], int]]:
    """(module, names imported from it, line) for every import of a verifier module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "verifier":
                continue
            names = [a.name for a in node.names]
            yield node.module, names, node.lineno
            for name in names:  # ``from verifier.x import _mod`` imports a module
                if name.startswith("_") and not name.startswith("__"):
                    yield f"{node.module}.{name}", [], node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "verifier":
                    yield alias.name, [], node.lineno


def _private_owner(module: str) -> str | None:
    """The package a private module belongs to (``verifier.a._m`` -> ``verifier.a``)."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def _file_of(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _declared_all(path: Path) -> tuple[str, ...] | None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            return tuple(value)
    return None


def _defined(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.If):  # TYPE_CHECKING blocks
            for sub in node.body:
                if isinstance(sub, ast.ImportFrom):
                    names.update(a.asname or a.name for a in sub.names)
    return names


def test_no_module_reaches_into_another_package_s_private_module() -> None:
    wrong = []
    for path in _sources():
        package = _package_of(path) if path.is_relative_to(PACKAGE) else "bench"
        for module, _names, line in _imports(path):
            owner = _private_owner(module)
            if owner is None:
                continue
            if package == owner or package.startswith(owner + "."):
                continue
            wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "imports of another package's private module:\n" + "\n".join(wrong)


def test_each_module_exports_what_others_import_from_it() -> None:
    used: dict[str, set[str]] = defaultdict(set)
    for path in _sources():
        for module, names, _line in _imports(path):
            if module != _module_name(path):
                used[module].update(names)
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__main__.py":
            continue
        module = _module_name(path)
        exported = _declared_all(path)
        if exported is None:
            wrong.append(f"{module} has no __all__")
            continue
        submodules = {n for n in used[module] if _file_of(f"{module}.{n}") is not None}
        dunders = {n for n in used[module] if n.startswith("__")}
        missing = sorted(used[module] - set(exported) - submodules - dunders)
        if missing:
            wrong.append(f"{module}.__all__ lacks {missing}, which other modules import")
        # A package's __init__ may export lazily (PEP 562): its names load on first use.
        undefined = sorted(set(exported) - _defined(path))
        if undefined and path.name != "__init__.py":
            wrong.append(f"{module}.__all__ names {undefined}, which it does not define")
    assert not wrong, "\n".join(wrong)


def test_one_registry_of_steps() -> None:
    from verifier.recipe import STEP_SCHEMAS
    from verifier.steps import RUNNERS, SETTLING

    assert set(STEP_SCHEMAS) == set(RUNNERS)
    assert SETTLING <= set(RUNNERS)
    assert {"click", "type", "goto", "screenshot"} <= SETTLING
    assert not {"expect_text", "wait", "wait_for"} & SETTLING


def test_one_reader_per_contract() -> None:
    """manifest.json is read by ``evidence.read_manifest`` only, and a ``--json`` run
    record by ``RunResult.from_json`` only: a field renamed cannot leave a reader of its
    own behind that silently finds nothing."""
    readers = {PACKAGE / "evidence" / "_manifest.py", PACKAGE / "result.py"}
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in readers:
            continue
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT)
        if "json.loads" in text and "manifest.json" in text and "read_manifest" not in text:
            wrong.append(f"{rel} parses manifest.json itself")
        # Whoever reads what a `verifier run --json` prints reads it with from_json.
        if '"--json"' in text and "json.loads" in text and "RunResult.from_json" not in text:
            wrong.append(f"{rel} parses verifier run's --json record itself")
    assert not wrong, "\n".join(wrong)


def test_the_version_is_written_once() -> None:
    """``verifier.__version__`` is the version; the package's metadata reads it."""
    import tomllib
    from importlib.metadata import version

    import verifier

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert version("verifier") == verifier.__version__


# -- habits -----------------------------------------------------------------------------------

CHECKED = ("verifier", "tests", "bench")


def _checked_sources() -> Iterator[Path]:
    for folder in CHECKED:
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_mypy_checks_the_tests_and_bench_as_strictly_as_the_product(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``mypy`` with no arguments (as .ci/run runs it), configured as mypy reads
    pyproject.toml: it checks every file of verifier/, tests/ and bench/, and each of
    their modules under every flag ``--strict`` sets (warn_unused_ignores among them): no
    override relaxes one for some modules."""
    from mypy.main import process_options

    monkeypatch.chdir(ROOT)  # mypy reads the config's ``files`` from the working folder
    sources, options = process_options([])
    _, strict = process_options(["--config-file", "", "--strict", "-c", "pass"])
    _, plain = process_options(["--config-file", "", "-c", "pass"])
    flags = sorted(
        name
        for name in dir(plain)
        if not name.startswith("_")
        and not callable(getattr(plain, name))
        and getattr(strict, name) != getattr(plain, name)
    )
    assert "warn_unused_ignores" in flags and "check_untyped_defs" in flags, flags
    checked = {(ROOT / s.path).resolve() for s in sources if s.path is not None}
    unchecked = [str(p.relative_to(ROOT)) for p in _checked_sources() if p not in checked]
    assert not unchecked, f"plain mypy does not check {unchecked}"
    relaxed = []
    for source in sources:
        module = options.clone_for_module(source.module)
        off = [f for f in flags if getattr(module, f) != getattr(strict, f)]
        if off:
            relaxed.append(f"{source.module}: {off}")
    assert not relaxed, "mypy checks these less strictly than --strict:\n" + "\n".join(relaxed)


def _comments(path: Path) -> Iterator[tuple[int, str]]:
    text = path.read_text(encoding="utf-8")
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def _ruff_selects(code: str, select: list[str], ignore: list[str]) -> bool:
    """Whether ruff's ``select`` (less ``ignore``) enables rule ``code``: a selector is a
    linter's letters and the start of the rule's number (``E`` is pycodestyle's, not
    eradicate's ``ERA``)."""
    rule = re.fullmatch(r"([A-Z]+)([0-9]+)", code)

    def matches(selector: str) -> bool:
        parts = re.fullmatch(r"([A-Z]+)([0-9]*)", selector)
        assert parts is not None, f"ruff's selector {selector!r}"
        return rule is not None and rule[1] == parts[1] and rule[2].startswith(parts[2])

    return any(matches(s) for s in select) and not any(matches(s) for s in ignore)


def test_every_ignore_names_what_it_silences() -> None:
    """A ``type: ignore`` names its error codes (``type: ignore[code]``); a ``noqa`` names
    its rules (``noqa: B018``), each one that ruff's config selects. A bare one silences
    whatever else goes wrong on its line too, and a rule that is not selected never
    fires: its ``noqa`` silences nothing."""
    import tomllib

    lint = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]
    select, ignore = lint["lint"]["select"], lint["lint"].get("ignore", [])
    wrong = []
    for path in _checked_sources():
        rel = path.relative_to(ROOT)
        for line, comment in _comments(path):
            for found in re.finditer(r"type:\s*ignore(\[[^\]]*\])?", comment):
                if not (found[1] or "[]").strip("[] "):
                    wrong.append(f"{rel}:{line}: {found[0]!r} names no error code")
            for found in re.finditer(r"noqa(:\s*[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)?", comment):
                if found[1] is None:
                    wrong.append(f"{rel}:{line}: a bare noqa names no rule")
                    continue
                for code in re.findall(r"[A-Z]+[0-9]+", found[1]):
                    if not _ruff_selects(code, select, ignore):
                        wrong.append(f"{rel}:{line}: noqa {code}, a rule ruff does not select")
    assert not wrong, "\n".join(wrong)


def test_tests_read_manifests_with_the_product_s_reader() -> None:
    """Tests and bench read manifest.json with ``verifier.evidence.read_manifest``: no
    reader of their own (one that drifts from the product's would test another contract)."""
    wrong = []
    for path in _checked_sources():
        if path.is_relative_to(PACKAGE):
            continue  # test_one_reader_per_contract
        rel = path.relative_to(ROOT)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "read_manifest":
                wrong.append(f"{rel}:{node.lineno} defines a read_manifest of its own")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("load", "loads")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "json"
                and "manifest" in ast.unparse(node.args[0] if node.args else node)
            ):
                wrong.append(f"{rel}:{node.lineno} parses a manifest itself")
    assert not wrong, "\n".join(wrong)


# -- one step protocol, one input layer ---------------------------------------------------

# What a step's record says of its time and its page, written by the one step protocol
# (``verifier/stage/_steps.py``) for a recipe's steps and an agent's actions alike.
_PROTOCOL_KEYS = ("started_at", "video_offset_s", "duration_ms", "tab_closed", "console")
# What the browser knew before a step and what its page did during it, asked by it alone.
_PROTOCOL_CALLS = ("dialog_count", "open_dialogs", "dialogs_since")
# Waiting for the page to see OS input is the steps' input layer's alone.
_INPUT_CALLS = ("wait_input", "input_mark")


def _record_writes(path: Path) -> Iterator[tuple[str, int]]:
    """(key, line) of every ``x["key"] = ...`` whose key is a step record's."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            for target in node.targets:
                targets += target.elts if isinstance(target, ast.Tuple) else [target]
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if (
                isinstance(target, ast.Subscript)
                and isinstance(target.slice, ast.Constant)
                and target.slice.value in _PROTOCOL_KEYS
            ):
                yield str(target.slice.value), target.lineno


def _calls(path: Path, names: tuple[str, ...]) -> Iterator[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in names
        ):
            yield node.func.attr, node.lineno


def test_one_step_protocol_records_steps_and_actions() -> None:
    protocol = PACKAGE / "stage" / "_steps.py"
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        if path == protocol or path.is_relative_to(PACKAGE / "browser"):
            continue
        rel = path.relative_to(ROOT)
        wrong += [f"{rel}:{line} writes a step's {key!r}" for key, line in _record_writes(path)]
        wrong += [f"{rel}:{line} calls {name}()" for name, line in _calls(path, _PROTOCOL_CALLS)]
    assert not wrong, "outside the one step protocol (stage/_steps.py):\n" + "\n".join(wrong)
    # Both record through it.
    for user in (PACKAGE / "runner.py", PACKAGE / "session" / "_session.py"):
        text = user.read_text(encoding="utf-8")
        assert ".begin(" in text and ".acted(" in text and ".ended(" in text, user


def test_one_input_layer_for_steps_and_agents() -> None:
    send = PACKAGE / "steps" / "_send.py"
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        if path == send or path.is_relative_to(PACKAGE / "browser"):
            continue
        rel = path.relative_to(ROOT)
        wrong += [f"{rel}:{line} calls {name}()" for name, line in _calls(path, _INPUT_CALLS)]
        text = path.read_text(encoding="utf-8")
        # One hit test (through shadow roots); where the page is on the screen asked of
        # the browser in a world of its own (Browser.place), never of the page's scripts.
        if "elementFromPoint" in text and path != PACKAGE / "steps" / "_aim.py":
            wrong.append(f"{rel} has a hit test of its own (use steps' DEEP_HIT_JS)")
        if "screenX" in text or "outerHeight - innerHeight" in text:
            wrong.append(f"{rel} asks the page where it is (use Browser.place)")
    assert not wrong, "input outside the steps' input layer:\n" + "\n".join(wrong)


# -- the layers of the interfaces -----------------------------------------------------------

# verifier.computer (a desktop as a model drives it) < verifier.session (its actions as
# evidence) < verifier.mcp (both served to an agent): imports point downward only.
_INTERFACE_LAYERS = ("verifier.computer", "verifier.session", "verifier.mcp")


def test_the_interfaces_import_downward() -> None:
    wrong = []
    for low, package in enumerate(_INTERFACE_LAYERS):
        folder = ROOT.joinpath(*package.split("."))
        above = _INTERFACE_LAYERS[low + 1 :]
        for path in folder.rglob("*.py"):
            for module, _names, line in _imports(path):
                if any(module == a or module.startswith(a + ".") for a in above):
                    wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "an interface imports one above it:\n" + "\n".join(wrong)


def test_mcp_tools_are_one_registry() -> None:
    """Every MCP tool is one registered method; the server names none of them."""
    tools = ROOT / "verifier" / "mcp" / "_agent.py"
    tree = ast.parse(tools.read_text(encoding="utf-8"))
    registered = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and isinstance(deco.func, ast.Name)
                    and deco.func.id == "tool"
                ):
                    first = deco.args[0]
                    assert isinstance(first, ast.Constant)
                    registered.append(str(first.value))
    # DESIGN's tools: computer and finish, and the agent's (Wave 2 and 3).
    contract = {"computer", "finish", "verify", "snapshot", "expect", "logs", "navigate", "tabs"}
    assert sorted(registered) == sorted(contract)
    server = (ROOT / "verifier" / "mcp" / "_server.py").read_text(encoding="utf-8")
    named = [t for t in contract if f'"{t}"' in server or f"'{t}'" in server]
    assert not named, f"the server names tools itself: {named}"


# -- helpers with their owners, names that say one thing --------------------------------

# Top-level private modules used by one owner only, and why they stay at the top.
_TOP_LEVEL_ALONE = {
    # Started as ``python -m verifier._watchdog`` by _process: a module of its own, so it
    # starts without the rest of verifier.
    "verifier._watchdog": "verifier._process",
}


def _owner_unit(path: Path) -> str:
    """The top-level unit a source belongs to: ``verifier.app`` for verifier/app/x.py,
    ``verifier.runner`` for verifier/runner.py, ``bench`` for bench/."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[0] != "verifier":
        return parts[0]
    return ".".join(parts[:2]) if len(parts) > 1 else "verifier"


def test_top_level_helpers_serve_more_than_one_owner() -> None:
    """A private module at the top of verifier is shared; one used by a single package or
    module lives in that package (the app's log pump in verifier/app, the stage's
    screenshot writer in verifier/stage)."""
    users: dict[str, set[str]] = defaultdict(set)
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "bench").glob("*.py")]:
        unit = _owner_unit(path)
        if path.parent == PACKAGE and path.name in ("__init__.py", "__main__.py"):
            unit = "verifier"
        for module, _names, _line in _imports(path):
            users[module].add(unit)
        for match in re.finditer(
            r"-m\", \"(verifier\._\w+)\"|-m (verifier\._\w+)", path.read_text()
        ):
            users[match.group(1) or match.group(2)].add(unit)
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for match in re.finditer(r'"(verifier\._\w+):\w+"', pyproject):
        users[match.group(1)].add("pyproject.toml")
    wrong = []
    for path in sorted(PACKAGE.glob("_*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        module = _module_name(path)
        owners = users[module] - {module}
        if len(owners) < 2 and _TOP_LEVEL_ALONE.get(module) not in owners:
            wrong.append(f"{module} serves only {sorted(owners) or 'nobody'}")
    assert not wrong, "top-level helpers with one owner (move them there):\n" + "\n".join(wrong)


# A command line per package, gathered by verifier.cli: the one name several modules share.
_CLI_NAMES = {"main", "run", "add_parser", "add_parsers"}


def test_a_public_name_means_one_thing() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                if not node.name.startswith("_") and node.name not in _CLI_NAMES:
                    where[node.name].append(str(path.relative_to(ROOT)))
    twice = {name: paths for name, paths in where.items() if len(paths) > 1}
    assert not twice, f"one name for different things: {twice}"
    # A module is not named as a package of verifier is (recipe/steps.py and steps/ were),
    # but for each package's ``cli``, which verifier.cli gathers.
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    clash = [
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.py")
        if path.stem in packages - {"cli"} and path.name != "__init__.py"
    ]
    assert not clash, f"modules named as a package: {clash}"
