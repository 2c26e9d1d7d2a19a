"""The house rules the structure must keep, read from the source (no imports run).

* A private module (``_name``) belongs to its package: code outside that package (and
  its subpackages) reaches it only through the package's ``__init__`` or a public
  module. The scripts in ``bench/`` are outside every package.
* Each module's ``__all__`` lists what it gives others: every name another module
  imports from it, and only names it defines (a package's may load them lazily).
* Step names live in one registry: every step the recipe schema knows has a runner, and
  the steps whose screenshots wait for the page to settle are runners' own flags.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

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
