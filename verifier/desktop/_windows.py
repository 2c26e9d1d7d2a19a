"""Which window is where on the display: the X window stack, read through python-xlib.

A click lands on the topmost window that takes input at its point (tooltips let clicks
through); keys go to the window with the input focus. Knows nothing of browsers.
"""

from __future__ import annotations

import contextlib
import logging
import select
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from Xlib import X, Xatom
from Xlib.error import ConnectionClosedError, XError
from Xlib.ext import shape
from Xlib.protocol import event

from verifier._types import Box
from verifier.desktop._display import open_display
from verifier.errors import DisplayError

__all__ = ("Window", "Windows")

_log = logging.getLogger(__name__)

# Window types that never take a click: the pointer goes through them (or they vanish as
# it moves), so what is under them is what a click reaches.
_PASS_THROUGH = frozenset({"tooltip", "dnd"})
_TYPE_PREFIX = "_NET_WM_WINDOW_TYPE_"
# X errors of a window that vanished while we looked at it (BadWindow, BadDrawable...).
_GONE = (XError, ConnectionClosedError, OSError)


@dataclass(frozen=True, slots=True)
class Window:
    """A window on the screen, as the window manager and the X server know it.

    ``id`` is the application's own window (inside the window manager's frame), ``box``
    its area on the screen; ``kind`` is from ``_NET_WM_WINDOW_TYPE`` (``normal``,
    ``dialog``, ``menu``, ``tooltip``...; ``""`` when unset).
    """

    id: int
    name: str
    wm_class: str
    pid: int | None
    box: Box
    kind: str
    override_redirect: bool

    def contains(self, x: int, y: int) -> bool:
        bx, by, bw, bh = self.box
        return bx <= x < bx + bw and by <= y < by + bh

    def describe(self) -> str:
        """``the menu window of Chromium (pid 42) at 178,115 68x98``, or with its title."""
        what = f"window {self.name!r}" if self.name else f"untitled {self.kind or 'a'} window"
        if self.name and self.kind and self.kind != "normal":
            what = f"{self.kind} {what}"
        owner = self.wm_class or "an unknown program"
        pid = f" (pid {self.pid})" if self.pid else ""
        x, y, w, h = self.box
        return f"{what} of {owner}{pid} at {x},{y} {w}x{h}".replace("untitled a ", "an untitled ")


class Windows:
    """Reads the window stack of one display on a connection of its own.

    :param display: the X display (``":1"``).
    :raises DisplayError: the display cannot be reached.
    """

    def __init__(self, display: str) -> None:
        self._display = display
        self._conn = open_display(display)
        self._root = self._conn.screen().root
        self._atoms = {
            name: self._conn.intern_atom(name)
            for name in ("WM_STATE", "_NET_WM_NAME", "_NET_WM_PID", "_NET_WM_WINDOW_TYPE")
        }
        self._utf8 = self._conn.intern_atom("UTF8_STRING")
        self._shape = self._conn.has_extension("SHAPE")
        # A frame's client window, found once: a walk of its children costs a dozen round
        # trips. Forgotten whenever a top-level window maps, unmaps, moves or goes.
        self._clients: dict[int, Any] = {}
        # Map, unmap, create and destroy of every top-level window arrive as events, so
        # waiting for a window is waiting on the X server, not polling it.
        self._root.change_attributes(event_mask=X.SubstructureNotifyMask)
        self._conn.sync()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

    # -- queries ------------------------------------------------------------------------

    def at(self, x: int, y: int) -> Window | None:
        """The window a click at screen point (x, y) reaches (None: the bare desktop)."""
        self._drain()
        try:
            # One round trip for the common case: the X server's own answer (it honours
            # input shapes). A tooltip there lets the click through: look under it.
            child = self._root.translate_coords(self._root, x, y).child
            if not child:
                return None
            hit = self._describe(child)
            if hit is not None and hit.kind not in _PASS_THROUGH:
                return hit
            return next((w for w in self._scan(x, y) if w.kind not in _PASS_THROUGH), None)
        except _GONE as exc:
            self._check(exc)
            return None

    def stack(self) -> list[Window]:
        """The windows on screen (mapped), topmost first."""
        self._drain()
        try:
            return list(self._scan(None, None))
        except _GONE as exc:
            self._check(exc)
            return []

    def focused(self) -> Window | None:
        """The top-level window holding the keyboard focus (None: none, or the desktop)."""
        self._drain()
        try:
            focus = self._conn.get_input_focus().focus
            if isinstance(focus, int):  # X.NONE or X.PointerRoot
                return None
            node = focus
            while True:
                parent = node.query_tree().parent
                if not parent or parent.id == self._root.id:
                    return self._describe(node)
                node = parent
        except _GONE as exc:
            self._check(exc)
            return None

    def activate(self, window: int) -> None:
        """Ask the window manager to bring ``window`` to the front and focus it, as a
        pager or taskbar does (_NET_ACTIVE_WINDOW from a tool, which window managers
        honour where they may refuse an application's own request)."""
        message = event.ClientMessage(
            window=self._conn.create_resource_object("window", window),
            client_type=self._conn.intern_atom("_NET_ACTIVE_WINDOW"),
            data=(32, [2, X.CurrentTime, 0, 0, 0]),
        )
        try:
            mask = X.SubstructureRedirectMask | X.SubstructureNotifyMask
            self._root.send_event(message, event_mask=mask)
            self._conn.sync()
        except _GONE as exc:
            self._check(exc)

    def wait(self, ready: Callable[[list[Window]], bool], timeout: float) -> bool:
        """Wait until ``ready(stack)`` holds, re-checking whenever a window maps, unmaps,
        moves or goes; False when ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while True:
            if ready(self.stack()):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if not self._conn.pending_events():
                select.select([self._conn.fileno()], [], [], remaining)

    # -- helpers ------------------------------------------------------------------------

    def _check(self, exc: BaseException) -> None:
        """A window that vanished mid-query is nothing; a dead display is an error."""
        if isinstance(exc, ConnectionClosedError | OSError):
            msg = f"X display {self._display!r} stopped answering: {exc}"
            raise DisplayError(msg) from exc
        _log.debug("window query on %s: %r (a window went away)", self._display, exc)

    def _drain(self) -> None:
        """Drop the queued events: only their arrival matters (see :meth:`wait`); a
        change of the stack forgets the clients found."""
        with contextlib.suppress(*_GONE):
            while self._conn.pending_events():
                self._conn.next_event()
                self._clients.clear()

    def _scan(self, x: int | None, y: int | None) -> list[Window]:
        """Mapped top-level windows, topmost first (only those taking input at (x, y),
        when given)."""
        found = []
        for frame in reversed(self._root.query_tree().children):
            try:
                attrs = frame.get_attributes()
                if attrs.map_state != X.IsViewable:
                    continue
                if x is not None and y is not None and not self._takes(frame, x, y):
                    continue
                window = self._describe(frame, override_redirect=bool(attrs.override_redirect))
            except XError:
                continue  # it went away meanwhile
            if window is not None:
                found.append(window)
        return found

    def _takes(self, frame: Any, x: int, y: int) -> bool:
        geo = frame.get_geometry()
        if not (geo.x <= x < geo.x + geo.width and geo.y <= y < geo.y + geo.height):
            return False
        if not self._shape:
            return True
        rects = frame.shape_get_rectangles(shape.SK.Input).rectangles
        px, py = x - geo.x, y - geo.y
        return any(r.x <= px < r.x + r.width and r.y <= py < r.y + r.height for r in rects)

    def _client(self, frame: Any) -> Any:
        """The application's window inside a window manager's frame (the one with
        WM_STATE), or the window itself (override-redirect windows have no frame)."""
        known = self._clients.get(int(frame.id))
        if known is not None:
            return known
        found, todo = frame, [frame]
        for _ in range(3):  # frame -> (wrapper ->) client
            nxt: list[Any] = []
            for node in todo:
                if node.get_full_property(self._atoms["WM_STATE"], X.AnyPropertyType):
                    found, nxt = node, []
                    break
                nxt.extend(node.query_tree().children)
            todo = nxt
        self._clients[int(frame.id)] = found
        return found

    def _describe(self, frame: Any, *, override_redirect: bool | None = None) -> Window | None:
        described = self._describe_once(frame, override_redirect)
        if described is None and self._clients.pop(int(frame.id), None) is not None:
            # The client found before may have gone before its frame's event came.
            described = self._describe_once(frame, override_redirect)
        return described

    def _describe_once(self, frame: Any, override_redirect: bool | None) -> Window | None:
        try:
            client = self._client(frame)
            if override_redirect is None:
                override_redirect = bool(frame.get_attributes().override_redirect)
            geo = client.get_geometry()
            origin = self._root.translate_coords(client, 0, 0)
            name = self._text(client, self._atoms["_NET_WM_NAME"], self._utf8)
            if not name:
                name = self._text(client, Xatom.WM_NAME, X.AnyPropertyType)
            wm_class = client.get_wm_class()
            pid_prop = client.get_full_property(self._atoms["_NET_WM_PID"], Xatom.CARDINAL)
            kinds = client.get_full_property(self._atoms["_NET_WM_WINDOW_TYPE"], Xatom.ATOM)
        except XError:
            return None
        kind = ""
        if kinds is not None and len(kinds.value):
            atom_name = self._conn.get_atom_name(int(kinds.value[0]))
            kind = atom_name.removeprefix(_TYPE_PREFIX).lower()
        return Window(
            id=int(client.id),
            name=name,
            wm_class=str(wm_class[1]) if wm_class else "",
            pid=int(pid_prop.value[0]) if pid_prop is not None and len(pid_prop.value) else None,
            box=(int(origin.x), int(origin.y), int(geo.width), int(geo.height)),
            kind=kind,
            override_redirect=override_redirect,
        )

    @staticmethod
    def _text(window: Any, atom: int, kind: int) -> str:
        prop = window.get_full_property(atom, kind)
        if prop is None:
            return ""
        value = prop.value
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return str(value)
