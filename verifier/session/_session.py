"""A computer-use session as evidence: every action a step of a bundle, and a replay recipe.

Each action is recorded with its arguments, timings, the screen before it and the
settled screen after it (the points it acted on marked on both), and a video chapter.
:meth:`Session.finish` stops what the session ran on, so that every file it lists is
final, writes ``session.yaml`` and the manifest, and renders the report.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from verifier._types import Image
from verifier.computer import (
    Computer,
    Op,
    Outcome,
    anthropic_action,
    mark_region,
    openai_action,
)
from verifier.errors import InputError, VerifierError
from verifier.evidence import (
    BundleWriter,
    ErrorInfo,
    StepRecord,
    Verdict,
    mark_points,
)
from verifier.session._refs import REF_ACTIONS, Refs
from verifier.session._replay import render_recipe
from verifier.stage import ShotWriter, StepLog

if TYPE_CHECKING:
    from verifier.stage import Stage

__all__ = ("LOOKS", "SESSION_RECIPE", "ReplaySpec", "Session", "SessionResult")

# Actions that only look at the screen: nothing to ask the browser first.
LOOKS = frozenset({"screenshot", "zoom", "cursor_position"})

_log = logging.getLogger(__name__)

SESSION_RECIPE = "session.yaml"
_TYPED_SECRET = re.compile(r"""^(\s*- type: )['"]?\[secret:(\w+)\]['"]?[ \t]*$""", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class SessionResult:
    """Where a finished session's evidence is."""

    verdict: Verdict
    bundle: Path
    recipe: Path


@dataclass(frozen=True, slots=True)
class ReplaySpec:
    """What ``session.yaml`` starts with: its name, head (app/url/screen) and first goto."""

    name: str
    head: dict[str, object]
    start: str | None


def _short(value: object, limit: int = 80) -> str:
    text = str(value).replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _target_text(args: Mapping[str, Any]) -> str:
    """The model's own words for where or what: ``[512, 300]``, the text, the keys."""
    parts = []
    for key in ("start_coordinate", "coordinate", "region"):
        if args.get(key) is not None:
            parts.append(
                _short(list(args[key]) if isinstance(args[key], list | tuple) else args[key])
            )
    for key in ("x", "y"):
        if key in args:
            parts.append(f"{key}={_short(args[key])}")
    if "path" in args:
        parts.append(f"path of {len(args['path']) if isinstance(args['path'], list) else '?'}")
    step = args.get("step")  # an expect: its check, as a recipe writes it
    if isinstance(step, Mapping):
        parts += [
            _short(f"{name} {value}" if value is not None else name) for name, value in step.items()
        ]
    elif isinstance(step, str):
        parts.append(_short(step))
    for key in ("ref", "url", "select"):
        if args.get(key) is not None:
            parts.append(_short(args[key]))
    for key in ("text", "keys", "scroll_direction", "scroll_amount", "scroll_x", "scroll_y"):
        if args.get(key) is not None:
            parts.append(_short(args[key]))
    return " ".join(parts)


class Session:
    """Runs tool calls on a :class:`Computer` and records each one in ``bundle``.

    :param computer: the computer the calls act on.
    :param bundle: the session's bundle (steps are its actions).
    :param replay: how ``session.yaml`` begins.
    :param stage: what the session stands on, when it has one (``verifier mcp``): its
        screenshot writer, video chapters and redaction are used, :meth:`finish` tears it
        down, and when something of it dies the session's verdict is ``error``, whatever
        the agent concludes.
    """

    def __init__(
        self,
        computer: Computer,
        bundle: BundleWriter,
        *,
        replay: ReplaySpec,
        stage: Stage | None = None,
    ) -> None:
        self.computer = computer
        self.bundle = bundle
        self._replay = replay
        self._stage = stage
        self._shots = stage.shots if stage is not None else ShotWriter()
        self.broken: VerifierError | None = None  # the first death of something we stand on
        # Every action is recorded as a recipe's step is (``verifier.stage.StepLog``).
        self._steps = (
            stage.step_log()
            if stage is not None
            else StepLog(bundle, browser=lambda: computer.browser)
        )
        self._ops: list[Op] = []
        self._last: tuple[Image, str] | None = None  # the last unmarked screenshot written
        self.result: SessionResult | None = None
        self.refs = Refs()  # the latest snapshot's, for actions by ref

    @property
    def finished(self) -> bool:
        return self.result is not None

    def anthropic(self, args: Mapping[str, Any]) -> Outcome:
        """One ``computer`` tool call with Anthropic's arguments, recorded; ``ref`` (an
        element of the latest snapshot) stands for ``coordinate`` (see ``_refs``)."""
        name = str(args.get("action", "?"))
        if args.get("ref") is None:
            plain = {k: v for k, v in args.items() if k != "ref"}
            return self.record(name, dict(args), lambda: anthropic_action(self.computer, plain))
        return self.record(name, dict(args), lambda: self._by_ref(name, args))

    def _by_ref(self, name: str, args: Mapping[str, Any]) -> Outcome:
        if name not in REF_ACTIONS:
            msg = f"{name}: takes no 'ref'; these do: {', '.join(REF_ACTIONS)}"
            raise InputError(msg)
        if args.get("coordinate") is not None:
            msg = f"{name}: give 'ref' or 'coordinate', not both"
            raise InputError(msg)
        point, target = self.refs.aim(self.computer, args["ref"], name)
        plain = {k: v for k, v in args.items() if k != "ref"}
        probed = None
        if name == "type":  # into the element: click it first, as a recipe's type does
            probed = self.computer.click(point).op.target
        else:
            plain["coordinate"] = list(point)
        out = anthropic_action(self.computer, plain)
        if target.selector is None:  # what the point's probe found names it, if anything
            target = probed or out.op.target or target
        out.op = replace(out.op, target=target)
        return out

    def openai(self, action: Mapping[str, Any]) -> Outcome:
        """One OpenAI computer-use action, recorded."""
        name = str(action.get("type", "?"))
        return self.record(name, dict(action), lambda: openai_action(self.computer, action))

    def navigate(self, url: str, *, full: str, replay: str) -> Outcome:
        """The ``navigate`` tool: open ``full`` (the agent asked for ``url``), recorded; the
        session's recipe goes to ``replay``."""
        return self.record(
            "navigate", {"url": url}, lambda: self.computer.goto(full, replay=replay)
        )

    def switch_tab(self, index: int) -> Outcome:
        """The ``tabs`` tool's ``select``: bring tab ``index`` to the front, recorded."""
        return self.record("switch_tab", {"select": index}, lambda: self.computer.switch_tab(index))

    def record(self, name: str, args: dict[str, Any], act: Callable[[], Outcome]) -> Outcome:
        """Run ``act`` as step ``name`` of the bundle; its errors are recorded, then raised."""
        if self.result is not None:
            msg = f"the session is finished; its bundle is {self.result.bundle}"
            raise VerifierError(msg)
        record = self._steps.add(name, _target_text(args))
        record["details"] = {"args": args}
        begun = self._steps.begin(record, looks=name in LOOKS)
        try:
            out = act()
            out.image()  # encoded here, on the thread that owns the desktop: timed with the rest
        except VerifierError as exc:
            self._steps.acted(begun)
            self._steps.ended(begun, "error", exc.message)
            self._health()
            raise
        except Exception as exc:  # a bug of ours: its record says so, the server answers it
            self._steps.acted(begun, events=False)
            self._steps.ended(begun, "error", f"{type(exc).__name__}: {exc}")
            raise
        self._steps.acted(begun)
        browser = self.computer.browser
        dialog = browser.dialog if browser is not None else None
        if dialog is not None:  # still open: the answer says how to close it
            out.note = f"{out.note}; " if out.note else ""
            out.note += (
                f"a dialog is open: {dialog.describe()}; key Return accepts it, Escape dismisses it"
            )
        if self._health() is not None:
            out.note = f"{out.note}; " if out.note else ""
            out.note += f"warning: {self.broken}"
        self._ops.append(out.op)
        self._evidence(record, name, out)
        # A check the agent ran (expect) that failed is a failed step.
        self._steps.ended(begun, "passed" if out.op.failed is None else "failed", out.op.failed)
        return out

    def _health(self) -> VerifierError | None:
        if self.broken is None and self._stage is not None:
            try:
                self._stage.check_alive()
            except VerifierError as exc:
                self.broken = exc
                _log.error("the session's infrastructure failed: %s", exc.message)
        return self.broken

    def _evidence(self, record: StepRecord, name: str, out: Outcome) -> None:
        op = out.op
        points = [list(p) for p in op.points]
        record["points"] = points
        details = record.setdefault("details", {})
        details.update(
            {
                "settled": out.settled,
                "timings_ms": out.timings,
                "image": {"mime": out.image().mime, "bytes": len(out.image().data)},
            }
        )
        if op.target is not None:
            details["element"] = op.target.description
            if op.target.selector:
                details["selector"] = op.target.selector
        if out.note:
            details["note"] = out.note
        frame, before = out.frame, out.before
        marks = [tuple(p) for p in op.points] if op.kind != "cursor_position" else []
        path_mode = op.kind == "drag"
        index = record["index"]
        shots: list[str] = []
        after_suffix = "after" if before is not None else ""
        if op.box is not None:
            crop, box = out.view, op.box
            shots.append(self._write(lambda: crop, index, name, after_suffix))
            shots.append(self._write(lambda: mark_region(frame, box), index, name, "region"))
        elif marks:
            draw = functools.partial(mark_points, frame, marks, path=path_mode)
            shots.append(self._write(draw, index, name, after_suffix))
        else:
            shots.append(self._plain(frame, index, name, after_suffix))
        if before is not None and marks:
            aimed = functools.partial(mark_points, before, marks, path=path_mode)
            shots.append(self._write(aimed, index, name, "before"))
        elif before is not None:
            shots.append(self._plain(before, index, name, "before"))
        record["screenshot"] = shots[0]
        record["screenshots"] = list(dict.fromkeys(shots))

    def _write(self, make: Callable[[], Image], index: int, name: str, suffix: str) -> str:
        rel = self.bundle.screenshot_rel(index, name, suffix)
        self._shots.write(self.bundle.path(rel), make)
        return rel

    def _plain(self, frame: Image, index: int, name: str, suffix: str) -> str:
        """An unmarked screenshot; the same screen as the last one is not written twice."""
        if self._last is not None and np.array_equal(self._last[0], frame):
            return self._last[1]
        rel = self._write(lambda: frame, index, name, suffix)
        self._last = (frame, rel)
        return rel

    def finish(
        self,
        verdict: Verdict = "passed",
        *,
        summary: str | None = None,
        error: ErrorInfo | None = None,
    ) -> SessionResult:
        """Stop the stage, list every file, write session.yaml and the manifest; idempotent.

        :param verdict: the agent's conclusion (``passed``/``failed``), or ``error`` when
            the session ended abnormally (then ``error`` says why).
        :param summary: the agent's own words on what it verified.
        """
        if self.result is not None:
            return self.result
        if self._health() is not None and verdict != "error":
            assert self.broken is not None
            verdict = "error"
            error = {
                "type": type(self.broken).__name__,
                "message": self.broken.message,
                "step": None,
            }
        if self._stage is not None:
            self._stage.close()  # teardown; the screenshots and the video are listed
        else:
            for path in self._shots.close():
                rel = path.relative_to(self.bundle.root).as_posix()
                self.bundle.add_artifact(rel, "screenshot", digest=self._shots.digests[path])
        recipe_path = self.bundle.path(SESSION_RECIPE)
        intro = (
            f"Replays the computer-use session {self.bundle.run_id} "
            f"({len(self._steps.records)} actions):\n"
            f"  verifier run {recipe_path}\n"
            "Add the checks a reviewer needs (expect_text, expect_visible, expect_url...)\n"
            "where the agent looked for them; comments mark what a recipe cannot replay."
        )
        text = render_recipe(
            self._ops,
            name=self._replay.name,
            head=self._replay.head,
            start=self._replay.start,
            intro=intro,
        )
        if self._stage is not None and self._stage.redactor:
            text = self._stage.redactor.text(text)
            # A secret the agent typed is replayed from its variable, not as its marker.
            text = _TYPED_SECRET.sub(r"\1{secret: \2}", text)
        recipe_path.write_text(text, encoding="utf-8")
        self.bundle.add_artifact(SESSION_RECIPE, "other")
        agent: dict[str, object] = {"actions": len(self._steps.records), "verdict": verdict}
        if summary:
            agent["summary"] = summary
        self.bundle.set_setup("session", {**agent, "recipe": SESSION_RECIPE})
        self.bundle.set_steps(self._steps.records)
        if self._stage is not None:
            self._stage.finish(verdict, error)
        else:
            self.bundle.finish(verdict, error)
        self.result = SessionResult(verdict, self.bundle.root, recipe_path)
        _log.info("session finished: %s, bundle %s", verdict, self.bundle.root)
        return self.result
