"""What the command lines print: a line for a person, and the one way errors are shown."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable
from typing import TextIO

from verifier.errors import Interrupted, VerifierError

__all__ = ("escape", "escape_newlines", "say", "show_error")


# Characters that would act on a terminal or a CI log instead of showing: C0 controls
# (ESC starts colour and cursor sequences, CR rewrites the line) but newline and tab, DEL,
# C1 controls, and the bidirectional overrides that reorder what a reader sees.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape(text: str) -> str:
    """``text`` with every control character written as ``\\uXXXX`` (so JSON stays JSON)."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def escape_newlines(text: str) -> str:
    """``text`` on one line: its line breaks written as ``\\n`` (a verdict or an error
    is one line; a message that quotes several, like an aria snapshot, stays whole)."""
    return text.replace("\r\n", "\n").replace("\r", "\\r").replace("\n", "\\n")


def say(stream: TextIO, line: str) -> None:
    """Print ``line`` to ``stream`` now, its control characters escaped: page text,
    recipe names and paths come from the app and the recipe. A closed pipe (``| head``,
    a killed parent) is not an error of the command: the rest of its output goes to
    /dev/null, and its exit code still tells the verdict."""
    try:
        print(escape(line), file=stream, flush=True)
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())  # also silences the flush at exit
            os.close(devnull)


def show_error(
    exc: VerifierError | Interrupted,
    *,
    subject: str | None = None,
    mask: Callable[[str], str] | None = None,
) -> int:
    """Print ``exc`` as one ``Error: ...`` line on stderr (``subject``, say the recipe,
    first; the bundle, when the error has one, last) and return its exit code.

    Every command shows its errors through here, so they all read alike.
    """
    bundle = exc.details.get("bundle")
    line = "Error: " + (f"{subject}: " if subject else "") + escape_newlines(exc.message)
    if bundle:
        line += f" (bundle: {bundle})"
    say(sys.stderr, mask(line) if mask is not None else line)
    return exc.exit_code
