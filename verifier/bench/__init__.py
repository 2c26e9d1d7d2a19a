"""Benchmarks: this machine's desktop against the peers' ways of doing the same thing.

``verifier bench`` runs :func:`run_bench`; the scripts in the repository's ``bench/``
folder (``--jobs`` scaling, the vision layer, the MCP round trips) use the helpers here.
Figures are ratios measured side by side in one run, never timed assertions in tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from verifier._lazy import lazy_exports

if TYPE_CHECKING:
    from verifier.bench._run import BenchRow, report, run_bench
    from verifier.bench._tree import cpu_seconds, tree_of, tree_pss_kb

__all__ = ("BenchRow", "cpu_seconds", "report", "run_bench", "tree_of", "tree_pss_kb")

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "BenchRow": "verifier.bench._run",
        "cpu_seconds": "verifier.bench._tree",
        "report": "verifier.bench._run",
        "run_bench": "verifier.bench._run",
        "tree_of": "verifier.bench._tree",
        "tree_pss_kb": "verifier.bench._tree",
    },
)
