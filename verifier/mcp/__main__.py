"""``python -m verifier.computer``: ``verifier mcp`` without the top-level CLI."""

from __future__ import annotations

import sys

from verifier.mcp.cli import main

sys.exit(main())
