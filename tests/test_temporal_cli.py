"""The Temporal commands' wiring, without a server (and without temporalio installed)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from verifier.temporal.cli import COMMANDS, add_parsers, run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="verifier")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser


def test_the_three_commands_parse() -> None:
    parse = _parser().parse_args
    args = parse(["worker", "--temporal", "h:1", "--task-queue", "q", "--jobs", "2"])
    assert (args.command, args.jobs, args.workdir, args.namespace) == ("worker", 2, ".", "default")
    args = parse(["submit", "a.yaml", "b.yaml", "--temporal", "h:1", "--task-queue", "q", "--wait"])
    assert (args.recipes, args.wait, args.key, args.attempts) == (
        ["a.yaml", "b.yaml"],
        True,
        None,
        3,
    )
    args = parse(["temporal-dev", "--port", "7300"])
    assert (args.port, args.db_filename, args.headless) == (7300, None, False)
    assert set(COMMANDS) == {"worker", "submit", "temporal-dev"}


@pytest.mark.parametrize("command", ["worker", "submit"])
def test_without_temporalio_one_line_says_what_to_install(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "temporalio", None)  # import temporalio -> ImportError
    argv = [command, "--temporal", "h:1", "--task-queue", "q"]
    args = _parser().parse_args(argv + (["a.yaml"] if command == "submit" else []))
    assert run(args, hard_exit=False) == 2
    assert capsys.readouterr().err == (
        "Error: the Temporal commands need temporalio: install verifier[temporal]\n"
    )


def test_an_unreachable_server_is_a_one_line_error() -> None:
    pytest.importorskip("temporalio")
    # A subprocess: processes that loaded the SDK's runtime may crash at exit (the reason
    # for the hard exit), so the test process itself never connects.
    done = subprocess.run(
        [sys.executable, "-m", "verifier.temporal", "submit", "recipes/todo.yaml"]
        + ["--temporal", "127.0.0.1:9", "--task-queue", "q", "--wait"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("Error: cannot reach Temporal at '127.0.0.1:9'")
    assert done.stderr.count("\n") == 1 and not done.stdout
