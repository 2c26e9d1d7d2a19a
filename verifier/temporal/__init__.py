"""Scale-out on Temporal: ``verifier worker``, ``verifier submit``, ``verifier temporal-dev``.

A workflow per recipe (``VerifyRecipe``) runs one activity per attempt; the activity runs
``python3 -m verifier run`` in a subprocess on the worker, so every run keeps the main
thread, signal handling and process ownership it has on the command line, and a crashed
or killed run cannot take the worker with it. temporalio is an optional dependency
(``verifier[temporal]``): import this package's submodules only from the CLI wiring.
"""

from __future__ import annotations

__all__ = ()
