"""The pool of warm desktops: ``verifier serve_pool`` keeps them ready, and ``verifier run``
(``--pool PATH`` or ``VERIFIER_POOL``) runs each recipe on one instead of starting a
desktop of its own; each desktop serves one run, then is replaced.

``_serve`` is the server, ``_worker`` one desktop's process, ``_client`` the caller's
side, ``_wire`` the JSON lines they speak.
"""

from __future__ import annotations

from verifier.pool._client import POOL_ENV, PoolUnavailable, run_in_pool
from verifier.pool._serve import default_socket, serve_pool

__all__ = ("POOL_ENV", "PoolUnavailable", "default_socket", "run_in_pool", "serve_pool")
