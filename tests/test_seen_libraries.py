"""Real component libraries, installed from npm (once, into the checkout's git-ignored
.cache/), served by Vite and verified through ``verifier run``: react-select, whose
see-through input lies over its placeholder (a click there must open it), and
react-window (1.x), which turns the pointer off its rows while it scrolls (a click right
after a scroll must wait, not fail)."""

from __future__ import annotations

import fcntl
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import NPM_CACHE, npm
from verifier.cli import main
from verifier.evidence import read_manifest

pytestmark = pytest.mark.usefixtures("no_leaks")

ROOT = Path(__file__).resolve().parent.parent
CACHE = NPM_CACHE
PACKAGES = {
    "react": "19.2.0",
    "react-dom": "19.2.0",
    "react-select": "5.10.2",
    "react-window": "1.8.11",
}
VITE = "7.3.8"
MAIN_JS = """
import React, { useState } from 'react';
import { createRoot } from 'react-dom/client';
import Select from 'react-select';
import { FixedSizeList } from 'react-window';

const h = React.createElement;
const options = [
  { value: 'apple', label: 'Apple' },
  { value: 'banana', label: 'Banana' },
  { value: 'cherry', label: 'Cherry' },
];
const Row = ({ index, style }) => h('div', { style },
  h('button', { id: 'row-' + index, onClick: () => {
    document.getElementById('picked').textContent = 'picked row ' + index;
  } }, 'Row ' + index));

function App() {
  const [fruit, setFruit] = useState(null);
  return h('div', null,
    h('h1', null, 'Components'),
    h('div', { style: { width: 320 } },
      h(Select, { options, inputId: 'fruit', onChange: setFruit,
                  placeholder: 'Select a fruit...' })),
    h('p', { id: 'chosen' }, fruit ? 'chosen ' + fruit.label : 'nothing chosen'),
    h(FixedSizeList, { height: 240, width: 320, itemCount: 1000, itemSize: 30,
                       className: 'rows' }, Row),
    h('p', { id: 'picked' }, 'picked nothing'));
}
createRoot(document.getElementById('root')).render(h(App));
"""
INDEX_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>components</title></head>
<body><div id="root"></div><script type="module" src="/main.js"></script></body></html>
"""


@pytest.fixture(scope="module")
def components_app() -> Iterator[Path]:
    """A Vite app with react-select and react-window, made and installed on first use."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: the component app cannot be made")
    CACHE.mkdir(parents=True, exist_ok=True)
    app = CACHE / "components-app"
    with (CACHE / "components-app.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be making it
        package = {
            "name": "components-app",
            "private": True,
            "type": "module",
            "dependencies": PACKAGES,
            "devDependencies": {"vite": VITE},
        }
        made = app / "package.json"
        if (
            not made.is_file()
            or json.loads(made.read_text()) != package
            or not (app / "node_modules" / ".bin" / "vite").exists()
        ):
            shutil.rmtree(app, ignore_errors=True)
            app.mkdir()
            (app / "package.json").write_text(json.dumps(package, indent=1))
            npm(["install", "--no-audit", "--no-fund"], app)
        (app / "main.js").write_text(MAIN_JS)
        (app / "index.html").write_text(INDEX_HTML)
    yield app


def test_react_select_and_react_window_as_a_person_uses_them(
    components_app: Path,
    write_recipe: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = write_recipe(
        {
            "name": "Components",
            "app": {
                "command": [
                    str(components_app / "node_modules" / ".bin" / "vite"),
                    "--port",
                    "{port}",
                    "--strictPort",
                    "--host",
                    "127.0.0.1",
                ],
                "cwd": str(components_app),
                "url": "http://127.0.0.1:{port}/",
                "ready_timeout": 60,
            },
            "video": False,
            "steps": [
                {"goto": "/"},
                {"expect_text": "Components"},
                # The placeholder, under react-select's see-through input: opens it.
                {"click": "text=Select a fruit..."},
                {"click": "text=Banana"},
                {"expect_text": "chosen Banana"},
                # A scroll, then at once a row: react-window keeps the pointer off them
                # while it scrolls.
                {"scroll": {"selector": ".rows", "dy": 600}},
                {"click": "#row-25"},
                {"expect_text": "picked row 25"},
                {"scroll": {"selector": ".rows", "dy": 600}},
                {"click": "#row-45"},
                {"expect_text": "picked row 45"},
                # What the list keeps out of the DOM is not there to see.
                {"expect_no_text": "Row 999"},
            ],
        }
    )
    code = main(["run", str(recipe), "--out", str(tmp_path / "out"), "--json"])
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert code == 0, (result, captured.err)
    steps = read_manifest(Path(result["bundle"]))["steps"]
    assert all(s["status"] == "passed" for s in steps)
