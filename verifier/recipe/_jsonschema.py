"""The recipe's JSON Schema (draft 2020-12), made from the models that validate recipes.

One source: every field, constraint and short form comes from ``RecipeHead`` and
``STEP_SCHEMAS``. What the models accept before validating (a number where text is
expected, one item where a list is) is written out here per validator, and a validator
this module does not know is an error, so the schema cannot silently fall behind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from verifier.recipe._loader import MAX_STEPS
from verifier.recipe._schema import RecipeHead
from verifier.recipe.step_args import STEP_COMMON_KEYS, STEP_SCHEMAS, StepArgs

__all__ = ("recipe_json_schema",)

_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _also(*types: str) -> Callable[[JsonSchemaValue], JsonSchemaValue]:
    """A value of more JSON types than the model's (its constraints apply to their types
    only): text that YAML read as a number (``value: 3``), a mask given by its selector,
    a size written as text (``512MiB``)."""

    def widen(inner: JsonSchemaValue) -> JsonSchemaValue:
        kind = inner.get("type")
        if kind is None:
            return {"anyOf": [inner, {"type": list(types)}]}
        kinds = [kind] if isinstance(kind, str) else list(kind)
        return {**inner, "type": [*kinds, *(t for t in types if t not in kinds)]}

    return widen


def _one_or_more(inner: JsonSchemaValue) -> JsonSchemaValue:
    """A list, or its one item alone (``frame: "#app"``)."""
    item = inner.get("items")
    return {"anyOf": [item, inner]} if item is not None else inner


# Each before-validator of the recipe models, by its function's name: what it lets through.
_BEFORE: dict[str, Callable[[JsonSchemaValue], JsonSchemaValue]] = {
    "_as_text": _also("number", "boolean"),
    "_one_or_more_frames": _one_or_more,
    "_one_or_more": _one_or_more,
    "_short": _also("string"),
    "_size": _also("string"),
}


class _Generator(GenerateJsonSchema):
    def function_before_schema(
        self, schema: core_schema.BeforeValidatorFunctionSchema
    ) -> JsonSchemaValue:
        inner = super().function_before_schema(schema)
        name = getattr(schema["function"]["function"], "__name__", "?")
        widen = _BEFORE.get(name)
        if widen is None:
            msg = f"the recipe schema does not know what the validator {name!r} accepts"
            raise RuntimeError(msg)
        return widen(inner)


def _step_forms(defs: dict[str, Any], names: dict[str, str]) -> list[JsonSchemaValue]:
    """Each action's forms: ``- reload``, ``- click: "#a"``, ``- click: {selector: ...}``,
    each mapping with the common keys (``timeout``) beside the action."""
    common = {key: defs[names["StepArgs"]]["properties"][key] for key in STEP_COMMON_KEYS}
    forms: list[JsonSchemaValue] = [{"enum": list(STEP_SCHEMAS)}]
    for action, (model, short) in STEP_SCHEMAS.items():
        options = {"$ref": f"#/$defs/{names[model.__name__]}"}
        values: list[JsonSchemaValue] = [options]
        if not defs[names[model.__name__]].get("required"):  # `- reload:` is `- reload: {}`
            values.append({"type": "null"})
        if short is not None:
            field = defs[names[model.__name__]]["properties"][short]
            values.insert(1, {"not": {"type": ["array", "object", "null"]}, **field})
        forms.append(
            {
                "type": "object",
                "properties": {action: {"anyOf": values}, **common},
                "required": [action],
                "additionalProperties": False,
            }
        )
    return forms


def recipe_json_schema() -> dict[str, Any]:
    """The JSON Schema of a recipe file (as YAML loads it), refusing unknown keys."""
    models: list[type[BaseModel]] = [RecipeHead, StepArgs]
    models += [model for model, _ in STEP_SCHEMAS.values()]
    keys, top = models_json_schema(
        [(m, "validation") for m in dict.fromkeys(models)],
        ref_template="#/$defs/{model}",
        schema_generator=_Generator,
    )
    defs: dict[str, Any] = top["$defs"]
    names = {m.__name__: keys[(m, "validation")]["$ref"].rsplit("/", 1)[1] for m in models}
    head = defs.pop(names["RecipeHead"])
    forms = _step_forms(defs, names)
    defs.pop(names["StepArgs"], None)
    head["properties"]["steps"] = {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_STEPS,
        "items": {"anyOf": forms},
        "description": "What to do and check, in order; one action per step.",
    }
    return {
        "$schema": _DRAFT,
        "title": "verifier recipe",
        "description": "A recipe for `verifier run`: the app to start and the steps to verify.",
        "type": "object",
        "properties": head["properties"],
        "required": sorted({*head.get("required", []), "steps"}),
        "additionalProperties": False,
        "$defs": dict(sorted(defs.items())),
    }
