"""Key names as computer-use models write them, mapped onto the desktop's names.

Anthropic's tool uses xdotool syntax (``ctrl+shift+t``, ``Return``, ``KP_0``, and
space-separated sequences like ``ctrl+a BackSpace``); OpenAI's uses upper-case names in a
list (``["CTRL", "A"]``). Both become combos ``Desktop.key`` takes (``Control+a``), which
are also what a recipe's ``press`` step takes, so a session replays as written.
"""

from __future__ import annotations

from verifier.desktop import MODIFIERS, key_name
from verifier.errors import InputError

__all__ = ("held_keys", "openai_keys", "xdotool_keys")


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
    mods = [n for n in names if n in MODIFIERS]
    keys = [n for n in names if n not in MODIFIERS]
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
