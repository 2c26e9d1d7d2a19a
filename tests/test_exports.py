"""The public surface is `verifier.__all__`, and it matches what the package exports."""

from __future__ import annotations

import verifier


def test_all_matches_public_names() -> None:
    public = {name for name in vars(verifier) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(verifier, name)).__name__ == "module"}
    assert set(verifier.__all__) == public - modules - {"annotations"}
    assert list(verifier.__all__) == sorted(verifier.__all__)


def test_design_api_is_exported() -> None:
    for name in ("Desktop", "run_recipe", "load_recipe", "VerifierError"):
        assert name in verifier.__all__
