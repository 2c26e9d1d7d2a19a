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

from verifier._redact import NO_SECRETS, Redactor
from verifier.app import AppServices, carry_log
from verifier.errors import VerifierError
from verifier.recipe import Recipe
from verifier.rig import Rig, RigParts

__all__ = ("Suite",)

_log = logging.getLogger(__name__)


class Suite:
    """What the recipes of one command share (see the module). A context manager: its
    end stops the app and the desktop."""

    def __init__(
        self,
        secrets: Callable[[], Redactor] | None = None,
        typing: Callable[[], str] | None = None,
    ) -> None:
        self._secrets_of = secrets
        self._secrets: Redactor | None = None
        self._typing_of = typing
        self._typing: str | None = None
        self._app_keep = True
        self._rig: Rig | None = None
        self._rig_key: tuple[object, ...] | None = None
        self._rig_by: str | None = None  # the run that started it
        self._app: AppServices | None = None
        self._app_key: object = None
        self._app_by: str | None = None
        self._lent = False

    @property
    def secrets(self) -> Redactor:
        """Every secret of every recipe of the command: what one recipe types, the app
        that outlives it may say in the next one's time (or show on its page), so each
        bundle of the suite is redacted with all of them."""
        if self._secrets is None:
            self._secrets = self._secrets_of() if self._secrets_of is not None else NO_SECRETS
        return self._secrets

    @property
    def typing(self) -> str:
        """What every recipe of the command types (read once, for every desktop)."""
        if self._typing is None:
            self._typing = self._typing_of() if self._typing_of is not None else ""
        return self._typing

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
        if self._rig is None:  # (entering its namespace may fail: then nothing is lent)
            # What every recipe types is bound before its Chromium starts: Chromium takes
            # a key's meaning for its key events (`key`) once, at the first key typed, so a
            # key bound later reads "\0" to the page (or what the key typed before).
            rig = Rig(
                recipe.screen,
                file_urls=recipe.allow_file_urls,
                network=network,
                display=display,
                typing=self.typing,
            )
            self._rig, self._rig_key, self._rig_by = rig.enter(), key, None
        self._lent = True

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
        ``logs``; a desktop that cannot serve another is stopped (and the app with it).
        The app's output from now on waits, redacted with every recipe's secrets, for the
        next recipe's bundle; an app that did not get ready, or that served a recipe
        which loads or saves a login (started before that file existed, it could read
        it), is stopped."""
        self._lent = False
        if self._app is not None:
            keep = self._app_keep and self._app.ready_s is not None
            if keep:
                try:
                    self._app.check_alive()
                except VerifierError:
                    keep = False
            if keep and self._rig is not None:
                self._app.switch_logs(self._between(), self.secrets)
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

    def _between(self) -> Path:
        assert self._rig is not None
        return self._rig.log_dir / "between-recipes"

    # -- the app -------------------------------------------------------------------------

    def app(
        self,
        key: object,
        make: Callable[[], AppServices],
        *,
        run_id: str,
        logs: Path,
        redactor: Redactor,
        shareable: bool = True,
    ) -> tuple[AppServices, str | None]:
        """The app for a recipe whose ``app`` block is ``key``: the running one (its
        output from now on in ``logs``, redacted with ``redactor``, after what it said
        since the last recipe) and the run that started it; or a new one from ``make()``,
        launched, and None. A recipe that is not ``shareable`` (it loads or saves a
        login) gets an app of its own, stopped after it."""
        running = self._app is not None and key == self._app_key and shareable
        if running and self._app is not None:
            try:
                self._app.check_alive()
            except VerifierError as exc:  # it died since: started again, and said why
                _log.warning("the app of the recipes before ended: %s; starting it again", exc)
                running = False
        if running and self._app is not None:
            self._app.switch_logs(logs, redactor, carry=True)  # (nothing lost between)
            return self._app, self._app_by
        self._stop_app()
        self._carry(logs)
        app = make()
        self._app, self._app_key, self._app_by = app, key, run_id
        self._app_keep = shareable
        app.launch()
        return app, None

    def _carry(self, logs: Path) -> None:
        """What the app that ended said between the last recipe and this one goes first
        into this one's logs (said as such)."""
        if self._rig is not None and self._between().is_dir():
            for held in sorted(self._between().iterdir()):
                carry_log(held, logs / held.name)

    def _stop_app(self) -> None:
        app, self._app, self._app_key = self._app, None, None
        if app is not None:
            app.close()  # (its last words stay in the between folder for the next recipe)

    def _close_rig(self) -> None:
        self._stop_app()  # it may live in the desktop's network namespace
        rig, self._rig, self._rig_key = self._rig, None, None
        if rig is not None:
            rig.close()

    def close(self) -> None:
        """Stop the app, then the desktop (its browser, driver and display). Idempotent."""
        with contextlib.suppress(VerifierError):
            self._close_rig()
