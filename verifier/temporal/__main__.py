"""``python -m verifier.temporal COMMAND ...``: the Temporal commands without the main CLI."""

from __future__ import annotations

import argparse
import sys

from verifier.temporal.cli import add_parsers, run

parser = argparse.ArgumentParser(prog="verifier")
add_parsers(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
sys.exit(run(parser.parse_args()))
