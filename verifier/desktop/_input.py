"""OS-level mouse and keyboard through the XTest extension (python-xlib, no subprocess).

Characters the keymap lacks are typed the way xdotool does it: bind the character's
keysym to a spare keycode, then press that keycode. Bindings stay until the input is
closed (then the keymap is restored), so a client that re-reads the keymap late, after
a MappingNotify, still sees the binding when it translates the key event.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Iterable

from Xlib import XK, X
from Xlib.error import ConnectionClosedError, XError
from Xlib.ext import xtest
from Xlib.protocol import request

from verifier._types import Button
from verifier.desktop._display import open_display
from verifier.desktop._keys import char_keysym, parse_chord
from verifier.errors import InputError

__all__ = ("WHEEL_PIXELS", "Button", "Input")

_log = logging.getLogger(__name__)

_BUTTONS: dict[str, int] = {"left": 1, "middle": 2, "right": 3}
# X wheel "buttons": 4 up, 5 down, 6 left, 7 right.
_WHEEL_UP, _WHEEL_DOWN, _WHEEL_LEFT, _WHEEL_RIGHT = 4, 5, 6, 7
# Chromium on X11 scrolls this many CSS pixels per wheel notch (measured: 3 lines x 40 px).
WHEEL_PIXELS = 120
# Pause between drag motions so the page sees a gesture, not a teleport: Chromium
# coalesces motion events, and HTML5 drag-and-drop needs a few to start.
_DRAG_STEP_S = 0.016
# How long the X server may take to answer when the connection closes (it takes ~1 ms).
_CLOSE_SYNC_S = 2.0
# Between the clicks of a double/triple click: Chromium counts a click as a repeat only
# when its X timestamp differs from the last one (same-millisecond clicks stay single).
_MULTI_CLICK_GAP_S = 0.02


_XF86_FIRST, _XF86_LAST = 0x1008FF00, 0x1008FFFF  # the XF86 multimedia keysyms
# Keys Chromium acts on by the key itself, whatever it is bound to: never lent. Found by
# binding a character to each multimedia key of Xvfb's keymap and pressing it in a page:
# these nine navigated (back, forward, home, reload: a CJK character bound to XF86Reload's
# key reloaded the page mid-step), opened the omnibox (search, favourites) or used the
# clipboard (copy, cut, paste) instead of typing it; stop and refresh are browser keys too.
_ACTING_XF86 = frozenset(
    {
        0x1008FF26, 0x1008FF27, 0x1008FF18, 0x1008FF73,  # back, forward, home, reload
        0x1008FF1B, 0x1008FF30, 0x1008FF28, 0x1008FF29,  # search, favourites, stop, refresh
        0x1008FF57, 0x1008FF58, 0x1008FF6D,  # copy, cut, paste
    }
)  # fmt: skip


class Input:
    """XTest mouse and keyboard on one X display."""

    def __init__(self, display: str) -> None:
        self._conn = open_display(display)
        if not self._conn.has_extension("XTEST"):
            self._conn.close()
            msg = f"X display {display!r} has no XTEST extension; start Xvfb with +extension XTEST"
            raise InputError(msg)
        self._display = display
        self._min_kc = self._conn.display.info.min_keycode
        self._max_kc = self._conn.display.info.max_keycode
        mapping = self._conn.get_keyboard_mapping(self._min_kc, self._max_kc - self._min_kc + 1)
        self._syms_per_code = len(mapping[0]) if mapping else 2
        # Spare keycodes: the unmapped ones (used first, from the end of the list), then
        # those that only carry multimedia keys (XF86*), put back on close. Reusing a
        # binding races with clients that re-read the keymap late (a reused keycode once
        # typed its old character), so the more spares, the rarer that is.
        modifiers = {code for row in self._conn.get_modifier_mapping() for code in row if code}
        self._original: dict[int, tuple[int, ...]] = {
            self._min_kc + i: tuple(syms)
            for i, syms in enumerate(mapping)
            if any(syms)
            and self._min_kc + i not in modifiers
            and all(sym == 0 or _XF86_FIRST <= sym <= _XF86_LAST for sym in syms)
            and not any(sym in _ACTING_XF86 for sym in syms)
        }
        self._spare: list[int] = [*self._original] + [
            self._min_kc + i for i, syms in enumerate(mapping) if not any(syms)
        ]
        self._bound: OrderedDict[int, int] = OrderedDict()  # keysym -> spare keycode
        # After reset(): the bindings are put back at the next prepare() (but those its
        # text needs) or before the next key is typed, in as few keymap changes as can be.
        self._unwanted = False
        self._kept: set[int] = set()  # keysyms a reset leaves bound (prepare's keep)
        self._held: set[int] = set()
        self._closed = False
        # Keys and mouse buttons pressed so far (not the pointer's moves, nor the wheel):
        # whether a step acted.
        self.presses = 0

    # -- low level ---------------------------------------------------------------------

    def _fake(self, event: int, detail: int = 0, *, x: int = 0, y: int = 0) -> None:
        if event == X.KeyPress or (event == X.ButtonPress and detail in (1, 2, 3)):
            self.presses += 1
        try:
            xtest.fake_input(self._conn, event, detail, x=x, y=y)
        except (XError, OSError, ConnectionClosedError) as exc:
            msg = f"XTest input to {self._display!r} failed: {exc}"
            raise InputError(msg) from exc

    def sync(self) -> None:
        """Round trip to the server: every event sent so far has been processed."""
        try:
            self._conn.sync()
        except (XError, OSError, ConnectionClosedError) as exc:
            msg = f"X display {self._display!r} stopped answering: {exc}"
            raise InputError(msg) from exc

    # -- mouse ----------------------------------------------------------------------------

    def move(self, x: int, y: int) -> None:
        self._fake(X.MotionNotify, x=int(x), y=int(y))
        self.sync()

    def button(self, button: Button | int, *, down: bool) -> None:
        code = _BUTTONS[button] if isinstance(button, str) else button
        self._fake(X.ButtonPress if down else X.ButtonRelease, code)
        self.sync()

    def click(self, x: int, y: int, *, button: Button = "left", count: int = 1) -> None:
        code = _BUTTONS[button]
        self._fake(X.MotionNotify, x=int(x), y=int(y))
        for i in range(count):
            if i:
                self.sync()
                time.sleep(_MULTI_CLICK_GAP_S)
            self._fake(X.ButtonPress, code)
            self._fake(X.ButtonRelease, code)
        self.sync()

    def drag(self, start: tuple[int, int], end: tuple[int, int], *, steps: int = 12) -> None:
        (x0, y0), (x1, y1) = start, end
        self.move(x0, y0)
        self._fake(X.ButtonPress, 1)
        self.sync()
        for i in range(1, steps + 1):
            time.sleep(_DRAG_STEP_S)
            self.move(round(x0 + (x1 - x0) * i / steps), round(y0 + (y1 - y0) * i / steps))
        time.sleep(_DRAG_STEP_S)
        self._fake(X.ButtonRelease, 1)
        self.sync()

    def scroll(self, dx: int, dy: int, *, at: tuple[int, int] | None = None) -> None:
        """Scroll by about (dx, dy) CSS pixels as wheel notches; positive dy scrolls down."""
        if at is not None:
            self._fake(X.MotionNotify, x=int(at[0]), y=int(at[1]))
        for delta, neg, pos in ((dy, _WHEEL_UP, _WHEEL_DOWN), (dx, _WHEEL_LEFT, _WHEEL_RIGHT)):
            notches = round(abs(delta) / WHEEL_PIXELS) or (1 if delta else 0)
            for _ in range(notches):
                self._fake(X.ButtonPress, pos if delta > 0 else neg)
                self._fake(X.ButtonRelease, pos if delta > 0 else neg)
        self.sync()

    def position(self) -> tuple[int, int]:
        reply = self._conn.screen().root.query_pointer()
        return int(reply.root_x), int(reply.root_y)

    # -- keyboard -----------------------------------------------------------------------

    def _keycode(self, keysym: int) -> tuple[int, bool]:
        """(keycode, needs_shift) for ``keysym``, binding a spare keycode if none types it."""
        if self._unwanted:  # typed after a reset without prepare(): the keymap first
            self._remap(self._put_back(keep=()))
        if keysym in self._bound:
            self._bound.move_to_end(keysym)
            return self._bound[keysym], False
        return self._mapped(keysym) or (self._bind(keysym), False)

    def _mapped(self, keysym: int) -> tuple[int, bool] | None:
        """(keycode, needs_shift) of the keymap's own key for ``keysym``, if any."""
        taken = set(self._bound.values())  # python-xlib's keymap cache knows none of these
        for keycode, index in self._conn.keysym_to_keycodes(keysym):
            if index in (0, 1) and keycode not in taken:
                return keycode, index == 1
        return None

    def prepare(self, text: str, *, keep: bool = False) -> None:
        """Bind now what typing ``text`` needs that the keymap lacks.

        Every keymap change makes each X client re-read the keymap (Chromium takes ~25 ms,
        and the input after it waits): binding a text's characters before the client
        starts costs nothing. Older bindings this text does not use make room; what does
        not fit is bound as it is typed. With ``keep``, a reset leaves what it bound.
        """
        needed = [char_keysym(c) for c in dict.fromkeys(text) if c != "\r"]
        if keep:
            self._kept.update(needed)
        changes = self._put_back(keep=needed) if self._unwanted else {}
        for keysym in needed:
            if keysym in self._bound:
                self._bound.move_to_end(keysym)
                continue
            if self._mapped(keysym) is not None:
                continue
            keycode = self._take_keycode(keep=needed)
            if keycode is None:
                break
            changes[keycode] = (keysym,) * self._syms_per_code
            self._bound[keysym] = keycode
        if changes:
            self._remap(changes)
            self.sync()

    def _put_back(self, keep: Collection[int]) -> dict[int, tuple[int, ...]]:
        """After :meth:`reset`: the bindings of keysyms not in ``keep`` undone (their
        keycodes spare again); the keymap changes that takes, for the caller to make."""
        self._unwanted = False
        blank = (0,) * self._syms_per_code
        gone = [k for k in self._bound if k not in keep and k not in self._kept]
        codes = [self._bound.pop(keysym) for keysym in gone]
        # Taken last: Chromium keeps what a key's first character was for its key events
        # (`key`), so a new character on a used key would read as the old one (the last
        # recipe's) to the page; keys never bound go first.
        self._spare[:0] = codes
        return {code: self._original.get(code, blank) for code in codes}

    def _remap(self, changes: dict[int, tuple[int, ...]]) -> None:
        """Set these keycodes' keysyms, a request per run of consecutive keycodes: every
        change makes each X client re-read the keymap (Chromium in 25-45 ms, its window
        and input waiting). A run covers only codes that change: rewriting a key's own
        syms through the core protocol makes XKB rebuild it (its type, its levels)."""
        codes = sorted(changes)
        while codes:
            run = 1
            while run < len(codes) and codes[run] == codes[0] + run:
                run += 1
            self._conn.change_keyboard_mapping(codes[0], [changes[c] for c in codes[:run]])
            codes = codes[run:]

    def _restore(self) -> None:
        """Put back what every bound keycode meant before."""
        blank = (0,) * self._syms_per_code
        self._remap({code: self._original.get(code, blank) for code in self._bound.values()})

    def _take_keycode(self, *, keep: Collection[int] = ()) -> int | None:
        """A spare keycode, else the least recently used binding of a keysym not in
        ``keep`` (unbound), else None."""
        if self._spare:
            return self._spare.pop()
        spent = next((k for k in self._bound if k not in keep), None)
        return None if spent is None else self._bound.pop(spent)

    def _bind(self, keysym: int) -> int:
        reusing = not self._spare
        keycode = self._take_keycode()
        if keycode is None:
            msg = f"no spare keycode on {self._display!r} to type keysym {keysym:#x}"
            raise InputError(msg)
        if reusing:
            # Flush first so events already sent with the old binding reach the server
            # before its meaning changes.
            self.sync()
        self._remap({keycode: (keysym,) * self._syms_per_code})
        self.sync()
        self._bound[keysym] = keycode
        return keycode

    def _tap(self, keycode: int, *, shift: bool) -> int:
        """Press and release ``keycode`` (with Shift); returns the key releases sent."""
        shift_code = self._conn.keysym_to_keycode(XK.XK_Shift_L) if shift else 0
        if shift_code:
            self._fake(X.KeyPress, shift_code)
        self._fake(X.KeyPress, keycode)
        self._fake(X.KeyRelease, keycode)
        if shift_code:
            self._fake(X.KeyRelease, shift_code)
            return 2
        return 1

    def type(self, text: str) -> int:
        """Type any Unicode text as key events; returns the key releases sent."""
        releases = 0
        for char in text:
            if char == "\r":
                continue
            keycode, shift = self._keycode(char_keysym(char))
            releases += self._tap(keycode, shift=shift)
        self.sync()
        return releases

    def key(self, combo: str) -> int:
        """Press and release a combo like ``Control+Shift+T``; returns the key releases sent."""
        chord = parse_chord(combo)
        mod_codes = [self._keycode(m)[0] for m in chord.modifiers]
        keycode, shift = self._keycode(chord.key)
        for code in mod_codes:
            self._fake(X.KeyPress, code)
        releases = self._tap(keycode, shift=shift and not chord.modifiers)
        for code in reversed(mod_codes):
            self._fake(X.KeyRelease, code)
        self.sync()
        return releases + len(mod_codes)

    def key_down(self, combo: str) -> None:
        chord = parse_chord(combo)
        for sym in (*chord.modifiers, chord.key):
            code = self._keycode(sym)[0]
            self._fake(X.KeyPress, code)
            self._held.add(code)
        self.sync()

    def key_up(self, combo: str) -> None:
        chord = parse_chord(combo)
        for sym in (chord.key, *reversed(chord.modifiers)):
            code = self._keycode(sym)[0]
            self._fake(X.KeyRelease, code)
            self._held.discard(code)
        self.sync()

    # -- lifecycle ----------------------------------------------------------------------------

    def _release_all(self, codes: Iterable[int]) -> None:
        for code in codes:
            self._fake(X.KeyRelease, code)

    def _synced_within(self, seconds: float) -> bool:
        """Whether the server has handled every request sent so far, within ``seconds``
        (python-xlib's own wait has no bound)."""
        done = threading.Event()

        def sync() -> None:
            with contextlib.suppress(Exception):  # the socket closed under it: it is over
                self._conn.sync()
            done.set()

        threading.Thread(target=sync, name="verifier-x-close", daemon=True).start()
        return done.wait(seconds)

    def reset(self, center: tuple[int, int]) -> None:
        """Leave the desktop's input as a fresh display has it, for the next recipe on
        it: held keys and mouse buttons released, Caps Lock and Num Lock off, the pointer
        at ``center``, no selection (the clipboard empty), and the keymap restored by the
        next :meth:`prepare` (keeping what its text needs) or key typed, whichever is
        first."""
        self._release_all(sorted(self._held))
        self._held.clear()
        root = self._conn.screen().root
        mask = int(root.query_pointer().mask)
        for button, held in ((1, X.Button1Mask), (2, X.Button2Mask), (3, X.Button3Mask)):
            if mask & held:
                self._fake(X.ButtonRelease, button)
        for keysym, locked in ((XK.XK_Caps_Lock, X.LockMask), (XK.XK_Num_Lock, X.Mod2Mask)):
            code = self._conn.keysym_to_keycode(keysym)
            if mask & locked and code:
                self._fake(X.KeyPress, code)
                self._fake(X.KeyRelease, code)
        # The keymap is put back at the next prepare() (a run's, before its browser starts
        # or its steps) but for what that text needs: the keys the next recipe types
        # again stay bound, no change for Chromium to re-read while a window opens.
        self._unwanted = True
        for name in ("CLIPBOARD", "PRIMARY", "SECONDARY"):  # its owner is told to let go
            request.SetSelectionOwner(
                display=self._conn.display,
                window=X.NONE,
                selection=self._conn.intern_atom(name),
                time=X.CurrentTime,
            )
        self._fake(X.MotionNotify, x=center[0], y=center[1])
        self.sync()

    def close(self) -> None:
        """Release held keys, restore the keymap, close the connection; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._release_all(sorted(self._held))
            self._restore()
            if not self._synced_within(_CLOSE_SYNC_S):
                # A request cut off halfway (a signal during input) leaves the server
                # waiting for the rest of it, and python-xlib waits for its answer forever.
                _log.warning("the X server %s did not answer at close", self._display)
                with contextlib.suppress(Exception):
                    self._conn.display.socket.close()
        # On a dead server python-xlib raises all sorts, even a TypeError from its own error
        # handling: at teardown every one of them means "the display is already gone".
        except Exception as exc:  # noqa: BLE001
            _log.debug("input close on %s: %r (display already gone)", self._display, exc)
        finally:
            with contextlib.suppress(Exception):
                self._conn.close()
