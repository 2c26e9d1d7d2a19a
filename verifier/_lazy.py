"""Package exports that load on first use (PEP 562), so that importing one small part
of a package (the CLI wiring, the watchdog) does not import all of it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ("lazy_exports",)


def lazy_exports(
    package: str, homes: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``homes`` maps each exported name
    to the module that defines it. A name, once loaded, becomes a plain global."""

    def __getattr__(name: str) -> Any:  # noqa: N807 - PEP 562 names them
        home = homes.get(name)
        if home is None:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(importlib.import_module(home), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:  # noqa: N807 - PEP 562 names them
        dunders = (n for n in vars(sys.modules[package]) if n.startswith("__"))
        return sorted({*dunders, *homes})

    return __getattr__, __dir__
