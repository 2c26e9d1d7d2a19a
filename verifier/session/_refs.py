"""Acting by reference: the refs of the latest ``snapshot``, aimed at as a recipe aims.

A pointer action or ``type`` that names ``ref: "eN"`` instead of a coordinate reaches the
element the way a recipe step does (:func:`verifier.steps.aim`: waited for, wheel-scrolled
into view, refused when something covers it), and the session's replay recipe gets a
selector a recipe can aim with (its role and name), never the raw point.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from playwright.sync_api import Error as PlaywrightError

from verifier.computer import Target
from verifier.errors import InputError, VerifierError
from verifier.session._snapshot import Element, Snapshot
from verifier.steps import StepContext, aim

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from verifier.computer import Computer

__all__ = ("REF_ACTIONS", "Refs")

_log = logging.getLogger(__name__)

# The actions that take a ref instead of a coordinate.
REF_ACTIONS = (
    "left_click",
    "right_click",
    "middle_click",
    "double_click",
    "triple_click",
    "mouse_move",
    "scroll",
    "type",
)
_AIM_S = 5.0  # how long the element may take to be visible and still


@dataclass(slots=True)
class Refs:
    """The refs of the latest snapshot, and the page it was taken of."""

    page: Page | None = None
    elements: dict[str, Element] | None = None

    def note(self, page: Page, snapshot: Snapshot, *, scoped: bool = False) -> None:
        """Take in a snapshot's refs (a scoped one adds to the page's last ones)."""
        if scoped and page is self.page and self.elements is not None:
            self.elements.update({e.ref: e for e in snapshot.elements})
            return
        self.page = page
        self.elements = {e.ref: e for e in snapshot.elements}

    def known(self, page: Page, ref: str) -> bool:
        return page is self.page and ref in (self.elements or {})

    def aim(self, computer: Computer, ref: object, action: str) -> tuple[tuple[int, int], Target]:
        """The model point to act at for ``ref``, and the element as a recipe names it.

        :raises InputError: not a ref of the latest snapshot of the page in front.
        :raises CheckFailed: the element is covered (a person's click would land on
            what covers it), or no longer visible.
        """
        browser = computer.require_browser(f"{action} by ref")
        if not isinstance(ref, str) or not ref:
            msg = f"{action}: 'ref' is a ref from the latest snapshot, like 'e5'"
            raise InputError(msg)
        element = (self.elements or {}).get(ref)
        page = browser.page
        if self.elements is None:
            msg = f"{action}: no snapshot yet; take one, then act on its refs"
            raise InputError(msg)
        if element is None or page is not self.page:
            msg = (
                f"{action}: {ref!r} is not a ref of the latest snapshot of the tab in front; "
                "take a new snapshot"
            )
            raise InputError(msg)
        ctx = StepContext(desktop=computer.desktop, browser=browser, base_url=None)
        try:
            at = aim(ctx, f"aria-ref={ref}", (), _AIM_S, action)
        except VerifierError as exc:
            message = exc.message.replace(
                f"'aria-ref={ref}'", f"{ref} ({element.role} {element.name!r})"
            )
            if "stale" in message.lower() or "no visible element" in message:
                message += "; the page changed since the snapshot: take a new one"
            raise type(exc)(message, details=exc.details) from exc
        description = f'{element.role} "{element.name}"' if element.name else element.role
        selector = _recipe_selector(page, ref, element)
        return computer.scale.to_model(*at.point), Target(description, selector, by_ref=True)


def _recipe_selector(page: Page, ref: str, element: Element) -> str | None:
    """A selector a recipe aims with that matches the element: its role and exact name
    (``>> nth=K`` among several of them; its role alone when it has no name); None when
    it is not in the top frame (then the replay keeps what the point's probe found)."""
    name = json.dumps(element.name, ensure_ascii=False)
    selector = f"role={element.role}[name={name}s]" if element.name else f"role={element.role}"
    try:
        matches = page.locator(selector)
        count = matches.count()
        if count == 1:
            return selector
        if count == 0:
            return None
        handle = page.locator(f"aria-ref={ref}").element_handle(timeout=2000)
        try:
            index = int(matches.evaluate_all("(els, el) => els.indexOf(el)", handle))
        finally:
            handle.dispose()
    except PlaywrightError as exc:
        _log.debug("no recipe selector for %s: %s", ref, exc)
        return None
    return f"{selector} >> nth={index}" if index >= 0 else None
