"""The watchdog: outlives a killed verifier just long enough to stop what it started.

``python3 -m verifier._watchdog FD PREFIX`` blocks reading FD, a pipe whose write end
only the verifier holds. When the verifier exits for any reason (SIGKILL included) the
pipe reads EOF, and the watchdog stops every process whose ``VERIFIER_OWNER`` cookie
starts with PREFIX (dev servers, their daemonized grandchildren, ffmpeg, Xvfb...), with
their descendants: SIGTERM, a grace period, SIGKILL. Started in its own session, so a
terminal's Ctrl-C does not reach it. Keep this module free of heavy imports.
"""

from __future__ import annotations

import os
import sys

__all__ = ()


def _wait_for_eof(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 4096):
                return
        except InterruptedError:
            continue
        except OSError:
            return


def main(argv: list[str]) -> int:
    fd, prefix = int(argv[0]), argv[1]
    _wait_for_eof(fd)
    from verifier._process import find_tree, kill_tree

    tree = find_tree(None, prefix)
    if tree:
        kill_tree(tree, grace=2.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
