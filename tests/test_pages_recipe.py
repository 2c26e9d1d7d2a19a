"""The recipe side of real pages: the new steps' forms, did-you-mean by the step table,
duplicate keys, file:// URLs (no browser needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import args_of
from verifier import load_recipe
from verifier.cli import main
from verifier.errors import RecipeError
from verifier.recipe import STEP_SCHEMAS
from verifier.recipe.step_args import (
    Click,
    Dialog,
    ExpectChecked,
    ExpectText,
    Select,
    SwitchTab,
    Upload,
)

BASE = "name: t\nurl: http://127.0.0.1:8000/\n"


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_step_table_in_short_and_long_forms(tmp_path: Path) -> None:
    recipe = load_recipe(
        write(
            tmp_path,
            BASE
            + """steps:
  - select: {selector: "#fruit", option: Banana}
  - select: {selector: "#toppings", option: [Nuts, Mint], frame: "#shop"}
  - upload: {selector: "#photo", files: [a.png, b.png]}
  - upload: {selector: "#photo", files: a.png}
  - dialog: accept
  - dialog: dismiss
  - dialog: {action: accept, text: Ada, expect: "Your name"}
  - switch_tab: 1
  - switch_tab: "Docs"
  - reload: {}
  - go_back: {}
  - reload
  - expect_value: {selector: "#name", value: Ada}
  - expect_checked: "#gift"
  - expect_checked: {selector: "#gift", checked: false}
  - expect_enabled: "#save"
  - expect_disabled: "#save"
  - expect_count: {selector: ".item", count: 3}
  - expect_title: Order
  - expect_attribute: {selector: "#photo", name: accept, value: "image/*"}
  - expect_hidden: "#spinner"
  - expect_no_text: Error
  - expect_aria: {selector: nav, snapshot: "- button \\"Next\\""}
  - expect_text: {text: "Count: 1", exact: true}
  - expect_text: {pattern: "Count: \\\\d+"}
  - expect_no_text: {pattern: "(?i)error"}
  - click: {selector: "#inner-btn", frame: ["#outer", "#inner"]}
  - click: {selector: "#b", frame: "#f"}
  - expect_text: {text: hi, frame: "#f"}
""",
        )
    )
    steps = recipe.steps
    select = args_of(steps[1], Select)
    assert select.frame == ("#shop",) and select.option == ("Nuts", "Mint")
    assert args_of(steps[3], Upload).files == ("a.png",)
    assert args_of(steps[4], Dialog).action == "accept"
    assert args_of(steps[5], Dialog).action == "dismiss"
    assert args_of(steps[6], Dialog).text == "Ada"
    assert args_of(steps[7], SwitchTab).tab == 1 and args_of(steps[8], SwitchTab).tab == "Docs"
    assert args_of(steps[14], ExpectChecked).checked is False
    assert args_of(steps[23], ExpectText).exact is True
    assert args_of(steps[26], Click).frame == ("#outer", "#inner")
    assert {s.action for s in recipe.steps} <= set(STEP_SCHEMAS)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            BASE + "steps:\n  - expect_counts: {selector: a, count: 1}\n",
            r"unknown step 'expect_counts'; did you mean 'expect_count'\?",
        ),
        (
            BASE + "steps:\n  - expect_check: '#a'\n",
            r"unknown step 'expect_check'; did you mean 'expect_checked'\?",
        ),
        (
            BASE + "steps:\n  - swtich_tab: 1\n",
            r"unknown step 'swtich_tab'; did you mean 'switch_tab'\?",
        ),
        (BASE + "steps:\n  - selct: {selector: a, option: b}\n", "did you mean 'select'"),
        (
            BASE + "steps:\n  - expect_text: {text: a, pattern: b}\n",
            "give either text or pattern",
        ),
        (BASE + "steps:\n  - expect_text: {pattern: '(unclosed'}\n", "not a valid regular"),
        (BASE + "steps:\n  - dialog: maybe\n", r"steps\[0\] \(dialog\)\.action"),
        (
            BASE + "steps:\n  - dialog: {action: dismiss, text: x}\n",
            "text is typed into a prompt that is accepted",
        ),
        (BASE + "steps:\n  - click: {x: 1, y: 2, frame: '#f'}\n", "frame applies to a selector"),
        (BASE + "steps:\n  - upload: {selector: '#f', files: []}\n", "files"),
        (BASE + "steps:\n  - switch_tab: -1\n", "greater than or equal to 0"),
        (
            BASE + "steps:\n  - goto: file:///etc/passwd\n",
            r"steps\[0\] \(goto\): 'file:///etc/passwd' is a file:// URL, refused unless the "
            r"recipe says 'allow_file_urls: true'",
        ),
        (
            "name: t\nsteps:\n  - goto: '  FILE:///etc/passwd'\n",
            r"steps\[0\] \(goto\).*is a file:// URL",
        ),
        # As the browser reads it: inside view-source:, with a tab in the scheme.
        (
            "name: t\nsteps:\n  - goto: 'view-source:file:///etc/passwd'\n",
            r"steps\[0\] \(goto\).*is a file:// URL",
        ),
        (
            'name: t\nsteps:\n  - goto: "view-source: fi\\tle:///etc/passwd"\n',
            r"steps\[0\] \(goto\).*is a file:// URL",
        ),
    ],
)
def test_errors_name_the_step_and_the_fix(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        load_recipe(write(tmp_path, body))


def test_every_step_of_the_table_is_known(tmp_path: Path) -> None:
    # A step that exists is never "corrected" (expect_checked once suggested
    # expect_screenshot): each one of DESIGN.md's table loads.
    for action in ("select", "upload", "dialog", "switch_tab", "reload", "go_back"):
        assert action in STEP_SCHEMAS
    for action in ("expect_value", "expect_checked", "expect_enabled", "expect_disabled"):
        assert action in STEP_SCHEMAS
    for action in ("expect_count", "expect_title", "expect_attribute", "expect_hidden"):
        assert action in STEP_SCHEMAS
    assert "expect_no_text" in STEP_SCHEMAS and "expect_aria" in STEP_SCHEMAS
    recipe = load_recipe(write(tmp_path, BASE + "steps:\n  - expect_checked: '#a'\n"))
    assert recipe.steps[0].action == "expect_checked"


def test_file_urls_only_when_the_recipe_allows_them(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("<p>local</p>", encoding="utf-8")
    recipe = load_recipe(
        write(tmp_path, f"name: t\nallow_file_urls: true\nsteps:\n  - goto: {page.as_uri()}\n")
    )
    assert recipe.allow_file_urls is True


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "name: t\napp:\n  command: a\n  url: http://x/\nurl: http://x/\n"
            "steps: [{goto: /}]\napp:\n  command: b\n",
            r"r\.yaml: duplicate key 'app' \(lines 2 and 7\)",
        ),
        (
            BASE + "steps:\n  - click:\n      selector: '#a'\n      selector: '#b'\n",
            r"duplicate key 'selector' \(lines 5 and 6\)",
        ),
        (BASE + "steps:\n  - click: {selector: '#a', selector: '#b'}\n", r"line 4, twice"),
        (BASE + "name: u\nsteps: [{goto: /}]\n", r"duplicate key 'name' \(lines 1 and 3\)"),
    ],
)
def test_duplicate_keys_are_errors_naming_both_lines(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(RecipeError, match=message):
        load_recipe(write(tmp_path, body))


def test_merge_keys_may_override(tmp_path: Path) -> None:
    text = BASE + "steps:\n  - click: &c {selector: '#a'}\n  - click: {<<: *c, button: right}\n"
    recipe = load_recipe(write(tmp_path, text))
    assert args_of(recipe.steps[1], Click).button == "right"


def test_validate_refuses_a_file_url_naming_the_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, BASE + "steps:\n  - goto: /\n  - goto: file:///etc/shadow\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "steps[1] (goto): 'file:///etc/shadow' is a file:// URL" in err


def test_the_readme_shows_every_step_once_and_its_examples_load() -> None:
    import yaml

    from verifier.recipe import parse_recipe

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Every step") :]
    block = section[section.index("```yaml") + len("```yaml") : section.index("```\n\n")]
    data = yaml.safe_load(block)
    recipe = parse_recipe({"name": "readme", "url": "http://127.0.0.1:8000/", **data})
    assert {s.action for s in recipe.steps} == set(STEP_SCHEMAS)
