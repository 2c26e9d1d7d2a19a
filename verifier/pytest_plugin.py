"""The pytest plugin (entry point ``pytest11``): recipes as tests, and a ``verifier`` fixture.

Installed with the package, pytest loads it by itself (``-p no:verifier`` turns it off):

* ``verify_*.yaml`` and ``*.verify.yaml`` files are collected as tests, one per recipe; a
  failure shows the failed step's message and the bundle; an invalid recipe is a
  collection error naming the field;
* the ``verifier`` fixture runs recipes from Python tests: ``verifier.run(path)`` returns
  the :class:`~verifier.runner.RunResult`, and a failing test lists the bundles it made;
* ``--verifier-out DIR`` is where the bundles go (default: ``artifacts`` in pytest's
  rootdir), ``--verifier-retries N`` retries failed recipes (a pass on a retry is flaky,
  and passes).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from verifier._term import escape_newlines
from verifier.errors import RecipeError
from verifier.recipe import Recipe, load_recipe
from verifier.runner import RunResult, run_attempts

__all__ = ("RecipeFailed", "Verifier")

_SUFFIXES = (".yaml", ".yml")
_RUNS = pytest.StashKey[list[RunResult]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("verifier", "verifier: recipes as tests")
    group.addoption(
        "--verifier-out",
        metavar="DIR",
        default=None,
        help="folder for the evidence bundles (default: artifacts in the rootdir)",
    )
    group.addoption(
        "--verifier-retries",
        metavar="N",
        type=int,
        default=0,
        help="run a failed recipe again, up to N times (a later pass is flaky, and passes)",
    )


def _is_recipe(path: Path) -> bool:
    name = path.name
    if path.suffix not in _SUFFIXES:
        return False
    return name.startswith("verify_") or name.removesuffix(path.suffix).endswith(".verify")


def pytest_configure(config: pytest.Config) -> None:
    # A run's own log is its bundle's verifier.log: pytest's report shows the failure
    # and the bundle, not pages of the run's debug lines.
    logging.getLogger("verifier").propagate = False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Never collect inside the bundles folder or a bundle: a page under test chooses the
    names of its downloads (``downloads/verify_x.yaml``), and what it wrote must not run
    as a recipe of the project's."""
    out = _out(config).resolve()
    path = collection_path.resolve()
    if path == out or path.is_relative_to(out):
        return True
    if path.is_dir() and (path / "manifest.json").is_file():
        return True
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _is_recipe(file_path):
        return RecipeFile.from_parent(parent, path=file_path)
    return None


class RecipeFailed(Exception):
    """A recipe's run did not pass: its verdict, the failed step and the bundle."""

    def __init__(self, result: RunResult) -> None:
        self.result = result
        step = f" at step {result.failed_step + 1}" if result.failed_step is not None else ""
        tries = f" (on all {len(result.attempts)} attempts)" if len(result.attempts) > 1 else ""
        message = escape_newlines(result.error or "(no message)")
        super().__init__(
            f"{result.verdict.upper()}{step}{tries}: {message}\nbundle: {result.bundle}"
            + (f"\nreport: {result.bundle / 'report.html'}" if result.bundle else "")
        )


class Verifier:
    """The ``verifier`` fixture: runs recipes into the session's bundle folder."""

    def __init__(self, out: Path, retries: int, runs: list[RunResult]) -> None:
        self.out = out
        self.retries = retries
        self._runs = runs

    def run(self, recipe: str | os.PathLike[str] | Recipe, **options: Any) -> RunResult:
        """Run ``recipe`` (a path or a loaded Recipe) and return how it ended.

        ``options`` are :func:`verifier.run_recipe`'s (``video``, ``network``...), and
        ``retries``; the bundle goes under ``--verifier-out``.
        """
        options.setdefault("out", self.out)
        options.setdefault("retries", self.retries)
        result = run_attempts(recipe, **options)
        self._runs.append(result)
        return result


def _out(config: pytest.Config) -> Path:
    given = config.getoption("verifier_out")
    return Path(given) if given else Path(config.rootpath) / "artifacts"


@pytest.fixture
def verifier(request: pytest.FixtureRequest) -> Iterator[Verifier]:
    """Runs recipes on a desktop of their own: ``verifier.run("verify_cart.yaml")``."""
    runs = request.node.stash.setdefault(_RUNS, [])
    yield Verifier(_out(request.config), request.config.getoption("verifier_retries"), runs)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    runs = item.stash.get(_RUNS, [])
    if report.failed and runs and not isinstance(item, RecipeItem):
        lines = []
        for r in runs:
            lines.append(f"{r.verdict.upper()} {r.recipe} -> {r.bundle}")
            if len(r.attempts) > 1:  # every attempt's bundle, not only the last
                lines += [
                    f"  attempt {a['attempt']}: {a['verdict']} -> {a['bundle']}" for a in r.attempts
                ]
        report.sections.append(("verifier bundles", "\n".join(lines)))
    if report.when == "call" and report.passed and any(r.verdict == "flaky" for r in runs):
        report.user_properties.append(("verifier_flaky", True))
    return report


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    """A recipe that passed only on a retry is counted as flaky ("1 flaky"), not passed."""
    if (
        report.when == "call"
        and report.passed
        and ("verifier_flaky", True) in report.user_properties
    ):
        return "flaky", "R", ("FLAKY", {"yellow": True})
    return None


class RecipeFile(pytest.File):
    """A recipe file: one test."""

    def collect(self) -> Iterator[RecipeItem]:
        try:
            recipe = load_recipe(self.path)
        except RecipeError as exc:
            raise self.CollectError(exc.message) from None
        yield RecipeItem.from_parent(self, name=recipe.name, recipe=recipe)


class RecipeItem(pytest.Item):
    """A recipe run as a test: it passes when the run passes (or is flaky)."""

    def __init__(self, *, recipe: Recipe, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recipe = recipe

    def runtest(self) -> None:
        retries = self.config.getoption("verifier_retries")
        result = run_attempts(self.recipe, retries=retries, out=_out(self.config))
        self.stash.setdefault(_RUNS, []).append(result)
        if result.bundle is not None:
            self.user_properties.append(("bundle", str(result.bundle)))
        if result.verdict not in ("passed", "flaky"):
            raise RecipeFailed(result)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        if isinstance(excinfo.value, RecipeFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"recipe: {self.name}"
