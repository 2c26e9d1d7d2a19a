"""Real pages through `verifier run`: the bundle records the tab each step acted on, the
dialogs the page showed (their messages in the manifest, report and summary), the files
it downloaded; an ambiguous selector is exit 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support import imread
from verifier.cli import main
from verifier.evidence import read_manifest, verify_bundle

pytestmark = pytest.mark.usefixtures("no_leaks")


def run(
    capsys: pytest.CaptureFixture[str], recipe: Path, out: Path
) -> tuple[int, dict[str, Any], Path, str]:
    code = main(["run", str(recipe), "--out", str(out), "--json", "--no-video"])
    captured = capsys.readouterr()
    (line,) = [json.loads(x) for x in captured.out.splitlines() if x.startswith("{")]
    bundle = Path(line["bundle"])
    return code, read_manifest(bundle), bundle, captured.err


def test_tabs_dialogs_and_downloads_are_in_the_evidence(
    site_url: str,
    write_recipe: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = write_recipe(
        {
            "name": "tabs, dialogs, downloads",
            "url": site_url,
            "steps": [
                {"goto": "/tabs.html"},
                {"click": "#docs"},  # opens tab 1, in front
                {"click": "#docs-btn"},
                {"expect_text": "docs clicked"},
                {"switch_tab": 0},
                {"goto": "/dialogs.html"},
                {"click": "#confirm"},
                {"press": "Enter"},
                {"expect_text": "confirm: true"},
                {"click": "#prompt"},
                {"dialog": {"text": "Ada", "expect": "name"}},
                {"expect_text": "Hello Ada"},
                {"goto": "/forms.html"},
                {"click": "#export"},
                {"click": "#export"},
                {"expect_title": "Order"},
            ],
        }
    )
    code, manifest, bundle, err = run(capsys, recipe, tmp_path / "out")
    assert code == 0, err
    steps = manifest["steps"]
    assert [s["tab"] for s in steps] == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    # The confirm opened during the click (open when it ended), and the Enter key of
    # the next step answered it.
    confirm = {"type": "confirm", "message": "Delete the item?", "tab": 0}
    assert steps[6]["dialogs"] == [{**confirm, "answer": "open"}]
    assert steps[7]["dialogs"] == [{**confirm, "answer": "closed by input"}]
    assert steps[10]["dialogs"][0]["answer"] == "accepted"
    assert steps[10]["details"]["message"] == "Your name?"
    # Both downloads, each under the name the page gave it, made unique, on the step
    # during which the browser said it came (it may say so a little after the click).
    listed = [p for s in steps[13:] for p in s.get("downloads", [])]
    assert listed == ["downloads/order export.csv", "downloads/order export (2).csv"]
    downloads = [a for a in manifest["artifacts"] if a["kind"] == "download"]
    assert [a["path"] for a in downloads] == [
        "downloads/order export.csv",
        "downloads/order export (2).csv",
    ]
    assert (bundle / "downloads" / "order export.csv").read_text() == "id,fruit\n1,apple\n"
    assert verify_bundle(bundle) == []
    report = (bundle / "report.html").read_text(encoding="utf-8")
    assert "confirm dialog: “Delete the item?” (closed by input)" in report
    assert "prompt dialog: “Your name?” (accepted)" in report
    assert 'href="downloads/order%20export.csv"' in report
    assert "on tab 1" in report
    summary = (bundle / "summary.md").read_text(encoding="utf-8")
    assert "Delete the item?" in summary


def test_a_step_acting_while_a_dialog_is_open_says_so(
    site_url: str,
    write_recipe: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = write_recipe(
        {
            "name": "an alert nobody answers",
            "url": site_url,
            "steps": [
                {"goto": "/dialogs.html"},
                {"click": "#alert"},
                {"click": "#confirm"},
            ],
        }
    )
    code, manifest, bundle, _ = run(capsys, recipe, tmp_path / "out")
    assert code == 1 and manifest["verdict"] == "failed"
    step = manifest["steps"][2]
    assert step["status"] == "failed"
    assert "a dialog is open on the page (alert 'Saved the draft')" in step["error"]
    assert step["dialogs"] == [
        {"type": "alert", "message": "Saved the draft", "tab": 0, "answer": "open"}
    ]
    assert manifest["steps"][1]["dialogs"][0]["message"] == "Saved the draft"
    report = (bundle / "report.html").read_text(encoding="utf-8")
    assert "alert dialog: “Saved the draft” (open)" in report
    # The click's screenshot shows the alert it opened: Chromium dims the page under it
    # (a few frames after it says the dialog opened).
    goto, click = (bundle / manifest["steps"][i]["raw_screenshot"] for i in (0, 1))
    diff = imread(click).astype(int) - imread(goto).astype(int)
    changed = np.abs(diff).sum(axis=2) > 30
    assert changed.mean() > 0.5, f"{changed.mean():.1%} of the screen changed"


def test_a_snapshot_never_contradicts_the_dialog_screenshot_of_its_step(
    site_url: str,
    write_recipe: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The page changes just after the click, then an alert holds it: the snapshot asked
    # while the screen settled would show the page before the change, the screenshot
    # after it. Either the snapshot shows the change or there is none.
    recipe = write_recipe(
        {
            "name": "a change, then an alert",
            "url": site_url,
            "steps": [
                {"goto": "/dialogs.html"},
                {"click": "#changed-then-alert"},
                {"dialog": "accept"},
            ],
        }
    )
    code, manifest, bundle, _ = run(capsys, recipe, tmp_path / "out")
    assert code == 0, manifest["steps"]
    click = manifest["steps"][1]
    assert manifest["steps"][2]["dialogs"][0]["message"] == "Row deleted"
    if click["snapshot"] is not None:
        assert "row deleted" in (bundle / click["snapshot"]).read_text(encoding="utf-8")


def test_an_ambiguous_selector_is_exit_2_naming_the_matches(
    site_url: str,
    write_recipe: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = write_recipe(
        {
            "name": "which Completed?",
            "url": site_url,
            "steps": [{"goto": "/texts.html"}, {"click": "text=Completed"}],
        }
    )
    code, manifest, _, err = run(capsys, recipe, tmp_path / "out")
    assert code == 2 and manifest["verdict"] == "error"
    message = manifest["steps"][1]["error"]
    assert "the recipe is ambiguous: 'text=Completed' matches 2 elements" in message
    assert "Completed</a>" in message and "Clear completed</button>" in message
    assert "the recipe is ambiguous" in err


def test_a_failure_that_quotes_several_lines_is_one_line_on_the_terminal(
    site_url: str,
    write_recipe: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """expect_aria's failure quotes the snapshot found, lines and all: the manifest keeps
    them, the FAILED line on stderr writes them as \\n."""
    recipe = write_recipe(
        {
            "name": "aria",
            "url": site_url,
            "steps": [
                {"goto": "/forms.html"},
                {
                    "expect_aria": {
                        "selector": "nav",
                        "snapshot": '- button "Forward"',
                        "timeout": 1,
                    }
                },
            ],
        }
    )
    code = main(["run", str(recipe), "--out", str(tmp_path / "out"), "--no-video"])
    err = capsys.readouterr().err
    assert code == 1
    (line,) = [x for x in err.splitlines() if x.startswith("FAILED")]
    assert err.count("\n") == 1 and "at step 2: expect_aria" in line and "\\n- " in line
    bundle = Path(line.rsplit(" -> ", 1)[1])
    assert "\n- " in read_manifest(bundle)["steps"][1]["error"]


def test_a_page_whose_scripts_never_yield_fails_the_step_saying_so(
    write_recipe: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    page = tmp_path / "spin.html"
    page.write_text(
        '<button id="spin" onclick="while (true) {}">Spin</button><button id="b">B</button>'
    )
    recipe = write_recipe(
        {
            "name": "spinning",
            "allow_file_urls": True,
            "timeout": 2,
            "steps": [{"goto": page.as_uri()}, {"click": "#spin"}, {"click": "#b"}],
        }
    )
    code, manifest, _, err = run(capsys, recipe, tmp_path / "out")
    assert code == 1, err
    assert "the page answers nothing at all" in manifest["steps"][2]["error"]
