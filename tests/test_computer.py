"""The computer-use API: scaling, keys, encoding, and both adapters action by action against
a real page on a real desktop (the page records every event it gets)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np
import pytest
import yaml
from playwright.sync_api import Error as PlaywrightError

from verifier.browser import Browser
from verifier.computer import (
    Computer,
    Op,
    ScreenScale,
    Target,
    anthropic_action,
    computer_tool_schema,
    decode,
    describe,
    encode,
    openai_action,
)
from verifier.computer._keys import openai_keys, xdotool_keys
from verifier.desktop import Desktop
from verifier.errors import InputError, VerifierError
from verifier.recipe import parse_recipe
from verifier.session._replay import render_recipe

# -- scaling -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("screen", "target", "model"),
    [
        ((1280, 800), (1024, 768), (1024, 640)),
        ((1920, 1080), (1280, 800), (1280, 720)),
        ((1366, 768), (1024, 768), (1024, 576)),
        ((1280, 800), (1280, 800), (1280, 800)),
        ((800, 600), (1280, 800), (800, 600)),  # never enlarged
        ((1000, 3000), (1024, 768), (256, 768)),
        ((1280, 800), None, (1280, 800)),
    ],
)
def test_scale_fits_the_target_keeping_the_aspect(
    screen: tuple[int, int], target: tuple[int, int] | None, model: tuple[int, int]
) -> None:
    assert ScreenScale.fit(screen, target).model == model


@pytest.mark.parametrize(
    ("screen", "target"),
    [
        ((1280, 800), (1024, 768)),
        ((1920, 1080), (1280, 800)),
        ((1366, 768), (1024, 768)),
        ((1280, 800), None),
        ((2560, 1600), (1280, 800)),
        ((1000, 777), (333, 333)),
    ],
)
def test_model_to_screen_to_model_is_exact_for_every_pixel(
    screen: tuple[int, int], target: tuple[int, int] | None
) -> None:
    scale = ScreenScale.fit(screen, target)
    (mw, mh), (sw, sh) = scale.model, scale.screen
    ratio_x, ratio_y = sw / mw, sh / mh
    for x in range(mw):
        sx, _ = scale.to_screen(x, 0)
        assert 0 <= sx < sw
        assert scale.to_model(sx, 0)[0] == x
    for y in range(mh):
        _, sy = scale.to_screen(0, y)
        assert 0 <= sy < sh
        assert scale.to_model(0, sy)[1] == y
    # The other way is as exact as the model's coarser grid allows.
    for sx in range(0, sw, 7):
        back = scale.to_screen(*scale.to_model(sx, 0))[0]
        assert abs(back - sx) <= ratio_x / 2 + 0.5
    for sy in range(0, sh, 7):
        back = scale.to_screen(*scale.to_model(0, sy))[1]
        assert abs(back - sy) <= ratio_y / 2 + 0.5


def test_out_of_range_points_and_regions_are_refused() -> None:
    scale = ScreenScale.fit((1280, 800), (1024, 768))
    for x, y in [(1024, 0), (0, 640), (-1, 5), (5, -1)]:
        with pytest.raises(InputError, match=r"is outside the 1024x640 screen; use 0 <= x <= 1023"):
            scale.to_screen(x, y)
    assert scale.region_to_screen((0, 0, 1024, 640)) == (0, 0, 1280, 800)
    assert scale.region_to_screen((10, 10, 11, 11)) == (12, 12, 14, 14)
    for region in [(5, 5, 5, 10), (0, 0, 1025, 10), (10, 0, 5, 5)]:
        with pytest.raises(InputError, match="region .* is not inside the 1024x640 screen"):
            scale.region_to_screen(region)


# -- encoding ----------------------------------------------------------------------------


def test_encodings_round_trip() -> None:
    rng = np.random.default_rng(1)
    ui = np.full((200, 300, 3), 240, np.uint8)
    ui[50:80, 40:200] = (0, 160, 80)
    png = encode(ui, "png")
    assert png.mime == "image/png" and (png.width, png.height) == (300, 200)
    assert np.array_equal(decode(png.data), ui)  # lossless
    assert encode(ui, "auto").mime == "image/png"
    jpeg = encode(ui, "jpeg")
    assert jpeg.mime == "image/jpeg"
    assert np.abs(decode(jpeg.data).astype(int) - ui).mean() < 3
    assert encode(ui, "webp").mime == "image/webp"
    # A photo-like screen: auto sends JPEG, much smaller than the PNG.
    noise = rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)
    auto = encode(noise, "auto")
    assert auto.mime == "image/jpeg" and len(auto.data) < len(encode(noise, "png").data)


# -- keys --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "combos"),
    [
        ("Return", ["Return"]),
        ("ctrl+shift+t", ["Control+Shift+t"]),
        ("ctrl+a BackSpace", ["Control+a", "BackSpace"]),
        ("alt+Tab", ["Alt+Tab"]),
        ("KP_0", ["KP_0"]),
        ("super", ["Meta"]),
        ("Page_Down", ["Page_Down"]),
        ("pgup", ["Page_Up"]),
        ("F5", ["F5"]),
        ("ctrl++", ["Control++"]),
        ("minus", ["minus"]),
        ("ESCAPE", ["Escape"]),
        (" ", ["space"]),
        ("CTRL+C", ["Control+c"]),
    ],
)
def test_xdotool_key_names(text: str, combos: list[str]) -> None:
    assert xdotool_keys(text) == combos


def test_openai_key_names() -> None:
    assert openai_keys(["CTRL", "A"]) == "Control+a"
    assert openai_keys(["ENTER"]) == "Return"
    assert openai_keys(["SHIFT", "ARROWLEFT"]) == "Shift+Left"
    assert openai_keys(["CMD", "SPACE"]) == "Meta+space"
    assert openai_keys(["/"]) == "/"


def test_bad_key_names_are_refused_with_a_hint() -> None:
    with pytest.raises(InputError, match=r"unknown key 'Retrun'; did you mean 'Return'\?"):
        xdotool_keys("Retrun")
    with pytest.raises(InputError, match="presses 2 non-modifier keys"):
        xdotool_keys("a+b")
    with pytest.raises(InputError, match="'text' is empty"):
        xdotool_keys("")


# -- the replay recipe ---------------------------------------------------------------------


def test_replay_recipe_is_a_valid_recipe() -> None:
    ops = [
        Op("click", points=((780, 157),), target=Target('<button#go> "Go"', "#go")),
        Op("click", points=((5, 6),), count=3, target=Target("<div#pad>")),
        Op("click", points=((7, 8),), button="right"),
        Op("type", text='Grüße "x"\n東京 # no comment 😀'),
        Op("key", keys=("Control+a", "BackSpace")),
        Op("scroll", points=((1, 2),), delta=(0, 360)),
        Op("mouse_down", points=((1, 1),)),
        Op("mouse_up", points=((50, 60),)),
        Op("drag", points=((1, 1), (5, 5), (9, 9))),
        Op("move", points=((3, 3),)),
        Op("wait", duration=2.0),
        Op("hold_key", keys=("Shift",), duration=0.5),
        Op("zoom", box=(0, 0, 10, 10)),
        Op("screenshot"),
    ]
    text = render_recipe(
        ops,
        name="Agent: lab",
        head={"url": "http://127.0.0.1:8000/", "screen": "1280x800"},
        start="/lab.html",
        intro="Replay.\nAdd checks.",
    )
    data = yaml.safe_load(text)
    recipe = parse_recipe(data)
    assert [s.action for s in recipe.steps] == [
        "goto",
        "click",
        "double_click",
        "click",
        "click",
        "type",
        "press",
        "press",
        "scroll",
        "drag",
        "drag",
        "hover",
        "wait",
    ]
    steps = data["steps"]
    assert steps[1] == {"click": "#go"}
    assert steps[2] == {"double_click": {"x": 5, "y": 6}}
    assert steps[4] == {"click": {"x": 7, "y": 8, "button": "right"}}
    assert steps[5] == {"type": 'Grüße "x"\n東京 # no comment 😀'}
    assert steps[8] == {"scroll": {"dy": 360, "x": 1, "y": 2}}
    assert steps[9] == {"drag": {"from": {"x": 1, "y": 1}, "to": {"x": 50, "y": 60}}}
    assert steps[11:13] == [{"hover": {"x": 3, "y": 3}}, {"wait": 2.0}]
    assert "# hold_key Shift for 0.5 s (not replayed)" in text
    assert text.startswith("# Replay.\n# Add checks.\nname: 'Agent: lab'\n")


# -- actions on a real page ----------------------------------------------------------------


@pytest.fixture
def lab(browser: Browser, site_url: str) -> Browser:
    browser.page.goto(site_url + "computer-lab.html")
    browser.page.evaluate("window.scrollTo(0, 0)")
    browser.next_frame()  # as a run does after goto (see tests/test_input.py)
    return browser


@pytest.fixture
def computer(desktop: Desktop, lab: Browser) -> Computer:
    return Computer(desktop, browser=lab)


def events(browser: Browser, kind: str) -> list[dict[str, Any]]:
    return [e for e in browser.page.evaluate("window.events") if e["type"] == kind]


def at(browser: Browser, x: int, y: int) -> list[int]:
    """Screen coordinates (= model coordinates, unscaled) of page point (x, y)."""
    ox, oy = browser.viewport_origin()
    return [ox + x, oy + y]


def test_screenshot_is_the_screen_now(computer: Computer, desktop: Desktop) -> None:
    out = anthropic_action(computer, {"action": "screenshot"})
    image = out.image()
    assert (image.width, image.height) == (1280, 800) and image.mime == "image/png"
    assert np.array_equal(decode(image.data), out.frame)
    assert describe("screenshot", out) == "screenshot 1280x800"
    schema = computer_tool_schema(computer.size)
    assert "zoom" in schema["properties"]["action"]["enum"]


@pytest.mark.parametrize(
    ("action", "kind", "button", "detail", "x"),
    [
        ("left_click", "click", 0, 1, 100),
        ("right_click", "contextmenu", 2, 1, 150),
        ("middle_click", "auxclick", 1, 1, 200),
        ("double_click", "dblclick", 0, 2, 250),
        ("triple_click", "click", 0, 3, 300),
    ],
)
def test_anthropic_clicks(
    computer: Computer, lab: Browser, action: str, kind: str, button: int, detail: int, x: int
) -> None:
    # Each at a point of its own: Chromium counts clicks at one spot across pages (1, 2, 3, 1).
    out = anthropic_action(computer, {"action": action, "coordinate": at(lab, x, 80)})
    assert out.settled
    seen = events(lab, kind)
    assert seen, f"no {kind} event"
    assert (seen[-1]["x"], seen[-1]["y"], seen[-1]["button"]) == (x, 80, button)
    presses = [e for e in events(lab, "mousedown") if e["button"] == button]
    assert presses[-1]["detail"] == detail
    assert out.op.target is not None and out.op.target.description == "<div#pad>"


def test_click_with_a_modifier_held(computer: Computer, lab: Browser) -> None:
    anthropic_action(
        computer, {"action": "left_click", "coordinate": at(lab, 50, 50), "text": "shift"}
    )
    click = events(lab, "click")[-1]
    assert click["shift"] and not click["ctrl"]


def test_a_click_names_its_point_and_the_pointer_says_where_it_is(
    computer: Computer, lab: Browser
) -> None:
    anthropic_action(computer, {"action": "mouse_move", "coordinate": at(lab, 300, 200)})
    assert events(lab, "mousemove")[-1]["x"] == 300
    clicks = len(events(lab, "click"))
    # Where the pointer happens to be is no target: refused, and nothing is clicked.
    for args in ({"action": "left_click"}, {"action": "double_click", "coordinate": None}):
        with pytest.raises(InputError, match=r"'coordinate' is required, as \[x, y\]"):
            anthropic_action(computer, args)
    with pytest.raises(InputError, match=r"scroll: 'coordinate' is required, .*\(missing\)"):
        anthropic_action(computer, {"action": "scroll", "scroll_direction": "down"})
    assert len(events(lab, "click")) == clicks
    out = anthropic_action(computer, {"action": "cursor_position"})
    assert describe("cursor_position", out) == "X={},Y={}".format(*at(lab, 300, 200))


def test_drag_and_mouse_down_up(computer: Computer, lab: Browser) -> None:
    anthropic_action(
        computer,
        {
            "action": "left_click_drag",
            "start_coordinate": at(lab, 50, 60),
            "coordinate": at(lab, 400, 250),
        },
    )
    down, up = events(lab, "mousedown")[-1], events(lab, "mouseup")[-1]
    assert (down["x"], down["y"], up["x"], up["y"]) == (50, 60, 400, 250)
    anthropic_action(computer, {"action": "mouse_move", "coordinate": at(lab, 100, 100)})
    anthropic_action(computer, {"action": "left_mouse_down"})
    anthropic_action(computer, {"action": "mouse_move", "coordinate": at(lab, 200, 150)})
    assert events(lab, "mousemove")[-1]["buttons"] == 1  # moving with the button held
    anthropic_action(computer, {"action": "left_mouse_up"})
    down, up = events(lab, "mousedown")[-1], events(lab, "mouseup")[-1]
    assert (down["x"], down["y"], up["x"], up["y"]) == (100, 100, 200, 150)


def test_scroll_in_every_direction(computer: Computer, lab: Browser) -> None:
    point = at(lab, 300, 150)
    base = {"action": "scroll", "coordinate": point, "scroll_amount": 2}
    # The answer comes once the screen holds still; Chromium's smooth scroll may still
    # have a frame to go on a loaded machine (seen once): where it ends is what counts.
    anthropic_action(computer, {**base, "scroll_direction": "down"})
    assert scrolled_to(lab, 0, 240)
    assert events(lab, "wheel")[-1]["dy"] > 0
    anthropic_action(computer, {**base, "scroll_direction": "right"})
    assert scrolled_to(lab, 240, 240)
    anthropic_action(computer, {**base, "scroll_direction": "up", "scroll_amount": 1})
    anthropic_action(computer, {**base, "scroll_direction": "left", "scroll_amount": 1})
    assert scrolled_to(lab, 120, 120)


def scrolled_to(lab: Browser, x: int, y: int) -> list[int]:
    """The page's scroll offsets once they are (x, y), within a second; else they fail."""
    with contextlib.suppress(PlaywrightError):
        lab.page.wait_for_function(f"scrollX === {x} && scrollY === {y}", timeout=1000)
    where = lab.page.evaluate("[scrollX, scrollY]")
    assert where == [x, y]
    return list(where)


def test_type_key_and_hold_key(computer: Computer, lab: Browser) -> None:
    out = anthropic_action(computer, {"action": "left_click", "coordinate": at(lab, 800, 160)})
    assert out.op.target == Target("<input#name>", "#name")
    text = "Grüße, 東京 ✓ 😀"
    anthropic_action(computer, {"action": "type", "text": text})
    assert lab.page.input_value("#name") == text
    assert lab.page.inner_text("#greeting") == f"Hello, {text}!"
    anthropic_action(computer, {"action": "key", "text": "ctrl+a BackSpace"})
    assert lab.page.input_value("#name") == ""
    anthropic_action(computer, {"action": "key", "text": "Return"})
    assert events(lab, "keydown")[-1]["key"] == "Enter"
    t0 = time.monotonic()
    anthropic_action(computer, {"action": "hold_key", "text": "shift", "duration": 0.3})
    assert time.monotonic() - t0 >= 0.3
    down = [e for e in events(lab, "keydown") if e["key"] == "Shift"][-1]
    up = [e for e in events(lab, "keyup") if e["key"] == "Shift"][-1]
    assert up["t"] - down["t"] >= 250


def test_wait_and_zoom(computer: Computer, desktop: Desktop) -> None:
    t0 = time.monotonic()
    out = anthropic_action(computer, {"action": "wait", "duration": 0.2})
    assert time.monotonic() - t0 >= 0.2 and out.settled
    out = anthropic_action(computer, {"action": "zoom", "region": [700, 120, 900, 200]})
    assert out.view.shape == (80, 200, 3)
    assert np.array_equal(out.view, out.frame[120:200, 700:900])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"action": "left_clik"}, r"unknown action 'left_clik'; did you mean 'left_click'\?"),
        ({"action": "mouse_move"}, r"mouse_move: 'coordinate' is required, as \[x, y\]"),
        ({"action": "left_click", "coordinate": [1280, 0]}, "outside the 1280x800 screen"),
        ({"action": "left_click", "coordinate": [1, 2, 3]}, r"must be \[x, y\]"),
        ({"action": "left_click", "cordinate": [1, 2]}, r"did you mean 'coordinate'\?"),
        ({"action": "scroll", "scroll_direction": "sideways"}, "'scroll_direction' must be"),
        ({"action": "key", "text": "Entr"}, r"unknown key 'Entr'; did you mean 'Return'\?"),
        ({"action": "type"}, "type: 'text' is required"),
        ({"action": "hold_key", "text": "shift"}, "'duration' is required"),
        ({"action": "wait", "duration": 1000}, "'duration' must be 0 to 100 seconds"),
        ({"action": "zoom", "region": [10, 10, 5, 5]}, "is not inside the 1280x800 screen"),
    ],
)
def test_bad_anthropic_calls_are_refused(
    computer: Computer, args: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        anthropic_action(computer, args)


@pytest.mark.parametrize(
    ("button", "kind", "code"),
    [("left", "click", 0), ("right", "contextmenu", 2), ("wheel", "auxclick", 1)],
)
def test_openai_click_buttons(
    computer: Computer, lab: Browser, button: str, kind: str, code: int
) -> None:
    x, y = at(lab, 220, 110)
    openai_action(computer, {"type": "click", "x": x, "y": y, "button": button})
    event = events(lab, kind)[-1]
    assert (event["x"], event["y"], event["button"]) == (220, 110, code)


def test_openai_back_button_goes_back(computer: Computer, lab: Browser) -> None:
    first = lab.page.url
    lab.page.goto(first + "?second")
    x, y = at(lab, 10, 10)
    out = openai_action(computer, {"type": "click", "x": x, "y": y, "button": "back"})
    assert "sent as alt+Left" in out.note
    lab.page.wait_for_url(first)


def test_openai_pointer_actions(computer: Computer, lab: Browser) -> None:
    x, y = at(lab, 150, 90)
    openai_action(computer, {"type": "double_click", "x": x, "y": y})
    assert events(lab, "dblclick")[-1]["x"] == 150
    openai_action(computer, {"type": "move", "x": x + 10, "y": y + 10})
    assert events(lab, "mousemove")[-1]["x"] == 160
    path = [
        dict(zip("xy", at(lab, px, py), strict=True))
        for px, py in [(20, 20), (300, 40), (300, 250)]
    ]
    openai_action(computer, {"type": "drag", "path": path})
    down, up = events(lab, "mousedown")[-1], events(lab, "mouseup")[-1]
    assert (down["x"], down["y"], up["x"], up["y"]) == (20, 20, 300, 250)
    moves = [m for m in events(lab, "mousemove") if m["t"] > down["t"]]
    assert any(m["x"] == 300 and m["y"] == 40 for m in moves)  # through the middle point
    openai_action(computer, {"type": "scroll", "x": x, "y": y, "scroll_x": 0, "scroll_y": 240})
    assert lab.page.evaluate("scrollY") == 240


def test_openai_keyboard_and_the_rest(computer: Computer, lab: Browser) -> None:
    x, y = at(lab, 800, 160)
    openai_action(computer, {"type": "click", "x": x, "y": y, "button": "left"})
    openai_action(computer, {"type": "type", "text": "héllo"})
    assert lab.page.input_value("#name") == "héllo"
    openai_action(computer, {"type": "keypress", "keys": ["CTRL", "A"]})
    openai_action(computer, {"type": "keypress", "keys": ["BACKSPACE"]})
    assert lab.page.input_value("#name") == ""
    assert openai_action(computer, {"type": "screenshot"}).image().mime == "image/png"
    t0 = time.monotonic()
    openai_action(computer, {"type": "wait"})
    assert time.monotonic() - t0 >= 1.0
    with pytest.raises(InputError, match=r"unknown action type 'clik'; did you mean 'click'\?"):
        openai_action(computer, {"type": "clik"})
    with pytest.raises(InputError, match="'button' must be one of"):
        openai_action(computer, {"type": "click", "x": 1, "y": 1, "button": "thumb"})


def test_scaled_coordinates_land_exactly(desktop: Desktop, lab: Browser) -> None:
    computer = Computer(desktop, browser=lab, scale=(1024, 768))
    assert computer.size == (1024, 640)
    out = computer.screenshot()
    assert out.view.shape == (640, 1024, 3)
    sx, sy = at(lab, 250, 120)
    mx, my = computer.scale.to_model(sx, sy)
    anthropic_action(computer, {"action": "left_click", "coordinate": [mx, my]})
    click = events(lab, "click")[-1]
    tx, ty = computer.scale.to_screen(mx, my)
    assert (click["x"], click["y"]) == (250 + tx - sx, 120 + ty - sy)
    assert abs(tx - sx) <= 1 and abs(ty - sy) <= 1
    out = anthropic_action(computer, {"action": "cursor_position"})
    assert out.cursor == (mx, my)


def test_each_click_answers_with_the_screen_that_shows_it(computer: Computer, lab: Browser) -> None:
    """The answer to a click is the settled screen after it (bench/computer.py times it)."""
    point = at(lab, 780, 70)
    before = anthropic_action(computer, {"action": "screenshot"}).frame
    for n in range(1, 4):
        out = anthropic_action(computer, {"action": "left_click", "coordinate": point})
        assert out.settled and out.image().data
        assert lab.page.inner_text("#status") == f"Clicked {n} time" + ("s" if n > 1 else "")
        assert not np.array_equal(out.frame, before)  # the new status is in the answer
        before = out.frame


@pytest.mark.parametrize(
    ("x", "y", "selector"),
    [
        (760, 345, 'text="Save draft"'),  # unique text, on a span inside the button
        (850, 395, 'input[name="email"]'),  # unique attribute
        (720, 445, None),  # two buttons say "Twin": coordinates are safer
        (300, 150, None),  # not an interactive element
    ],
)
def test_clicks_learn_a_unique_selector_when_there_is_one(
    computer: Computer, lab: Browser, x: int, y: int, selector: str | None
) -> None:
    out = anthropic_action(computer, {"action": "left_click", "coordinate": at(lab, x, y)})
    assert out.op.target is not None
    assert out.op.target.selector == selector
    if selector is not None:
        assert lab.page.locator(selector).count() == 1


def test_a_python_session_records_openai_actions(
    computer: Computer, lab: Browser, tmp_path: Any
) -> None:
    from verifier.evidence import BundleWriter, verify_bundle
    from verifier.recipe import load_recipe
    from verifier.session import ReplaySpec, Session

    bundle = BundleWriter(tmp_path, recipe={"name": "lab", "path": None, "sha256": ""})
    session = Session(
        computer,
        bundle,
        replay=ReplaySpec("lab replay", {"url": lab.page.url, "screen": "1280x800"}, lab.page.url),
    )
    x, y = at(lab, 780, 70)
    session.openai({"type": "click", "x": x, "y": y, "button": "left"})
    session.openai({"type": "screenshot"})
    session.openai({"type": "screenshot"})
    with pytest.raises(InputError):
        session.openai({"type": "scroll", "x": 99999, "y": 0})
    session.openai({"type": "keypress", "keys": ["TAB"]})
    result = session.finish("passed", summary="clicked Go")
    assert lab.page.inner_text("#status") == "Clicked 1 time"
    steps = bundle.manifest["steps"]
    assert [s["status"] for s in steps] == ["passed", "passed", "passed", "error", "passed"]
    assert steps[0]["target"] == f"x={x} y={y}" and steps[0]["details"]["selector"] == "#go"
    assert steps[1]["screenshot"] == steps[2]["screenshot"]  # the same screen, written once
    assert verify_bundle(result.bundle) == []
    recipe = load_recipe(result.recipe)
    assert [s.action for s in recipe.steps] == ["goto", "click", "press"]
    with pytest.raises(VerifierError, match="the session is finished"):
        session.openai({"type": "screenshot"})
