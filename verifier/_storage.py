"""Logged-in state across runs: Playwright's storage state (cookies and localStorage).

A login recipe saves it (``save_storage_state: auth.json``), the others load it
(``storage_state: auth.json``). The file holds credentials: it is written 0600, never
copied into a bundle, and never published.

Apps get new free ports each run, so the saved state says which service served each
loopback origin (``"service"`` beside its ``localStorage``; Playwright ignores the key).
Loading moves each such origin to the same service's port in this run, keeping its host:
``localhost`` and ``127.0.0.1`` are different origins to a browser, and are never merged,
nor are two saved origins ever collapsed onto one. A file without the key (saved by
another tool) moves its loopback origins to the app's only service. Cookies carry no
port, and load as saved.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from verifier._files import write_beneath
from verifier.errors import BrowserError, RecipeError

__all__ = ("LoadedState", "load_state", "read_state", "save_state", "tag_services")

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(slots=True)
class LoadedState:
    """A storage state ready for the browser, and how its origins were moved."""

    state: dict[str, Any]
    # {"saved", "loaded", "service"} for each loopback origin (no values: credentials).
    origins: list[dict[str, str]] = field(default_factory=list)
    # Why the page may start without what was saved (said with a failed check).
    notes: list[str] = field(default_factory=list)


def read_state(path: Path, *, recipe: Path | None) -> dict[str, Any]:
    """The storage state in ``path``.

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
    return data


def load_state(path: Path, *, services: Mapping[str, str], recipe: Path | None) -> LoadedState:
    """The state in ``path``, its loopback origins moved to this run's ports (see the
    module).

    :param services: each service of this run that has a URL: its name and origin.
    :raises RecipeError: as :func:`read_state`.
    """
    data = read_state(path, recipe=recipe)
    loaded = LoadedState({**data, "origins": []})
    entries = [e for e in data.get("origins") or [] if isinstance(e, dict)]
    saved_names = {e.get("service") for e in entries} - {None}
    saved_origins = {e.get("origin") for e in entries}
    only = next(iter(services)) if len(services) == 1 else None
    taken: set[str] = set()
    moves: list[tuple[dict[str, Any], str]] = []
    for entry in entries:
        origin = str(entry.get("origin", ""))
        name = entry.get("service")
        if name not in services and only is not None and len(saved_names) <= 1:
            name = only  # the app's only service (renamed, or a file without names)
        target = services.get(name) if isinstance(name, str) else None
        moved = _moved(origin, target) if target is not None else None
        if moved is None or moved in taken or moved in saved_origins:
            moved = origin  # loads as saved: no service of ours served it, or it would
            # land on an origin another saved one holds
        taken.add(moved)
        moves.append((entry, moved))
        if moved != origin or isinstance(name, str):
            loaded.origins.append({"saved": origin, "loaded": moved, "service": str(name)})
    for entry, moved in moves:
        clean = {k: v for k, v in entry.items() if k != "service"}
        loaded.state["origins"].append({**clean, "origin": moved})
    _note_hosts(loaded, path, data, services)
    return loaded


def _moved(origin: str, target: str) -> str | None:
    """``origin`` (a loopback one) on ``target``'s port, its own scheme and host kept."""
    try:
        saved, now = urlsplit(origin), urlsplit(target)
        if saved.hostname not in _LOOPBACK or now.port is None:
            return None
    except ValueError:
        return None
    host = f"[{saved.hostname}]" if ":" in (saved.hostname or "") else saved.hostname
    return f"{saved.scheme}://{host}:{now.port}"


def _note_hosts(
    loaded: LoadedState, path: Path, data: Mapping[str, Any], services: Mapping[str, str]
) -> None:
    """Say so when the state was saved on a loopback host this run's app is not on."""
    hosts = {urlsplit(o).hostname or "" for o in services.values()} - {""}
    saved = {urlsplit(m["loaded"]).hostname or "" for m in loaded.origins}
    for cookie in data.get("cookies") or []:
        if isinstance(cookie, dict):
            saved.add(str(cookie.get("domain", "")).lstrip("."))
    elsewhere = sorted(h for h in saved & _LOOPBACK if h not in hosts)
    if hosts and elsewhere:
        loaded.notes.append(
            f"the storage state {path.name!r} was saved on {' and '.join(elsewhere)}, and "
            f"this run opens the app on {' and '.join(sorted(hosts))}: a "
            "browser keeps the two apart, so the page starts without what was saved (save "
            "and load it on the same host)"
        )


def tag_services(state: Mapping[str, Any], services: Mapping[str, str]) -> dict[str, Any]:
    """``state`` with each loopback origin named after the service of this run that
    served it (its port), for :func:`load_state` in a later run."""
    ports = {urlsplit(o).port: name for name, o in services.items()}
    origins = []
    for entry in state.get("origins") or []:
        if isinstance(entry, dict):
            split = urlsplit(str(entry.get("origin", "")))
            name = ports.get(split.port) if split.hostname in _LOOPBACK else None
            if name is not None:
                entry = {**entry, "service": name}
        origins.append(entry)
    return {**state, "origins": origins}


def save_state(state: Mapping[str, Any], base: Path, name: str) -> Path:
    """Write ``state`` to ``name`` (relative to the folder ``base``; parents made),
    readable by its owner only; the path written.

    No symbolic link on the way is followed: the app under test may write in the folders
    below ``base`` (its checkout), and a link there must not send the login elsewhere (an
    evidence folder that CI uploads, say).

    :raises BrowserError: it cannot be written, or a link is on the way.
    """
    data = json.dumps(state, indent=1).encode("utf-8")
    path = Path(os.path.normpath(base.resolve() / name))
    try:
        return write_beneath(base, name, data, mode=0o600)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            why = "a folder on the way is a symbolic link (or not a folder); refused"
        msg = f"cannot write the storage state {str(path)!r}: {why}"
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
