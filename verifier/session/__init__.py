"""An agent's session on the desktop as evidence: every action a step of a bundle, and a
recipe (``session.yaml``) that replays it with ``verifier run``.

A :class:`Session` records the calls an agent makes on a :class:`~verifier.computer.Computer`
(by coordinate, or by a ref of the page's latest :func:`take_snapshot`) as a run records
its steps; ``verifier mcp`` (``verifier.mcp``) serves it to the agent.
"""

from __future__ import annotations

from verifier.session._refs import REF_ACTIONS, Refs
from verifier.session._replay import render_recipe, replay_head, replay_start
from verifier.session._session import LOOKS, SESSION_RECIPE, ReplaySpec, Session, SessionResult
from verifier.session._snapshot import MAX_CHARS, Element, Snapshot, model_span, take_snapshot

__all__ = (
    "LOOKS",
    "MAX_CHARS",
    "REF_ACTIONS",
    "SESSION_RECIPE",
    "Element",
    "Refs",
    "ReplaySpec",
    "Session",
    "SessionResult",
    "Snapshot",
    "model_span",
    "render_recipe",
    "replay_head",
    "replay_start",
    "take_snapshot",
)
