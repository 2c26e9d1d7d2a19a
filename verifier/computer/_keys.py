"""Key names as computer-use models write them, mapped onto the desktop's names.

Anthropic's tool uses xdotool syntax (``ctrl+shift+t``, ``Return``, ``KP_0``, and
space-separated sequences like ``ctrl+a BackSpace``); OpenAI's uses upper-case names in a
list (``["CTRL", "A"]``). Both become combos ``Desktop.key`` takes (``Control+a``), which
are also what a recipe's ``press`` step takes, so a session replays as written.
"""

from __future__ import annotations

import difflib
import functools

from Xlib import XK

from verifier.errors import InputError

__all__ = ()

# Lower-cased name -> the name we hand to Desktop.key (its own aliases or an X keysym).
_NAMES: dict[str, str] = {
    "ctrl": "Control",
    "control": "Control",
    "control_l": "Control",
    "control_r": "Control_R",
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
_MODIFIERS = frozenset({"Control", "Control_R", "Shift", "Shift_R", "Alt", "Alt_R", "Meta"})


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
    """One key's name, as ``Desktop.key`` takes it: ``"ctrl"`` -> ``"Control"``."""
    if len(name) == 1:
        return name
    lower = name.lower()
    if lower in _NAMES:
        return _NAMES[lower]
    if XK.string_to_keysym(name):
        return name
    if lower in _keysym_names():
        return _keysym_names()[lower]
    close = difflib.get_close_matches(lower, [*_NAMES, *_keysym_names()], n=1, cutoff=0.7)
    hint = f"; did you mean {_NAMES.get(close[0]) or _keysym_names()[close[0]]!r}?" if close else ""
    msg = f"unknown {where} {name!r}{hint}"
    raise InputError(msg)


def _split_combo(combo: str) -> list[str]:
    # A trailing "+" is the plus key ("ctrl++"); a lone "+" too.
    if combo == "+":
        return ["+"]
    if combo.endswith("++"):
        return [*combo[:-2].split("+"), "+"]
    return combo.split("+")


def chord(parts: list[str], *, source: str) -> str:
    """Keys pressed together -> ``"Control+Shift+t"``: modifiers first, one other key last."""
    if not parts or any(not p for p in parts):
        msg = f"malformed key combo {source!r}; write it like 'ctrl+shift+t'"
        raise InputError(msg)
    names = [key_name(p) for p in parts]
    mods = [n for n in names if n in _MODIFIERS]
    keys = [n for n in names if n not in _MODIFIERS]
    if len(keys) > 1:
        msg = f"key combo {source!r} presses {len(keys)} non-modifier keys at once; press one"
        raise InputError(msg)
    if not keys:  # a modifier alone ("shift"): press it as the key
        keys = [mods.pop()]
    key = keys[0]
    if mods and len(key) == 1 and key.isalpha():
        key = key.lower()  # with modifiers a letter names the key, not the character
    return "+".join([*dict.fromkeys(mods), key])


def xdotool_keys(text: str) -> list[str]:
    """xdotool ``key`` syntax -> combos: ``"ctrl+a Tab"`` -> ``["Control+a", "Tab"]``."""
    if text == " ":
        return ["space"]
    words = text.split()
    if not words:
        msg = "key: 'text' is empty; name a key like 'Return' or a combo like 'ctrl+s'"
        raise InputError(msg)
    return [chord(_split_combo(word), source=word) for word in words]


def held_keys(text: str | None) -> str | None:
    """Modifier keys to hold during a click or scroll (``"shift"``, ``"ctrl+alt"``)."""
    if text is None or not text.strip():
        return None
    combos = xdotool_keys(text.replace(" ", "+"))
    return combos[0]


def openai_keys(keys: list[str]) -> str:
    """OpenAI ``keypress`` keys, pressed together: ``["CTRL", "A"]`` -> ``"Control+a"``."""
    if not keys or not all(isinstance(k, str) and k for k in keys):
        msg = f"keypress: 'keys' must be a non-empty list of key names (got {keys!r})"
        raise InputError(msg)
    return chord(list(keys), source="+".join(keys))
