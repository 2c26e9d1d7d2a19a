"""Hostile pages and recipes: nothing they say runs in the report, no file escapes the bundle."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, sync_playwright

from tests.support import SITE, server_command
from verifier.browser import CHROMIUM_FLAGS
from verifier.cli import main
from verifier.evidence import read_manifest


@pytest.mark.usefixtures("no_leaks")
def test_script_injections_run_nowhere(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_recipe(
        {
            "name": "../../etc/<script>alert('name')</script>",
            "app": {
                "command": server_command("serve", str(SITE)),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [
                {"goto": "/hostile.html"},
                {"screenshot": "../../evil"},
                {"expect_text": {"text": "<b onmouseover=alert('x')>", "timeout": 1}},
            ],
        }
    )
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--out", str(out), "--json", "--no-video"]) == 1
    bundle = Path(json.loads(capsys.readouterr().out)["bundle"])
    assert bundle.parent == out  # the run id is a safe slug of the hostile name
    files = [p.relative_to(out) for p in out.rglob("*") if p.is_file()]
    assert all(str(p).startswith(bundle.name + "/") for p in files), files
    assert (bundle / "screenshots" / "02-screenshot-evil.png").is_file()

    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=list(CHROMIUM_FLAGS))
        try:
            page = browser.new_page()

            def dismiss(dialog: Dialog) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", dismiss)
            page.goto((bundle / "report.html").as_uri())
            page.wait_for_load_state("load")
            text = page.text_content("body") or ""
            injected = page.evaluate(
                "document.querySelectorAll('svg, iframe, img[src=x], b[onmouseover]').length"
            )
            scripts = page.evaluate("document.scripts.length")
        finally:
            browser.close()
    assert dialogs == []
    assert injected == 0 and scripts == 1
    assert "<script>alert('name')</script>" in text  # shown as text
    assert "<img src=x onerror=alert('error')>" in text  # the console error, as text
    assert "</script><script>alert('console')</script>" in text  # the console log, as text


# A page that lies about where it is: its innerWidth 400 px short (its window's side
# borders look 400 px wide), its innerHeight untouched. Asked in the page's own world,
# every aimed click went 200 px right, onto "Delete everything".
LIAR = """<!doctype html><html><head><title>Liar</title><script>
  for (const [name, less] of [['innerWidth', 400], ['innerHeight', 0]]) {
    const real = Object.getOwnPropertyDescriptor(window, name);
    Object.defineProperty(window, name, {configurable: true,
                                         get() { return real.get.call(window) - less; }});
  }
</script><style>
  button { position: absolute; top: 100px; width: 150px; height: 50px; }
</style></head><body>
<button id="safe" style="left: 100px" onclick="location.hash = 'safe'">Safe</button>
<button id="danger" style="left: 300px" onclick="location.hash = 'danger'"
  >Delete everything</button>
</body></html>"""


@pytest.mark.usefixtures("no_leaks")
def test_a_page_that_lies_about_its_geometry_is_clicked_where_it_is(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "liar.html").write_text(LIAR, encoding="utf-8")
    recipe = write_recipe(
        {
            "name": "liar",
            "app": {
                "command": server_command("serve", str(site)),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [
                {"goto": "/liar.html"},
                {"click": "#safe"},
                {"expect_url": {"url": "/liar.html#safe", "timeout": 2}},
                {"click": "text=Delete everything"},
                {"expect_url": {"url": "/liar.html#danger", "timeout": 2}},
            ],
        }
    )
    out = tmp_path / "out"
    code = main(["run", str(recipe), "--out", str(out), "--json", "--no-video"])
    record = json.loads(capsys.readouterr().out)
    assert code == 0, record


# A page that lies about where an element is: "Safe"'s box said 200 px right, where
# "Delete everything" is, and what is there said "Safe". Aimed by the page's word, the
# click went there. A wrapped link's box (three lines) is the browser's own.
BOX_LIAR = """<!doctype html><html><head><title>Box liar</title><script>
  const real = Element.prototype.getBoundingClientRect;
  Element.prototype.getBoundingClientRect = function () {
    const r = real.call(this);
    return this.id === 'safe' ? new DOMRect(r.x + 200, r.y, r.width, r.height) : r;
  };
  const hit = Document.prototype.elementFromPoint;  // and "Safe" is what is there
  Document.prototype.elementFromPoint = function (x, y) {
    const el = hit.call(this, x, y);
    return el && el.id === 'danger' ? document.getElementById('safe') : el;
  };
</script><style>
  button { position: absolute; top: 100px; width: 150px; height: 50px; }
  p { position: absolute; top: 300px; width: 120px; font: 16px sans-serif; }
</style></head><body>
<button id="safe" style="left: 100px" onclick="location.hash = 'safe'">Safe</button>
<button id="danger" style="left: 300px" onclick="location.hash = 'danger'"
  >Delete everything</button>
<p>Read <a id="wrapped" href="#wrapped">the terms that wrap over three lines</a> first.</p>
<x-closed id="closed" style="position: absolute; top: 400px"></x-closed>
<script>
  // A closed shadow root the page hands out itself: this world sees into it, ours not.
  customElements.define('x-closed', class extends HTMLElement {
    constructor() {
      super();
      this._root = this.attachShadow({ mode: 'closed' });
      this._root.innerHTML = '<button onclick="location.hash = `closed`">Closed</button>';
    }
    get shadowRoot() { return this._root; }
  });
</script>
</body></html>"""


# A page that hides what covers "Safe": a see-through veil that takes the click, a hit
# test that says "Safe" is there, "Safe" saying it is a div#veil (as the veil is, to a
# test in another world), and Array.prototype.join telling "Safe"'s place in the page as
# the veil's. By the page's word the click reached "Safe". "Also safe" is covered by a
# veil that says it is inside it.
HIT_LIAR = """<!doctype html><html><head><title>Hit liar</title><script>
  const hit = Document.prototype.elementFromPoint;
  Document.prototype.elementFromPoint = function (x, y) {
    const el = hit.call(this, x, y);
    return el && el.id === 'veil' ? document.getElementById('safe') : el;
  };
  // Where a node is, as verifier tells it: "Safe"'s place is told as the veil's.
  const join = Array.prototype.join;
  const path = (n) => {
    const out = [];
    for (; n; n = n.parentNode) {
      let i = 0;
      for (let m = n.previousSibling; m; m = m.previousSibling) i++;
      out.push(i);
    }
    return join.call(out.reverse(), '/');
  };
  Array.prototype.join = function (...args) {
    const said = join.apply(this, args), safe = document.getElementById('safe');
    return safe && said === path(safe) ? path(document.getElementById('veil')) : said;
  };
  addEventListener('DOMContentLoaded', () => {
    const safe = document.getElementById('safe');
    Object.defineProperty(safe, 'localName', { get: () => 'div' });
    Object.defineProperty(safe, 'id', { get: () => 'veil' });
    Object.defineProperty(safe, 'classList', { get: () => [] });
    Object.defineProperty(document.getElementById('veil2'), 'parentNode',
                          { get: () => document.getElementById('safe2') });
  });
</script><style>
  button, div { position: absolute; left: 100px; width: 150px; height: 50px; }
</style></head><body>
<button id="safe" style="top: 100px" onclick="location.hash = 'safe'">Safe</button>
<div id="veil" style="top: 100px" onclick="location.hash = 'veil'"></div>
<button id="safe2" style="top: 200px" onclick="location.hash = 'safe2'">Also safe</button>
<div id="veil2" style="top: 200px" onclick="location.hash = 'veil2'"></div>
</body></html>"""


@pytest.mark.usefixtures("no_leaks")
def test_a_page_that_lies_about_an_elements_box_or_what_covers_it_is_not_believed(
    tmp_path: Path, write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "liar.html").write_text(BOX_LIAR, encoding="utf-8")
    (site / "veil.html").write_text(HIT_LIAR, encoding="utf-8")
    app = {"command": server_command("serve", str(site)), "url": "http://127.0.0.1:{port}/"}
    veiled = [
        write_recipe(
            {
                "name": f"hit liar {n}",
                "app": app,
                "steps": [
                    {"goto": "/veil.html"},
                    {"click": {"selector": f"#safe{n}", "timeout": 3}},
                    {"expect_url": {"url": f"/veil.html#veil{n}", "timeout": 2}},
                ],
            }
        )
        for n in ("", "2")
    ]
    recipe = write_recipe(
        {
            "name": "box liar",
            "app": app,
            "steps": [
                {"goto": "/liar.html"},
                {"click": "#wrapped"},
                {"expect_url": {"url": "/liar.html#wrapped", "timeout": 2}},
                {"click": "#closed"},
                {"expect_url": {"url": "/liar.html#closed", "timeout": 2}},
                {"click": {"selector": "#safe", "timeout": 3}},
                {"expect_url": {"url": "/liar.html#danger", "timeout": 2}},
            ],
        }
    )
    out = tmp_path / "out"
    argv = ["run", str(recipe), *map(str, veiled), "--out", str(out), "--json", "--no-video"]
    code = main(argv)
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for record, veil in zip(records[1:], ("veil", "veil2"), strict=True):
        steps = read_manifest(Path(record["bundle"]))["steps"]
        assert [s["status"] for s in steps] == ["passed", "failed", "skipped"], steps
        error = steps[1]["error"] or ""
        assert f"hit test finds <div#{veil}> there" in error and "misreports" in error, error
    steps = read_manifest(Path(records[0]["bundle"]))["steps"]
    assert code == 1 and [s["status"] for s in steps[:5]] == ["passed"] * 5, steps
    error = steps[5]["error"] or ""
    assert steps[5]["status"] == "failed" and "misreports where it is" in error, steps[5]
    assert "draws it at (100, 100), 150x50" in error, error
