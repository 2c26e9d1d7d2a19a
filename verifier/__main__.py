"""``python -m verifier`` runs the CLI."""

from __future__ import annotations

import sys

from verifier.cli import console

sys.exit(console())
