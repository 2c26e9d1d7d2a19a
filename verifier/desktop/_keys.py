"""Key names: Playwright's (``Control+Shift+T``, ``ArrowLeft``) and xdotool's
(``ctrl+shift+t``, ``Return``), resolved to X keysyms."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from Xlib import XK

from verifier.errors import InputError

__all__ = ()

# Lower-cased alias -> X keysym name.
_ALIASES: dict[str, str] = {
    "enter": "Return",
    "return": "Return",
    "kp_enter": "KP_Enter",
    "tab": "Tab",
    "space": "space",
    "backspace": "BackSpace",
    "delete": "Delete",
    "del": "Delete",
    "insert": "Insert",
    "escape": "Escape",
    "esc": "Escape",
    "arrowleft": "Left",
    "arrowright": "Right",
    "arrowup": "Up",
    "arrowdown": "Down",
    "left": "Left",
    "right": "Right",
    "up": "Up",
    "down": "Down",
    "home": "Home",
    "end": "End",
    "pageup": "Prior",
    "pagedown": "Next",
    "page_up": "Prior",
    "page_down": "Next",
    "prior": "Prior",
    "next": "Next",
    "capslock": "Caps_Lock",
    "menu": "Menu",
    "contextmenu": "Menu",
    "print": "Print",
    "control": "Control_L",
    "ctrl": "Control_L",
    "control_l": "Control_L",
    "control_r": "Control_R",
    "controlormeta": "Control_L",
    "shift": "Shift_L",
    "shift_l": "Shift_L",
    "shift_r": "Shift_R",
    "alt": "Alt_L",
    "alt_l": "Alt_L",
    "alt_r": "Alt_R",
    "option": "Alt_L",
    "meta": "Super_L",
    "super": "Super_L",
    "super_l": "Super_L",
    "cmd": "Super_L",
    "command": "Super_L",
    "win": "Super_L",
    **{f"f{n}": f"F{n}" for n in range(1, 25)},
}
_MODIFIERS = {"Control_L", "Control_R", "Shift_L", "Shift_R", "Alt_L", "Alt_R", "Super_L"}


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
    alias = _ALIASES.get(name.lower())
    keysym = XK.string_to_keysym(alias or name)
    if keysym == 0:
        keysym = XK.string_to_keysym(name.capitalize())
    if keysym == 0:
        known = sorted({*_ALIASES, *(v for v in _ALIASES.values())})
        close = difflib.get_close_matches(name.lower(), [k.lower() for k in known], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        msg = f"unknown key {name!r}{hint}"
        raise InputError(msg)
    return int(keysym)


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
    return any(XK.string_to_keysym(name) == keysym for name in _MODIFIERS)
