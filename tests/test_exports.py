"""The public surface is `verifier.__all__`, and it matches what the package exports."""

from __future__ import annotations

import subprocess
import sys

import verifier


def test_all_matches_public_names() -> None:
    assert {name for name in dir(verifier) if not name.startswith("_")} == set(verifier.__all__)
    assert list(verifier.__all__) == sorted(verifier.__all__)
    for name in verifier.__all__:
        assert getattr(verifier, name).__module__.startswith("verifier.")


def test_design_api_is_exported() -> None:
    for name in ("Desktop", "run_recipe", "load_recipe", "VerifierError"):
        assert name in verifier.__all__


def test_the_package_loads_its_parts_on_first_use() -> None:
    # The watchdog imports verifier._process the moment the verifier dies: it must not
    # first spend 0.3 s importing Playwright, NumPy and pydantic.
    code = (
        "import sys, verifier._process, verifier.errors;"
        "heavy = {'playwright', 'numpy', 'pydantic', 'cv2'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    try:
        verifier.NoSuchName  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchName" in str(exc)
    else:
        raise AssertionError("no AttributeError")
