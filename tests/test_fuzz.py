"""Property tests: whatever a recipe file holds, loading it gives a Recipe or one clear line."""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verifier import load_recipe
from verifier.cli import main
from verifier.errors import VerifierError

DEMO = yaml.safe_load((Path(__file__).parent.parent / "recipes" / "todo.yaml").read_text())

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "\0", "click", "goto", "timeout", "{port}", "-1", "1e309", "ÿ", "🙂"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(max_size=12) | st.sampled_from(["click", "selector", "timeout", "x", "steps"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


@st.composite
def mangled(draw: st.DrawFn) -> str:
    """The demo recipe with a few values replaced, deleted, added or deepened, as YAML."""
    doc: Any = copy.deepcopy(DEMO)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        if not path:
            doc = draw(values)
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        op = draw(st.sampled_from(["replace", "delete", "add", "deepen"]))
        if op == "replace":
            parent[path[-1]] = draw(values)
        elif op == "delete":
            del parent[path[-1]]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(values)
        elif op == "deepen":
            parent[path[-1]] = [[{"x": parent[path[-1]]}]] * draw(st.integers(1, 3))
        if not isinstance(doc, dict | list):
            break
    return yaml.safe_dump(doc, allow_unicode=True)


def _check(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzzed.yaml"
    path.write_bytes(data)
    try:
        load_recipe(path)
    except VerifierError as exc:
        assert exc.message and "\n" not in exc.message, exc.message


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=mangled())
def test_mangled_recipes_load_or_fail_with_one_line(tmp_path: Path, text: str) -> None:
    _check(tmp_path, text.encode("utf-8"))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode()))
def test_arbitrary_bytes_load_or_fail_with_one_line(tmp_path: Path, data: bytes) -> None:
    _check(tmp_path, data)


def test_pathological_inputs(tmp_path: Path) -> None:
    steps = "steps:\n" + "  - goto: /\n"
    for data in [
        b"[" * 100_000,  # nesting deeper than any parser should follow
        b"name: " + b"x" * 10_000_000,  # 10 MB
        b"name: a\nurl: http://x/\nsteps: [" + b"[" * 5000 + b"]" * 5000 + b"]",
        b"name: !!python/object/apply:os.system ['true']\n" + steps.encode(),
        b"&a [*a]",
        b"name: a\nurl: http://x/\ntimeout: .nan\n" + steps.encode(),
        b"name: a\nurl: http://x/\ntimeout: 1e999\n" + steps.encode(),
        b"\xff\xfe\x00n\x00a\x00m\x00e",
        b"a: " + b"&x [" * 50 + b"]" * 50,
    ]:
        _check(tmp_path, data)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=mangled())
def test_validate_on_garbage_exits_2_with_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "garbage.yaml"
    path.write_text(text, encoding="utf-8")
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(["validate", str(path)])
    assert code in (0, 2)
    lines = err.getvalue().splitlines()
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith(f"Error: {path}: "), lines
        assert "Traceback" not in err.getvalue()
    else:
        assert not lines and out.getvalue().startswith(f"OK {path}")
