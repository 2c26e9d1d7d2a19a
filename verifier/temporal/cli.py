"""The Temporal commands of the CLI: ``worker``, ``submit`` and ``temporal-dev``.

``verifier/cli/`` calls :func:`add_parsers` on its subparsers and hands the parsed
arguments of these commands to :func:`run`. temporalio is imported only when one of
them runs, so ``verifier`` works without the optional extra.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from verifier._term import escape_newlines, say, show_error
from verifier.errors import VerifierError

if TYPE_CHECKING:
    from temporalio.client import Client

__all__ = ("COMMANDS", "add_parsers", "run")

COMMANDS = ("worker", "submit", "temporal-dev")
_VERDICT_CODES = {"passed": 0, "failed": 1, "error": 2}


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--temporal", required=True, metavar="HOST:PORT", help="the Temporal frontend"
    )
    parser.add_argument("--namespace", default="default", metavar="NS")
    parser.add_argument("--task-queue", required=True, metavar="Q")


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``worker``, ``submit`` and ``temporal-dev`` subcommands."""
    worker = subparsers.add_parser("worker", help="run verifications for a Temporal task queue")
    _connection(worker)
    worker.add_argument("--jobs", type=int, default=1, metavar="N", help="runs at once")
    worker.add_argument("--out", default="artifacts", metavar="DIR", help="bundles go here")
    worker.add_argument(
        "--workdir", default=".", metavar="DIR", help="recipes are resolved against this folder"
    )
    worker.add_argument(
        "--grace",
        type=float,
        default=30.0,
        metavar="S",
        help="on SIGTERM, let runs finish this long, then hand them back (default: 30)",
    )
    worker.add_argument("--identity", metavar="NAME", help="default: HOST:PID@QUEUE")

    submit = subparsers.add_parser("submit", help="verify recipes on Temporal workers")
    submit.add_argument("recipes", nargs="+", metavar="RECIPE")
    _connection(submit)
    submit.add_argument(
        "--key", help="run key (default: the recipe's git commit, else a hash of the recipe)"
    )
    submit.add_argument("--wait", action="store_true", help="print each verdict as it finishes")
    submit.add_argument("--json", action="store_true", help="one JSON object per line")
    submit.add_argument(
        "--attempts",
        type=int,
        default=3,
        metavar="N",
        help="runs that could not verify are tried this many times (default: 3)",
    )
    submit.add_argument(
        "--timeout", type=float, default=1800.0, metavar="S", help="per attempt (default: 1800)"
    )
    submit.add_argument("--no-video", action="store_true", help="do not record the screen")

    dev = subparsers.add_parser("temporal-dev", help="run a local Temporal dev server")
    dev.add_argument("--ip", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=7233)
    dev.add_argument("--db-filename", metavar="FILE", help="persist workflows in this file")
    dev.add_argument("--ui-port", type=int, metavar="PORT", help="default: --port + 1000")
    dev.add_argument("--headless", action="store_true", help="no web UI")


def _require_temporalio() -> None:
    try:
        import temporalio  # noqa: F401
    except ImportError:
        msg = "the Temporal commands need temporalio: install verifier[temporal]"
        raise VerifierError(msg) from None


async def _connect(args: argparse.Namespace) -> Client:
    from temporalio.client import Client

    try:
        return await Client.connect(args.temporal, namespace=args.namespace)
    except RuntimeError as exc:  # the SDK's connection failure
        msg = f"cannot reach Temporal at {args.temporal!r}: {exc}"
        raise VerifierError(msg) from exc


def _cmd_worker(args: argparse.Namespace) -> int:
    from verifier.temporal._worker import WorkerOptions, serve_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.jobs < 1:
        raise VerifierError(f"--jobs must be at least 1, not {args.jobs}")
    workdir = Path(args.workdir)
    if not workdir.is_dir():
        raise VerifierError(f"--workdir {args.workdir!r}: no such folder")
    options = WorkerOptions(
        target=args.temporal,
        task_queue=args.task_queue,
        namespace=args.namespace,
        jobs=args.jobs,
        out=Path(args.out),
        workdir=workdir,
        grace=args.grace,
        identity=args.identity,
    )
    try:
        import asyncio  # (only a worker or a submission runs a loop)

        asyncio.run(serve_worker(options))
    except RuntimeError as exc:
        msg = f"worker on {args.temporal!r}, queue {args.task_queue!r}: {exc}"
        raise VerifierError(msg) from exc
    return 0


def _describe(result: dict[str, object]) -> str:
    where = f" -> {result['bundle']}" if result.get("bundle") else ""
    about = f" (worker {result['worker']}, attempts {result['attempts']})"
    if result["verdict"] == "passed":
        return f"PASSED {result['recipe']}{where}{about}"
    step = result.get("failed_step")
    at = f" at step {step + 1}" if isinstance(step, int) else ""
    verdict = str(result["verdict"]).upper()
    return (
        f"{verdict} {result['recipe']}{at}: {escape_newlines(str(result['error']))}{where}{about}"
    )


async def _submit(args: argparse.Namespace) -> int:
    from temporalio.service import RPCError

    from verifier.recipe import load_recipe
    from verifier.temporal._submit import default_key, recipe_ref, results, submit
    from verifier.temporal._workflow import VerifyRequest

    requests = []
    for name in args.recipes:
        path = Path(name)
        load_recipe(path)  # a bad recipe is an error here, not on some worker later
        requests.append(
            VerifyRequest(
                recipe=recipe_ref(path),
                key=args.key or default_key(path),
                max_attempts=max(1, args.attempts),
                timeout_s=args.timeout,
                no_video=args.no_video,
            )
        )
    client = await _connect(args)
    try:
        started = await submit(client, requests, task_queue=args.task_queue)
    except RPCError as exc:
        msg = f"Temporal at {args.temporal!r} refused the workflows: {exc.message}"
        raise VerifierError(msg) from exc
    if not args.wait:
        for sub, _handle in started:
            line = {
                "recipe": sub.recipe,
                "workflow_id": sub.workflow_id,
                "run_id": sub.run_id,
                "finished_already": sub.attached,
            }
            if args.json:
                say(sys.stdout, json.dumps(line))
            else:
                say(sys.stdout, f"SUBMITTED {sub.recipe} as {sub.workflow_id}")
        return 0
    worst = 0
    async for sub, result in results(started):
        record = {**result.to_json(), "workflow_id": sub.workflow_id}
        if args.json:
            say(sys.stdout, json.dumps(record, ensure_ascii=False))
        stream = sys.stdout if result.verdict == "passed" and not args.json else sys.stderr
        say(stream, _describe(record))
        worst = max(worst, _VERDICT_CODES.get(result.verdict, 2))
    return worst


def _cmd_temporal_dev(args: argparse.Namespace) -> int:
    from verifier.temporal._devserver import dev_server_argv

    ui_port = None if args.headless else (args.ui_port or args.port + 1000)
    argv = dev_server_argv(
        ip=args.ip, port=args.port, db_filename=args.db_filename, ui_port=ui_port
    )
    say(sys.stderr, f"Temporal dev server on {args.ip}:{args.port}: {' '.join(argv)}")
    sys.stderr.flush()
    os.execv(argv[0], argv)  # the server takes over this process and its signals


def run(args: argparse.Namespace, *, hard_exit: bool = True) -> int:
    """Run a Temporal command; exit code like ``verifier run`` (0, 1, 2).

    With ``hard_exit`` (the default) ``worker`` and ``submit`` end the process with
    ``os._exit`` once their output is flushed: processes that loaded the temporalio SDK
    sometimes crash at interpreter exit after their work is done (exit 134/139,
    https://github.com/temporalio/sdk-python/issues/300), which would turn a correct
    verdict into a crash for CI.
    """
    try:
        _require_temporalio()
        if args.command == "temporal-dev":
            return _cmd_temporal_dev(args)
        if args.command == "worker":
            code = _cmd_worker(args)
        elif args.command == "submit":
            import asyncio

            code = asyncio.run(_submit(args))
        else:
            raise VerifierError(f"not a Temporal command: {args.command!r}")
    except VerifierError as exc:
        code = show_error(exc)
    except KeyboardInterrupt:
        code = 130
    if hard_exit and args.command in ("worker", "submit"):
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    return code
