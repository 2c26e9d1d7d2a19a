"""``verifier mcp``: its arguments and command (wired into ``verifier.cli``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from verifier._term import say, show_error
from verifier.errors import InputError, Interrupted, VerifierError
from verifier.live import add_live_arguments, live_options
from verifier.mcp._options import (
    IMAGE_FORMATS,
    TOKEN_ENV,
    ImageFormat,
    McpOptions,
    check_token,
    parse_listen,
    read_token,
    size_option,
)

__all__ = ("add_parser", "main", "run")

# Screenshots larger than WXGA are shrunk to fit it (aspect kept): the size computer-use
# models are trained to read; smaller screens are sent as they are.
DEFAULT_SCALE = (1280, 800)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", metavar="RECIPE", help="start this recipe's app and open it")
    parser.add_argument(
        "--url", help="open this URL (relative to the recipe's app or url, if any) first"
    )
    parser.add_argument(
        "--out",
        default="artifacts",
        metavar="DIR",
        help="folder for the bundle (default: artifacts)",
    )
    parser.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="serve streamable HTTP on this loopback address instead of stdio (port 0: any)",
    )
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help=f"a file holding the bearer token HTTP clients must send (default: ${TOKEN_ENV}, "
        "else a new one, printed)",
    )
    # A token on the command line is readable by every process (/proc/PID/cmdline),
    # including the app under test: refused with a pointer to --token-file.
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument(
        "--allow-remote", action="store_true", help="let --http listen on a non-loopback address"
    )
    parser.add_argument("--screen", metavar="WxH", help="the Xvfb screen (default: the recipe's)")
    parser.add_argument(
        "--scale",
        metavar="WxH",
        default="auto",
        help="fit screenshots inside this size; 'none' sends the full screen "
        "(default: auto, fit 1280x800)",
    )
    parser.add_argument(
        "--format",
        choices=IMAGE_FORMATS,
        default="auto",
        help="screenshot encoding (default: auto, fast PNG or JPEG when much smaller)",
    )
    parser.add_argument(
        "--screenshots",
        choices=("always", "on-request"),
        default="always",
        help="does every computer action answer with a screenshot (default: always), or "
        "only one that asks with screenshot: true (its text still says what it hit and "
        "what changed)",
    )
    parser.add_argument("--no-video", action="store_true", help="do not record the screen")
    parser.add_argument(
        "--display", metavar=":N", help="attach to this X display instead of starting Xvfb"
    )
    add_live_arguments(parser)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``mcp`` to the ``verifier`` command's subcommands."""
    parser = subparsers.add_parser(
        "mcp",
        help="serve the desktop to a computer-use agent over MCP",
        description="Serve the desktop to a computer-use agent over MCP (stdio by default); "
        "every session becomes an evidence bundle and a replayable recipe.",
    )
    _add_arguments(parser)


def options(args: argparse.Namespace) -> McpOptions:
    """The parsed command line as :class:`McpOptions` (checked: one-line errors)."""
    scale: tuple[int, int] | None
    if args.scale == "none":
        scale = None
    elif args.scale == "auto":
        scale = DEFAULT_SCALE
    else:
        scale = size_option(args.scale, what="--scale")
    if args.screen is not None:
        size_option(args.screen, what="--screen")
    fmt: ImageFormat = args.format
    if args.token is not None:
        msg = (
            "--token puts the token on the command line, where every process on this machine "
            f"can read it; use --token-file PATH or ${TOKEN_ENV}"
        )
        raise InputError(msg)
    return McpOptions(
        recipe=Path(args.recipe) if args.recipe else None,
        url=args.url,
        out=Path(args.out),
        http=parse_listen(args.http, allow_remote=args.allow_remote) if args.http else None,
        token=_token(args),
        token_file=Path(args.token_file).resolve() if args.token_file else None,
        allow_remote=args.allow_remote,
        screen=args.screen,
        scale=scale,
        image_format=fmt,
        screenshots=args.screenshots,
        video=False if args.no_video else None,
        display=args.display,
        live=live_options(args, "verifier mcp"),
    )


def _token(args: argparse.Namespace) -> str | None:
    """The token from --token-file, else from $VERIFIER_MCP_TOKEN (None: one is made)."""
    if args.token_file:
        return read_token(args.token_file)
    token = os.environ.get(TOKEN_ENV)
    return check_token(token, f"${TOKEN_ENV}") if token else None


def _say(line: str) -> None:
    # stderr only: on stdio, stdout is the MCP wire.
    say(sys.stderr, line)


def run(args: argparse.Namespace) -> int:
    """Run ``verifier mcp``: 0 once served (2 could not start, 130/143 signals, raised)."""
    opts = options(args)
    if opts.url is not None and opts.recipe is None and "://" not in opts.url:
        msg = f"--url {opts.url!r} is relative but there is no --recipe to resolve it against"
        raise VerifierError(msg)
    from verifier.mcp._serve import serve_session  # the MCP SDK loads only for this command

    result = serve_session(opts, announce=_say)
    _say(f"verifier mcp: {result.verdict} -> {result.bundle}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m verifier.computer [options]``: the same as ``verifier mcp [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m verifier.computer", description="verifier mcp (see verifier mcp --help)"
    )
    _add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except (VerifierError, Interrupted) as exc:
        return show_error(exc)
