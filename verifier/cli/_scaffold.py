"""``verifier init``: a first recipe for an existing app, checked against the running app.

It reads how the app starts (``.cursor/environment.json``, else package.json's dev
script and framework, else a static ``index.html``), starts it once on a desktop as a run
would (sandboxed, on a free port), reads what the home page really shows (its title, or
its first line of text when it has none, and whether it logged errors), and writes
``verify_smoke.yaml`` with those checks. It never overwrites a file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from playwright.sync_api import Page

from verifier._process import scratch_root
from verifier._term import escape
from verifier.errors import RecipeError, VerifierError
from verifier.recipe import Recipe, parse_recipe
from verifier.stage import Stage

__all__ = ("RECIPE_NAME", "Scaffold", "init_recipe")

RECIPE_NAME = "verify_smoke.yaml"
_URL = "http://127.0.0.1:{port}/"
_OPEN_S = 60.0
_MAX_TEXT = 80
_FAVICON = r"/favicon\.ico$"
# A framework's dependency, and the arguments its dev server takes for our port and host.
_FRAMEWORKS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("next", "Next.js", ("--port", "{port}", "--hostname", "127.0.0.1")),
    ("nuxt", "Nuxt", ("--port", "{port}", "--host", "127.0.0.1")),
    ("astro", "Astro", ("--port", "{port}", "--host", "127.0.0.1")),
    ("@angular/cli", "Angular", ("--port", "{port}", "--host", "127.0.0.1")),
    ("gatsby", "Gatsby", ("--port", "{port}", "--host", "127.0.0.1")),
    ("@vue/cli-service", "Vue CLI", ("--port", "{port}", "--host", "127.0.0.1")),
    ("vite", "Vite", ("--port", "{port}", "--strictPort", "--host", "127.0.0.1")),
)
# Create React App reads its port and host from the environment, as does an unknown one.
_ENV_FRAMEWORKS = {"react-scripts": "Create React App"}
_SCRIPTS = ("dev", "start", "develop", "serve")
_DEFAULT_PORTS = {
    "Next.js": 3000,
    "Nuxt": 3000,
    "Astro": 4321,
    "Angular": 4200,
    "Gatsby": 8000,
    "Vue CLI": 8080,
    "Vite": 5173,
    "Create React App": 3000,
}
_PORT_ARG = re.compile(r"(?:--port[= ]|-p[= ]?|\bPORT=|http\.server )(\d{2,5})\b")


@dataclass(slots=True)
class Scaffold:
    """What ``verifier init`` found and wrote."""

    path: Path
    source: str  # how the app starts, for people: "package.json (Vite, npm run dev)"
    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"{path}: not readable JSON ({exc})"
        raise RecipeError(msg) from None
    if not isinstance(data, dict):
        msg = f"{path}: not a JSON object"
        raise RecipeError(msg)
    return data


def _package(folder: Path) -> dict[str, Any] | None:
    path = folder / "package.json"
    return _json_object(path) if path.is_file() else None


def _framework(package: dict[str, Any]) -> str | None:
    deps: dict[str, object] = {}
    for key in ("dependencies", "devDependencies"):
        if isinstance(package.get(key), dict):
            deps.update(package[key])
    for dep, name, _ in _FRAMEWORKS:
        if dep in deps:
            return name
    return next((name for dep, name in _ENV_FRAMEWORKS.items() if dep in deps), None)


def _runner(folder: Path) -> str:
    for lock, tool in (("pnpm-lock.yaml", "pnpm"), ("yarn.lock", "yarn"), ("bun.lockb", "bun")):
        if (folder / lock).exists():
            return tool
    return "npm"


def _from_package(folder: Path, package: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """The app block for a Node app, how it starts (for people), and its framework."""
    scripts = package.get("scripts") if isinstance(package.get("scripts"), dict) else {}
    script = next((s for s in _SCRIPTS if isinstance(scripts.get(s), str)), None)  # type: ignore[union-attr]
    if script is None:
        msg = f"{folder / 'package.json'}: no dev script ({', '.join(_SCRIPTS)}) to start the app"
        raise RecipeError(msg)
    deps = [package.get(k) for k in ("dependencies", "devDependencies")]
    if any(isinstance(d, dict) and d for d in deps) and not (folder / "node_modules").is_dir():
        msg = (
            f"{folder}: node_modules is missing; install the dependencies first "
            f"({_runner(folder)} install): verifier init starts the app to read what it shows"
        )
        raise VerifierError(msg)
    framework = _framework(package)
    args = next((a for _, name, a in _FRAMEWORKS if name == framework), ())
    tool = _runner(folder)
    base = f"npm run {script}" if tool == "npm" else f"{tool} run {script}"
    if args:
        command = f"{base} -- {' '.join(args)}" if tool == "npm" else f"{base} {' '.join(args)}"
    else:
        command = base
    app: dict[str, Any] = {"command": command, "url": _URL}
    if not args:  # Create React App or unknown: the port (PORT) and host by environment
        app["env"] = {"HOST": "127.0.0.1", "BROWSER": "none"}
    return app, f"package.json ({framework or 'its dev server'}, {base})", framework or ""


def _cursor_url(folder: Path, environment: dict[str, Any]) -> tuple[str, str | None]:
    """The URL a Cursor environment's app listens on: a port its commands name, else its
    framework's default."""
    terminals = environment.get("terminals")
    commands = [t.get("command") for t in terminals or [] if isinstance(t, dict)]
    commands += [environment.get("start")]
    for command in commands:
        match = _PORT_ARG.search(command) if isinstance(command, str) else None
        if match:
            return f"http://127.0.0.1:{match.group(1)}/", None
    package = _package(folder) or {}
    framework = _framework(package)
    port = _DEFAULT_PORTS.get(framework or "", 3000)
    return (
        f"http://127.0.0.1:{port}/",
        f"the environment names no port: {port} is {framework or 'a dev server'}'s default; "
        "change the url if the app listens elsewhere",
    )


def _app_block(folder: Path) -> tuple[dict[str, Any], str, list[str]]:
    notes: list[str] = []
    env_file = folder / ".cursor" / "environment.json"
    if env_file.is_file():
        environment = _json_object(env_file)
        url, note = _cursor_url(folder, environment)
        notes += [note] if note else []
        return (
            {"environment": ".cursor/environment.json", "url": url},
            ".cursor/environment.json",
            notes,
        )
    package = _package(folder)
    if package is not None:
        app, source, framework = _from_package(folder, package)
        if not framework:
            notes.append(
                "not a dev server verifier knows: it passes the port as $PORT (and HOST); "
                "if the app listens elsewhere, change app.command"
            )
        return app, source, notes
    if (folder / "index.html").is_file():
        app = {"command": "python3 -m http.server {port} --bind 127.0.0.1", "url": _URL}
        return app, "index.html (a static site, served by Python's http.server)", notes
    msg = (
        f"{folder}: no .cursor/environment.json, package.json or index.html to start the app "
        "from; write the recipe's app block by hand (README: Recipes)"
    )
    raise RecipeError(msg)


def _first_line(text: str) -> str | None:
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            return line if len(line) <= _MAX_TEXT else line[:_MAX_TEXT].rsplit(" ", 1)[0]
    return None


def _look(recipe: Recipe) -> tuple[list[dict[str, Any]], list[str]]:
    """Start the app and the desktop as a run does, open the home page, and return the
    checks that hold there (and notes on what was seen)."""
    checks: list[dict[str, Any]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="init-", dir=scratch_root()) as out:
        stage = Stage(recipe, out=out, video=False)
        with stage:
            try:
                stage.start()
                browser = stage.browser
                assert browser is not None and stage.base_url is not None
                browser.open(stage.base_url, timeout=_OPEN_S)
                browser.settle()
                title = browser.title_of(browser.page).strip()
                heading = browser.ask(_first_heading, within=5)
                text = ""
                if not title and not heading:
                    text = browser.ask(
                        lambda page: page.inner_text("body", timeout=5_000), within=8
                    )
                errors = browser.console_errors
            finally:
                stage.close()
            stage.finish("passed", None)
    if title:
        checks.append({"expect_title": title})
    if heading:  # what the page rendered, not only its static <title>
        checks.append({"expect_text": heading})
    elif not title and (line := _first_line(text)):
        checks.append({"expect_text": line})
        notes.append("the page has no title: the check is its first line of text")
    if not checks:
        msg = f"{stage.base_url} shows no title and no text: nothing to check yet"
        raise VerifierError(msg)
    # A missing favicon is the browser's own request, not the app's error.
    favicon = [e for e in errors if str(e.get("url", "")).endswith("/favicon.ico")]
    others = [e for e in errors if e not in favicon]
    if others:
        first = str(others[0].get("text", ""))[:200]
        notes.append(
            f"the page logged {len(others)} console error(s), e.g. {first!r}: no "
            "expect_no_console_errors check was written"
        )
    else:
        checks.append({"expect_no_console_errors": {"allow": [_FAVICON]} if favicon else {}})
    return checks, notes


def _first_heading(page: Page) -> str | None:
    """The text of the page's first visible level-1 heading, on one line."""
    heading = page.locator("h1:visible").first
    if heading.count() == 0:
        return None
    return _first_line(heading.inner_text(timeout=2_000))


def _shown(check: dict[str, Any]) -> str:
    ((action, value),) = check.items()
    return f"{action} {value!r}" if isinstance(value, str) else action


def _write_new(folder: int, path: Path, text: str) -> None:
    """Create ``path``'s name in the open ``folder`` (never through a link, never over
    a file)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path.name, flags, 0o644, dir_fd=folder)
    except FileExistsError:
        msg = f"{path} exists: verifier init never overwrites a file"
        raise VerifierError(msg) from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _yaml(data: dict[str, Any]) -> str:
    """``data`` as YAML that reads back the same and shows no control or bidi characters
    (escaped instead, as a page's title may hold them)."""
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    if escape(body) != body or yaml.safe_load(body) != data:
        body = yaml.safe_dump(data, sort_keys=False, allow_unicode=False, width=100)
    return body


def init_recipe(folder: str | os.PathLike[str] = ".") -> Scaffold:
    """Write ``folder/verify_smoke.yaml``, a first recipe that passes on the app as it is.

    :raises VerifierError: the folder is not an app verifier can start, the app does not
        come up, or the file exists (exit 2; nothing is written).
    """
    root = Path(folder).resolve()
    try:
        # Held open while the app runs: an app that moves the folder and leaves a link in
        # its place cannot make the recipe land where the link points.
        dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        msg = f"{folder}: no such folder"
        raise VerifierError(msg) from None
    try:
        return _init(root, dir_fd)
    finally:
        os.close(dir_fd)


def _init(root: Path, dir_fd: int) -> Scaffold:
    target = root / RECIPE_NAME
    try:
        os.stat(RECIPE_NAME, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        msg = f"{target} exists: verifier init never overwrites a file"
        raise VerifierError(msg)
    app, source, notes = _app_block(root)
    package = _package(root) or {}
    name = str(package.get("name") or root.name)[:100]
    data: dict[str, Any] = {
        "name": f"{name} starts and shows its home page",
        "app": app,
        "steps": [{"goto": "/"}],
    }
    checks, seen = _look(parse_recipe(data, path=target))
    data["steps"] += checks
    parse_recipe(data, path=target)  # what is written loads
    head = (
        f"# Written by `verifier init` from {source};\n"
        "# its checks are what the running app showed. Run it with:\n"
        f"#   verifier run {RECIPE_NAME}\n"
        "# Next: add the steps that prove your change (README: Every step).\n"
    )
    body = _yaml(data)
    try:
        now = os.stat(root, follow_symlinks=False)
    except OSError:
        now = None
    held = os.fstat(dir_fd)
    if now is None or (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
        msg = f"{root} was moved or replaced while the app ran: nothing written"
        raise VerifierError(msg)
    _write_new(dir_fd, target, head + body)
    ignore = root / ".gitignore"
    ignored = ignore.read_text(encoding="utf-8", errors="replace") if ignore.is_file() else ""
    if "artifacts" not in ignored:
        seen.append("verifier run writes its bundles into ./artifacts: add it to .gitignore")
    return Scaffold(
        path=target,
        source=source,
        checks=[_shown(check) for check in checks],
        notes=notes + seen,
    )
