"""Printing a line for a person, surviving a reader that went away."""

from __future__ import annotations

import contextlib
import os
from typing import TextIO

__all__ = ("say",)


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
