"""`verifier schema`: the recipe JSON Schema, from the models that validate recipes.

The schema and the loader must agree: every recipe here and in the README passes both,
the short and alternative forms the loader accepts pass the schema, and unknown keys
fail both.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from verifier.errors import RecipeError
from verifier.recipe import STEP_SCHEMAS, parse_recipe, recipe_json_schema

ROOT = Path(__file__).parent.parent
VERIFIER = shutil.which("verifier")
BASE: dict[str, Any] = {"name": "forms", "url": "http://127.0.0.1:8000/"}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = recipe_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _loads(data: dict[str, Any]) -> bool:
    try:
        parse_recipe(data, path=ROOT / "recipes" / "probe.yaml")
    except RecipeError:
        return False
    return True


def test_the_installed_command_prints_the_checked_in_schema() -> None:
    assert VERIFIER is not None, "provision.sh links verifier onto PATH"
    out = subprocess.run(
        [VERIFIER, "schema"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    printed = json.loads(out)
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert printed == recipe_json_schema()
    # Editors read the copy beside the example recipes: it is the command's output.
    shipped = json.loads((ROOT / "recipes" / "recipe.schema.json").read_text(encoding="utf-8"))
    assert shipped == printed, "run: verifier schema > recipes/recipe.schema.json"


def test_every_recipe_in_the_repository_passes_and_names_the_schema(
    validator: jsonschema.Draft202012Validator,
) -> None:
    recipes = [p for p in (ROOT / "recipes").rglob("*.yaml") if "node_modules" not in p.parts]
    checked = 0
    for path in recipes:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        if not isinstance(data, dict) or "steps" not in data:
            continue
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
        assert not errors, f"{path}: {errors[:3]}"
        assert text.startswith("# yaml-language-server: $schema=recipe.schema.json\n"), path
        checked += 1
    assert checked >= 3


def test_the_readmes_examples_pass(validator: jsonschema.Draft202012Validator) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.DOTALL)
    checked = 0
    for block in blocks:
        if block.startswith("# .github/workflows/"):  # a workflow using the action
            continue
        try:
            data = yaml.safe_load(block)
        except yaml.YAMLError:  # two files side by side, say
            continue
        if not isinstance(data, dict):
            continue
        # A part shown on its own (the steps, an app block) is checked in a whole recipe.
        data = {**BASE, "steps": ["reload"], **data}
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
        assert not errors, f"README block {block[:80]!r}: {errors[:3]}"
        checked += 1
    assert checked >= 6


# Forms the loader accepts that are not the plain mapping of options.
ACCEPTED: list[dict[str, Any]] = [
    {"steps": ["reload", "go_back"]},
    {"steps": [{"click": "#a", "timeout": 5}]},
    {"steps": [{"click": {"selector": "#a", "frame": "#f"}}]},
    {"steps": [{"click": {"selector": "#a", "frame": ["#f", "#g"]}}]},
    {"steps": [{"type": 42}, {"press": 7}, {"expect_text": True}]},
    {"steps": [{"expect_value": {"selector": "#q", "value": 2.5}}]},
    {"steps": [{"upload": {"selector": "#f", "files": "recipe.schema.json"}}]},
    {"steps": [{"expect_screenshot": {"name": "home", "mask": "#clock"}}]},
    {"steps": [{"expect_screenshot": {"name": "home", "mask": ["#a", {"selector": "#b"}]}}]},
    {"steps": [{"scroll": -300}, {"wait": 0.5}, {"select": {"selector": "s", "option": 3}}]},
    {
        "app": {
            "command": "x {port}",
            "url": "http://127.0.0.1:{port}/",
            "limits": {"memory": "512MiB"},
        },
        "steps": ["reload"],
    },
    {
        "app": [{"name": "api", "command": ["srv"], "url": "http://127.0.0.1:{port}/"}],
        "steps": ["reload"],
    },
    {"video": {"fps": 10}, "network": "loopback", "secrets": ["TOKEN"], "steps": ["reload"]},
    {"screen": " 1024 X 768 ", "steps": [{"reload": None}, {"expect_no_console_errors": None}]},
]

# Mistakes: unknown keys anywhere, a misspelt action, two actions, a wrong type.
REFUSED: list[dict[str, Any]] = [
    {"stepz": [], "steps": ["reload"]},
    {"steps": ["relaod"]},
    {"steps": [{"clik": "#a"}]},
    {"steps": [{"click": {"selektor": "#a"}}]},
    {"steps": [{"click": "#a", "retries": 2}]},
    {"steps": [{"click": "#a", "type": "x"}]},
    {"steps": [{"click": ["#a"]}]},
    {"steps": [{"drag": "#a"}]},
    {"steps": [{"wait": {"seconds": "soon"}}]},
    {"steps": []},
    {"app": {"command": "x", "url": "http://127.0.0.1:1/", "colour": 1}, "steps": ["reload"]},
    {"video": {"fps": 0}, "steps": ["reload"]},
    {"network": "internet", "steps": ["reload"]},
    {"steps": [{"goto": None}]},  # a step whose value is required, left empty
    {"screen": "1280*800", "steps": ["reload"]},
]


@pytest.mark.parametrize("extra", ACCEPTED, ids=lambda d: json.dumps(d)[:60])
def test_forms_the_loader_accepts_pass_the_schema(
    extra: dict[str, Any], validator: jsonschema.Draft202012Validator
) -> None:
    data = {**BASE, **extra}
    assert _loads(data)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
    assert not errors, errors[:3]


@pytest.mark.parametrize("extra", REFUSED, ids=lambda d: json.dumps(d)[:60])
def test_mistakes_fail_the_loader_and_the_schema(
    extra: dict[str, Any], validator: jsonschema.Draft202012Validator
) -> None:
    data = {**BASE, **extra}
    assert not _loads(data)
    assert not validator.is_valid(data)


def test_every_step_has_a_form_with_its_options(
    validator: jsonschema.Draft202012Validator,
) -> None:
    forms = recipe_json_schema()["properties"]["steps"]["items"]["anyOf"]
    named = {key for form in forms[1:] for key in form["required"]}
    assert named == set(STEP_SCHEMAS)
    assert forms[0]["enum"] == list(STEP_SCHEMAS)
