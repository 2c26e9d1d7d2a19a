"""Recipes: the YAML contract of what to verify (schema and loader)."""

from __future__ import annotations

from verifier.recipe._app import PORTS_REF, AppSpec, EnvironmentSpec, ServiceSpec
from verifier.recipe._jsonschema import recipe_json_schema
from verifier.recipe._loader import (
    is_file_url,
    load_recipe,
    parse_recipe,
    parse_step,
    upload_file,
)
from verifier.recipe._schema import Recipe, Step, VideoSpec
from verifier.recipe.step_args import STEP_SCHEMAS, StepArgs

__all__ = (
    "PORTS_REF",
    "STEP_SCHEMAS",
    "AppSpec",
    "EnvironmentSpec",
    "Recipe",
    "ServiceSpec",
    "Step",
    "StepArgs",
    "VideoSpec",
    "is_file_url",
    "load_recipe",
    "parse_recipe",
    "parse_step",
    "recipe_json_schema",
    "upload_file",
)
