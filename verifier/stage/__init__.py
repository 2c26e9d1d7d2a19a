"""The stage: what a run or an agent's session stands on, set up and torn down in one
place (``_stage.py``), with the stage's own helpers: the background writer of screenshots
(``_shots.py``), the capture of verifier's log records into the bundle (``_runlog.py``),
and the one way a step is recorded, a recipe's or an agent's (``_steps.py``).
"""

from __future__ import annotations

from verifier.stage._shots import ShotWriter
from verifier.stage._stage import (
    Stage,
    check_window_on,
    error_info,
    readable_recipes,
    secrets_of,
    secrets_of_all,
    typed_text_of_all,
)
from verifier.stage._steps import Begun, StepLog

__all__ = (
    "Begun",
    "ShotWriter",
    "Stage",
    "StepLog",
    "check_window_on",
    "error_info",
    "readable_recipes",
    "secrets_of",
    "secrets_of_all",
    "typed_text_of_all",
)
