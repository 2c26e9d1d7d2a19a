"""The app under test: its services (a dev server, an API beside it, a Cursor
environment's terminals), started, probed until ready, and stopped with their trees.

The app is untrusted code. Each process gets only ``PATH``, ``HOME``, ``LANG``, ``TERM``,
``TMPDIR``, ``PORT``, its recipe's ``env`` and the variables named in ``pass_env``; it
runs in bubblewrap's sandbox (``_sandbox.py``: namespaces of its own, a filesystem built
for it, no capabilities), so whatever it starts goes with it, within the memory and
processes its limits allow (``_limits.py``), and its output reaches its log redacted and
bounded (``_logpump.py``).
"""

from __future__ import annotations

from verifier._bwrap import sandbox_unavailable
from verifier.app._limits import DEFAULT_LIMITS, Limits
from verifier.app._logpump import LogPump, carry_log
from verifier.app._probe import probe
from verifier.app._sandbox import Confinement
from verifier.app._server import BASE_ENV, DevServer, app_environment, command_argv, free_port
from verifier.app._services import AppServices

__all__ = (
    "BASE_ENV",
    "DEFAULT_LIMITS",
    "AppServices",
    "Confinement",
    "DevServer",
    "Limits",
    "LogPump",
    "sandbox_unavailable",
    "app_environment",
    "carry_log",
    "command_argv",
    "free_port",
    "probe",
)
