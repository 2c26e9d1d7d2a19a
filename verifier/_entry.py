"""The ``verifier`` command's entry point (``python -m verifier`` too).

``verifier run`` starts Playwright's driver (~0.3 s of Node.js) while Python imports the
rest of verifier (~0.3 s): the run picks the driver up instead of starting its own.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import threading

__all__ = ("console",)


def _single_run(args: list[str]) -> bool:
    """``verifier run`` in this process (not a help text, not jobs in subprocesses, not
    on a pool's warm desktop, whose driver is started already)."""
    return (
        bool(args)
        and args[0] == "run"
        and not os.environ.get("VERIFIER_POOL")
        and not any(a in ("-h", "--help") or a.startswith(("--jobs", "--pool")) for a in args[1:])
    )


def _import_run() -> None:
    """What a cold ``verifier run`` needs (the CLI itself imports it only for that)."""
    importlib.import_module("verifier.runner")
    importlib.import_module("verifier.cli")


def console() -> int:
    """Run the CLI in a process about to exit.

    At the end, everything still alive is moved out of the garbage collector's reach, so
    the interpreter's final full collection of all a run loaded (~80 ms) is skipped; the
    run has closed its files and processes by then.
    """
    early = _single_run(sys.argv[1:])
    if early:
        from verifier import browser

        loader = threading.Thread(target=_import_run, name="verifier-import")
        loader.start()
        try:
            browser.prestart_playwright()
        except Exception:  # noqa: BLE001 - the run starts its own and says what failed
            pass
        finally:
            loader.join()
    from verifier.cli import main

    try:
        code = main()
    finally:
        if early:
            browser.release_prestarted()
    gc.freeze()
    return code
