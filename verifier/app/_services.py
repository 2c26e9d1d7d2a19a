"""The app under test as a whole: its services, in order, each ready before the next.

Every service gets its port first (``{port}`` its own, ``{ports.NAME}`` another's), so
commands, URLs and ``env`` can name each other. Services start in order and stop in
reverse, each with its whole tree; one that exits early or dies mid-run names itself
and quotes its log. A Cursor environment's terminals start together, then the app's
``url`` is waited for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from verifier._process import Owner
from verifier._redact import NO_SECRETS, Redactor
from verifier.app._limits import Limits
from verifier.app._probe import refuse_taken_port, wait_answering
from verifier.app._sandbox import Confinement
from verifier.app._server import DevServer, free_port
from verifier.errors import DevServerError
from verifier.recipe import ServiceSpec

__all__ = ("AppServices",)

_log = logging.getLogger(__name__)


class AppServices(Owner):
    """The services of the app under test (see the module's docstring).

    :param specs: the services, in order (``Recipe.services()``).
    :param logs: the folder of their logs.
    :param url: for a Cursor environment, the URL that says the app is up (its terminals
        have none of their own); else the last service's URL is the base URL.
    :param ready_timeout: how long to wait for ``url``.
    :param confinement: what of ours every service's sandbox hides or keeps read-only.
    """

    def __init__(
        self,
        specs: Sequence[ServiceSpec],
        *,
        logs: Path,
        redactor: Redactor = NO_SECRETS,
        url: str | None = None,
        ready_timeout: float = 60.0,
        confinement: Confinement | None = None,
    ) -> None:
        if not specs:
            msg = "an app needs at least one service"
            raise DevServerError(msg)
        ports = {s.name: free_port() for s in specs if s.wants_port}
        self.services = [
            DevServer(
                spec.command if isinstance(spec.command, str) else list(spec.command),
                url=spec.url,
                cwd=spec.cwd,
                env=spec.env,
                pass_env=spec.pass_env,
                ready_timeout=spec.ready_timeout,
                log_path=logs / spec.log_name,
                port=ports.get(spec.name),
                wants_port=spec.wants_port,
                ports=ports,
                name=_label(spec, single=len(specs) == 1),
                kind=spec.kind,
                redactor=redactor,
                log_limit=spec.log_limit,
                limits=Limits(memory=spec.limits.memory, pids=spec.limits.pids),
                confinement=confinement,
            )
            for spec in specs
        ]
        self._names = [spec.name for spec in specs]
        self._wait_url = url
        self._ready_timeout = ready_timeout
        self._next = 0  # the first service not launched yet
        self._started = 0.0
        self.ready_s: float | None = None

    @property
    def url(self) -> str:
        """The base URL: the app's own (a Cursor environment) or the last service's."""
        url = self._wait_url or self.services[-1].url
        assert url is not None  # the schema requires one
        return url

    @property
    def origins(self) -> dict[str, str]:
        """Each service that has a URL: its name and origin in this run (its port
        filled in), for saved logins (see ``verifier._storage``)."""
        found = {}
        for name, service in zip(self._names, self.services, strict=True):
            if service.url is not None:
                split = urlsplit(service.url)
                if split.scheme and split.netloc:
                    found[name] = f"{split.scheme}://{split.netloc}"
        return found

    @property
    def pids(self) -> list[int]:
        """The processes we started for it (their trees hold the rest)."""
        return [s.pid for s in self.services if s.pid is not None]

    def switch_logs(
        self, logs: Path, redactor: Redactor = NO_SECRETS, *, carry: bool = False
    ) -> None:
        """Write every service's output from now on into ``logs`` (the folder of the next
        recipe's bundle, when one app serves several), redacted with ``redactor``; with
        ``carry``, after what each log holds so far (its output between two recipes)."""
        for service in self.services:
            service.switch_log(logs / service.log_path.name, redactor, carry=carry)

    def launch(self) -> AppServices:
        """Start the first service without waiting (the caller starts the desktop
        meanwhile); :meth:`wait_ready` does the rest."""
        if self._next == 0:
            self._started = time.monotonic()
            if self._wait_url is not None:
                refuse_taken_port(self._wait_url, "the app")
            self.services[0].launch()
            self._next = 1
        return self

    def start(self) -> AppServices:
        self.launch()
        return self.wait_ready()

    def wait_ready(self) -> AppServices:
        """Each service ready before the next starts (a Cursor environment's terminals
        start together, then its URL is waited for); raises naming the one that failed."""
        if self.ready_s is not None:
            return self
        self.launch()
        for n, service in enumerate(self.services):
            if n >= self._next:
                service.launch()
                self._next = n + 1
            together = self._wait_url is not None and service.kind == "serve"
            if not together:
                service.wait_ready()
        if self._wait_url is not None:
            self._wait_for_url(self._wait_url)
        self.ready_s = time.monotonic() - self._started
        for service in self.services:  # the terminals were ready when the app answered
            if service.ready_s is None and service.exit_code is None:
                service.ready_s = self.ready_s
        _log.info("the app is ready at %s after %.2f s", self.url, self.ready_s)
        return self

    def _wait_for_url(self, url: str) -> None:
        deadline = time.monotonic() + self._ready_timeout
        last = wait_answering(url, deadline, alive=self.check_alive)
        if not last.ok:
            msg = (
                f"the app did not answer 2xx/3xx at {url} within "
                f"{self._ready_timeout:g} s (app.ready_timeout); last probe: {last.detail}"
            )
            raise DevServerError(msg)

    def check_alive(self) -> None:
        """Raise DevServerError, naming it, if a service has died."""
        for service in self.services:
            service.check_alive()

    def close(self) -> None:
        """Stop every service in reverse order, each with its whole tree; idempotent."""
        for service in reversed(self.services):
            service.close()

    def records(self) -> list[dict[str, object]]:
        """Each service for the manifest: name, command, port, url, readiness, exit."""
        return [
            {
                "name": name,
                "command": s.command,
                "kind": s.kind,
                "url": s.url,
                "port": s.port,
                "pid": s.pid,
                "ready_s": round(s.ready_s, 3) if s.ready_s is not None else None,
                "exit_code": s.exit_code,
                "sandbox": s.sandbox,
                "limits": s.limits_record(),
                "log": f"logs/{s.log_path.name}",
            }
            for name, s in zip(self._names, self.services, strict=True)
        ]


def _label(spec: ServiceSpec, *, single: bool) -> str:
    if single and spec.kind == "serve":
        return "dev server"
    what = {"serve": "service", "install": "install", "start": "start"}[spec.kind]
    return f"{what} {spec.name!r}" if spec.kind == "serve" else f"the environment's {what}"
