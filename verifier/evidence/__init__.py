"""Evidence: the run's bundle (manifest, screenshots, video, report, summary, JUnit).

Knows nothing of browsers or X: it renders data. The names below load on first use
(PEP 562): ``verifier runs`` and ``verify-bundle`` need not import OpenCV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from verifier._lazy import lazy_exports

if TYPE_CHECKING:
    from verifier.evidence._bundle import BundleWriter, slug, utc_now
    from verifier.evidence._junit import write_junit
    from verifier.evidence._manifest import (
        SCHEMA_VERSION,
        ArtifactRecord,
        AttemptRecord,
        ErrorInfo,
        Manifest,
        StepRecord,
        StepStatus,
        Verdict,
        new_step_record,
        read_manifest,
    )
    from verifier.evidence._marks import mark_points
    from verifier.evidence._preview import write_preview
    from verifier.evidence._report import write_report
    from verifier.evidence._runs import RunRecord, list_runs
    from verifier.evidence._summary import render_summary, write_summary
    from verifier.evidence._verify import bundle_file, sha256_of, verify_bundle

__all__ = (
    "SCHEMA_VERSION",
    "ArtifactRecord",
    "AttemptRecord",
    "BundleWriter",
    "ErrorInfo",
    "Manifest",
    "RunRecord",
    "StepRecord",
    "StepStatus",
    "Verdict",
    "bundle_file",
    "list_runs",
    "mark_points",
    "new_step_record",
    "read_manifest",
    "render_summary",
    "sha256_of",
    "slug",
    "utc_now",
    "verify_bundle",
    "write_junit",
    "write_preview",
    "write_report",
    "write_summary",
)

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "SCHEMA_VERSION": "verifier.evidence._manifest",
        "ArtifactRecord": "verifier.evidence._manifest",
        "AttemptRecord": "verifier.evidence._manifest",
        "BundleWriter": "verifier.evidence._bundle",
        "ErrorInfo": "verifier.evidence._manifest",
        "Manifest": "verifier.evidence._manifest",
        "RunRecord": "verifier.evidence._runs",
        "StepRecord": "verifier.evidence._manifest",
        "StepStatus": "verifier.evidence._manifest",
        "Verdict": "verifier.evidence._manifest",
        "bundle_file": "verifier.evidence._verify",
        "list_runs": "verifier.evidence._runs",
        "mark_points": "verifier.evidence._marks",
        "new_step_record": "verifier.evidence._manifest",
        "read_manifest": "verifier.evidence._manifest",
        "render_summary": "verifier.evidence._summary",
        "sha256_of": "verifier.evidence._verify",
        "slug": "verifier.evidence._bundle",
        "utc_now": "verifier.evidence._bundle",
        "verify_bundle": "verifier.evidence._verify",
        "write_junit": "verifier.evidence._junit",
        "write_preview": "verifier.evidence._preview",
        "write_report": "verifier.evidence._report",
        "write_summary": "verifier.evidence._summary",
    },
)
