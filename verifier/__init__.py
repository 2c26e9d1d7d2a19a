"""verifier: prove a web change works on a real desktop, with evidence.

.. code-block:: python

    from verifier import Desktop, run_recipe
    with Desktop(screen="1280x800") as desk:
        frame = desk.screenshot()
    result = run_recipe("recipes/todo.yaml", out="artifacts")

The names below load on first use (PEP 562): ``import verifier._process`` in the
watchdog, or ``verifier --version``, need not import Playwright, NumPy and pydantic.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from verifier._lazy import lazy_exports

__version__ = "0.1.0"

# A library never prints: records nobody captures (outside a run's verifier.log) are
# dropped, not shown on stderr by logging's last resort.
logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from verifier.desktop import Desktop
    from verifier.errors import CheckFailed, RecipeError, VerifierError
    from verifier.recipe import Recipe, load_recipe
    from verifier.runner import RunResult, run_recipe

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

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "CheckFailed": "verifier.errors",
        "Desktop": "verifier.desktop",
        "Recipe": "verifier.recipe",
        "RecipeError": "verifier.errors",
        "RunResult": "verifier.runner",
        "VerifierError": "verifier.errors",
        "load_recipe": "verifier.recipe",
        "run_recipe": "verifier.runner",
    },
)
