"""The MCP tools, as methods of the :class:`Agent` they act for: ``computer`` and
``finish`` drive and end the session; ``verify``, ``snapshot``, ``expect``, ``logs``,
``navigate`` and ``tabs`` let the agent check its own work.

Each method is registered with :func:`~verifier.mcp._registry.tool` (its name, schema
and what the model reads of it), checks its arguments (an
:class:`~verifier.errors.InputError` says what to send instead), does the work on the
thread that owns the desktop and browser (the MCP server hands it over), and answers
with text, images and the same facts as structured content.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from verifier.browser import Browser
from verifier.computer import (
    EncodedImage,
    Op,
    Outcome,
    computer_tool_schema,
    decode,
    describe,
    encode,
    fit_within,
)
from verifier.errors import CheckFailed, InputError, RecipeError, VerifierError
from verifier.mcp._logs import LOG_SOURCES, LogReader
from verifier.mcp._registry import NAVIGATE_S, Answer, tool
from verifier.mcp._verify import MAX_RECIPES, check_recipes, run_recipes
from verifier.recipe import STEP_SCHEMAS, parse_step
from verifier.session import LOOKS, Session, replay_start, take_snapshot
from verifier.steps import StepContext, run_step

__all__ = ("Agent",)

DEFAULT_LINES = 200
EXPECT_TIMEOUT = 5.0  # an expect's own timeout, unless its step gives one
MAX_LINES = 2000
_SCHEMES = ("http", "https", "about")


_FINISH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {
            "type": "string",
            "enum": ["passed", "failed"],
            "description": "did what you verified work? (default passed)",
        },
        "summary": {"type": "string", "description": "what you checked and what you saw"},
    },
    "additionalProperties": False,
}
_FINISH_SAYS = (
    "End the session: writes its evidence bundle (every action with screenshots, "
    "video, report) and session.yaml, a recipe that replays it with `verifier run`."
)
_VERIFY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "recipes": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "maxItems": MAX_RECIPES,
            "description": "recipe files (YAML), relative to the server's working directory",
        }
    },
    "required": ["recipes"],
    "additionalProperties": False,
}
_VERIFY_SAYS = (
    "Run recipes (YAML test scripts) as `verifier run` does, each on a fresh "
    "desktop of its own; answers each verdict, bundle, failed step (counted from "
    "1) and its message, with the failed step's screenshot."
)
_SNAPSHOT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ref": {"type": "string", "description": "only this element (a ref of the last one)"},
        "selector": {"type": "string", "description": "only the element this selector matches"},
        "depth": {"type": "integer", "minimum": 1, "maximum": 100, "description": "levels"},
        "viewport_only": {"type": "boolean", "description": "leave out what is off screen"},
    },
    "additionalProperties": False,
}
_SNAPSHOT_SAYS = (
    "The active page's accessibility tree as text: each element's role, name, a "
    "ref, and its box [x,y,width,height] in screenshot pixels: pass the ref to "
    "`computer` (or click the box's centre) to hit that element. Cheaper than a "
    "screenshot; cut at 20,000 characters: scope it with ref, selector, depth or "
    "viewport_only."
)
_EXPECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "step": {
            "type": ["object", "string"],
            "description": (
                'one recipe check, as a recipe writes it: {"expect_text": "1 item left"}, '
                '{"expect_visible": "#list li"}, {"expect_url": "/done"}, '
                '{"expect_count": {"selector": "li", "count": 2}, "timeout": 3}'
            ),
        }
    },
    "required": ["step"],
    "additionalProperties": False,
}
_EXPECT_SAYS = (
    "Check the page now with any recipe check (expect_text, expect_visible, "
    "expect_url, expect_count, ...), waiting up to its timeout (default 5 s) as "
    "`verifier run` does; answers passed or failed with the check's message. A "
    "passed check is kept in session.yaml, so its replay proves it again."
)
_LOGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "source": {
            "type": "string",
            "enum": list(LOG_SOURCES),
            "description": "app: the dev server's output; console: the page's console and "
            "errors; network: failed requests and 4xx/5xx answers",
        },
        "since": {
            "type": "number",
            "minimum": 0,
            "description": "only lines from the last SECONDS (default: all)",
        },
        "lines": {
            "type": "integer",
            "minimum": 1,
            "maximum": 2000,
            "description": "the most lines to return, the newest (default 200)",
        },
    },
    "required": ["source"],
    "additionalProperties": False,
}
_LOGS_SAYS = (
    "Recent lines of the app's dev server output (app), the page's console "
    "messages and errors (console), or failed requests (network); secrets are "
    "redacted."
)
_NAVIGATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "url": {
            "type": "string",
            "description": "a URL, or a path relative to the app's URL (like /todos)",
        }
    },
    "required": ["url"],
    "additionalProperties": False,
}
_NAVIGATE_SAYS = (
    "Open a URL in the active tab (a path is relative to the app's URL) and "
    "answer with the settled screenshot."
)
_TABS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "select": {
            "type": "integer",
            "minimum": 0,
            "description": "bring tab N (0 = the first) to the front; without it, list the tabs",
        }
    },
    "additionalProperties": False,
}
_TABS_SAYS = (
    "List the browser's tabs (index, title, URL, which is in front); with "
    "`select`, bring that tab to the front and answer with a screenshot."
)


class Agent:
    """What the agent tools act on: the session (its computer, browser and bundle) and
    where its logs, base URL and recipes are.

    :param session: the session (actions it records: ``navigate``, ``tabs`` switches).
    :param logs: the session's logs (its bundle's logs/ folder).
    :param base_url: what relative URLs are relative to (the app's URL), if any.
    :param allow_file: ``navigate`` may open ``file://`` URLs (the session began on one).
    :param run_args: more arguments for ``verifier run`` (``--out``, ``--no-video``).
    :param redact: the session's redaction of secrets.
    :param screenshots: every ``computer`` action answers with a screenshot; else only
        one that asks (``screenshot: true``).
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
        screenshots: bool = True,
    ) -> None:
        self.session = session
        self.screenshots = screenshots
        self.logs = LogReader(logs, redact=redact)
        self.base_url = base_url
        self.allow_file = allow_file
        self.run_args = tuple(run_args)
        self._redact = redact
        self._verified: list[dict[str, Any]] = []

    # -- computer ----------------------------------------------------------------------

    def _computer_schema(self) -> dict[str, Any]:
        schema = computer_tool_schema(self.session.computer.size)
        schema["properties"]["screenshot"] = {
            "type": "boolean",
            "description": "answer with a screenshot this time (default: "
            + ("true" if self.screenshots else "false, except for screenshot and zoom")
            + ")",
        }
        return schema

    def _computer_says(self) -> str:
        width, height = self.session.computer.size
        answers = (
            "Every action answers with a screenshot taken once the screen has settled"
            if self.screenshots
            else "An action answers with a screenshot only when it asks (screenshot: true)"
        )
        return (
            f"Use the mouse and keyboard on a {width}x{height} desktop showing a web "
            "browser, and take screenshots. Coordinates are screenshot pixels; clicks, "
            "mouse_move, scroll and type also take a snapshot's ref instead. "
            f"{answers}, and its text says what it hit and what changed (URL, title, "
            "tabs, dialogs)."
        )

    @tool("computer", description=_computer_says, schema=_computer_schema)
    def computer(self, args: dict[str, Any]) -> Answer:
        args = dict(args)
        want = args.pop("screenshot", None)
        if want is not None and not isinstance(want, bool):
            raise InputError(f"computer: 'screenshot' is true or false (got {want!r})")
        action = str(args.get("action"))
        show = (want if want is not None else self.screenshots) or action in ("screenshot", "zoom")
        browser = self.session.computer.browser
        before = _page_state(browser) if action not in LOOKS else None
        out = self.session.anthropic(args)
        after = _page_state(browser) if before is not None else None
        # What it says of the page (the element hit, a dialog's message) is redacted.
        said = self.clean(describe(action, out)) + _changes(before, after, self.clean)
        if out.op.kind == "cursor_position" or not show:
            return Answer(said)
        return Answer(said, [out.image()])

    # -- finish --------------------------------------------------------------------------

    @tool("finish", description=_FINISH_SAYS, schema=_FINISH_SCHEMA, budget=None, after_end=True)
    def finish(self, args: dict[str, Any]) -> Answer:
        verdict = args.get("verdict", "passed")
        summary = args.get("summary")
        if verdict not in ("passed", "failed") or not isinstance(summary, str | None):
            raise InputError("finish: 'verdict' is passed or failed, 'summary' a string")
        result = self.session.finish(verdict, summary=summary)
        return Answer(
            f"bundle: {result.bundle}\nsession recipe: {result.recipe}",
            structured={
                "verdict": result.verdict,
                "bundle": str(result.bundle),
                "session_recipe": str(result.recipe),
            },
            ends=True,
        )

    # -- verify --------------------------------------------------------------------------

    @tool("verify", description=_VERIFY_SAYS, schema=_VERIFY_SCHEMA, budget=None)
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

    @tool("snapshot", description=_SNAPSHOT_SAYS, schema=_SNAPSHOT_SCHEMA)
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

    @tool("expect", description=_EXPECT_SAYS, schema=_EXPECT_SCHEMA, budget=None)
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

    @tool("logs", description=_LOGS_SAYS, schema=_LOGS_SCHEMA)
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

    @tool("navigate", description=_NAVIGATE_SAYS, schema=_NAVIGATE_SCHEMA, budget=NAVIGATE_S)
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

    @tool("tabs", description=_TABS_SAYS, schema=_TABS_SCHEMA)
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


def _page_state(browser: Browser | None) -> tuple[str, str | None, int] | None:
    """The tab in front's URL and title (None: not known), and how many tabs are open;
    asked of the browser process, not the page (None: no browser, or it did not say)."""
    if browser is None:
        return None
    try:
        page = browser.page
        return page.url, browser.browser_title(page), len(browser.tabs)
    except VerifierError:
        return None


def _changes(
    before: tuple[str, str | None, int] | None,
    after: tuple[str, str | None, int] | None,
    clean: Callable[[str], str],
) -> str:
    """What an action changed of the page: "; now at URL ('title'); a tab opened"."""
    if before is None or after is None:
        return ""
    said = []
    title = f" ({clean(after[1])!r})" if after[1] else ""
    if after[0] != before[0]:
        said.append(f"now at {clean(after[0])}{title}")
    elif after[1] is not None and before[1] is not None and after[1] != before[1]:
        said.append(f"the title is now {clean(after[1])!r}")
    if after[2] > before[2]:
        said.append(f"{after[2] - before[2]} tab(s) opened: {after[2]} open")
    elif after[2] < before[2]:
        said.append(f"{before[2] - after[2]} tab(s) closed: {after[2]} open")
    return "; " + "; ".join(said) if said else "; the URL, title and tabs did not change"
