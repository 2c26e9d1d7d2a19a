"""Real page patterns, step by step, in one headed Chromium: web components (open shadow
roots), iframes (nested, offset, another origin, below the fold), sticky and fixed bars,
exact scrolling, dropdowns, file choosers, dialogs, tabs and popups, other windows in
front, and every check of the step table with what it says when it fails.

The steps run through the step registry against the module's browser, as a run does,
without a run's start-up per case; tests/test_pages_run.py runs whole recipes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import imread
from verifier.browser import Browser
from verifier.desktop import Desktop
from verifier.errors import CheckFailed, RecipeError, StepTimeout, VerifierError
from verifier.recipe import parse_recipe
from verifier.steps import StepContext, StepOutcome, run_step


def _size(png: Path) -> tuple[int, int]:
    height, width = imread(png).shape[:2]
    return width, height


class Steps:
    """Runs recipe steps (as YAML would load them) on the module's browser."""

    def __init__(self, desktop: Desktop, browser: Browser, site_url: str, folder: Path) -> None:
        self.browser = browser
        self.site_url = site_url
        self.folder = folder
        self.ctx = StepContext(
            desktop=desktop,
            browser=browser,
            base_url=site_url,
            recipe_path=folder / "recipe.yaml",
        )

    def __call__(self, *steps: Any, timeout: float = 5) -> list[StepOutcome]:
        recipe = parse_recipe(
            {"name": "t", "url": self.site_url, "timeout": timeout, "steps": list(steps)},
            path=self.folder / "recipe.yaml",
        )
        outcomes = []
        for step in recipe.steps:
            # As the runner does between steps: take in new tabs and dialogs, and let the
            # page paint (Chromium holds input to a new document until it has).
            self.browser.sync()
            outcomes.append(run_step(self.ctx, step))
            self.browser.next_frame()
        return outcomes

    def fails(self, step: Any, *, timeout: float = 1.5) -> VerifierError:
        """Run one step that must fail; its error."""
        with pytest.raises(VerifierError) as info:
            self(step, timeout=timeout)
        return info.value

    def text(self) -> str:
        return str(self.browser.page.evaluate("document.body.innerText"))


@pytest.fixture
def steps(desktop: Desktop, browser: Browser, site_url: str, tmp_path: Path) -> Iterator[Steps]:
    browser.hold_dialogs = True
    runner = Steps(desktop, browser, site_url, tmp_path)
    try:
        yield runner
    finally:
        # The next test starts on one tab with no dialog open.
        for event in browser.open_dialogs():
            browser.answer_dialog(event, accept=False)
        tabs = browser.tabs
        for page in tabs[1:]:
            page.close()
        browser.switch_tab(tabs[0])
        browser.hold_dialogs = False


def test_web_components_are_clicked_and_read_inside_open_shadow_roots(steps: Steps) -> None:
    steps(
        {"goto": "/shadow.html"},
        {"click": "x-counter >> #inc"},  # the button inside the counter's shadow root
        {"click": "#inc"},  # Playwright's CSS pierces open shadow roots
        {"expect_text": "count is 2"},  # text inside a shadow root
        {"expect_text": "clicked 2 times"},
        {"expect_text": {"text": "Clicks", "exact": True}},  # slotted light DOM
        {"click": "#deep"},  # a shadow root inside a shadow root
        {"expect_text": "deep clicked"},
        {"wait_for": "text=deep clicked"},
        {"expect_no_text": "secret hidden text"},  # hidden inside a shadow root
    )
    error = steps.fails({"click": "#under"})
    assert isinstance(error, CheckFailed)
    assert "'#under' is covered at its centre by <div#veil>" in error.message


def test_iframes_nested_offset_cross_origin_and_below_the_fold(steps: Steps) -> None:
    steps(
        {"goto": "/frames.html"},
        {"click": {"selector": "#outer-btn", "frame": "#outer"}},
        {"expect_text": {"text": "outer clicked", "frame": "#outer"}},
        {"click": {"selector": "#inner-btn", "frame": ["#outer", "#inner"]}},
        {"expect_text": {"text": "inner clicked 1", "frame": ["#outer", "#inner"]}},
        {
            "click": "#outer >> internal:control=enter-frame >> #inner"
            " >> internal:control=enter-frame >> #inner-btn"
        },
        {"expect_text": {"text": "inner clicked 2", "frame": ["#outer", "#inner"]}},
        {"expect_no_text": "inner clicked"},  # the top page's own text
        {"click": {"selector": "#inner-btn", "frame": "#far"}},  # scrolled into view first
        {"expect_text": {"text": "inner clicked 1", "frame": "#far"}},
        # Another origin (its own renderer); the field is clear of the bar over the frame.
        {"type": {"selector": "#inner-field", "frame": "#cross", "text": "héllo"}},
        {"expect_value": {"selector": "#inner-field", "frame": "#cross", "value": "héllo"}},
    )
    # An element's picture inside a frame: the baseline written, then matched.
    steps.ctx.update_baselines = True
    shot = {"expect_screenshot": {"name": "far", "selector": "#inner-btn", "frame": "#far"}}
    steps(shot)
    steps.ctx.update_baselines = False
    out = steps(shot)
    width, height = _size(steps.folder / "recipe.baselines" / "far.png")
    assert out[0].details["size"] == [width, height] and width < 200 and height < 60
    # Its button is under a bar of the page around the frame: a person could not click it.
    error = steps.fails({"click": {"selector": "#inner-btn", "frame": "#cross"}})
    assert isinstance(error, CheckFailed)
    assert "in the frame 'cross' is covered at its centre by <div#cover>" in error.message
    cross = steps.browser.page.frame("cross")
    assert cross is not None and cross.evaluate("n") == 0


def test_sticky_and_fixed_bars_are_scrolled_clear_and_overlays_still_cover(
    steps: Steps,
) -> None:
    # Scrolled so that a button sits under the sticky header, then another under the
    # fixed footer: a person scrolls each clear of the bar before clicking.
    out = steps(
        {"goto": "/sticky.html"},
        {"scroll": {"dy": 250}},
        {"expect_text": "y=250"},
        {"click": "#buy"},
        {"expect_text": "bought"},
        {"goto": "/sticky.html"},
        {"scroll": {"dy": 2672}},  # the last button's centre 40 px above the bottom
        {"click": "#last"},
        {"expect_text": "last"},
    )
    assert out[3].details["scrolled_clear_of"] == '<header> "A sticky header"'
    assert out[7].details["scrolled_clear_of"] == '<footer> "A fixed footer"'
    # A fixed layer over the whole page is still in the way.
    steps({"goto": "/overlay.html"})
    error = steps.fails({"click": "#buy"})
    assert "covered at its centre by <div#shield.modal-backdrop>" in error.message
    assert "not bought" in steps.text()


def test_scrolling_is_exact_in_css_pixels(steps: Steps) -> None:
    page = steps.browser.page
    steps({"goto": "/sticky.html"}, {"scroll": {"dy": 560}})
    assert page.evaluate("scrollY") == 560
    steps({"scroll": {"dy": 645}})
    assert page.evaluate("scrollY") == 560 + 645
    steps({"scroll": {"dy": -95}}, {"scroll": {"dy": 50}})
    assert page.evaluate("scrollY") == 560 + 645 - 95 + 50
    # Inside a scrolled box, under the pointer, with the page's smooth scrolling on.
    steps({"goto": "/scroll.html"}, {"scroll": {"selector": "#box", "dy": 130}})
    assert page.evaluate("document.getElementById('box').scrollTop") == 130


def test_select_opens_the_dropdown_and_picks_with_the_keyboard(steps: Steps) -> None:
    out = steps(
        {"goto": "/forms.html"},
        {"select": {"selector": "#fruit", "option": "Date"}},  # by label, past a disabled one
        {"expect_value": {"selector": "#fruit", "value": "date"}},
        {"expect_text": "fruit date"},  # the page's change handler ran
        {"select": {"selector": "#fruit", "option": "plum"}},  # by value, in an optgroup
        {"expect_value": {"selector": "#fruit", "value": "plum"}},
        {"select": {"selector": "#toppings", "option": ["Cream", "Mint"]}},  # a list box
    )
    assert out[1].points and out[1].details == {"option": "Date"}
    assert len(out[6].points) == 2
    assert steps.browser.page.evaluate(
        "[...document.getElementById('toppings').selectedOptions].map((o) => o.value)"
    ) == ["cream", "mint"]
    error = steps.fails({"select": {"selector": "#fruit", "option": "Cherry"}})
    assert "the option 'Cherry' of '#fruit' is disabled" in error.message
    error = steps.fails({"select": {"selector": "#fruit", "option": "Kiwi"}})
    assert "has no option 'Kiwi'; it has 'Choose one', 'Apple'" in error.message


def test_upload_through_the_file_chooser(steps: Steps) -> None:
    (steps.folder / "photo.png").write_bytes(b"\x89PNG fake")
    (steps.folder / "notes.txt").write_text("notes", encoding="utf-8")
    out = steps(
        {"goto": "/forms.html"},
        {"upload": {"selector": "#photo", "files": "photo.png"}},
        {"expect_text": "photo photo.png:9"},
        # A label stands in for a hidden input: clicking it opens the chooser.
        {"upload": {"selector": "#pick-label", "files": ["notes.txt", "photo.png"]}},
        {"expect_text": "docs notes.txt,photo.png"},
        # The hidden input itself: the files go to it, as the chooser would put them.
        {"upload": {"selector": "#docs", "files": ["notes.txt"]}},
        {"expect_text": "docs notes.txt"},
    )
    assert out[1].details["through"] == "the file chooser" and out[1].points
    assert out[5].details["through"] == "the hidden file input"
    # No file chooser window was left on the screen.
    assert not [w for w in steps.ctx.desktop.windows() if w.kind == "dialog"]
    error = steps.fails({"upload": {"selector": "#photo", "files": "missing.png"}})
    assert isinstance(error, RecipeError) and "no file 'missing.png'" in error.message


def test_every_check_passes_on_what_the_page_shows(steps: Steps) -> None:
    steps(
        {"goto": "/forms.html"},
        {"expect_value": {"selector": "#name", "value": "Ada"}},
        {"expect_checked": "#small"},
        {"expect_checked": {"selector": "#gift", "checked": False}},
        {"click": "#gift"},
        {"expect_checked": "#gift"},
        {"expect_disabled": "#save"},
        {"click": "#enable"},
        {"expect_enabled": "#save"},
        {"expect_count": {"selector": ".item", "count": 3}},
        {"expect_title": "Order"},
        {"expect_attribute": {"selector": "#photo", "name": "accept", "value": "image/*"}},
        {"expect_attribute": {"selector": "#out", "name": "data-state"}},
        {"expect_hidden": "#docs"},
        {"expect_hidden": ".nothing-matches"},
        {
            "expect_aria": {
                "selector": "nav",
                "snapshot": '- navigation "Steps":\n  - button "Back"\n  - button "Next"',
            }
        },
        {"reload": {}},
        {"expect_checked": {"selector": "#gift", "checked": False}},
        {"goto": "/texts.html"},
        {"expect_text": {"text": "Count: 10", "exact": True}},
        {"expect_text": {"pattern": "Count: \\d+"}},
        {"expect_text": {"pattern": "(?i)TOTAL: 42 ITEMS"}},
        {"expect_text": "Total: 42 items"},  # across elements
        {"expect_no_text": "Invisible words"},
        {"expect_no_text": "Hidden words"},
        {"expect_no_text": {"text": "Count: 1", "exact": True}},
        {"expect_no_text": "Saving…"},  # a toast that goes away
        {"expect_no_text": {"text": "Count", "selector": "#nothing-like-it"}},
        {"expect_text": "Shadow note: all good"},
        {"click": "#later"},
        {"expect_text": {"text": "Count: 11", "exact": True}},
        {"go_back": {}},
        {"expect_title": "Order form"},
    )


def test_checks_fail_saying_what_they_found(steps: Steps) -> None:
    steps({"goto": "/forms.html"})
    cases = [
        ({"expect_value": {"selector": "#name", "value": "Bob"}}, "its value is 'Ada'"),
        ({"expect_checked": "#large"}, "'#large' did not become checked within 0.5 s; it is"),
        ({"expect_enabled": "#save"}, "it is disabled"),
        ({"expect_disabled": "#enable"}, "it is enabled"),
        ({"expect_count": {"selector": ".item", "count": 2}}, "it matches 3"),
        ({"expect_title": "Checkout"}, "it is 'Order form'"),
        (
            {"expect_attribute": {"selector": "#photo", "name": "accept", "value": "text/*"}},
            "its 'accept' is 'image/*'",
        ),
        ({"expect_attribute": {"selector": "#name", "name": "title"}}, "has no 'title'"),
        ({"expect_hidden": ".item"}, '3 visible: <li.item> "One", <li.item> "Two"'),
        ({"expect_enabled": "#nothing"}, "nothing matches"),
        ({"wait_for": "#nothing"}, "did not become visible: not within 0.5 s (none matches)"),
        ({"expect_aria": {"selector": "nav", "snapshot": '- button "Forward"'}}, "- button"),
        ({"expect_text": "Ordre"}, "the closest visible text is 'Order'"),
    ]
    for step, found in cases:  # (each never holds: half a second tells as well)
        error = steps.fails(step, timeout=0.5)
        assert isinstance(error, StepTimeout), (step, error)
        assert found in error.message, (step, error.message)
    steps({"goto": "/texts.html"})
    error = steps.fails({"expect_text": {"text": "Count: 1", "exact": True}})
    assert "'Count: 1' not as some element's whole text" in error.message
    assert "the closest visible text is 'Count: 10'" in error.message
    error = steps.fails({"expect_no_text": "Total: 42"})
    assert "still in the visible text" in error.message and "'Total: 42 items'" in error.message
    error = steps.fails({"expect_text": {"pattern": "Count: 1$"}})
    assert "/Count: 1$/ not in the visible text" in error.message
    # A page shows "Count: 10": a substring check passes, the exact one does not.
    steps({"expect_text": "Count: 1"})


def test_a_selector_that_matches_several_elements_is_an_ambiguous_recipe(
    steps: Steps,
) -> None:
    steps({"goto": "/texts.html"})
    for step in (
        {"click": "text=Completed"},  # also "Clear completed"
        {"expect_value": {"selector": "a", "value": "x"}},
        {"hover": "li"},
    ):
        error = steps.fails(step)
        assert isinstance(error, RecipeError), error
        assert "the recipe is ambiguous" in error.message
        assert "1) " in error.message and "2) " in error.message
    error = steps.fails({"click": "text=Completed"})
    assert "Completed" in error.message and "Clear completed" in error.message
    # Where several may match, they may.
    steps({"expect_visible": "li"}, {"expect_count": {"selector": "li", "count": 3}})


def test_dialogs_stay_open_until_answered(steps: Steps) -> None:
    browser = steps.browser
    steps({"goto": "/dialogs.html"}, {"click": "#alert"})
    assert browser.dialog is not None and browser.dialog.message == "Saved the draft"
    # A step that needs the page says a dialog holds it.
    error = steps.fails({"expect_text": "alert closed"})
    assert "a dialog is open on the page (alert 'Saved the draft')" in error.message
    out = steps(
        {"dialog": {"action": "accept", "expect": "Saved"}},
        {"expect_text": "alert closed"},
        {"click": "#confirm"},
        {"dialog": "dismiss"},
        {"expect_text": "confirm: false"},
        {"click": "#confirm"},
        {"press": "Enter"},  # answered by the keyboard, as a person does
        {"expect_text": "confirm: true"},
        {"click": "#prompt"},
        {"dialog": {"text": "Ada"}},
        {"expect_text": "Hello Ada"},
        {"click": "#prompt"},
        {"type": "Bob"},  # into the prompt's field
        {"press": "Enter"},
        {"expect_text": "Hello Bob"},
        {"click": "#late"},  # opens 0.3 s later: the dialog step waits for it
        {"dialog": "accept"},
        {"expect_text": "late closed"},
    )
    assert out[0].details == {"dialog": "alert", "message": "Saved the draft", "answer": "accepted"}
    assert out[9].details["typed"] == "Ada"
    answers = [(d.type, d.answer) for d in browser.dialogs_since(0)[-6:]]
    assert answers == [
        ("alert", "accepted"),
        ("confirm", "dismissed"),
        ("confirm", "closed by input"),
        ("prompt", "accepted"),
        ("prompt", "closed by input"),
        ("alert", "accepted"),
    ]
    # A page that alerts while it loads: goto ends with the alert on screen, and a wait
    # with a dialog open is just time passing.
    out = steps(
        {"goto": "/welcome.html"},
        {"wait": 0.5},
        {"dialog": {"expect": "Welcome"}},
        {"expect_text": "after the alert"},
    )
    assert out[0].note == "a dialog opened while the page loaded"
    error = steps.fails({"dialog": {"expect": "Saved"}}, timeout=0.5)
    assert "no alert, confirm or prompt opened within 0.5 s" in error.message
    steps({"goto": "/dialogs.html"}, {"click": "#confirm"})
    error = steps.fails({"dialog": {"expect": "Remove"}})
    assert "the confirm says 'Delete the item?', not 'Remove'" in error.message


def test_tabs_and_popups_take_the_front_and_switch_tab_brings_one_back(steps: Steps) -> None:
    browser = steps.browser
    out = steps(
        {"goto": "/tabs.html"},
        {"click": "#docs"},  # target=_blank: a new tab, in front
        {"expect_title": "Docs page"},
        {"click": "#docs-btn"},
        {"expect_text": "docs clicked"},
        {"switch_tab": 0},
        {"click": "#here"},
        {"expect_text": "home clicked"},
        {"click": "#popup"},  # a popup window, in front
        {"expect_text": "A helper window"},
        {"switch_tab": "Docs"},  # by a text in its title
        {"expect_text": "docs clicked"},
        {"switch_tab": "tab-popup"},  # by a text in its URL
        {"click": "#done"},  # closes the popup: back to the tab that opened it
        {"expect_title": "Tabs home"},
    )
    assert out[5].details["tab"] == 0 and out[10].details["tab"] == 1
    assert browser.tab == 0 and len(browser.tabs) == 2
    closed = browser.closed_tabs[-1]["url"]
    assert isinstance(closed, str) and closed.endswith("/tab-popup.html")
    error = steps.fails({"switch_tab": 5}, timeout=0.5)
    assert "no tab 5 within 0.5 s; the tabs: 0: 'Tabs home'" in error.message


def test_a_window_in_front_of_the_point_fails_a_click(steps: Steps) -> None:
    browser = steps.browser
    steps({"goto": "/popups.html"}, {"click": "#target"}, {"switch_tab": 0})
    assert "target clicked" in steps.text()
    # The page opens fifty popups over itself while the run looks at it: no input went
    # to it since the tab was switched to, so the run still acts on the page, and every
    # click on it now would land on a popup.
    browser.page.evaluate("openAll()")
    browser.sync()
    error = steps.fails({"click": "#target"}, timeout=3)
    assert isinstance(error, CheckFailed)
    assert "another window is in front of '#target'" in error.message
    assert "window 'Popup " in error.message and "of Chromium" in error.message
    assert browser.page.evaluate("document.getElementById('out').textContent") == ("target clicked")
    # Brought to the front again (as a person would), the page takes the click.
    steps({"switch_tab": 0}, {"click": "#target"}, timeout=20)


def test_another_programs_window_in_front_fails_a_click(steps: Steps, desktop: Desktop) -> None:
    from Xlib import X

    from verifier.desktop._display import open_display

    steps({"goto": "/index.html"})
    conn = open_display(desktop.display)
    try:
        screen = conn.screen()
        window = screen.root.create_window(
            0,
            0,
            1280,
            800,
            0,
            screen.root_depth,
            X.InputOutput,
            X.CopyFromParent,
            background_pixel=screen.white_pixel,
        )
        window.set_wm_name("Another program")
        window.set_wm_class("other", "Other")
        window.map()
        conn.sync()
        desktop.wait_windows(lambda ws: bool(ws) and ws[0].name == "Another program", timeout=5)
        error = steps.fails({"click": "#go"})
        assert "another window is in front of '#go'" in error.message
        assert "window 'Another program' of Other" in error.message
        window.destroy()
        conn.sync()
    finally:
        conn.close()
    desktop.wait_windows(lambda ws: all(w.name != "Another program" for w in ws), timeout=5)
    steps({"click": "#go"}, {"expect_text": "clicked"})


def test_html5_drag_and_input_into_browser_popups_wait_for_no_acknowledgement(
    steps: Steps,
) -> None:
    out = steps(
        {"goto": "/drag.html"},
        {"drag": {"from": "#card", "to": "#done"}},  # the page sees dragend, no mouseup
        {"expect_text": "dropped"},
        {"goto": "/forms.html"},
        {"click": "#fruit"},  # opens the list: keys go to it, never to the page
        {"press": "End"},
        {"press": "Enter"},
        {"expect_value": {"selector": "#fruit", "value": "date"}},
    )
    assert len(out) == 8
