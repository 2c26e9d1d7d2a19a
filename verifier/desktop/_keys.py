"""Key names: Playwright's (``Control+Shift+T``, ``ArrowLeft``) and xdotool's
(``ctrl+shift+t``, ``Return``), resolved to X keysyms."""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass

from Xlib import XK

from verifier.errors import InputError

__all__ = ("KEY_ALIASES", "MODIFIERS", "char_keysym", "key_name", "parse_chord")

# Lower-cased alias -> the key's name: an X keysym name, or a modifier of ``MODIFIERS``.
# Playwright's names (ArrowLeft, PageUp, ControlOrMeta), xdotool's (ctrl, Return, Prior)
# and OpenAI's upper-case ones (CTRL, ESC) all land here.
KEY_ALIASES: dict[str, str] = {
    "ctrl": "Control",
    "control": "Control",
    "control_l": "Control",
    "control_r": "Control_R",
    "controlormeta": "Control",
    "shift": "Shift",
    "shift_l": "Shift",
    "shift_r": "Shift_R",
    "alt": "Alt",
    "alt_l": "Alt",
    "alt_r": "Alt_R",
    "option": "Alt",
    "meta": "Meta",
    "super": "Meta",
    "super_l": "Meta",
    "cmd": "Meta",
    "command": "Meta",
    "win": "Meta",
    "windows": "Meta",
    "enter": "Return",
    "return": "Return",
    "ret": "Return",
    "kp_enter": "KP_Enter",
    "tab": "Tab",
    "space": "space",
    "spacebar": "space",
    "backspace": "BackSpace",
    "delete": "Delete",
    "del": "Delete",
    "insert": "Insert",
    "ins": "Insert",
    "escape": "Escape",
    "esc": "Escape",
    "up": "Up",
    "down": "Down",
    "left": "Left",
    "right": "Right",
    "arrowup": "Up",
    "arrowdown": "Down",
    "arrowleft": "Left",
    "arrowright": "Right",
    "home": "Home",
    "end": "End",
    "pageup": "Page_Up",
    "page_up": "Page_Up",
    "pgup": "Page_Up",
    "prior": "Page_Up",
    "pagedown": "Page_Down",
    "page_down": "Page_Down",
    "pgdn": "Page_Down",
    "next": "Page_Down",
    "capslock": "Caps_Lock",
    "caps_lock": "Caps_Lock",
    "menu": "Menu",
    "contextmenu": "Menu",
    "print": "Print",
    "printscreen": "Print",
    "divide": "KP_Divide",
    "multiply": "KP_Multiply",
    **{f"f{n}": f"F{n}" for n in range(1, 25)},
}
# Our modifier names -> the X keysym pressed for each.
MODIFIERS: dict[str, str] = {
    "Control": "Control_L",
    "Control_R": "Control_R",
    "Shift": "Shift_L",
    "Shift_R": "Shift_R",
    "Alt": "Alt_L",
    "Alt_R": "Alt_R",
    "Meta": "Super_L",
}


@functools.cache
def _keysym_names() -> dict[str, str]:
    """X keysym names by lower-cased name; an exact lower-case name wins a clash (``eth``)."""
    names: dict[str, str] = {}
    for attr in dir(XK):
        if attr.startswith("XK_") and len(attr) > 4:
            name = attr[3:]
            lower = name.lower()
            if lower not in names or name == lower:
                names[lower] = name
    return names


def key_name(name: str, *, where: str = "key") -> str:
    """One key's name as recipes write it: ``"ctrl"`` -> ``"Control"``, ``"pgdn"`` ->
    ``"Page_Down"``, ``"return"`` -> ``"Return"``; a single character stays itself.

    :raises InputError: for a name no table knows, with the closest one it could mean.
    """
    if len(name) == 1:
        return name
    lower = name.lower()
    if lower in KEY_ALIASES:
        return KEY_ALIASES[lower]
    if XK.string_to_keysym(name):
        return name
    if lower in _keysym_names():
        return _keysym_names()[lower]
    close = difflib.get_close_matches(lower, [*KEY_ALIASES, *_keysym_names()], n=1, cutoff=0.7)
    hint = ""
    if close:
        hint = f"; did you mean {KEY_ALIASES.get(close[0]) or _keysym_names()[close[0]]!r}?"
    msg = f"unknown {where} {name!r}{hint}"
    raise InputError(msg)


@dataclass(frozen=True, slots=True)
class Chord:
    """A key combo: modifiers held while ``key`` is pressed."""

    modifiers: tuple[int, ...]
    key: int
    text: str


def char_keysym(char: str) -> int:
    """The keysym that types ``char``: Latin-1 keysyms are the code point, others 0x1000000+."""
    if char == "\n":
        return int(XK.string_to_keysym("Return"))
    if char == "\t":
        return int(XK.string_to_keysym("Tab"))
    code = ord(char)
    if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF:
        return code
    return 0x01000000 | code


def keysym_of(name: str) -> int:
    """The keysym for one key name: an alias, an X keysym name, or a single character."""
    if len(name) == 1:
        return char_keysym(name)
    canonical = key_name(name)
    return int(XK.string_to_keysym(MODIFIERS.get(canonical, canonical)))


def parse_chord(combo: str) -> Chord:
    """``"Control+Shift+T"`` -> Chord. A lone ``+`` is the plus key."""
    text = combo.strip()
    if not text:
        msg = "empty key name"
        raise InputError(msg)
    if text == "+" or text.endswith("++"):
        parts = [*(p for p in text[:-2].split("+") if p), "+"] if text != "+" else ["+"]
    else:
        parts = text.split("+")
    if any(not p for p in parts):
        msg = f"malformed key combo {combo!r}; write it like 'Control+Shift+T'"
        raise InputError(msg)
    *mods, key = parts
    modifiers = []
    for mod in mods:
        sym = keysym_of(mod)
        if _is_modifier(sym):
            modifiers.append(sym)
        else:
            msg = f"{mod!r} in {combo!r} is not a modifier (Control, Shift, Alt, Meta)"
            raise InputError(msg)
    keysym = keysym_of(key)
    # With modifiers held, a letter names the key, not the shifted character (Playwright).
    if modifiers and len(key) == 1 and key.isalpha() and key.isascii():
        keysym = char_keysym(key.lower())
    return Chord(tuple(modifiers), keysym, combo)


def _is_modifier(keysym: int) -> bool:
    return any(XK.string_to_keysym(name) == keysym for name in MODIFIERS.values())
