"""verifier: prove a web change works on a real desktop, with evidence.

.. code-block:: python

    from verifier import Desktop, run_recipe
    with Desktop(screen="1280x800") as desk:
        frame = desk.screenshot()
    result = run_recipe("recipes/todo.yaml", out="artifacts")
"""

from __future__ import annotations

__version__ = "0.1.0"

from verifier.desktop import Desktop  # noqa: E402
from verifier.errors import CheckFailed, RecipeError, VerifierError  # noqa: E402
from verifier.recipe import Recipe, load_recipe  # noqa: E402
from verifier.runner import RunResult, run_recipe  # noqa: E402

__all__ = (
    "CheckFailed",
    "Desktop",
    "Recipe",
    "RecipeError",
    "RunResult",
    "VerifierError",
    "load_recipe",
    "run_recipe",
)
