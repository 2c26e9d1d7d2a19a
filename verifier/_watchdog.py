"""The watchdog: outlives a killed verifier just long enough to stop what it started.

``python3 -m verifier._watchdog FD PREFIX`` reads FD, a pipe whose write end only the
verifier holds, where the verifier names its scratch folders (each path ends with a
NUL byte). When the verifier exits for any reason (SIGKILL included) the pipe reads EOF,
and the watchdog stops every process whose ``VERIFIER_OWNER`` cookie starts with PREFIX
(dev servers, their daemonized grandchildren, ffmpeg, Xvfb...), with their descendants:
SIGTERM, a grace period, SIGKILL. Then it removes the scratch folders (what a killed
Chromium or a killed verifier left there). Started in its own session, so a terminal's
Ctrl-C does not reach it. Keep this module free of heavy imports.
"""

from __future__ import annotations

import os
import sys
import time

__all__ = ()


def _read_to_eof(fd: int) -> bytes:
    said = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except InterruptedError:
            continue
        except OSError:
            return said
        if not chunk:
            return said
        said += chunk


def _remove_scratch(path: bytes) -> None:
    """Remove the verifier's scratch folder: a private folder of ours by that name, not a
    link (see ``_process.scratch_root``)."""
    import shutil

    from verifier._process import is_private_folder

    if not (os.path.basename(path).startswith(b"verifier-") and is_private_folder(path)):
        return
    # A process of the tree that was not waited for (a renderer Chromium forked from its
    # zygote carries no cookie) may still be writing there: again, a moment later.
    for _ in range(10):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.lexists(path):
            return
        time.sleep(0.2)


def main(argv: list[str]) -> int:
    fd, prefix = int(argv[0]), argv[1]
    said = _read_to_eof(fd)
    from verifier._process import find_tree, kill_tree

    tree = find_tree(None, prefix)
    if tree:
        kill_tree(tree, grace=2.0)
    for path in dict.fromkeys(said.split(b"\0")[:-1]):  # (an unended one was cut off)
        _remove_scratch(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
