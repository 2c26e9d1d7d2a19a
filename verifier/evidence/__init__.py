"""Evidence: the run's bundle (manifest, screenshots, video, report, summary, JUnit).

Knows nothing of browsers or X: it renders data.
"""

from __future__ import annotations

from verifier.evidence._bundle import BundleWriter, slug, utc_now
from verifier.evidence._junit import write_junit
from verifier.evidence._manifest import (
    SCHEMA_VERSION,
    ArtifactRecord,
    ErrorInfo,
    Manifest,
    StepRecord,
    Verdict,
)
from verifier.evidence._preview import write_preview
from verifier.evidence._report import write_report
from verifier.evidence._summary import render_summary, write_summary
from verifier.evidence._verify import sha256_of, verify_bundle

__all__ = (
    "SCHEMA_VERSION",
    "ArtifactRecord",
    "BundleWriter",
    "ErrorInfo",
    "Manifest",
    "StepRecord",
    "Verdict",
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
