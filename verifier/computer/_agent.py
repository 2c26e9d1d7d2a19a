"""The tools beyond the mouse: ``verify``, ``snapshot``, ``expect``, ``logs``, ``navigate``,
``tabs``.

Each method checks its arguments (an :class:`~verifier.errors.InputError` says what to
send instead), does the work on the thread that owns the desktop and browser (the MCP
server hands it over), and answers with text, images and the same facts as structured
content.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from verifier.computer._computer import Op, Outcome
from verifier.computer._image import EncodedImage, decode, encode, fit_within
from verifier.computer._logs import LOG_SOURCES, LogReader
from verifier.computer._replay import replay_start
from verifier.computer._session import Session
from verifier.computer._snapshot import take_snapshot
from verifier.computer._verify import check_recipes, run_recipes
from verifier.errors import CheckFailed, InputError, RecipeError
from verifier.recipe import STEP_SCHEMAS, parse_step
from verifier.steps import StepContext, run_step

if TYPE_CHECKING:
    from verifier.browser import Browser

__all__ = ("Agent", "Answer")

DEFAULT_LINES = 200
EXPECT_TIMEOUT = 5.0  # an expect's own timeout, unless its step gives one
MAX_LINES = 2000
_SCHEMES = ("http", "https", "about")


@dataclass(slots=True)
class Answer:
    """A tool's answer: text for the model, images, and the same as structured content."""

    text: str
    images: list[EncodedImage] = field(default_factory=list)
    structured: dict[str, Any] | None = None


class Agent:
    """What the agent tools act on: the session (its computer, browser and bundle) and
    where its logs, base URL and recipes are.

    :param session: the session (actions it records: ``navigate``, ``tabs`` switches).
    :param logs: the session's logs (its bundle's logs/ folder).
    :param base_url: what relative URLs are relative to (the app's URL), if any.
    :param allow_file: ``navigate`` may open ``file://`` URLs (the session began on one).
    :param run_args: more arguments for ``verifier run`` (``--out``, ``--no-video``).
    :param redact: the session's redaction of secrets.
    """

    def __init__(
        self,
        session: Session,
        *,
        logs: Path,
        base_url: str | None,
        allow_file: bool = False,
        run_args: Sequence[str] = (),
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.session = session
        self.logs = LogReader(logs, redact=redact)
        self.base_url = base_url
        self.allow_file = allow_file
        self.run_args = tuple(run_args)
        self._redact = redact
        self._verified: list[dict[str, Any]] = []

    # -- verify --------------------------------------------------------------------------

    def verify(self, args: Mapping[str, Any]) -> Answer:
        _only(args, "verify", {"recipes"})
        recipes = check_recipes(args.get("recipes"))
        results = run_recipes(recipes, run_args=self.run_args)
        images = []
        for result in results:
            if result.screenshot is not None:
                images.append(self._shot(result.screenshot))
        records = [r.to_json() for r in results]
        for record in records:
            if record["message"]:
                record["message"] = self.clean(record["message"])
        self._verified += records
        self.session.bundle.set_setup("verify", list(self._verified))
        passed = all(r.verdict == "passed" for r in results)
        lines = [self.clean(r.line()) for r in results]
        if images:
            lines.append("(the images: each failed step's screenshot, in the order above)")
        return Answer("\n".join(lines), images, {"passed": passed, "results": records})

    def _shot(self, path: Path) -> EncodedImage:
        computer = self.session.computer
        frame = fit_within(decode(path.read_bytes()), computer.size)
        return encode(frame, computer.image_format)

    # -- snapshot ------------------------------------------------------------------------

    def snapshot(self, args: Mapping[str, Any]) -> Answer:
        _only(args, "snapshot", {"ref", "selector", "depth", "viewport_only"})
        computer = self.session.computer
        browser = computer.require_browser("take a snapshot")
        self._no_dialog(browser, "snapshot")
        ref, selector = args.get("ref"), args.get("selector")
        depth, viewport_only = args.get("depth"), args.get("viewport_only", False)
        if ref is not None and selector is not None:
            raise InputError("snapshot: give 'ref' or 'selector', not both")
        for key, value in (("ref", ref), ("selector", selector)):
            if value is not None and (not isinstance(value, str) or not value):
                raise InputError(f"snapshot: '{key}' is a non-empty string")
        if depth is not None and (
            isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 100
        ):
            raise InputError(
                f"snapshot: 'depth' is a whole number of levels, 1 to 100 (got {depth!r})"
            )
        if not isinstance(viewport_only, bool):
            raise InputError(f"snapshot: 'viewport_only' is true or false (got {viewport_only!r})")
        page = browser.page
        if isinstance(ref, str) and not self.session.refs.known(page, ref):
            raise InputError(
                f"snapshot: {ref!r} is not a ref of the latest snapshot of the tab in front; "
                "take a whole snapshot first"
            )
        scope = f"aria-ref={ref}" if isinstance(ref, str) else selector
        snap = take_snapshot(browser, computer.scale, redact=self._redact, scope=scope, depth=depth)
        self.session.refs.note(page, snap, scoped=scope is not None)
        snap = snap.trimmed(viewport_only=viewport_only)
        return Answer(snap.render(), structured=snap.to_json())

    # -- expect ----------------------------------------------------------------------------

    def expect(self, args: Mapping[str, Any]) -> Answer:
        """Run one recipe check on the page now, as a recipe's step runs it (waiting up to
        its timeout); recorded, and kept in session.yaml when it passed."""
        _only(args, "expect", {"step"})
        raw = args.get("step")
        if raw is None:
            msg = """expect: 'step' is required: one recipe check, like {"expect_text": "Saved"}"""
            raise InputError(msg)
        try:
            step = parse_step(raw, timeout=EXPECT_TIMEOUT)
        except RecipeError as exc:
            raise InputError(
                f"expect: {exc.message.removeprefix('steps[0]').lstrip(': ')}"
            ) from None
        if not (step.action.startswith("expect_") or step.action == "wait_for"):
            checks = ", ".join(a for a in STEP_SCHEMAS if a.startswith("expect_"))
            msg = f"expect: {step.action!r} is not a check; send one of {checks} or wait_for"
            raise InputError(msg)
        computer = self.session.computer
        browser = computer.require_browser("check the page")
        ctx = StepContext(
            desktop=computer.desktop,
            browser=browser,
            base_url=self.base_url,
            downloads_dir=self.session.bundle.path("downloads"),
        )
        assert isinstance(raw, Mapping | str)

        def check() -> Outcome:
            failed = None
            try:
                run_step(ctx, step)
            except CheckFailed as exc:
                failed = exc.message
            out = computer.screenshot()
            out.op = Op(
                "expect", check=raw if isinstance(raw, Mapping) else {raw: None}, failed=failed
            )
            return out

        out = self.session.record("expect", {"step": raw}, check)
        failed = out.op.failed
        text = (
            f"passed: {step.action} {step.target}".rstrip()
            if failed is None
            else (f"failed: {self.clean(failed)}")
        )
        structured = {"passed": failed is None, "message": self.clean(failed or "")}
        return Answer(text, structured=structured)

    # -- logs ------------------------------------------------------------------------------

    def note_logs(self) -> None:
        """Note the app logs' sizes (every tool call does: ``since`` counts from them)."""
        self.logs.note()

    def read_logs(self, args: Mapping[str, Any]) -> Answer:
        _only(args, "logs", {"source", "since", "lines"})
        source = args.get("source")
        if source not in LOG_SOURCES:
            msg = f"logs: 'source' is one of {', '.join(LOG_SOURCES)} (got {source!r})"
            raise InputError(msg)
        since = args.get("since")
        if since is not None and (
            isinstance(since, bool) or not isinstance(since, int | float) or since < 0
        ):
            msg = f"logs: 'since' is a number of seconds, 0 or more (got {since!r})"
            raise InputError(msg)
        limit = args.get("lines", DEFAULT_LINES)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LINES:
            msg = f"logs: 'lines' is a whole number from 1 to {MAX_LINES} (got {limit!r})"
            raise InputError(msg)
        browser = self.session.computer.browser
        if source != "app" and browser is not None:
            browser.sync()  # the page's events reach the log while Playwright's loop runs
        found = self.logs.read(
            source, since=float(since) if since is not None else None, limit=limit
        )
        window = f" from the last {since:g} s" if since is not None else ""
        if source == "app" and not found.files:
            head = "no app log: this session has no app (start verifier mcp with --recipe)"
        elif not found.lines:
            head = f"no {source} lines{window}"
        else:
            more = f"; {found.omitted} earlier lines left out" if found.omitted else ""
            head = f"{len(found.lines)} {source} lines{window}{more}:"
        return Answer("\n".join([head, *found.lines]), structured=found.to_json())

    # -- navigate --------------------------------------------------------------------------

    def navigate(self, args: Mapping[str, Any]) -> Answer:
        _only(args, "navigate", {"url"})
        url = args.get("url")
        if not isinstance(url, str) or not url.strip():
            msg = "navigate: 'url' is a URL, or a path relative to the app's URL, like /todos"
            raise InputError(msg)
        computer = self.session.computer
        browser = computer.require_browser("navigate")
        self._no_dialog(browser, "navigate")
        given = urlsplit(url.strip())
        if given.scheme in ("http", "https") and not given.netloc:
            msg = f"navigate: {url!r} names no host; give a whole URL, or a path like /todos"
            raise InputError(msg)
        base = self.base_url or browser.page.url
        full = urljoin(base, url.strip())
        scheme = urlsplit(full).scheme
        if scheme not in _SCHEMES and not (scheme == "file" and self.allow_file):
            msg = f"navigate: {url!r} is a {scheme}: URL; open http(s) URLs, or paths of the app"
            raise InputError(msg)
        out = self.session.navigate(
            url, full=full, replay=replay_start(full, self.base_url) or full
        )
        page = browser.page
        title = browser.title_of(page)
        text = f"opened {page.url} ({title!r})"
        if out.note:
            text += f"; {out.note}"
        return Answer(
            self.clean(text),
            [out.image()],
            {"url": self.clean(page.url), "title": self.clean(title)},
        )

    # -- tabs ------------------------------------------------------------------------------

    def tabs(self, args: Mapping[str, Any]) -> Answer:
        _only(args, "tabs", {"select"})
        select = args.get("select")
        if select is not None and (
            isinstance(select, bool) or not isinstance(select, int) or select < 0
        ):
            msg = f"tabs: 'select' is a tab's index, 0 for the first (got {select!r})"
            raise InputError(msg)
        browser = self.session.computer.require_browser("list tabs")
        browser.sync()  # a tab the page just opened is listed too
        images = []
        if select is not None:
            count = len(browser.tabs)
            if select >= count:
                msg = f"tabs: there is no tab {select}; the tabs are 0 to {count - 1}"
                raise InputError(msg)
            images.append(self.session.switch_tab(select).image())
        listed = self._list_tabs(browser)
        lines = [
            f"{'*' if t['active'] else ' '} {t['index']}: {t['title']!r} {t['url']}" for t in listed
        ]
        head = f"switched to tab {select}; " if select is not None else ""
        text = f"{head}{len(listed)} tab(s), * in front:\n" + "\n".join(lines)
        front = next((t["index"] for t in listed if t["active"]), None)
        return Answer(text, images, {"tabs": listed, "active": front})

    def _list_tabs(self, browser: Browser) -> list[dict[str, Any]]:
        active = browser.tab
        listed = []
        for index, page in enumerate(browser.tabs):
            dialog = browser.dialog_on(page)
            title = browser.title_of(page)
            if dialog is not None:
                # The page answers nothing now.
                title = f"({'an' if dialog.type == 'alert' else 'a'} {dialog.type} dialog is open)"
            listed.append(
                {
                    "index": index,
                    "title": self.clean(title),
                    "url": self.clean(page.url),
                    "active": index == active,
                }
            )
        return listed

    def _no_dialog(self, browser: Browser, tool: str) -> None:
        """A page with a dialog open answers nothing: say how to close it."""
        browser.sync()
        dialog = browser.dialog
        if dialog is not None:
            msg = (
                f"{tool}: a dialog is open on tab {dialog.tab} ({dialog.describe()}); answer "
                "it first with computer (key Return to accept, Escape to dismiss)"
            )
            raise InputError(msg)

    def clean(self, text: str) -> str:
        """``text`` with the session's secrets redacted (everything a tool answers)."""
        return self._redact(text) if self._redact else text


def _only(args: Mapping[str, Any], tool: str, allowed: set[str]) -> None:
    unknown = sorted(set(args) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) if allowed else "no arguments"
        msg = f"{tool}: unknown argument {unknown[0]!r}; it takes {takes}"
        raise InputError(msg)
