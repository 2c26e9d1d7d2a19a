"""Secret values, replaced wherever verifier writes text: logs, manifest, report, terminal.

What is secret: the recipe's ``secrets: [NAME, ...]`` and every ``type: {secret: NAME}``
(values from the environment), plus any variable handed to the app (its ``app.env`` or
the inherited environment) whose name looks like a token, key or password. Screenshots
and the video show what the screen showed: a secret typed into a visible field is in the
pixels (use password fields).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ("Redactor",)

_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL",
    re.IGNORECASE,
)
# A variable found only by its name must hold a value this long: short values such as
# "true" or "1" would otherwise be blanked all over the logs.
_MIN_GUESSED = 8


def looks_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


class Redactor:
    """Replaces each secret value with ``[secret:NAME]``."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        self._names = {value: name for name, value in secrets.items() if value}
        values = sorted(self._names, key=len, reverse=True)  # longest first
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None

    @classmethod
    def collect(
        cls, *, declared: list[str], environ: Mapping[str, str], app_env: Mapping[str, str]
    ) -> Redactor:
        secrets = {name: environ[name] for name in declared if environ.get(name)}
        for name, value in {**environ, **app_env}.items():
            if looks_secret(name) and len(value) >= _MIN_GUESSED:
                secrets.setdefault(name, value)
        for name in declared:  # a declared secret set in the app block
            if app_env.get(name):
                secrets[name] = app_env[name]
        return cls(secrets)

    def __bool__(self) -> bool:
        return self._pattern is not None

    @property
    def names(self) -> list[str]:
        return sorted(set(self._names.values()))

    def text(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: f"[secret:{self._names[m.group()]}]", text)

    def obj(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string redacted (keys included)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.obj(k): self.obj(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.obj(v) for v in value]
        return value


NO_SECRETS = Redactor({})
