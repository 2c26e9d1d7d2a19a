"""Evidence: the run's bundle (manifest, screenshots, logs). Knows nothing of browsers or X."""

from __future__ import annotations

from verifier.evidence._bundle import BundleWriter, sha256_of, slug, utc_now
from verifier.evidence._manifest import (
    SCHEMA_VERSION,
    ArtifactRecord,
    ErrorInfo,
    Manifest,
    StepRecord,
    Verdict,
)

__all__ = (
    "SCHEMA_VERSION",
    "ArtifactRecord",
    "BundleWriter",
    "ErrorInfo",
    "Manifest",
    "StepRecord",
    "Verdict",
    "sha256_of",
    "slug",
    "utc_now",
)
