"""The pytest plugin, as a user meets it: pytest run in a fresh folder holding recipes
and a Python test that uses the ``verifier`` fixture. pytest loads the plugin from the
installed package's entry point, nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support import APPS, SITE

pytestmark = pytest.mark.slow

APP = f"""app:
  command: {sys.executable} -m http.server {{port}} --bind 127.0.0.1 --directory site
  url: http://127.0.0.1:{{port}}/
"""


def _project(folder: Path) -> Path:
    shutil.copytree(SITE, folder / "site")
    (folder / "verify_home.yaml").write_text(
        f"name: The home page says hello\n{APP}steps:\n  - goto: /\n  - expect_title: Fixture\n",
        encoding="utf-8",
    )
    (folder / "cart.verify.yaml").write_text(
        f"name: The cart shows a total\n{APP}steps:\n  - goto: /\n"
        "  - expect_text: {text: 'Total: 3 items', timeout: 1}\n",
        encoding="utf-8",
    )
    (folder / "notes.yaml").write_text("not: a recipe\n", encoding="utf-8")  # not collected
    (folder / "test_flows.py").write_text(
        "from pathlib import Path\n\n"
        "def test_the_fixture_runs_a_recipe(verifier):\n"
        "    result = verifier.run(Path(__file__).parent / 'verify_home.yaml')\n"
        "    assert result.verdict == 'passed' and result.exit_code == 0\n"
        "    assert (result.bundle / 'manifest.json').is_file()\n"
        "    assert result.bundle.parent == verifier.out\n\n"
        "def test_a_failing_check_lists_its_bundle(verifier):\n"
        "    result = verifier.run(Path(__file__).parent / 'cart.verify.yaml', video=False)\n"
        "    assert result.verdict == 'passed'\n",
        encoding="utf-8",
    )
    return folder


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=folder,
    )


@pytest.mark.timeout(300)
def test_recipes_and_the_fixture_in_a_fresh_folder(tmp_path: Path) -> None:
    project = _project(tmp_path / "shop")
    out = tmp_path / "bundles"
    done = _pytest(project, "--verifier-out", str(out), "--junitxml", str(tmp_path / "j.xml"))
    text = done.stdout + done.stderr
    assert done.returncode == 1, text
    assert "2 failed, 2 passed" in text, text
    # The recipe's failure: the failed step, its message, the bundle and its report.
    assert "FAILED at step 2: expect_text: 'Total: 3 items' not in the visible text" in text
    assert f"bundle: {out}/" in text and "/report.html" in text
    # The fixture test's failure lists the bundles it made.
    assert "verifier bundles" in text and f"FAILED {project / 'cart.verify.yaml'} -> {out}/" in text
    assert "notes.yaml" not in text
    bundles = sorted(p.name for p in out.iterdir())
    assert len(bundles) == 4, bundles
    assert not (project / "artifacts").exists()
    # The recipe test carries its bundle in the JUnit report.
    cases = ET.parse(tmp_path / "j.xml").getroot().iter("testcase")
    home = next(c for c in cases if c.get("name") == "The home page says hello")
    props = {p.get("name"): p.get("value") for p in home.iter("property")}
    assert props["bundle"] and Path(str(props["bundle"])).parent == out


def test_an_invalid_recipe_is_a_collection_error_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "verify_bad.yaml").write_text(
        "name: bad\nurl: http://127.0.0.1:1/\nsteps:\n  - clik: '#a'\n", encoding="utf-8"
    )
    done = _pytest(tmp_path)
    assert done.returncode == 2
    assert "steps[0]: unknown step 'clik'; did you mean 'click'?" in done.stdout


def test_the_flaky_app_passes_with_retries(tmp_path: Path) -> None:
    shutil.copy(APPS / "flaky.py", tmp_path / "flaky.py")
    (tmp_path / "verify_flaky.yaml").write_text(
        "name: flaky\napp:\n  command: python3 flaky.py {port}\n"
        "  url: http://127.0.0.1:{port}/\nsteps:\n  - goto: /\n"
        "  - expect_text: {text: Saved, timeout: 2}\n",
        encoding="utf-8",
    )
    done = _pytest(tmp_path, "--verifier-retries", "1", "--verifier-out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stdout
    assert "1 flaky" in done.stdout and len(list((tmp_path / "o").iterdir())) == 2
    assert "Captured log" not in done.stdout  # the run's log is in its bundle


def test_nothing_inside_a_bundle_is_collected(tmp_path: Path) -> None:
    """A page names its downloads: one named verify_x.yaml in a bundle must not become a
    test of the project's (with the project's trust: its environment, its checkout)."""
    planted = "name: planted\nurl: http://127.0.0.1:1/\nsteps:\n  - reload\n"
    for bundle in (tmp_path / "artifacts" / "run1", tmp_path / "elsewhere" / "run2"):
        (bundle / "downloads").mkdir(parents=True)
        (bundle / "manifest.json").write_text("{}", encoding="utf-8")
        (bundle / "downloads" / "verify_planted.yaml").write_text(planted, encoding="utf-8")
    (tmp_path / "other-out" / "x").mkdir(parents=True)
    (tmp_path / "other-out" / "x" / "verify_planted.yaml").write_text(planted, encoding="utf-8")
    (tmp_path / "verify_mine.yaml").write_text(planted.replace("planted", "mine"), encoding="utf-8")
    done = _pytest(tmp_path, "--collect-only", "--verifier-out", str(tmp_path / "other-out"))
    assert done.stdout.startswith("verify_mine.yaml::mine\n\n1 test collected"), done.stdout
    default = _pytest(tmp_path, "--collect-only")  # artifacts/ is the default out
    collected = [line for line in default.stdout.splitlines() if "::" in line]
    assert collected == ["other-out/x/verify_planted.yaml::planted", "verify_mine.yaml::mine"]
