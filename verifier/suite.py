"""Recipes of one ``verifier run`` on one desktop, one browser and one start of their app.

Playwright Test starts its ``webServer`` once for a suite and gives each test a fresh
context in one browser; a :class:`Suite` does the same for recipes run one after another:

- one :class:`~verifier.rig.Rig` (Xvfb, openbox, driver, Chromium; with ``network:
  loopback`` its namespace) while the recipes' screen, network, display and ``file:``
  URL policy stay the same;
- one start of the app while the recipes' ``app`` blocks are equal (the same services,
  commands, folders and environment); each recipe's bundle gets the app's output of its
  own time, redacted with its own secrets;
- each recipe still gets a browser context of its own (cookies, storage, cache,
  permissions, downloads: Chromium's contexts share none of them), its own video and
  bundle; between recipes the desktop's input is reset (keys and buttons released, the
  keymap restored, Caps Lock off, the pointer centred, the clipboard emptied).

A desktop or app that died, or a browser that did not close a context in time, is
stopped and the next recipe starts a new one. ``verifier run --isolate`` gives each
recipe a desktop and an app start of its own, as retried attempts always have.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from verifier._redact import Redactor
from verifier.app import AppServices
from verifier.errors import VerifierError
from verifier.recipe import Recipe
from verifier.rig import Rig, RigParts

__all__ = ("Suite",)

_log = logging.getLogger(__name__)


class Suite:
    """What the recipes of one command share (see the module). A context manager: its
    end stops the app and the desktop."""

    def __init__(self) -> None:
        self._rig: Rig | None = None
        self._rig_key: tuple[object, ...] | None = None
        self._rig_by: str | None = None  # the run that started it
        self._app: AppServices | None = None
        self._app_key: object = None
        self._app_by: str | None = None
        self._lent = False

    def __enter__(self) -> Suite:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the desktop ---------------------------------------------------------------------

    def prepare(self, recipe: Recipe, *, network: str, display: str | None) -> None:
        """Make ready for ``recipe``'s run: the last recipe's desktop if it fits, else a
        new one (its network namespace entered, its processes not started yet, so that
        the app can start meanwhile); :meth:`lend` then hands it over."""
        if self._lent:
            msg = "the suite's desktop is in use by another run"
            raise VerifierError(msg)
        key = (recipe.screen, recipe.allow_file_urls, network, display)
        if self._rig is not None and key != self._rig_key:
            _log.info("a new desktop: this recipe's screen, network or file: URLs differ")
            self._close_rig()
        self._lent = True
        if self._rig is None:
            rig = Rig(
                recipe.screen, file_urls=recipe.allow_file_urls, network=network, display=display
            )
            self._rig, self._rig_key, self._rig_by = rig.enter(), key, None

    def lend(self, *, run_id: str) -> tuple[RigParts, str | None]:
        """The desktop :meth:`prepare` chose, started if new, and the run that started it
        when that was another (None: this one did).

        :raises VerifierError: a new desktop did not start.
        """
        if self._rig is None or not self._lent:
            msg = "the suite's desktop was not prepared for this run"
            raise VerifierError(msg)
        if self._rig_by is None:
            try:
                self._rig.start()
            except BaseException:
                self._close_rig()
                raise
            self._rig_by = run_id
        by = self._rig_by if self._rig_by != run_id else None
        return self._rig.lend(), by

    def give_back(self, logs: Path) -> None:
        """A run is done with the desktop: reset for the next, its logs copied into
        ``logs``; a desktop that cannot serve another is stopped (and the app with it)."""
        self._lent = False
        if self._app is not None:
            alive = self._app.ready_s is not None
            if alive:
                try:
                    self._app.check_alive()
                except VerifierError:
                    alive = False
            if alive:  # its output between recipes is nobody's: it goes with the desktop
                folder = self._rig.log_dir if self._rig is not None else logs
                self._app.switch_logs(folder / "between-recipes")
            else:
                self._stop_app()
        if self._rig is None:
            return
        if self._rig_by is None:  # never started (the app failed first): nothing to reset
            return
        try:
            self._rig.give_back(logs)
        except VerifierError as exc:
            _log.warning("the desktop cannot serve another recipe: %s", exc)
            self._close_rig()

    # -- the app -------------------------------------------------------------------------

    def app(
        self,
        key: object,
        make: Callable[[], AppServices],
        *,
        run_id: str,
        logs: Path,
        redactor: Redactor,
    ) -> tuple[AppServices, str | None]:
        """The app for a recipe whose ``app`` block is ``key``: the running one (its
        output from now on in ``logs``, redacted with ``redactor``) and the run that
        started it; or a new one from ``make()``, launched, and None."""
        if self._app is not None and key == self._app_key:
            self._app.switch_logs(logs, redactor)
            return self._app, self._app_by
        self._stop_app()
        app = make()
        self._app, self._app_key, self._app_by = app, key, run_id
        app.launch()
        return app, None

    def _stop_app(self) -> None:
        app, self._app, self._app_key = self._app, None, None
        if app is not None:
            app.close()

    def _close_rig(self) -> None:
        self._stop_app()  # it may live in the desktop's network namespace
        rig, self._rig, self._rig_key = self._rig, None, None
        if rig is not None:
            rig.close()

    def close(self) -> None:
        """Stop the app, then the desktop (its browser, driver and display). Idempotent."""
        with contextlib.suppress(VerifierError):
            self._close_rig()
