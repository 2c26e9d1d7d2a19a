"""What the command lines print: a line for a person, and the one way errors are shown."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import TextIO

from verifier.errors import Interrupted, VerifierError

__all__ = ("say", "show_error")


def say(stream: TextIO, line: str) -> None:
    """Print ``line`` to ``stream`` now. A closed pipe (``| head``, a killed parent) is
    not an error of the command: the rest of its output goes to /dev/null, and its exit
    code still tells the verdict."""
    try:
        print(line, file=stream, flush=True)
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
    line = "Error: " + (f"{subject}: " if subject else "") + exc.message
    if bundle:
        line += f" (bundle: {bundle})"
    say(sys.stderr, mask(line) if mask is not None else line)
    return exc.exit_code
