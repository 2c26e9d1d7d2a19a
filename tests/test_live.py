"""The live view: `verifier run --live` / `--take-over` serve the run's desktop to a real
browser (x11vnc on a Unix socket, websockify and Debian's noVNC on loopback), only to
whoever has the URL's token, and stop with the run on every path."""

from __future__ import annotations

import base64
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.support import live_processes, server_command
from verifier.browser import CHROMIUM
from verifier.cli import main
from verifier.errors import DisplayError
from verifier.evidence import read_manifest
from verifier.live import LiveView

pytestmark = pytest.mark.usefixtures("no_leaks")

ROOT = Path(__file__).parent.parent
LIVE = {"x11vnc", "websockify"}
MAGENTA = (220, 40, 200)
CYAN = (40, 200, 220)
URL_LINE = re.compile(r"live view at (http://127\.0\.0\.1:(\d+)/\?token=([\w-]+))")

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>live</title><style>
  body { margin: 0; font-family: 'DejaVu Sans', sans-serif; }
  #pad { position: absolute; left: 100px; top: 100px; width: 500px; height: 300px;
         background: rgb(220, 40, 200); }
  #pad.done { background: rgb(40, 200, 220); }
  #status { position: absolute; left: 100px; top: 450px; font-size: 30px; }
</style></head>
<body><div id="pad"></div><p id="status">waiting</p>
<script>
  let clicks = 0;
  document.getElementById('pad').addEventListener('click', () => {
    clicks += 1;
    document.getElementById('pad').className = 'done';
    document.getElementById('status').textContent = 'Released ' + clicks;
  });
</script></body></html>
"""

# The bounding box of a colour in the viewer's canvas (the desktop as noVNC drew it), in
# the viewer page's CSS pixels; null until enough of it is there.
FIND_JS = """
([r, g, b]) => {
  const c = document.querySelector('#screen canvas');
  if (!c || !c.width) return null;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0, x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let i = 0; i < d.length; i += 4) {
    if (Math.abs(d[i] - r) <= 24 && Math.abs(d[i + 1] - g) <= 24 && Math.abs(d[i + 2] - b) <= 24) {
      const p = i / 4, x = p % c.width, y = Math.floor(p / c.width);
      n++; x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
    }
  }
  if (n < 20000) return null;
  const rect = c.getBoundingClientRect(), s = rect.width / c.width;
  return {n, w: x1 - x0 + 1, h: y1 - y0 + 1, canvas: [c.width, c.height],
          x: rect.left + (x0 + x1) / 2 * s, y: rect.top + (y0 + y1) / 2 * s};
}
"""


def live_recipe(tmp_path: Path) -> Path:
    """A page to click twice, through the live view."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "live.html").write_text(PAGE, encoding="utf-8")
    recipe = {
        "name": "live view",
        "app": {
            "command": server_command("serve", str(site)),
            "url": "http://127.0.0.1:{port}/live.html",
            "ready_timeout": 20,
        },
        "screen": "1280x800",
        "video": False,
        "steps": [
            {"goto": "/live.html"},
            {"wait_for": {"selector": "text=Released 1", "timeout": 120}},
            {"wait_for": {"selector": "text=Released 2", "timeout": 120}},
        ],
    }
    path = tmp_path / "live.yaml"
    path.write_text(json.dumps(recipe), encoding="utf-8")
    return path


def start_run(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "verifier", "run", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def read_url(proc: subprocess.Popen[bytes], *, timeout: float = 90) -> tuple[str, int, str]:
    """The live view's URL, port and token from the command's stderr."""
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stderr], [], [], left)
        if not ready:
            break
        chunk = os.read(proc.stderr.fileno(), 65536)
        if not chunk:
            break
        seen += chunk
        found = URL_LINE.search(seen.decode("utf-8", "replace"))
        if found:
            return found[1], int(found[2]), found[3]
    proc.kill()
    pytest.fail(f"no live view URL on stderr: {seen.decode(errors='replace')}")


def websocket_bytes(port: int, path: str, *, timeout: float = 15) -> bytes:
    """Open a WebSocket at ``path`` by hand; what the server sends until it closes the
    connection, or shows the VNC banner (inside a WebSocket frame), or the time is up."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: binary\r\n\r\n"
    )
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request.encode())
        deadline = time.monotonic() + timeout
        while b"RFB 003" not in data and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
    return data


def tcp_listeners(pid: int) -> list[str]:
    """The TCP ports process ``pid`` listens on (in its own network namespace)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                ports.append(fields[1])
    return ports


def live_children() -> dict[int, str]:
    return live_processes(LIVE)


def wait_live_gone(before: dict[int, str], *, within: float = 10.0) -> dict[int, str]:
    deadline = time.monotonic() + within
    while True:
        left = {p: d for p, d in live_children().items() if p not in before}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@pytest.fixture
def viewer() -> Iterator[Page]:
    """A real (headless) Chromium to open the live view in."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 900})
        finally:
            browser.close()


def find_colour(page: Page, colour: tuple[int, int, int], *, timeout: float = 30) -> dict[str, Any]:
    handle = page.wait_for_function(FIND_JS, arg=list(colour), timeout=timeout * 1000)
    found = handle.json_value()
    assert isinstance(found, dict)
    return found


def test_take_over_shows_the_desktop_to_the_token_only_and_takes_input(
    tmp_path: Path, viewer: Page
) -> None:
    before = live_children()
    out = tmp_path / "out"
    proc = start_run(str(live_recipe(tmp_path)), "--take-over", "--out", str(out), "--json")
    with proc:
        url, port, token = read_url(proc)
        public = f"http://127.0.0.1:{port}/"
        # Without the token, or with a wrong one, nothing of the desktop is shown.
        viewer.goto(public)
        viewer.wait_for_function("document.body.dataset.state === 'no-token'")
        assert viewer.locator("canvas").count() == 0
        viewer.goto(f"{public}?token=wrong-{token[:8]}")
        viewer.wait_for_function("document.body.dataset.state === 'disconnected'")
        assert viewer.evaluate(FIND_JS, list(MAGENTA)) is None
        assert b"RFB" not in websocket_bytes(port, "/websockify")
        assert b"RFB" not in websocket_bytes(port, "/websockify?token=nope")
        assert b"RFB 003" in websocket_bytes(port, f"/websockify?token={token}")
        # The desktop has no VNC port of its own: only the token-checking front listens.
        (x11vnc,) = [p for p, d in live_children().items() if d.startswith("x11vnc")]
        assert tcp_listeners(x11vnc) == []
        assert b"-viewonly" not in Path(f"/proc/{x11vnc}/cmdline").read_bytes().split(b"\0")
        # With it, the page under test is there, in its pixels, and the person can click.
        viewer.goto(url)
        viewer.wait_for_function("document.body.dataset.state === 'connected'")
        pad = find_colour(viewer, MAGENTA)
        assert pad["canvas"] == [1280, 800] and abs(pad["w"] - 500) <= 2
        viewer.mouse.click(pad["x"], pad["y"])
        find_colour(viewer, CYAN)  # the page saw the click, and the view shows it
        viewer.mouse.click(pad["x"], pad["y"])  # the run waits for a second one
        assert proc.wait(timeout=60) == 0
        assert proc.stdout is not None
        record = json.loads(proc.stdout.read().decode().splitlines()[-1])
    assert record["verdict"] == "passed"
    bundle = Path(record["bundle"])
    manifest = read_manifest(bundle)
    assert manifest["setup"]["live"] == {"url": public, "take_over": True}
    for path in bundle.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    assert (bundle / "logs" / "x11vnc.log").is_file()
    assert "[live-token]" in (bundle / "logs" / "websockify.log").read_text()
    viewer.wait_for_function("document.body.dataset.state === 'disconnected'")
    assert wait_live_gone(before) == {}


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_the_live_view_stops_with_the_run(tmp_path: Path, how: signal.Signals) -> None:
    before = live_children()
    out = tmp_path / "out"
    proc = start_run(str(live_recipe(tmp_path)), "--live", "--out", str(out), "--no-video")
    with proc:
        _url, port, token = read_url(proc)
        assert b"RFB 003" in websocket_bytes(port, f"/websockify?token={token}")
        assert {d.split(":")[0] for d in live_children().values()} >= LIVE
        (x11vnc,) = [p for p, d in live_children().items() if d.startswith("x11vnc")]
        assert b"-viewonly" in Path(f"/proc/{x11vnc}/cmdline").read_bytes().split(b"\0")
        proc.send_signal(how)
        code = proc.wait(timeout=60)
    assert code == (143 if how == signal.SIGTERM else -signal.SIGKILL)
    assert wait_live_gone(before) == {}
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


@pytest.mark.skipif(os.geteuid() != 0, reason="network: loopback needs root or CAP_SYS_ADMIN")
def test_a_loopback_run_can_still_be_watched(tmp_path: Path) -> None:
    """The view's socket is opened before the run enters its network namespace."""
    path = tmp_path / "blank.yaml"
    steps = [{"wait_for": {"selector": "text=never there", "timeout": 120}}]
    body = {"name": "watched", "url": "http://127.0.0.1:9/", "network": "loopback", "steps": steps}
    path.write_text(json.dumps(body), encoding="utf-8")
    before = live_children()
    proc = start_run(str(path), "--live", "--out", str(tmp_path / "out"), "--no-video")
    with proc:
        _url, port, token = read_url(proc)
        (x11vnc,) = [p for p, d in live_children().items() if d.startswith("x11vnc")]
        assert os.stat(f"/proc/{x11vnc}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
        assert b"RFB 003" in websocket_bytes(port, f"/websockify?token={token}")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
    assert wait_live_gone(before) == {}


def test_a_live_view_that_cannot_start_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = live_children()
    why = r"^the live view's x11vnc on :9987 exited: XOpenDisplay\(\":9987\"\) failed"
    with pytest.raises(DisplayError, match=why):
        LiveView(":9987", log_dir=tmp_path).start()
    assert wait_live_gone(before) == {}
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DisplayError, match=r"'x11vnc' is not installed; .*apt-get install"):
        LiveView(":0").start()


def test_live_and_jobs_do_not_mix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "a.yaml", "b.yaml", "--jobs", "2", "--live"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: --live shows one desktop at a time") and err.count("\n") == 1
