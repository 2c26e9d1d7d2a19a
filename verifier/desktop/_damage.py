"""When the screen last changed, from the X server's DAMAGE events (no pixel polling).

Every drawing on the display (a browser's frame, a blinking caret) reports the rectangle
it touched; moving the pointer does not. A thread blocked on the connection notes the time of each,
so "has the screen held still for 35 ms?" costs nothing while it waits and is exact:
no change can slip between two grabs. python-xlib ships the protocol structures but
cannot load the extension itself (its init calls a method Display lacks), so the two
requests are sent here by hand.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections import deque
from typing import Any

from Xlib.ext import damage
from Xlib.xobject.drawable import Window

from verifier._types import Box
from verifier.desktop._display import open_display

__all__ = ("Box", "DamageWatch")

_log = logging.getLogger(__name__)

# Changes remembered for wait_quiet(region=...): ~4 s of a page redrawn at 60 fps.
_KEEP = 1024


class DamageWatch:
    """Tracks the time of the last change on one display's root window."""

    def __init__(self, display: str) -> None:
        """Raise DisplayError when the display cannot be reached; check ``available``."""
        self._conn = open_display(display)
        self._changed = threading.Condition()
        self._last = time.monotonic()
        self._recent: deque[tuple[float, Box]] = deque(maxlen=_KEEP)
        self._ended = False
        self._wake_r, self._wake_w = os.pipe()
        self._event = -1
        self.available = self._subscribe()
        self._thread: threading.Thread | None = None
        if self.available:
            self._thread = threading.Thread(target=self._pump, name="verifier-damage", daemon=True)
            self._thread.start()
        else:
            self.close()

    def _subscribe(self) -> bool:
        conn = self._conn
        # has_extension() knows only the extensions python-xlib loads itself.
        info = conn.query_extension(damage.extname)
        if info is None:
            return False
        opcode = info.major_opcode
        # Not registered with python-xlib: its event table is shared by all connections,
        # and each new one lays RANDR's sub-events over DAMAGE's code. Events are told by
        # their code and parsed here.
        self._event = info.first_event + damage.DamageNotifyCode
        # The client must state its version before any other request of the extension.
        damage.QueryVersion(display=conn.display, opcode=opcode, major_version=1, minor_version=1)
        root: Window = conn.screen().root
        damage.DamageCreate(
            display=conn.display,
            opcode=opcode,
            damage=conn.display.allocate_resource_id(),
            drawable=root.id,
            level=damage.DamageReportRawRectangles,
        )
        conn.sync()
        return True

    def _pump(self) -> None:
        fd = self._conn.fileno()
        try:
            while True:
                ready, _, _ = select.select([fd, self._wake_r], [], [])
                if self._wake_r in ready:
                    return
                # Reading may raise on a dead server; a partial event reads as zero pending.
                events = [self._conn.next_event() for _ in range(self._conn.pending_events())]
                boxes = [self._area(e) for e in events if e.type == self._event]
                if boxes:
                    now = time.monotonic()
                    with self._changed:
                        self._last = now
                        self._recent.extend((now, box) for box in boxes)
        # A dead X server surfaces as any of python-xlib's errors: the watch ends, the
        # Desktop compares grabs instead (and its next grab reports a real failure).
        except Exception as exc:  # noqa: BLE001
            _log.warning("screen change events stopped (%r); comparing grabs instead", exc)
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def _area(self, event: Any) -> Box:
        notify = damage.DamageNotify(display=self._conn.display, binarydata=event._binary)
        area = notify.area
        return int(area.x), int(area.y), int(area.width), int(area.height)

    def _changed_since(self, since: float, region: Box | None) -> float | None:
        """When ``region`` (the screen if None) last changed after ``since``, else None."""
        if region is None:
            return self._last if self._last > since else None
        rx, ry, rw, rh = region
        for t, (x, y, w, h) in reversed(self._recent):
            if t <= since:
                return None
            if x < rx + rw and rx < x + w and y < ry + rh and ry < y + h:
                return t
        # Every remembered change is newer than ``since``; older ones are forgotten.
        return self._recent[0][0] if len(self._recent) == _KEEP else None

    def changed_since(self, since: float, region: Box | None = None) -> bool:
        """Whether anything was drawn in ``region`` (the screen if None) after ``since``."""
        with self._changed:
            return self._changed_since(since, region) is not None

    @property
    def running(self) -> bool:
        with self._changed:
            return not self._ended

    def wait_quiet(
        self, quiet: float, timeout: float, region: Box | None = None, since: float = 0.0
    ) -> bool:
        """Wait until nothing has been drawn in ``region`` (the whole screen if None) for
        ``quiet`` s, counted from ``since`` (a ``time.monotonic()``) at the earliest;
        False after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self._ended:
                now = time.monotonic()
                last = self._changed_since(now - quiet, region)
                if last is None and now - since >= quiet:
                    return True
                if now >= deadline:
                    return False
                wake = max(since, last if last is not None else since) + quiet
                self._changed.wait(min(wake, deadline) - now)
        return True

    def close(self) -> None:
        """Stop the thread and close the connection; idempotent."""
        if self._wake_w < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join()
        os.close(self._wake_w)
        os.close(self._wake_r)
        self._wake_w = self._wake_r = -1
        with contextlib.suppress(Exception):
            self._conn.close()
