"""The ``verifier`` command line: its commands, and where their errors are shown.

Every command returns its exit code or raises a ``VerifierError`` (which knows its
exit code) or ``Interrupted``; :func:`main` shows those through ``_term.show_error``.
The library itself never prints: what reaches the terminal goes through ``_term``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from verifier import __version__
from verifier._jobs import run_jobs
from verifier._signals import SignalGuard
from verifier._term import escape_newlines, say, show_error
from verifier.errors import CheckFailed, Interrupted, RecipeError, VerifierError, exhausted
from verifier.evidence import list_runs, verify_bundle
from verifier.live import add_live_arguments, live_options
from verifier.mcp import cli as mcp_cli
from verifier.pool import POOL_ENV, PoolUnavailable, default_socket, run_in_pool, serve_pool
from verifier.publish import cli as publish_cli
from verifier.result import RunResult
from verifier.temporal import cli as temporal_cli

if TYPE_CHECKING:
    from verifier.live import LiveOptions
    from verifier.suite import Suite

__all__ = ("main",)

_MAX_TRIES = 100  # --retries and --repeat


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verifier",
        description="Verify a web app on a real desktop and write an evidence bundle.",
    )
    parser.add_argument("--version", action="version", version=f"verifier {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run recipes and write evidence bundles")
    run.add_argument("recipes", nargs="+", metavar="RECIPE")
    run.add_argument(
        "--out",
        default="artifacts",
        metavar="DIR",
        help="folder for the bundles (default: artifacts)",
    )
    run.add_argument("--json", action="store_true", help="print one JSON object per run on stdout")
    run.add_argument(
        "--no-video",
        action="store_true",
        help="do not record the screen (also: 'video: false' in the recipe)",
    )
    run.add_argument(
        "--display", metavar=":N", help="attach to this X display instead of starting Xvfb"
    )
    run.add_argument(
        "--network",
        choices=("host", "loopback"),
        help="loopback: the app and browser reach only loopback (overrides the recipe)",
    )
    run.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="run up to N recipes at once, each on its own display (default 1)",
    )
    run.add_argument(
        "--retries",
        type=int,
        default=0,
        metavar="N",
        help="run a failed or errored recipe again, up to N times; a later pass is FLAKY",
    )
    run.add_argument(
        "--fail-on-flaky",
        action="store_true",
        help="exit 1 when a recipe passed only on a retry (default: 0)",
    )
    run.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run each recipe N times, a bundle each, and say how many passed",
    )
    run.add_argument(
        "--update-baselines",
        action="store_true",
        help="(re)write expect_screenshot baselines instead of comparing against them",
    )
    run.add_argument(
        "--isolate",
        action="store_true",
        help="start the app and the desktop anew for each recipe (default: recipes share "
        "one desktop and browser, each with a fresh context, and one start of an equal app)",
    )
    run.add_argument(
        "--pool",
        metavar="PATH",
        help=f"run on a warm desktop of 'verifier serve' listening at PATH (also: ${POOL_ENV}); "
        "without one, or when none fits, the run starts its own",
    )
    add_live_arguments(run)
    # The other recipes of a --jobs command, whose files this run's app must not change.
    run.add_argument("--protect", action="append", default=[], help=argparse.SUPPRESS)
    # Files of the caller's that this run's app must not see (an MCP session's token).
    run.add_argument("--private", action="append", default=[], help=argparse.SUPPRESS)

    serve = sub.add_parser("serve", help="keep warm desktops ready for runs (until SIGINT/SIGTERM)")
    serve.add_argument(
        "--socket",
        metavar="PATH",
        help="where to listen (default: $XDG_RUNTIME_DIR/verifier/pool.sock, else "
        "~/.cache/verifier/pool.sock)",
    )
    serve.add_argument(
        "--pool", type=int, default=1, metavar="N", help="desktops kept ready (default 1)"
    )
    serve.add_argument(
        "--screen", default="1280x800", metavar="WxH", help="their screen (default 1280x800)"
    )

    validate = sub.add_parser("validate", help="check recipes without running them")
    validate.add_argument("recipes", nargs="+", metavar="RECIPE")

    sub.add_parser(
        "schema", help="print the recipe JSON Schema (draft 2020-12) for editors and linters"
    )

    init = sub.add_parser(
        "init", help="write a first recipe (verify_smoke.yaml) for the app in a folder"
    )
    init.add_argument("folder", nargs="?", default=".", metavar="DIR")

    bench = sub.add_parser("bench", help="measure this desktop against the peers' ways")
    bench.add_argument("--json", action="store_true", help="print the records as JSON")
    bench.add_argument("--screen", default="1280x800", metavar="WxH")
    bench.add_argument("--rounds", type=int, default=20, help="samples per contender")
    bench.add_argument(
        "--suite",
        type=int,
        default=10,
        metavar="N",
        help="recipes in the suite comparison (default 10)",
    )
    bench.add_argument(
        "--demo",
        default="recipes/todo.yaml",
        metavar="RECIPE",
        help="the demo recipe of the end-to-end group (default: recipes/todo.yaml here)",
    )

    runs = sub.add_parser("runs", help="list the runs in an output folder with their verdicts")
    runs.add_argument(
        "--out",
        default="artifacts",
        metavar="DIR",
        help="the folder holding the bundles (default: artifacts)",
    )
    runs.add_argument("--json", action="store_true", help="one JSON object per run")

    publish_cli.add_parser(sub)
    mcp_cli.add_parser(sub)
    temporal_cli.add_parsers(sub)

    show = sub.add_parser(
        "show", help="open a bundle's report in the desktop's browser (or print its path)"
    )
    show.add_argument("bundle", metavar="BUNDLE", help="a bundle, or an --out folder (its newest)")
    show.add_argument("--step", type=int, metavar="N", help="open on step N")

    verify = sub.add_parser("verify-bundle", help="re-check a bundle's files against its manifest")
    verify.add_argument("bundles", nargs="+", metavar="DIR")
    return parser


def _describe(result: RunResult) -> str:
    where = f" -> {result.bundle}" if result.bundle else ""
    tries = len(result.attempts)
    if result.verdict == "passed":
        return f"PASSED {result.recipe}{where}"
    if result.verdict == "flaky":
        failed = f"{tries - 1} failed attempt" + "s" * (tries > 2)
        return f"FLAKY {result.recipe}: passed on attempt {tries}, after {failed}{where}"
    # People count steps from 1, like the screenshot names and video chapters.
    step = f" at step {result.failed_step + 1}" if result.failed_step is not None else ""
    every = f" (on all {tries} attempts)" if tries > 1 else ""
    message = escape_newlines(str(result.error))
    return f"{result.verdict.upper()} {result.recipe}{step}{every}: {message}{where}"


class _Tally:
    """What ``verifier run`` prints and returns over its runs: each run's line (and JSON
    record), each recipe's "K of N passed" with --repeat, and the worst exit code."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.json: bool = args.json
        self.repeat: int = args.repeat
        self.fail_on_flaky: bool = args.fail_on_flaky
        self.worst = 0
        self._runs: dict[str, list[RunResult]] = {}

    def add(self, result: RunResult, *, shown: bool = False) -> None:
        """One run ended (``shown``: its error was already printed)."""
        code = result.exit_code if result.exit_code in (0, 1, 2) else 2
        if result.verdict == "flaky" and self.fail_on_flaky:
            code = 1
        self.worst = max(self.worst, code)
        if self.json:
            say(sys.stdout, json.dumps(result.to_json(), ensure_ascii=False))
        if not shown:
            quiet = result.verdict in ("passed", "flaky") and code == 0 and not self.json
            say(sys.stdout if quiet else sys.stderr, _describe(result))
        runs = self._runs.setdefault(result.recipe, [])
        runs.append(result)
        if self.repeat > 1 and len(runs) == self.repeat:
            passed = sum(r.verdict in ("passed", "flaky") for r in runs)
            flaky = sum(r.verdict == "flaky" for r in runs)
            also = f" ({flaky} flaky)" if flaky else ""
            stream = sys.stdout if passed == len(runs) and not self.json else sys.stderr
            say(stream, f"{passed} of {len(runs)} passed{also}: {result.recipe}")


def _cmd_run_jobs(args: argparse.Namespace) -> int:
    if args.display:
        msg = "--display and --jobs > 1 cannot be combined: runs need a display each"
        raise VerifierError(msg)
    run_args = ["--out", args.out, "--retries", str(args.retries)]
    run_args += ["--no-video"] if args.no_video else []
    run_args += ["--update-baselines"] if args.update_baselines else []
    run_args += ["--network", args.network] if args.network else []
    run_args += ["--pool", args.pool] if args.pool else []
    run_args += [a for path in args.recipes for a in ("--protect", path)]
    run_args += [a for path in args.private for a in ("--private", path)]
    tally = _Tally(args)
    recipes = [path for path in args.recipes for _ in range(args.repeat)]
    with SignalGuard():
        try:
            for job in run_jobs(recipes, jobs=args.jobs, run_args=run_args):
                result = job.result or RunResult(
                    recipe=str(Path(job.recipe).resolve()),
                    verdict="error",
                    bundle=None,
                    exit_code=job.exit_code if job.exit_code in (0, 1, 2) else 2,
                    error=job.stderr_tail or f"exited with code {job.exit_code}",
                )
                tally.add(result)
        except Interrupted as exc:
            exc.message += "; the running recipes were stopped"
            raise
    return tally.worst


def _cmd_run(args: argparse.Namespace) -> int:
    for flag, value, least in (("jobs", args.jobs, 1), ("repeat", args.repeat, 1)):
        if value < least:
            msg = f"--{flag} must be at least {least} (got {value})"
            raise VerifierError(msg)
    if not 0 <= args.retries <= _MAX_TRIES:
        msg = f"--retries must be from 0 to {_MAX_TRIES} (got {args.retries})"
        raise VerifierError(msg)
    if args.repeat > _MAX_TRIES:
        msg = f"--repeat must be at most {_MAX_TRIES} (got {args.repeat})"
        raise VerifierError(msg)
    live = live_options(args, "verifier run")
    several = len(args.recipes) * args.repeat > 1
    if live is not None and args.jobs > 1 and several:
        msg = "--live shows one desktop at a time: drop --jobs, or run the recipe to watch alone"
        raise VerifierError(msg)
    if args.jobs > 1 and several:
        return _cmd_run_jobs(args)
    tally = _Tally(args)
    pool = _Pool(args, live=live is not None)
    # A lone run overlaps its own starts; repeats measure a recipe's luck, start included.
    alone = len(args.recipes) == 1 or args.repeat > 1
    recipes = [*args.recipes, *args.protect]
    with _suite(isolate=args.isolate or live is not None or alone, recipes=recipes) as suite:
        return _run_each(args, tally, pool, suite, live)


@contextlib.contextmanager
def _suite(*, isolate: bool, recipes: Sequence[str]) -> Iterator[Suite | None]:
    """What the recipes of this command share (None: nothing), stopped at the end even
    on a second Ctrl-C; every bundle of it is redacted with all their secrets."""
    if isolate:
        yield None
        return
    # (runs here need them)
    from verifier.stage import readable_recipes, secrets_of_all, typed_text_of_all
    from verifier.suite import Suite

    loaded = functools.cache(lambda: readable_recipes(recipes))  # read once, when asked
    suite = Suite(
        secrets=lambda: secrets_of_all(loaded(), os.environ),
        typing=lambda: typed_text_of_all(loaded()),
    )
    try:
        yield suite
    finally:
        with SignalGuard() as guard:
            guard.quiet = True
            suite.close()


def _run_each(
    args: argparse.Namespace,
    tally: _Tally,
    pool: _Pool,
    suite: Suite | None,
    live: LiveOptions | None,
) -> int:
    files: tuple[list[Path], list[Path]] | None = None
    for path in args.recipes:
        for _ in range(args.repeat):
            try:
                result = pool.run(path)
                if result is None:
                    from verifier.runner import recipe_files, run_attempts  # (a cold run)

                    if files is None:
                        files = recipe_files([*args.recipes, *args.protect])
                        files[1].extend(Path(p) for p in args.private)
                        if pool.named is not None:  # no app under test may see it
                            files[1].append(pool.named)
                    protect, private = files
                    result = run_attempts(
                        path,
                        retries=args.retries,
                        out=args.out,
                        display=args.display,
                        video=False if args.no_video else None,
                        update_baselines=args.update_baselines,
                        network=args.network,
                        live=live,
                        protect=protect,
                        private=private,
                        suite=suite,
                    )
            except Interrupted as exc:
                return show_error(exc, subject=path)
            except VerifierError as exc:
                show_error(exc)
                bundle = exc.details.get("bundle")
                record = RunResult(
                    recipe=str(Path(path).resolve()),
                    verdict="error",
                    bundle=Path(str(bundle)) if bundle else None,
                    exit_code=exc.exit_code,
                    error=exc.message,
                )
                tally.add(record, shown=True)
                if isinstance(exc, RecipeError):
                    break  # an invalid recipe is invalid every time
                continue
            tally.add(result)
    return tally.worst


class _Pool:
    """Where ``verifier run`` finds warm desktops (``--pool``, else $VERIFIER_POOL), and
    the note it leaves when it starts cold instead (once a reason)."""

    def __init__(self, args: argparse.Namespace, *, live: bool) -> None:
        named = args.pool or os.environ.get(POOL_ENV)
        self.named = Path(named) if named else None
        self.path = self.named
        self._told: set[str] = set()
        if self.named is not None and (args.display or live):
            self._tell("--display" if args.display else "--live", "serves a desktop of its own")
            self.path = None
        self._options = {
            "out": args.out,
            "no_video": args.no_video,
            "update_baselines": args.update_baselines,
            "network": args.network,
            "retries": args.retries,
            "protect": [*args.recipes, *args.protect],
            "private": list(args.private),
        }

    def _tell(self, *why: str) -> None:
        said = escape_newlines(" ".join(why))
        if said not in self._told:
            self._told.add(said)
            say(sys.stderr, f"note: starting cold, not on the pool: {said}")

    def run(self, recipe: str) -> RunResult | None:
        """The run on a warm desktop; None when it must start cold (said on stderr)."""
        if self.path is None:
            return None
        try:
            return run_in_pool(self.path, recipe, options=self._options)
        except PoolUnavailable as exc:
            self._tell(str(exc))
            return None


def _cmd_serve(args: argparse.Namespace) -> int:
    if not 1 <= args.pool <= 16:
        msg = f"--pool must be from 1 to 16 desktops (got {args.pool})"
        raise VerifierError(msg)
    path = Path(args.socket) if args.socket else default_socket()
    try:
        serve_pool(path, size=args.pool, screen=args.screen, say=sys.stdout)
    except Interrupted as exc:
        say(sys.stderr, f"verifier serve: {exc.message}: every desktop stopped")
        return exc.exit_code
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from verifier.recipe import load_recipe
    from verifier.stage import secrets_of

    worst = 0
    for path in args.recipes:
        try:
            recipe = load_recipe(path)
        except VerifierError as exc:
            worst = max(worst, show_error(exc))
            continue
        try:
            secrets_of(recipe, os.environ)  # declared secrets long enough to redact
        except VerifierError as exc:
            worst = max(worst, show_error(exc, subject=path))
            continue
        say(sys.stdout, f"OK {path}: {recipe.name!r}, {len(recipe.steps)} steps")
    return worst


def _cmd_schema(args: argparse.Namespace) -> int:
    from verifier.recipe import recipe_json_schema

    say(sys.stdout, json.dumps(recipe_json_schema(), indent=2, ensure_ascii=False))
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from verifier.cli._scaffold import init_recipe  # starts a desktop: only this command

    made = init_recipe(args.folder)
    say(sys.stdout, str(made.path))
    say(sys.stderr, f"from {made.source}; checks: {', '.join(made.checks)}")
    for note in made.notes:
        say(sys.stderr, f"note: {note}")
    say(sys.stderr, f"next: verifier run {made.path}, then add the steps that prove your change")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from verifier.bench import report, run_bench  # only this command needs it

    rows = run_bench(
        screen=args.screen,
        rounds=max(1, args.rounds),
        demo=Path(args.demo),
        suite_size=max(2, args.suite),
    )
    table, records = report(rows)
    say(sys.stdout, json.dumps(records, indent=1) if args.json else table)
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if not out.is_dir():
        msg = f"{out}: no such folder (give the --out of your runs)"
        raise VerifierError(msg)
    for run in list_runs(out):
        if args.json:
            say(sys.stdout, json.dumps(run.to_json(), ensure_ascii=False))
            continue
        took = f"{run.duration_s:6.1f}s" if run.duration_s is not None else "      -"
        say(sys.stdout, f"{run.run_id}  {run.status:<18} {took}  {run.recipe}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from verifier.cli._show import show_report  # only this command opens a browser

    report, url, opened = show_report(Path(args.bundle), step=args.step)
    say(sys.stdout, str(report))
    if not opened:
        at = f" ({url} opens it on step {args.step})" if args.step is not None else ""
        say(sys.stderr, f"no display (DISPLAY is not set): open the file above in a browser{at}")
    return 0


def _cmd_verify_bundle(args: argparse.Namespace) -> int:
    worst = 0
    for folder in args.bundles:
        problems = verify_bundle(Path(folder))
        for problem in problems:
            # A bundle that does not match its manifest fails the check (exit 1).
            worst = max(worst, show_error(CheckFailed(problem), subject=folder))
        if not problems:
            say(sys.stdout, f"OK {folder}: every listed artifact matches its sha256")
    return worst


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (0 passed, 1 failed, 2 could not verify)."""
    args = _parser().parse_args(argv)
    if args.command in temporal_cli.COMMANDS:
        # worker and submit end with os._exit (temporalio can crash at interpreter exit).
        return temporal_cli.run(args)
    commands = {
        "run": _cmd_run,
        "serve": _cmd_serve,
        "validate": _cmd_validate,
        "schema": _cmd_schema,
        "init": _cmd_init,
        "runs": _cmd_runs,
        "bench": _cmd_bench,
        "publish": publish_cli.run,
        "mcp": mcp_cli.run,
        "verify-bundle": _cmd_verify_bundle,
        "show": _cmd_show,
    }
    try:
        return commands[args.command](args)
    except (VerifierError, Interrupted) as exc:
        return show_error(exc)
    except (RuntimeError, MemoryError, BlockingIOError) as exc:
        error = exhausted(exc)
        if error is None:
            raise
        return show_error(error)


if __name__ == "__main__":
    sys.exit(main())
