"""`verifier mcp` driven by the real MCP SDK client, over stdio and over HTTP, the way a model
would: look at the screen, find a button by its pixels, click it, type, zoom, finish. The
session's recipe, with one check added, then passes `verifier run`."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import httpx2
import numpy as np
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.support import SITE, server_command
from verifier.cli import main
from verifier.computer import decode
from verifier.evidence import read_manifest, verify_bundle
from verifier.recipe import load_recipe

ROOT = Path(__file__).parent.parent
GREEN = (0, 160, 80)  # the lab's button
YELLOW = (255, 236, 150)  # the lab's text field

pytestmark = pytest.mark.usefixtures("no_leaks")


def lab_recipe(tmp_path: Path) -> Path:
    path = tmp_path / "lab.yaml"
    recipe = {
        "name": "computer lab",
        "app": {
            "command": server_command("serve", str(SITE)),
            "url": "http://127.0.0.1:{port}/computer-lab.html",
            "ready_timeout": 20,
        },
        "screen": "1280x800",
        "steps": [{"goto": "/computer-lab.html"}],
    }
    path.write_text(json.dumps(recipe), encoding="utf-8")
    return path


def image_of(result: Any) -> np.ndarray:
    images = [c for c in result.content if c.type == "image"]
    assert len(images) == 1, result
    return decode(base64.b64decode(images[0].data))


def text_of(result: Any) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


def find(frame: np.ndarray, colour: tuple[int, int, int]) -> tuple[int, int]:
    """Centre of the pixels of ``colour`` (within a little, for lossy encodings)."""
    mask = (np.abs(frame.astype(int) - colour) <= 6).all(axis=2)
    ys, xs = np.nonzero(mask)
    assert len(xs) > 500, f"nothing of colour {colour} on the screen"
    return int((xs.min() + xs.max()) // 2), int((ys.min() + ys.max()) // 2)


def stdio_params(*args: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "verifier.mcp", *args],
        env=dict(os.environ),
        cwd=str(ROOT),
    )


async def agent_session(client: Client) -> dict[str, Any]:
    """What a model does: look, click the green button, fill the field, zoom, finish."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {
        "computer",
        "finish",
        "verify",
        "snapshot",
        "expect",
        "logs",
        "navigate",
        "tabs",
    }
    assert "zoom" in tools["computer"].input_schema["properties"]["action"]["enum"]
    shot = await client.call_tool("computer", {"action": "screenshot"})
    screen = image_of(shot)
    assert screen.shape == (800, 1280, 3)
    bx, by = find(screen, GREEN)
    clicked = await client.call_tool("computer", {"action": "left_click", "coordinate": [bx, by]})
    assert not clicked.is_error and 'on <button#go> "Go"' in text_of(clicked)
    after = image_of(clicked)
    assert not np.array_equal(after, screen)  # "Clicked 1 time" appeared
    fx, fy = find(after, YELLOW)
    field = await client.call_tool("computer", {"action": "left_click", "coordinate": [fx, fy]})
    assert "<input#name>" in text_of(field)
    typed = await client.call_tool("computer", {"action": "type", "text": "Ada"})
    assert text_of(typed) == "typed 3 characters; the URL, title and tabs did not change"
    zoom = await client.call_tool(
        "computer", {"action": "zoom", "region": [bx - 100, by - 40, bx + 400, by + 300]}
    )
    assert image_of(zoom).shape == (340, 500, 3)
    refused = await client.call_tool("computer", {"action": "left_click", "coordinate": [1280, 5]})
    assert refused.is_error and "outside the 1280x800 screen" in text_of(refused)
    where = await client.call_tool("computer", {"action": "cursor_position"})
    assert text_of(where) == f"X={fx},Y={fy}"
    done = await client.call_tool("finish", {"verdict": "passed", "summary": "greets Ada"})
    assert not done.is_error
    after_finish = await client.call_tool("computer", {"action": "screenshot"})
    assert after_finish.is_error and "the session is finished" in text_of(after_finish)
    return dict(done.structured_content or {})


def check_bundle_and_replay(finished: dict[str, Any], tmp_path: Path) -> None:
    bundle = Path(finished["bundle"])
    manifest = read_manifest(bundle)
    assert manifest["verdict"] == "passed" and manifest["finished"]
    steps = manifest["steps"]
    assert [s["action"] for s in steps][-6:] == [
        "left_click",
        "left_click",
        "type",
        "zoom",
        "left_click",
        "cursor_position",
    ]
    assert steps[-1]["status"] == "passed" and steps[-2]["status"] == "error"
    click = steps[-6]
    assert click["details"]["selector"] == "#go" and click["points"]
    assert any(p.endswith("-before.png") for p in click["screenshots"])
    assert (bundle / "video.mp4").is_file() and manifest["video"]["chapters"] == len(steps)
    assert (bundle / "report.html").is_file() and (bundle / "logs" / "verifier.log").is_file()
    assert verify_bundle(bundle) == []
    recipe_path = Path(finished["session_recipe"])
    assert recipe_path.parent == bundle
    text = recipe_path.read_text(encoding="utf-8")
    assert "- click: '#go'" in text and "- click: '#name'" in text and "- type: Ada" in text
    # A human adds the check the agent made by eye; the replay passes.
    replay = tmp_path / "replay.yaml"
    replay.write_text(text + "  - expect_text: Hello, Ada!\n", encoding="utf-8")
    recipe = load_recipe(replay)
    assert [s.action for s in recipe.steps] == ["goto", "click", "click", "type", "expect_text"]
    assert main(["run", str(replay), "--out", str(tmp_path / "replayed"), "--no-video"]) == 0


def test_stdio_session_becomes_evidence_and_a_passing_recipe(tmp_path: Path) -> None:
    async def session() -> dict[str, Any]:
        params = stdio_params("--recipe", str(lab_recipe(tmp_path)), "--out", str(tmp_path / "out"))
        async with Client(params) as client:
            return await agent_session(client)

    finished = anyio.run(session)
    check_bundle_and_replay(finished, tmp_path)


def start_http(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "verifier.mcp", "--http", "127.0.0.1:0", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen.append(line)
        found = re.search(r"serving (http://\S+); send Authorization: Bearer (\S+)", line)
        if found:
            return proc, found[1], found[2]
        if not line and proc.poll() is not None:
            break
    proc.kill()
    pytest.fail(f"verifier mcp --http did not start: {''.join(seen)}")


def post(url: str, headers: dict[str, str]) -> int:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
    request = urllib.request.Request(
        url,
        data=body,
        headers={"Content-Type": "application/json", "Accept": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_http_needs_the_token_and_ends_with_finish(tmp_path: Path) -> None:
    url_page = (SITE / "computer-lab.html").as_uri()
    proc, url, token = start_http(tmp_path, "--url", url_page, "--out", str(tmp_path / "out"))
    with proc:
        assert post(url, {}) == 401
        assert post(url, {"Authorization": "Bearer wrong"}) == 401
        assert post(url, {"Authorization": f"Basic {token}"}) == 401

        async def session() -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
                async with Client(streamable_http_client(url, http_client=http)) as client:
                    shot = await client.call_tool("computer", {"action": "screenshot"})
                    bx, by = find(image_of(shot), GREEN)
                    await client.call_tool(
                        "computer", {"action": "left_click", "coordinate": [bx, by]}
                    )
                    done = await client.call_tool("finish", {"verdict": "failed", "summary": "x"})
                    return dict(done.structured_content or {})

        finished = anyio.run(session)
        assert proc.wait(timeout=30) == 0  # over HTTP, finish ends the server
        assert proc.stdout is not None and proc.stdout.read() == ""  # nothing on stdout
    manifest = read_manifest(Path(finished["bundle"]))
    assert manifest["verdict"] == "failed"  # the agent's conclusion
    assert manifest["setup"]["session"]["summary"] == "x"
    text = Path(finished["session_recipe"]).read_text(encoding="utf-8")
    # A file URL is no base URL: the replay opens it with its first goto, and loads.
    assert "allow_file_urls: true" in text and f"goto: {url_page}" in text
    assert load_recipe(Path(finished["session_recipe"])).url is None


def test_cli_wiring_and_non_loopback_refusal(capsys: pytest.CaptureFixture[str]) -> None:
    from verifier.mcp.cli import main as module_main

    assert main(["mcp", "--http", "0.0.0.0:8765"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: --http '0.0.0.0:8765' is not a loopback address;")
    assert err.count("\n") == 1
    assert module_main(["--scale", "huge"]) == 2  # python -m verifier.mcp
    assert "--scale 'huge' is not WIDTHxHEIGHT" in capsys.readouterr().err


def test_sigterm_still_writes_the_bundle(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc, _url, _token = start_http(tmp_path, "--out", str(out), "--no-video")
    with proc:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
        assert proc.stderr is not None
        assert "interrupted by SIGTERM (bundle:" in proc.stderr.read()
    (bundle,) = out.iterdir()
    manifest = read_manifest(bundle)
    assert manifest["verdict"] == "error" and manifest["finished"]
    assert "SIGTERM" in manifest["error"]["message"]
    assert (bundle / "session.yaml").is_file()


def test_a_client_that_leaves_without_finish_still_gets_a_bundle(tmp_path: Path) -> None:
    out = tmp_path / "out"

    async def session() -> float:
        async with Client(stdio_params("--out", str(out))) as client:
            shot = await client.call_tool("computer", {"action": "screenshot"})
            assert image_of(shot).shape == (800, 1280, 3)
            t0 = time.monotonic()
        return time.monotonic() - t0

    took = anyio.run(session)
    (bundle,) = out.iterdir()
    manifest = read_manifest(bundle)
    assert manifest["verdict"] == "error"
    assert manifest["error"]["message"] == "the MCP client left before calling finish"
    assert manifest["video"] is not None and verify_bundle(bundle) == []
    # The SDK client waits 2 s for a server to exit after closing its stdin, then sends
    # SIGTERM (which teardown rides out) and SIGKILL 2 s later: the bundle must be done first.
    print(f"client left -> bundle written and server gone: {took:.2f} s")
    assert took < 4.0, f"the server took {took:.1f} s to write its bundle and exit"


def test_a_dead_dev_server_makes_the_verdict_error(tmp_path: Path) -> None:
    out = tmp_path / "out"

    async def session() -> tuple[str, dict[str, Any]]:
        args = ("--recipe", str(lab_recipe(tmp_path)), "--out", str(out), "--no-video")
        async with Client(stdio_params(*args)) as client:
            await client.call_tool("computer", {"action": "screenshot"})
            (manifest,) = out.glob("*/manifest.json")
            os.kill(read_manifest(manifest.parent)["setup"]["app"]["pid"], signal.SIGKILL)
            deadline = time.monotonic() + 10
            while True:
                shot = await client.call_tool("computer", {"action": "screenshot"})
                if "warning:" in text_of(shot) or time.monotonic() > deadline:
                    break
            done = await client.call_tool("finish", {"verdict": "passed"})
            return text_of(shot), dict(done.structured_content or {})

    text, finished = anyio.run(session)
    assert "warning: dev server exited" in text
    assert finished["verdict"] == "error"
    manifest = read_manifest(Path(finished["bundle"]))
    assert manifest["verdict"] == "error" and "dev server exited" in manifest["error"]["message"]
