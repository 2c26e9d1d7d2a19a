"""``python -m verifier.pool worker FD SCREEN SOCKET``: one warm desktop of
``verifier serve``."""

from __future__ import annotations

import sys
from pathlib import Path

from verifier.pool._worker import work


def _main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] != "worker" or not argv[1].isdigit():
        print("usage: python -m verifier.pool worker FD SCREEN SOCKET (verifier serve's)")
        return 2
    return work(int(argv[1]), argv[2], Path(argv[3]))


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
