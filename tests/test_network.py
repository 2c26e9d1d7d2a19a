"""network: loopback: the app and the browser reach only loopback, and the caller keeps
its network afterwards."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import Canary, server_command
from verifier.cli import main
from verifier.evidence import read_manifest


def _own_address() -> str | None:
    """A non-loopback address of this machine (a server there stays on this machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # a UDP connect sends no packet; it picks a route
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else str(address)


@pytest.fixture
def canary() -> Iterator[Canary]:
    address = _own_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to stand in for the outside")
    with Canary(address) as server:
        yield server


def _reachable(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=3).read()
    except OSError:
        return False
    return True


@pytest.mark.usefixtures("no_leaks")
def test_loopback_network_blocks_the_app_and_the_browser(
    tmp_path: Path,
    write_recipe: Callable[..., Path],
    canary: Canary,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _reachable(canary.url), "without the sandbox the canary must be reachable"
    canary.hits.clear()
    recipe = write_recipe(
        {
            "name": "contained",
            "network": "loopback",
            "app": {
                "command": server_command("outbound", canary.url),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [
                {"goto": f"/net.html?target={canary.url}"},
                {"expect_text": "outbound blocked"},
            ],
        }
    )
    assert main(["run", str(recipe), "--out", str(tmp_path), "--json"]) == 0
    bundle = Path(json.loads(capsys.readouterr().out)["bundle"])
    assert canary.hits == [], "a request left the sandbox"
    assert "outbound: blocked" in (bundle / "logs" / "app.log").read_text()
    console = (bundle / "logs" / "browser-console.jsonl").read_text()
    assert any(
        json.loads(line).get("type") == "requestfailed" and canary.url in line
        for line in console.splitlines()
    )
    assert read_manifest(bundle)["environment"]["network"] == "loopback"
    # The caller (this test process) is back in its own namespace.
    assert _reachable(canary.url)


def test_network_flag_overrides_the_recipe(
    tmp_path: Path,
    write_recipe: Callable[..., Path],
    canary: Canary,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = write_recipe(
        {
            "name": "host network",
            "app": {
                "command": server_command("outbound", canary.url),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [
                {"goto": f"/net.html?target={canary.url}"},
                {"expect_text": "outbound blocked"},
            ],
        }
    )
    code = main(["run", str(recipe), "--out", str(tmp_path), "--no-video", "--network", "loopback"])
    assert code == 0, capsys.readouterr().err
    assert canary.hits == []
