"""Logged-in state across runs: Playwright's storage state (cookies and localStorage).

A login recipe saves it (``save_storage_state: auth.json``), the others load it
(``storage_state: auth.json``). The file holds credentials: it is written 0600, never
copied into a bundle, and never published. Apps get a new free port each run, so state
saved for a loopback origin (127.0.0.1, localhost, [::1], any port) is loaded for the
current run's base URL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from verifier._files import write_atomic
from verifier.errors import BrowserError, RecipeError

__all__ = ("load_state", "save_state")

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def load_state(path: Path, *, base_url: str | None, recipe: Path | None) -> dict[str, Any]:
    """The state in ``path``, its loopback origins moved to ``base_url``'s.

    :raises RecipeError: the file is missing (naming the recipes beside ``recipe`` that
        write it) or is not a storage state.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        writers = _writers(path, recipe.parent if recipe is not None else path.parent)
        hint = (
            f"; run {', '.join(str(w) for w in writers)} first (it saves it)"
            if writers
            else "; a recipe with a 'save_storage_state' step writes it"
        )
        msg = f"storage_state {str(path)!r}: no such file{hint}"
        raise RecipeError(msg) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"storage_state {str(path)!r}: not a storage state file: {exc}"
        raise RecipeError(msg) from None
    if not isinstance(data, dict):
        msg = f"storage_state {str(path)!r}: not a storage state (a JSON object)"
        raise RecipeError(msg)
    return _moved(data, base_url) if base_url else data


def _moved(state: dict[str, Any], base_url: str) -> dict[str, Any]:
    base = urlsplit(base_url)
    if base.hostname not in _LOOPBACK:
        return state
    host = base.hostname or "127.0.0.1"
    origin = f"{base.scheme}://{base.netloc}"
    cookies = []
    for cookie in state.get("cookies") or []:
        if isinstance(cookie, dict) and str(cookie.get("domain", "")).lstrip(".") in _LOOPBACK:
            cookie = {**cookie, "domain": host}
        cookies.append(cookie)
    origins = []
    for entry in state.get("origins") or []:
        if isinstance(entry, dict) and urlsplit(str(entry.get("origin", ""))).hostname in _LOOPBACK:
            entry = {**entry, "origin": origin}
        origins.append(entry)
    return {**state, "cookies": cookies, "origins": origins}


def save_state(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` (parents made), readable by its owner only.

    :raises BrowserError: it cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(state, indent=1).encode("utf-8"), mode=0o600)
    except OSError as exc:
        msg = f"cannot write the storage state {str(path)!r}: {exc.strerror or exc}"
        raise BrowserError(msg) from exc


def _writers(path: Path, folder: Path) -> list[Path]:
    """Recipes in ``folder`` and below that save ``path`` (a hint for the error)."""
    found = []
    for candidate in sorted(folder.glob("**/*.y*ml"))[:500]:
        try:
            if candidate.stat().st_size > 1 << 20:
                continue
            data = yaml.safe_load(candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
            continue
        steps = data.get("steps") if isinstance(data, dict) else None
        for step in steps if isinstance(steps, list) else []:
            target = step.get("save_storage_state") if isinstance(step, dict) else None
            if isinstance(target, dict):
                target = target.get("path")
            if isinstance(target, str) and (candidate.parent / target).resolve() == path:
                found.append(candidate)
                break
    return found
