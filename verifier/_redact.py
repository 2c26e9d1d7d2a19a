"""Secret values, replaced wherever verifier writes text: logs, manifest, report, terminal.

What is secret: the recipe's ``secrets: [NAME, ...]`` and every ``type: {secret: NAME}``
(values from the environment), plus any variable handed to the app (its ``app.env`` or
the names it passes through) whose name looks like a token, key or password. A typed
secret's prefixes of ``MIN_SECRET`` characters and more are secret too: a page that logs
a field's value on every keystroke would otherwise leak it a character at a time.
Screenshots and the video show what the screen showed: a secret typed into a visible
field is in the pixels (use password fields).

Declared secrets shorter than ``MIN_SECRET`` characters are refused: blanking ``2026``
or ``a`` everywhere would mangle run ids, dates and words, and hide nothing.
JSON keys, run ids, checksums and bundle paths are never rewritten: they are the
bundle's structure, not text a secret could have reached.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from verifier.errors import RecipeError

__all__ = ("MIN_SECRET", "NO_SECRETS", "Redactor", "StreamRedactor", "looks_secret")

MIN_SECRET = 6
_MAX_PIECES_OF = 128  # a typed secret this long or shorter: every part of it is secret
_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL",
    re.IGNORECASE,
)
# A variable found only by its name must hold a value this long: short values such as
# "true" or "1" would otherwise be blanked all over the logs.
_MIN_GUESSED = 8
# Credentials of well-known formats, whoever's they are and however they were found:
# GitHub's tokens (an app that reads the CI's token somewhere must not get it into a
# report or a pull-request comment).
_KNOWN = re.compile(r"gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244}")
_KNOWN_LONGEST = 255
# The start of such a token, cut off at the end of a chunk of a stream.
_KNOWN_START = re.compile(
    r"g(?:h(?:[pousr](?:_[A-Za-z0-9]*)?)?)?$"
    r"|gi(?:t(?:h(?:u(?:b(?:_(?:p(?:a(?:t(?:_[A-Za-z0-9_]*)?)?)?)?)?)?)?)?)?$"
)
_KNOWN_NAME = "[secret:github-token]"
# Manifest fields whose values are structure (ids, checksums, bundle paths): kept as is.
_STRUCTURAL = frozenset(
    {"run_id", "sha256", "path", "screenshot", "raw_screenshot", "screenshots", "preview"}
)


def looks_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def _forms(value: str) -> set[str]:
    """How a secret reads once a serializer, a URL or an accessibility tree has had it:
    as it is, escaped as JSON and YAML's double quotes write it, its blanks squeezed (as
    in accessible names), percent-encoded (either case of hex digits)."""
    forms = {value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1]}
    forms.add(" ".join(value.split()))
    for encoded in (quote(value, safe=""), quote_plus(value, safe="")):
        forms |= {encoded, re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)}
    return {form for form in forms if len(form) >= MIN_SECRET}


def _pieces(value: str) -> set[str]:
    """The parts of a typed secret a page can echo: every run of ``MIN_SECRET`` or more
    of its characters (only prefixes and suffixes of a very long one)."""
    if len(value) <= _MAX_PIECES_OF:
        return {
            value[start:end]
            for start in range(len(value))
            for end in range(start + MIN_SECRET, len(value) + 1)
        }
    return {value[:end] for end in range(MIN_SECRET, len(value))} | {
        value[start:] for start in range(len(value) - MIN_SECRET + 1)
    }


class Redactor:
    """Replaces each secret value (in the forms serializers and URLs give it, and every
    part of a typed one) with ``[secret:NAME]``, in any case.

    :param secrets: name -> value.
    :param typed: names of secrets typed into pages, whose parts are secret too.
    """

    def __init__(self, secrets: Mapping[str, str], *, typed: Collection[str] = ()) -> None:
        self._secrets = dict(secrets)
        self._typed = tuple(typed)
        self._names: dict[str, str] = {}
        for name, value in secrets.items():
            for form in _forms(value) if value else ():
                self._names.setdefault(form.lower(), name)
        for name in typed:
            for piece in _pieces(secrets.get(name, "")):
                self._names.setdefault(piece.lower(), name)
        values = sorted(self._names, key=len, reverse=True)  # longest first
        self._pattern = (
            re.compile("|".join(map(re.escape, values)), re.IGNORECASE) if values else None
        )
        self.longest = len(values[0]) if values else 0

    @classmethod
    def collect(
        cls,
        *,
        declared: Collection[str],
        environ: Mapping[str, str],
        app_env: Mapping[str, str],
        typed: Collection[str] = (),
    ) -> Redactor:
        """The secrets of a run: ``declared`` names (from ``app_env`` or ``environ``),
        and the variables ``app_env`` hands the app whose names look secret.

        :raises RecipeError: a declared secret is shorter than ``MIN_SECRET``.
        """
        secrets: dict[str, str] = {}
        for name in declared:
            value = app_env.get(name) or environ.get(name) or ""
            if value and len(value) < MIN_SECRET:
                msg = (
                    f"secret {name} is {len(value)} characters long; a secret needs "
                    f"{MIN_SECRET} or more (shorter values would be blanked everywhere "
                    "they appear, hiding nothing): use a longer value, or do not declare it"
                )
                raise RecipeError(msg)
            if value:
                secrets[name] = value
        for name, value in app_env.items():
            if looks_secret(name) and len(value) >= _MIN_GUESSED:
                secrets.setdefault(name, value)
        return cls(secrets, typed=typed)

    def joined(self, other: Redactor) -> Redactor:
        """A redactor of this one's secrets and ``other``'s (a name both give different
        values keeps both, the other's as ``NAME'``)."""
        secrets = dict(self._secrets)
        typed = list(self._typed)
        for name, value in other._secrets.items():
            key = name
            while key in secrets and secrets[key] != value:
                key += "'"
            secrets[key] = value
            if name in other._typed:
                typed.append(key)
        return Redactor(secrets, typed=typed)

    def __bool__(self) -> bool:
        return True  # well-known credentials are redacted even with no secret declared

    @property
    def names(self) -> list[str]:
        return sorted(set(self._names.values()))

    def text(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(
                lambda m: f"[secret:{self._names.get(m.group().lower(), 'value')}]", text
            )
        return _KNOWN.sub(_KNOWN_NAME, text) if "_" in text else text

    def obj(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string value redacted; keys and the
        structural fields (run id, checksums, bundle paths) are kept as they are."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: v if k in _STRUCTURAL else self.obj(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.obj(v) for v in value]
        return value

    def stream(self) -> StreamRedactor:
        """A redactor for text that arrives in pieces (a process's output)."""
        return StreamRedactor(self)


def _token_start(text: str) -> int:
    """Where a well-known token may be starting at the end of ``text`` (held back until
    the next chunk says), or ``len(text)``."""
    start = max(0, len(text) - _KNOWN_LONGEST)
    at = text.find("g", start)
    while at != -1:
        if _KNOWN_START.match(text, at):
            return at
        at = text.find("g", at + 1)
    return len(text)


class StreamRedactor:
    """Redacts a stream of text given in chunks of any size, in bounded memory.

    The last ``longest - 1`` characters are held back until more text (or the end)
    comes, so a secret split across two chunks is still found whole.
    """

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._hold = max(0, redactor.longest - 1)
        self._pending = ""

    def feed(self, text: str) -> str:
        """The redacted text that is final now (possibly empty)."""
        buf = self._pending + text
        cut = min(len(buf) - self._hold, _token_start(buf))
        if cut <= 0:
            self._pending = buf
            return ""
        for pattern in (self._redactor._pattern, _KNOWN):
            for match in pattern.finditer(buf) if pattern is not None else ():
                if match.start() >= cut:
                    break
                cut = max(cut, match.end())  # a secret that starts before the cut goes whole
        self._pending = buf[cut:]
        return self._redactor.text(buf[:cut])

    def flush(self) -> str:
        """The rest, at the end of the stream."""
        rest, self._pending = self._pending, ""
        return self._redactor.text(rest)


NO_SECRETS = Redactor({})
