"""The app under test: its services (a dev server, an API beside it, a Cursor
environment's terminals), started, probed until ready, and stopped with their trees.

The app is untrusted code. Each process gets only ``PATH``, ``HOME``, ``LANG``, ``TERM``,
``TMPDIR``, ``PORT``, its recipe's ``env`` and the variables named in ``pass_env``; it
runs in PID and mount namespaces of its own (``verifier/_sandbox.py``), so whatever it
starts goes with it, and its output reaches its log redacted and bounded
(``verifier/_logpump.py``).
"""

from __future__ import annotations

from verifier.app._probe import probe
from verifier.app._server import BASE_ENV, DevServer, app_environment, command_argv, free_port
from verifier.app._services import AppServices

__all__ = (
    "BASE_ENV",
    "AppServices",
    "DevServer",
    "app_environment",
    "command_argv",
    "free_port",
    "probe",
)
