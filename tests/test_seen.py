"""What a person sees and can reach: checks grounded in the screen, clicks that wait.

Against a real Chromium on a real Xvfb: a fixture page with every way of hiding text
(tests/apps/site/hidden.html), each failing with its reason, and a counterpart a person
sees passing; one with what a person can and cannot reach (reach.html).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from verifier.browser import Browser
from verifier.desktop import Desktop
from verifier.errors import CheckFailed, VerifierError
from verifier.recipe import parse_recipe
from verifier.steps import StepContext, run_step

pytestmark = pytest.mark.usefixtures("no_leaks")

# Text on hidden.html, and the reason a check gives for it.
GONE = {
    "gone opacity": "is there but transparent (opacity 0 on #op0)",
    "gone faint ancestor": "is there but transparent (opacity 0.05 on div.row)",
    "gone transparent colour": "is there but transparent (the text colour of span",
    "gone white on white": "shows nothing on screen",
    "gone under a pointerless cover": "shows nothing on screen",
    "gone filtered out": "shows nothing on screen",
    "gone in the dark": "shows nothing on screen",
    "gone masked": "shows nothing on screen",
    "gone under a pseudo element": "shows nothing on screen",
    "gone text fill": "shows nothing on screen",
    "gone on a white sibling": "shows nothing on screen",
    "gone in a white shadow": "shows nothing on screen",
    "gone in an unfilled svg": "shows nothing on screen",
    "gone too small": "is too small to read",
    "gone shrunk": "is too small to read",
    "gone edgewise": "is squeezed too narrow to read",
    "gone font size": "has no size (font-size: 0",
    "gone scaled": "has no size on screen",
    "gone collapsed": "is clipped by #accordion",
    "gone indented": "is outside the window (left of it",
    "gone left of the window": "is outside the window (left of it",
    "gone clip path": "(clip-path)",
    "gone screen reader only": "is clipped by span.sr-only",
    "gone under the overlay": "is covered by #overlay",
    "gone until found": 'is hidden until found (hidden="until-found"',
    "gone in details": "is inside a closed <details>",
    "gone display none": "is not rendered (display: none on span)",
    "gone in display contents": "is not rendered (display: none on span)",
    "gone hidden in display contents": "is hidden (visibility: hidden on b)",
    "gone visibility": "is hidden (visibility: hidden on span)",
    "gone below the window": "is outside the window (below it",
}
SEEN = [
    "seen under a clear gradient",
    "seen under a blended white layer",
    "seen with slow transitions",
    "seen as gradient text",
    "seen outlined",
    "seen in a fixed toast",
    "seen under a see-through veil",
    "seen half transparent",
    "seen plain",
    "seen without the pointer",
    "seen faint colour",
    "seen in display contents",
    "seen slotted in display contents",
    "seen through a boxless opacity",
]


@pytest.fixture
def ctx(desktop: Desktop, browser: Browser, site_url: str) -> Iterator[StepContext]:
    browser.hold_dialogs = False
    yield StepContext(desktop=desktop, browser=browser, base_url=site_url)


def run(ctx: StepContext, step: dict[str, object]) -> None:
    recipe = parse_recipe({"name": "seen", "url": ctx.base_url, "steps": [step]})
    run_step(ctx, recipe.steps[0])


def open_page(ctx: StepContext, page: str) -> None:
    ctx.browser.open(f"{ctx.base_url}{page}")


@pytest.mark.parametrize("text", sorted(GONE))
def test_text_nobody_can_see_fails_saying_why(ctx: StepContext, text: str) -> None:
    open_page(ctx, "hidden.html")
    with pytest.raises(CheckFailed) as failed:
        run(ctx, {"expect_text": {"text": text, "timeout": 0.5}})
    assert GONE[text] in failed.value.message
    # The page holds it: asked for the text shown or not, it passes.
    run(ctx, {"expect_text": {"text": text, "visible": False, "timeout": 0.5}})
    # And expect_no_text passes on what nobody sees.
    run(ctx, {"expect_no_text": {"text": text, "timeout": 0.5}})


def test_text_a_person_sees_passes(ctx: StepContext) -> None:
    open_page(ctx, "hidden.html")
    for text in SEEN:
        run(ctx, {"expect_text": {"text": text, "timeout": 2}})
        with pytest.raises(CheckFailed, match="still in the visible text"):
            run(ctx, {"expect_no_text": {"text": text, "timeout": 0.3}})
    run(ctx, {"expect_text": {"text": "Fixture app: what a person sees", "exact": True}})
    run(ctx, {"expect_text": {"pattern": "seen (plain|nowhere)"}})


def test_the_page_shows_only_what_a_person_sees(ctx: StepContext) -> None:
    open_page(ctx, "hidden.html")
    with pytest.raises(CheckFailed) as failed:
        run(ctx, {"expect_text": {"text": "nowhere at all", "timeout": 0.3}})
    shows = failed.value.message.split("the page shows", 1)[1]
    for text in ("gone screen reader only", "gone opacity", "gone indented", "gone collapsed"):
        assert text not in shows


def test_element_checks_judge_what_a_person_sees(ctx: StepContext) -> None:
    open_page(ctx, "hidden.html")
    with pytest.raises(
        CheckFailed, match=r"#op0> .* is there but transparent \(opacity 0 on #op0\)"
    ):
        run(ctx, {"expect_visible": {"selector": "#op0", "timeout": 0.5}})
    run(ctx, {"expect_hidden": {"selector": "#op0", "timeout": 0.5}})
    run(ctx, {"wait_for": {"selector": "#overlay", "state": "visible", "timeout": 0.5}})
    with pytest.raises(CheckFailed, match="is outside the window"):
        run(ctx, {"wait_for": {"selector": "#far", "timeout": 0.5}})
    run(ctx, {"expect_count": {"selector": "#op0, #overlay, #far", "count": 3}})
    run(ctx, {"expect_count": {"selector": "#op0, #overlay, #far", "count": 1, "visible": True}})
    # What makes no box of its own is seen by what it holds.
    for selector in ("#contents", "#slotted"):
        run(ctx, {"expect_visible": {"selector": selector, "timeout": 2}})
    for selector, why in (
        ("#skipped-contents", "content-visibility: hidden"),
        ("#closed-contents", "inside a closed <details>"),
        ("#veiled-contents", "visibility: hidden on i"),
        ("#faded-contents", "opacity 0 on i"),
    ):
        with pytest.raises(CheckFailed, match=why):
            run(ctx, {"expect_visible": {"selector": selector, "timeout": 0.5}})


def test_clicks_reach_what_a_person_reaches(ctx: StepContext) -> None:
    open_page(ctx, "reach.html")
    with pytest.raises(CheckFailed, match=r"outside #stuck \(overflow: hidden\)"):
        run(ctx, {"click": {"selector": "#hidden-box", "timeout": 1}})
    run(ctx, {"click": {"selector": "#scrolled", "timeout": 2}})
    run(ctx, {"expect_text": {"text": "scrolled clicked", "timeout": 2}})
    with pytest.raises(
        CheckFailed, match=r"covered at its centre by <div#blocker> \(for 1\.\d s\)"
    ):
        run(ctx, {"click": {"selector": "#under", "timeout": 1}})
    with pytest.raises(CheckFailed, match=r"pointer-events: none on <div#inert>"):
        run(ctx, {"click": {"selector": "#deaf", "timeout": 0.5}})


def test_what_lies_out_of_view_is_scrolled_to_by_the_wheel(ctx: StepContext) -> None:
    """Below the fold, in a box that scrolls, and in such a box below the fold: the wheel
    over what scrolls it brings each into view (the page counts the wheel's notches)."""
    open_page(ctx, "reach.html")
    page = ctx.browser.page
    for selector, done in [
        ("#scrolled", "scrolled clicked"),
        ("#bottom", "bottom clicked"),
        ("#deep", "deep clicked"),
    ]:
        before = page.evaluate("window.wheels")
        run(ctx, {"click": {"selector": selector, "timeout": 5}})
        run(ctx, {"expect_text": {"text": done, "timeout": 2}})
        assert page.evaluate("window.wheels") > before, selector
    assert page.evaluate("document.getElementById('low').scrollTop") > 0
    # Back up by the wheel too.
    before = page.evaluate("window.wheels")
    run(ctx, {"click": {"selector": "#placeholder", "timeout": 5}})
    assert page.evaluate("window.wheels") > before
    assert page.evaluate("scrollY") < 200


def test_an_element_the_screen_does_not_show_is_not_visible(ctx: StepContext) -> None:
    """Under a cover that lets the pointer through, or painted like what is behind it:
    the page says it is seen, the screen shows nothing of it."""
    open_page(ctx, "hidden.html")
    for selector in ("#pointerless", "#white-shadow"):
        with pytest.raises(CheckFailed, match="is there but shows nothing on screen"):
            run(ctx, {"expect_visible": {"selector": selector, "timeout": 0.5}})
        with pytest.raises(CheckFailed, match="shows nothing on screen"):
            run(ctx, {"wait_for": {"selector": selector, "state": "visible", "timeout": 0.5}})
    run(ctx, {"expect_visible": {"selector": "text=seen under a see-through veil", "timeout": 2}})
    run(ctx, {"expect_visible": {"selector": "#under-clear-gradient", "timeout": 2}})
    with pytest.raises(CheckFailed, match="did not become hidden"):
        run(ctx, {"expect_hidden": {"selector": "#under-clear-gradient", "timeout": 0.5}})


def test_the_screens_test_leaves_the_page_as_it_was(ctx: StepContext) -> None:
    """Its own style attribute back, and nothing fading back in (slow transitions)."""
    open_page(ctx, "hidden.html")
    page = ctx.browser.page
    read = "[document.getElementById('slow').style.cssText]"
    style = page.evaluate(read)
    start = time.monotonic()
    run(ctx, {"expect_text": {"text": "seen with slow transitions", "timeout": 2}})
    run(ctx, {"expect_visible": {"selector": "#slow", "timeout": 2}})
    assert time.monotonic() - start < 1.5
    assert page.evaluate(read) == style
    assert page.evaluate("document.getAnimations().length") == 0
    assert page.evaluate("getComputedStyle(document.getElementById('slow')).color") == (
        "rgb(51, 51, 51)"
    )


def test_a_scroll_lock_on_the_root_clips_nothing(ctx: StepContext) -> None:
    """Dialog libraries set overflow: hidden on <html> while open: the window still shows
    what it shows (the root's overflow is the window's)."""
    open_page(ctx, "hidden.html")
    ctx.browser.page.evaluate(
        """() => { document.getElementById('far').scrollIntoView();
                   document.documentElement.style.overflow = 'hidden'; }"""
    )
    run(ctx, {"expect_text": {"text": "gone below the window", "timeout": 2}})
    run(ctx, {"expect_visible": {"selector": "#far", "timeout": 2}})


def test_a_long_page_is_read_in_time(ctx: StepContext) -> None:
    """A table of 5,000 rows (a string grown a character at a time took 20 s to read)."""
    open_page(ctx, "hidden.html")
    ctx.browser.page.evaluate(
        """() => { const t = document.createElement('table');
                   for (let i = 0; i < 5000; i++) {
                     const r = t.insertRow(); r.insertCell().textContent = 'row ' + i;
                     r.insertCell().textContent = 'some longer cell text ' + i; }
                   document.body.append(t); }"""
    )
    start = time.monotonic()
    run(ctx, {"expect_text": {"text": "Fixture app: what a person sees", "timeout": 10}})
    assert time.monotonic() - start < 5


def test_a_pulsing_button_is_clicked(ctx: StepContext) -> None:
    """A call to action that pulses in size (framer-motion): its centre holds."""
    open_page(ctx, "reach.html")
    run(ctx, {"click": {"selector": "#pulse", "timeout": 5}})
    run(ctx, {"expect_text": {"text": "pulse clicked", "timeout": 2}})


def test_a_click_on_a_control_that_prevents_pointerdown_is_seen_at_once(
    ctx: StepContext,
) -> None:
    """Headless UI's menu buttons prevent pointerdown: no mouseup follows, the pointerup
    tells the page saw the click (waiting for a mouseup took 2 s a click)."""
    open_page(ctx, "reach.html")
    start = time.monotonic()
    run(ctx, {"click": {"selector": "#menu-button", "timeout": 5}})
    assert time.monotonic() - start < 1.5
    run(ctx, {"expect_text": {"text": "menu opened", "timeout": 2}})


def test_a_see_through_part_of_the_same_control_is_no_cover(ctx: StepContext) -> None:
    """react-select's input container lies over its placeholder: a click there opens it."""
    open_page(ctx, "reach.html")
    run(ctx, {"click": {"selector": "#placeholder", "timeout": 2}})
    run(ctx, {"expect_visible": {"selector": "#menu", "timeout": 2}})


def test_a_click_waits_while_the_target_takes_no_pointer(ctx: StepContext) -> None:
    """react-window turns the pointer off its rows for ~150 ms after a scroll: a click
    waits for it, 20 runs in 20."""
    open_page(ctx, "reach.html")
    for n in range(20):
        ctx.browser.page.evaluate(
            "(n) => { document.getElementById('flicker').textContent = 'busy ' + n; busy(150); }",
            n,
        )
        run(ctx, {"click": {"selector": "#flicker", "timeout": 3}})
        run(ctx, {"expect_text": {"text": "flicker clicked", "timeout": 2}})


def test_a_text_that_changes_while_the_check_waits_is_told(ctx: StepContext) -> None:
    open_page(ctx, "hidden.html")
    ctx.browser.page.evaluate(
        """() => { const p = document.createElement('p'); p.id = 'toast';
             p.textContent = 'Saving...'; document.body.prepend(p);
             setTimeout(() => { p.textContent = 'Saved with errors'; }, 400); }"""
    )
    start = time.monotonic()
    with pytest.raises(CheckFailed) as failed:
        run(ctx, {"expect_text": {"text": "Saved", "exact": True, "timeout": 2.2}})
    assert time.monotonic() - start < 9
    message = failed.value.message
    assert "while it waited the page showed 'Saving...'" in message, message
    assert "'Saved with errors' (at" in message


def test_why_a_text_was_not_seen_is_told_after_it_went(ctx: StepContext) -> None:
    """A toast shown outside the window, gone before the check gives up."""
    open_page(ctx, "hidden.html")
    ctx.browser.page.evaluate(
        """() => { const p = document.createElement('p'); p.textContent = 'Saved away';
             p.style.cssText = 'position: fixed; left: -9999px; top: 10px';
             document.body.append(p); setTimeout(() => p.remove(), 900); }"""
    )
    with pytest.raises(CheckFailed) as failed:
        run(ctx, {"expect_text": {"text": "Saved away", "timeout": 1.8}})
    assert "it was there but is outside the window (left of it" in failed.value.message


def test_a_url_with_a_port_that_is_no_number_is_refused() -> None:
    with pytest.raises(VerifierError, match="url"):
        parse_recipe({"name": "x", "url": "http://127.0.0.1:@PORT@/", "steps": [{"goto": "/"}]})
    with pytest.raises(VerifierError, match="url"):
        parse_recipe(
            {
                "name": "x",
                "app": {"command": "x", "url": "http://127.0.0.1:@PORT@/"},
                "steps": [{"goto": "/"}],
            }
        )
