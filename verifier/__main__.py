"""``python -m verifier`` runs the CLI."""

from __future__ import annotations

import sys

from verifier._entry import console

sys.exit(console())
