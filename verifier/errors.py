"""The exceptions verifier raises, and the exit code each one means.

::

    VerifierError                  exit 2: the run could not verify
    ├── RecipeError                  a recipe file, field or step is wrong
    ├── DisplayError                 Xvfb or the window manager failed
    ├── InputError                   XTest input could not be sent
    ├── DevServerError               the app's dev server failed or never got ready
    ├── BrowserError                 Chromium failed to start or crashed
    ├── RecorderError                ffmpeg could not record or finish the screen video
    ├── BundleError                  the evidence bundle could not be written
    ├── NetworkError                 the network sandbox (network: loopback) failed
    ├── PublishError                 evidence could not be published to GitHub
    └── CheckFailed                exit 1: the app is wrong
        └── StepTimeout              a step's condition did not hold in time

    Interrupted                    SIGINT (exit 130) or SIGTERM (exit 143)

``Interrupted`` is a ``KeyboardInterrupt``: a signal must stop the run wherever it lands,
and that is the one exception every handler lets through, ours (``except VerifierError``
around a screenshot) and asyncio's (a callback inside Playwright's event loop, which
logs and drops any other exception).

Every message says what failed, quotes the value, and says what to do next.
"""

from __future__ import annotations

import signal
from typing import ClassVar

__all__ = (
    "BrowserError",
    "BundleError",
    "CheckFailed",
    "DevServerError",
    "DisplayError",
    "InputError",
    "Interrupted",
    "NetworkError",
    "PublishError",
    "RecipeError",
    "RecorderError",
    "StepTimeout",
    "VerifierError",
    "exhausted",
    "message_of",
)


class VerifierError(Exception):
    """Root of verifier's errors. ``exit_code`` is what the CLI exits with."""

    exit_code: ClassVar[int] = 2

    def __init__(self, message: str, *, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, object] = dict(details or {})


class RecipeError(VerifierError):
    """A recipe is invalid: the message names the file, the field or step, and a fix."""


class DisplayError(VerifierError):
    """The X display (Xvfb, window manager, X connection) failed."""


class InputError(VerifierError):
    """OS-level input could not be sent, or a key name is unknown."""


class DevServerError(VerifierError):
    """The app's dev server exited, or did not answer in time."""

    def __init__(
        self,
        message: str,
        *,
        returncode: int | None = None,
        output_tail: str = "",
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.returncode = returncode
        self.output_tail = output_tail


class BrowserError(VerifierError):
    """Chromium could not start, or crashed, or was closed under us."""


class RecorderError(VerifierError):
    """The screen video could not be recorded or finalized."""


class BundleError(VerifierError):
    """The evidence bundle could not be written."""


class NetworkError(VerifierError):
    """The network sandbox (``network: loopback``) could not be set up."""


class PublishError(VerifierError):
    """Evidence could not be published: bad arguments, a GitHub API error, a failed push.

    The message never holds the token (``verifier.publish`` masks it); ``status`` is the
    HTTP status when GitHub answered.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.status = status


class Interrupted(KeyboardInterrupt):
    """The verifier was told to stop by a signal; the exit code follows the shell's 128+N."""

    def __init__(self, signum: int) -> None:
        self.message = f"interrupted by {signal.Signals(signum).name}"
        super().__init__(self.message)
        self.signum = signum
        self.details: dict[str, object] = {}

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process a signal ended."""
        return 128 + self.signum


class CheckFailed(VerifierError):
    """A step's check did not hold: the app is wrong, not the environment."""

    exit_code: ClassVar[int] = 1


class StepTimeout(CheckFailed):
    """A step waited for its condition longer than its timeout."""


def exhausted(exc: BaseException) -> VerifierError | None:
    """``exc`` as an error of the machine's (exit 2), when it says the machine ran out of
    threads, processes or memory (a fork bomb outside our limits, say); else None."""
    out_of_threads = isinstance(exc, RuntimeError) and "can't start new thread" in str(exc)
    if not (out_of_threads or isinstance(exc, MemoryError | BlockingIOError)):
        return None
    msg = (
        f"the machine ran out of threads, processes or memory ({type(exc).__name__}: "
        f"{exc}); lower app.limits, or run fewer jobs at once"
    )
    return VerifierError(msg)


def message_of(exc: BaseException) -> str:
    """What to tell a person about ``exc``: our message, or the type and text of a bug."""
    if isinstance(exc, (VerifierError, Interrupted)):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
