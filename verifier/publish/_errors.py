"""The one rule every message of publish follows: the token never shows."""

from __future__ import annotations

import base64
from collections.abc import Iterable

__all__ = ("mask", "secret_forms")

_MASK = "***"
# Shorter "secrets" would turn every message into asterisks and are not real tokens.
_MIN_SECRET = 4


def secret_forms(token: str) -> list[str]:
    """Every form in which ``token`` could leak: as is, and inside a Basic auth header."""
    if len(token) < _MIN_SECRET:
        return []
    forms = [token]
    for user in ("x-access-token", "oauth2", ""):
        forms.append(base64.b64encode(f"{user}:{token}".encode()).decode())
    return forms


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form of every secret replaced by ``***``."""
    for secret in secrets:
        for form in sorted(secret_forms(secret), key=len, reverse=True):
            text = text.replace(form, _MASK)
    return text
