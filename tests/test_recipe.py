"""Recipe loading: short and long forms, and one-line errors that name the place and a fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import args_of
from verifier import load_recipe
from verifier.cli import main
from verifier.errors import RecipeError
from verifier.recipe import STEP_SCHEMAS, AppSpec
from verifier.recipe.step_args import Click, Screenshot, Scroll

RECIPES = Path(__file__).parent.parent / "recipes"


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


BASE = "name: t\nurl: http://127.0.0.1:8000/\n"


def test_short_and_long_forms(tmp_path: Path) -> None:
    recipe = load_recipe(
        write(
            tmp_path,
            BASE
            + """timeout: 5
steps:
  - goto: /
  - click: "text=Add"
  - click: {x: 10, y: 20, button: right}
  - click: "#slow"
    timeout: 30
  - double_click: "#title"
  - type: Buy milk
  - type: {secret: API_TOKEN, selector: "#token"}
  - press: Control+A
  - scroll: 400
  - scroll: {dx: -100, selector: "#list"}
  - wait_for: {selector: "text=Done", state: hidden, timeout: 60}
  - expect_text: Buy milk
  - expect_visible: "#list li"
  - expect_url: /todos
  - screenshot: after-add
  - screenshot
""",
        )
    )
    steps = recipe.steps
    assert [s.action for s in steps][:3] == ["goto", "click", "click"]
    assert steps[1].target == "text=Add" and steps[1].timeout == 5
    assert steps[2].target == "(10, 20)" and args_of(steps[2], Click).button == "right"
    assert steps[3].timeout == 30
    assert steps[6].target == "secret API_TOKEN"
    assert args_of(steps[8], Scroll).dy == 400
    assert steps[10].timeout == 60
    assert args_of(steps[-1], Screenshot).name == "screenshot"
    assert recipe.base_url == "http://127.0.0.1:8000/"
    assert recipe.screen == "1280x800" and recipe.video.enabled


def test_numbers_and_booleans_where_text_is_expected_are_their_text(tmp_path: Path) -> None:
    """YAML reads ``value: 3`` as a number: a step that expects text takes it as written."""
    recipe = load_recipe(
        write(
            tmp_path,
            """
name: scalars
url: http://127.0.0.1:8000/
steps:
  - select: {selector: "#year", option: 2024}
  - expect_value: {selector: "#price", value: 2.50}
  - expect_attribute: {selector: "#menu", name: aria-expanded, value: true}
  - dialog: {action: accept, text: 42, expect: 0x1F}
  - expect_text: 10
  - expect_no_text: {text: false, exact: true}
  - expect_title: 1_000
  - type: 007
  - press: 5
  - expect_count: {selector: li, count: 3}
  - wait: 1.5
""",
        )
    )
    texts = [
        {k: v for k, v in step.args.model_dump().items() if isinstance(v, str) and k != "selector"}
        for step in recipe.steps
    ]
    assert texts[:9] == [
        {"option": "2024"},
        {"value": "2.50"},
        {"name": "aria-expanded", "value": "true"},
        {"action": "accept", "text": "42", "expect": "0x1F"},
        {"text": "10"},
        {"text": "false"},
        {"text": "1_000"},
        {"text": "007"},
        {"key": "5"},
    ]
    counted, waited = recipe.steps[9].args.model_dump(), recipe.steps[10].args.model_dump()
    assert counted["count"] == 3 and type(counted["count"]) is int
    assert waited["seconds"] == 1.5 and type(waited["seconds"]) is float


def test_app_block(tmp_path: Path) -> None:
    recipe = load_recipe(
        write(
            tmp_path,
            """name: a
app:
  command: npm run dev -- --port {port}
  cwd: ../todo
  url: http://localhost:{port}/
  ready_timeout: 90
  env: {NODE_ENV: development}
steps: [{goto: /}]
""",
        )
    )
    assert isinstance(recipe.app, AppSpec) and recipe.app.ready_timeout == 90
    assert recipe.base_url == "http://localhost:{port}/"
    assert recipe.path == (tmp_path / "r.yaml").resolve()
    assert len(recipe.sha256) == 64


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            BASE + "steps:\n  - clik: '#a'\n",
            r"steps\[0\]: unknown step 'clik'; did you mean 'click'\?",
        ),
        (
            BASE + "steps:\n  - click: {selektor: '#a'}\n",
            r"steps\[0\] \(click\): unknown key 'selektor'; did you mean 'selector'\?",
        ),
        (BASE + "steps:\n  - click: {x: 1}\n", r"steps\[0\] \(click\): give both x and y"),
        (
            BASE + "steps:\n  - click: '#a'\n    timeout: -1\n",
            r"steps\[0\] \(click\)\.timeout: Input should be greater than 0 \(got -1\)",
        ),
        (BASE + "steps:\n  - type: {text: a, secret: B}\n", "exactly one of text or secret"),
        (BASE + "steps:\n  - goto: /\n    click: '#a'\n", "one action per step"),
        (BASE + "steps: []\n", "steps: required, a non-empty list"),
        (BASE + "stepz:\n  - goto: /\n", r"unknown top-level key 'stepz'; did you mean 'steps'\?"),
        ("url: http://x/\nsteps: [{goto: /}]\n", "name: required, but missing"),
        ("name: t\nsteps: [{goto: /home}]\n", "is relative but the recipe has no base URL"),
        (
            "name: t\napp: {comand: x, url: 'http://127.0.0.1:{port}/'}\nsteps: [{goto: /}]\n",
            r"app: unknown key 'comand'; did you mean 'command'\?",
        ),
        (
            "name: t\nscreen: huge\nurl: http://x/\nsteps: [{goto: /}]\n",
            "screen: 'huge' is not WIDTHxHEIGHT",
        ),
        ("name: t\nurl: ftp://x/\nsteps: [{goto: /}]\n", "url: String should match"),
        ("name: [unclosed\n", r"r\.yaml:\d+:\d+: invalid YAML"),
        ("- just\n- a list\n", "a recipe is a YAML mapping"),
        (
            BASE + "timeout: 100000\nsteps: [{goto: /}]\n",
            "timeout: Input should be less than or equal to 3600",
        ),
    ],
)
def test_errors_are_one_line_and_name_the_place(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(RecipeError, match=message) as info:
        load_recipe(write(tmp_path, body))
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(str(tmp_path / "r.yaml") + ":")


def test_not_utf8_nul_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"name: caf\xe9\nsteps: []\n")
    with pytest.raises(RecipeError, match="not UTF-8"):
        load_recipe(bad)
    nul = tmp_path / "nul.yaml"
    nul.write_bytes(b"name: a\0b\n")
    with pytest.raises(RecipeError, match="NUL byte"):
        load_recipe(nul)
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe(tmp_path / "missing.yaml")


def test_every_step_has_a_runner() -> None:
    from verifier.steps import RUNNERS

    assert set(RUNNERS) == set(STEP_SCHEMAS)


def test_validate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = RECIPES / "todo.yaml"
    assert main(["validate", str(good)]) == 0
    assert capsys.readouterr().out.startswith(f"OK {good}:")
    bad = write(tmp_path, BASE + "steps:\n  - clik: '#a'\n")
    assert main(["validate", str(good), str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"Error: {bad}: steps[0]: unknown step 'clik'; did you mean 'click'?"]


def test_a_recipe_that_does_not_load_is_an_error_record_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run --json` prints the same record for a recipe that never ran as for one that
    did: every key, the recipe's full path."""
    bad = write(tmp_path, BASE + "app: {command: a}\napp: {command: b}\nsteps: []\n")
    assert main(["run", str(bad), "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {
        "recipe": str(bad.resolve()),
        "verdict": "error",
        "bundle": None,
        "exit_code": 2,
        "failed_step": None,
        "error": f"{bad}: duplicate key 'app' (lines 3 and 4)",
    }
    assert captured.err.count("\n") == 1


def test_every_shipped_recipe_is_valid() -> None:
    recipes = sorted(RECIPES.glob("*.yaml"))
    assert recipes
    for path in recipes:
        load_recipe(path)
