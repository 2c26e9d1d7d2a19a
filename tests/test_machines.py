"""A machine that lacks a system library Playwright's node needs: one line, exit 2.

The dynamic loader really refuses the library in these tests; nothing is mocked. A stock
minimal Debian 12 has no libatomic1, and the node binary in Playwright's wheel links it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from verifier.browser._syslibs import DriverStderr
from verifier.evidence import read_manifest

pytestmark = pytest.mark.usefixtures("no_leaks")

NO_SUCH_SITE = "http://127.0.0.1:9/"  # never reached: the driver fails first


def _run(recipe: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verifier", "run", str(recipe), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _recipe(tmp_path: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(f"name: any page\nurl: {NO_SUCH_SITE}\nsteps:\n  - goto: /\n")
    return path


def _assert_one_line(proc: subprocess.CompletedProcess[str], out: Path, reason: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Playwright's driver cannot start" in lines[0]
    assert f"libatomic.so.1 ({reason})" in lines[0]
    assert "install the Debian package libatomic1 (apt-get install libatomic1)" in lines[0]
    (bundle,) = out.iterdir()
    manifest = read_manifest(bundle)
    assert manifest["verdict"] == "error"
    assert "libatomic1" in str(manifest["error"])


def test_a_library_the_loader_rejects_is_named_with_its_package(tmp_path: Path) -> None:
    # LD_LIBRARY_PATH is searched first: an empty libatomic.so.1 there stops node's loader
    # ("file too short") before node runs. Nothing else a run starts links libatomic.
    libs = tmp_path / "libs"
    libs.mkdir()
    (libs / "libatomic.so.1").write_bytes(b"")
    env = {**os.environ, "LD_LIBRARY_PATH": str(libs)}
    out = tmp_path / "out"
    proc = _run(_recipe(tmp_path), out, env)
    _assert_one_line(proc, out, "file too short")


def _library_dir() -> Path | None:
    """The folder the loader finds libatomic.so.1 in, from ``ldconfig -p``."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    try:
        listing = subprocess.run([ldconfig, "-p"], capture_output=True, text=True).stdout
    except OSError:
        return None
    for line in listing.splitlines():
        if line.strip().startswith("libatomic.so.1 ") and "x86-64" in line:
            return Path(line.rsplit("=> ", 1)[1]).resolve().parent
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts an overlay in a mount namespace (root)")
def test_a_library_that_is_not_installed_is_named_with_its_package(tmp_path: Path) -> None:
    # As on a stock Debian without libatomic1: in a private mount namespace, an overlay
    # whose upper layer deletes libatomic.so.1 (a whiteout) lies over the library folder.
    folder = _library_dir()
    if folder is None or shutil.which("unshare") is None:
        pytest.skip("needs libatomic.so.1 installed and util-linux's unshare")
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    os.mknod(upper / "libatomic.so.1", 0o600 | 0o020000, os.makedev(0, 0))  # a whiteout
    out = tmp_path / "out"
    mount = (
        f"mount -t overlay overlay -o lowerdir={folder},upperdir={upper},workdir={work} {folder}"
    )
    argv = [sys.executable, "-m", "verifier", "run", str(_recipe(tmp_path)), "--out", str(out)]
    namespace = ["unshare", "--mount", "--propagation", "private", "--"]
    proc = subprocess.run(
        [*namespace, "sh", "-c", f'{mount} && exec "$@"', "sh", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    _assert_one_line(proc, out, "cannot open shared object file: No such file or directory")


def test_the_driver_s_other_output_still_reaches_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    # A child handed sys.stderr's descriptor, as Playwright hands the driver: its lines
    # come through; the loader's line is held back for the error, an unknown library is
    # named with how to find its package.
    script = (
        "echo 'driver says hello' >&2;"
        "echo '/x/node: error while loading shared libraries: libfoo.so.3:"
        " cannot open shared object file: No such file or directory' >&2;"
        "printf 'no newline at the end' >&2"
    )
    with DriverStderr() as stderr:
        subprocess.run(["sh", "-c", script], stderr=sys.stderr.fileno(), check=True)
        message = stderr.failure(Exception("Connection closed while reading from the driver"))
    assert message == (
        "Playwright's driver cannot start: '/x/node' needs libfoo.so.3 (cannot open shared "
        "object file: No such file or directory); install the Debian package that ships it "
        "(apt-file search libfoo.so.3), or run desktop-image/provision.sh"
    )
    assert capfd.readouterr().err == "driver says hello\nno newline at the end"


def test_a_driver_that_fails_otherwise_says_so_in_one_line() -> None:
    with DriverStderr() as stderr:
        message = stderr.failure(Exception("Connection closed\n  call log: ..."))
    assert message == "Playwright's driver did not start: Connection closed"
