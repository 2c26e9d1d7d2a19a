"""Real flows across origins and windows, through the installed ``verifier``: a login
across a shop and its login provider saved by one recipe and reused by the next on new
ports; an OAuth-style popup and print views that close themselves; a CSV export checked
by its contents; the focus and the history."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support import APPS
from verifier._storage import load_state, save_state
from verifier.errors import BrowserError
from verifier.evidence import read_manifest

pytestmark = pytest.mark.usefixtures("no_leaks")

VERIFIER = shutil.which("verifier")
FLOWS = APPS / "flows.py"


def shop(host: str = "127.0.0.1", bug: str = "") -> list[dict[str, object]]:
    """The login provider and the shop, the shop on ``host`` (SHOP_BUG=``bug``)."""
    return [
        {
            "name": "idp",
            "command": [sys.executable, str(FLOWS), "idp", "{port}"],
            "url": "http://127.0.0.1:{port}/profile",
        },
        {
            "name": "shop",
            "command": [sys.executable, str(FLOWS), "shop", "{port}", "{ports.idp}"],
            "url": f"http://{host}:{{port}}/",
            "env": {"SHOP_BUG": bug},
        },
    ]


def verify(recipe: Path, out: Path) -> tuple[int, dict[str, object], str]:
    """``verifier run RECIPE --json``: its exit code, its record, its stderr."""
    assert VERIFIER is not None, "the verifier command is not on PATH (run provision.sh)"
    proc = subprocess.run(
        [VERIFIER, "run", str(recipe), "--out", str(out), "--json", "--no-video"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    record = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, record, proc.stderr


def steps_of(record: dict[str, object]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = read_manifest(Path(str(record["bundle"])))["steps"]
    return steps


def test_a_login_across_two_services_is_reused_on_new_ports_and_not_across_hosts(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    def login(host: str) -> Path:
        return write_recipe(
            {
                "name": f"login on {host}",
                "app": shop(host),
                "steps": [
                    {"goto": "/"},
                    {"click": "#signin"},  # a redirect to the provider
                    {"type": {"selector": "#user", "text": "Ada"}},
                    {"click": "#approve"},  # back with a code, exchanged for a token
                    {"expect_text": "Signed in as Ada"},
                    {"save_storage_state": "state/auth.json"},
                ],
            },
            f"login-{host}.yaml",
        )

    account = write_recipe(
        {
            "name": "account",
            "app": shop(),
            "storage_state": "state/auth.json",
            "steps": [
                {"goto": "/account"},
                {"expect_text": "Signed in as Ada"},  # the shop's localStorage and cookie
                {"goto": "http://127.0.0.1:{ports.idp}/profile"},
                {"expect_text": "Provider session: Ada"},  # the provider's, on its own port
            ],
        },
        "account.yaml",
    )
    code, first, err = verify(login("127.0.0.1"), tmp_path / "out")
    assert code == 0, err
    saved = json.loads((tmp_path / "state" / "auth.json").read_text())
    assert sorted(o["service"] for o in saved["origins"]) == ["idp", "shop"]
    code, second, err = verify(account, tmp_path / "out")
    assert code == 0, err  # both origins moved to their services' new ports
    moves = read_manifest(Path(str(second["bundle"])))["setup"]["storage_state"]["origins"]
    assert sorted(m["service"] for m in moves) == ["idp", "shop"]
    assert all(m["saved"] != m["loaded"] for m in moves)
    assert all(m["loaded"].startswith("http://127.0.0.1:") for m in moves)
    # Saved while the shop ran on localhost, loaded for 127.0.0.1: no login, as in a
    # real browser, and the failure says why.
    code, _, err = verify(login("localhost"), tmp_path / "out")
    assert code == 0, err
    code, third, err = verify(account, tmp_path / "out")
    assert code == 1, err
    assert "Not signed in" in err
    assert "was saved on localhost, and this run opens the app on 127.0.0.1" in err


def test_windows_that_close_themselves_hand_the_run_back_to_their_opener(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    def flow(bug: str = "") -> Path:
        return write_recipe(
            {
                "name": f"popup login and print views {bug}",
                "app": shop(bug=bug),
                "steps": [
                    {"goto": "/"},
                    {"click": "#popup-signin"},  # an OAuth-style popup, in front
                    {"type": {"selector": "#user", "text": "Ada"}},
                    {"click": "#approve"},  # tells its opener, and closes
                    {"expect_text": "Signed in as Ada"},
                    {"click": "#print"},  # a tab that closes itself after 1.5 s
                    {"expect_text": "Invoice 42"},
                    {"wait": 2.5},
                    {"expect_text": "Signed in as Ada"},
                    {"click": "#print-window"},  # the same, in a popup window
                    {"expect_text": {"text": "Signed in as Ada", "timeout": 6}},
                    {"click": "#print-window"},
                    # Its target went with the window: not clicked on the opener instead.
                    {"click": {"selector": "#approve", "timeout": 5}},
                ],
            },
            f"popup-{bug or 'ok'}.yaml",
        )

    code, record, err = verify(flow(), tmp_path / "out")
    assert code == 1, err
    assert record["failed_step"] == 12
    assert "click: the tab it acted on (http://127.0.0.1:" in str(record["error"])
    assert "/print?after=1500) closed before its input went out" in str(record["error"])
    steps = steps_of(record)
    closed = {s["index"]: s["tab_closed"] for s in steps if "tab_closed" in s}
    # The popup closes once its code is fetched: during the click, or just after it.
    popup = 3 if 3 in closed else 4
    assert sorted(closed) == [popup, 7, 10, 12], closed
    assert "/authorize?popup=1" in closed[popup][0]["url"]
    assert all(c[0]["acted_on"] and c[0]["next_tab"] == 0 for c in closed.values())
    assert [s["status"] for s in steps[:12]] == ["passed"] * 12
    bundle = Path(str(record["bundle"]))
    assert "a tab closed: http://127.0.0.1:" in (bundle / "report.html").read_text()
    assert "a tab closed\\: http\\://127\\.0\\.0\\.1" in (bundle / "summary.md").read_text()
    # The check that began on the print window went on with its opener once it closed.
    assert steps[10]["tab"] == 1 and steps[10]["status"] == "passed"
    # The seeded bug: the popup closes without telling its opener. A failed check (exit
    # 1), not a dead browser.
    code, record, err = verify(flow("silent-popup"), tmp_path / "out")
    assert code == 1, err
    assert "browser died" not in err
    assert record["failed_step"] == 4 and "Not signed in" in str(record["error"])


def test_an_export_is_checked_by_its_contents_and_focus_and_history_by_their_steps(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    def export(bug: str = "") -> Path:
        return write_recipe(
            {
                "name": f"export {bug}",
                "app": shop(bug=bug),
                "steps": [
                    {"goto": "/"},
                    {"click": "#export"},
                    {"expect_download": {"name": "orders*.csv", "contains": "Total"}},
                    {"press": "Tab"},  # from the export button to the next link
                    {"expect_focused": {"selector": "#print", "visible": True}},
                    {"click": "#account"},
                    {"go_back": {}},
                    {"go_forward": {}},
                    {"expect_url": "/account"},
                    {"goto": "/"},
                    {"click": "#modal"},  # an entry of the same URL (pushState)
                    {"expect_text": "modal open"},
                    {"go_back": {}},  # closes the modal, though the URL stays
                    {"expect_text": "modal closed"},
                    {"click": "#export"},  # by the mouse: focused, no focus ring
                    {"expect_focused": {"selector": "#export", "visible": True, "timeout": 1}},
                ],
            },
            f"export-{bug or 'ok'}.yaml",
        )

    code, record, err = verify(export(), tmp_path / "out")
    assert code == 1, err
    assert record["failed_step"] == 15
    assert "'#export' does not show the keyboard focus" in str(record["error"])
    steps = steps_of(record)
    assert steps[2]["details"] == {"download": "orders-2026-12.csv", "bytes": 31}
    # On the step during which it finished: the click's, or the check's that waited.
    listed = [d for s in steps for d in s.get("downloads", [])]
    assert listed == ["downloads/orders-2026-12.csv", "downloads/orders-2026-12 (2).csv"]
    assert [s["status"] for s in steps[:15]] == ["passed"] * 15
    # A download checked once does not vouch for a later one that never came.
    again = write_recipe(
        {
            "name": "export twice",
            "app": shop(),
            "steps": [
                {"goto": "/"},
                {"click": "#export"},
                {"expect_download": "orders*.csv"},
                {"click": "#modal"},  # meant to be the export again
                {"expect_download": {"name": "orders*.csv", "timeout": 1}},
            ],
        }
    )
    code, record, err = verify(again, tmp_path / "out")
    assert code == 1, err
    assert record["failed_step"] == 4
    assert "no file was downloaded since the last expect_download" in str(record["error"])
    code, record, err = verify(export("export"), tmp_path / "out")
    assert code == 1, err
    assert record["failed_step"] == 2
    assert (
        "the download 'orders-2026-12.csv' (20 bytes) does not contain 'Total'; its first "
        "line is 'id,item,qty'"
    ) in str(record["error"])


def test_saved_origins_move_service_by_service_and_never_collapse(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"

    def load(origins: Sequence[Mapping[str, object]], services: dict[str, str]) -> list[str]:
        path.write_text(json.dumps({"cookies": [], "origins": origins}))
        state = load_state(path, services=services, recipe=None).state
        assert all("service" not in o for o in state["origins"])  # Playwright's own format
        return [str(o["origin"]) for o in state["origins"]]

    tagged = [
        {"origin": "http://localhost:5001", "localStorage": [], "service": "web"},
        {"origin": "http://127.0.0.1:5002", "localStorage": [], "service": "api"},
        {"origin": "http://127.0.0.1:9999", "localStorage": []},  # no service of ours
        {"origin": "https://example.com", "localStorage": [], "service": "web"},
    ]
    now = {"api": "http://127.0.0.1:7002", "web": "http://127.0.0.1:7001"}
    assert load(tagged, now) == [
        "http://localhost:7001",  # its host kept
        "http://127.0.0.1:7002",
        "http://127.0.0.1:9999",
        "https://example.com",
    ]
    # A file from another tool, and an app of one service: its loopback origins move
    # there, but two of one host never land on one origin.
    untagged = [
        {"origin": "http://127.0.0.1:5001", "localStorage": []},
        {"origin": "http://[::1]:5001", "localStorage": []},
        {"origin": "http://127.0.0.1:5002", "localStorage": []},
    ]
    one = {"app": "http://127.0.0.1:7001"}
    assert load(untagged, one) == [
        "http://127.0.0.1:7001",
        "http://[::1]:7001",
        "http://127.0.0.1:5002",
    ]
    # Renamed since it was saved: the app's only service still takes it.
    assert load([{"origin": "http://127.0.0.1:5001", "service": "web"}], one) == [
        "http://127.0.0.1:7001"
    ]
    # No app started by the run: everything loads as saved.
    assert load(tagged, {}) == [str(o["origin"]) for o in tagged]


def test_a_saved_login_is_never_written_through_a_link_the_app_made(tmp_path: Path) -> None:
    recipes, evidence = tmp_path / "checkout", tmp_path / "artifacts"
    recipes.mkdir()
    evidence.mkdir()
    (recipes / "state").symlink_to(evidence)  # the app's doing: its checkout is writable
    with pytest.raises(BrowserError, match="a folder on the way is a symbolic link"):
        save_state({"cookies": []}, recipes, "state/auth.json")
    assert not list(evidence.iterdir())
    (recipes / "state").unlink()
    (recipes / "auth.json").symlink_to(evidence / "auth.json")  # the file itself: replaced
    written = save_state({"cookies": []}, recipes, "auth.json")
    assert written == recipes / "auth.json" and not written.is_symlink()
    assert not list(evidence.iterdir())
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    nested = save_state({"cookies": []}, recipes, "a/b/../c/auth.json")
    assert nested == recipes / "a" / "c" / "auth.json"


def test_a_step_url_names_a_service_of_the_app(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    assert VERIFIER is not None
    recipe = write_recipe(
        {"name": "a typo", "app": shop(), "steps": [{"goto": "http://127.0.0.1:{ports.auth}/"}]}
    )
    proc = subprocess.run(
        [VERIFIER, "validate", str(recipe)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert (
        "steps[0] (goto): {ports.auth} names no service of the app (its services: idp, shop)"
    ) in proc.stderr
