"""PublishError, and the one rule every message follows: the token never shows."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import ClassVar

from verifier.errors import VerifierError

__all__ = ()

_MASK = "***"
# Shorter "secrets" would turn every message into asterisks and are not real tokens.
_MIN_SECRET = 4


class PublishError(VerifierError):
    """Evidence could not be published: bad arguments, a GitHub API error, a failed push.

    The message never holds the token (see :func:`mask`); ``status`` is the HTTP status
    when GitHub answered.
    """

    exit_code: ClassVar[int] = 2

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.status = status


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
