"""Chromium launched under policies of the run's own: ``file:`` URLs blocked.

A recipe or an agent can type any address into the browser's address bar (Control+L,
``file:///etc/passwd``, Enter), which no check on ``goto`` sees. Chromium's own
enterprise policy ``URLBlocklist`` refuses such a navigation before anything loads. On
Linux Chromium reads its policies from one machine-wide folder (Debian's:
``/etc/chromium/policies``); so that each run chooses its own (``allow_file_urls``) and
nothing of the machine changes, Chromium starts through bubblewrap in a mount namespace
of its own where ``/etc/chromium`` is a copy of the machine's with our policy added.
Everything else is as it is outside: same processes, network, display and files.

Used by ``_launch.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from verifier._bwrap import bwrap_path, sandbox_unavailable
from verifier._process import scratch_dir
from verifier.errors import DevServerError

__all__ = ("BLOCK_FILE_URLS", "policy_launcher")

_log = logging.getLogger(__name__)

_CONFIG = Path("/etc/chromium")
BLOCK_FILE_URLS = {"URLBlocklist": ["file://*"]}


@contextlib.contextmanager
def policy_launcher(
    executable: str, policy: Mapping[str, object]
) -> Iterator[tuple[str, str | None]]:
    """An executable that starts ``executable`` under ``policy``, and None; or
    ``executable`` itself and why the policy cannot apply here."""
    try:
        why_not = sandbox_unavailable()
        bwrap = bwrap_path()
    except DevServerError as exc:
        why_not = exc.message
    if why_not is not None:
        yield executable, f"no mount namespace can be made here ({why_not})"
        return
    if not _CONFIG.is_dir():
        yield executable, f"{_CONFIG} is missing"
        return
    folder = scratch_dir("chromium-")
    try:
        config = folder / "etc"
        shutil.copytree(_CONFIG, config, symlinks=True)
        managed = config / "policies" / "managed"
        managed.mkdir(parents=True, exist_ok=True)
        (managed / "verifier.json").write_text(json.dumps(policy), encoding="utf-8")
        launcher = folder / "chromium"
        argv = [
            bwrap, "--unshare-user", "--dev-bind", "/", "/",
            "--ro-bind", str(config), str(_CONFIG), "--die-with-parent", "--", executable,
        ]  # fmt: skip
        launcher.write_text(
            f'#!/bin/sh\nexec {" ".join(shlex.quote(a) for a in argv)} "$@"\n', encoding="utf-8"
        )
        os.chmod(launcher, 0o700)
        yield str(launcher), None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
