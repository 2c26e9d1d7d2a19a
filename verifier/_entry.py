"""The ``verifier`` command's entry point (``python -m verifier`` too).

``verifier run`` starts Playwright's driver (~0.3 s of Node.js) while Python imports the
rest of verifier (~0.3 s): the run picks the driver up instead of starting its own.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
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

    Ctrl-C before a command has taken SIGINT over (while Python imports it) exits 130
    with one line, as it does later. At the end, everything still alive is moved out of
    the garbage collector's reach, so the interpreter's final full collection of all a
    run loaded (~80 ms) is skipped; the run has closed its files and processes by then.
    """
    try:
        code = _console()
    except KeyboardInterrupt:  # (a command's own are Interrupted, and shown by it)
        from verifier._term import show_error
        from verifier.errors import Interrupted

        code = show_error(Interrupted(signal.SIGINT))
    gc.freeze()
    return code


def _console() -> int:
    if not _single_run(sys.argv[1:]):
        from verifier.cli import main

        return main()
    # Ctrl-C while the run is imported and its driver starts is held until then: a
    # KeyboardInterrupt amid an import can leave the module's lock taken, and the thread
    # importing beside it waiting for that lock forever (seen: a run that hung).
    held = threading.Event()
    holding = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if holding:
        signal.signal(signal.SIGINT, lambda _signum, _frame: held.set())
    try:
        from verifier import browser

        loader = threading.Thread(target=_import_run, name="verifier-import")
        loader.start()
        try:
            browser.prestart_playwright()
        except Exception:  # noqa: BLE001 - the run starts its own and says what failed
            pass
        finally:
            loader.join()
    finally:
        if holding:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    try:  # the driver is stopped on every way out when the run did not take it
        if held.is_set():
            raise KeyboardInterrupt
        from verifier.cli import main

        return main()
    finally:
        browser.release_prestarted()
