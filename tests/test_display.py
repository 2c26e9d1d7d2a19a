"""The display: our own Xvfb (race-free number, requested size), openbox, attach mode."""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support import live_processes, wait_gone
from verifier.desktop import Desktop
from verifier.errors import DisplayError


def test_own_xvfb_at_requested_size_and_gone_after_close() -> None:
    before = live_processes()
    with Desktop(screen="1024x768") as desk:
        assert desk.display.startswith(":")
        assert desk.size == (1024, 768)
        assert desk.screenshot().shape == (768, 1024, 3)
        mine = {p: d for p, d in live_processes().items() if p not in before}
        assert any(d.startswith("Xvfb") and "-nolisten tcp" in d for d in mine.values()), mine
        assert any(d.startswith("openbox") for d in mine.values()), mine
    assert not wait_gone(before)


def test_two_desktops_at_once_get_different_displays() -> None:
    def open_one(_: int) -> tuple[str, int]:
        with Desktop(screen="800x600") as desk:
            # Hold both open at the same time: draw something, read it back.
            return desk.display, desk.screenshot().shape[1]

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(open_one, range(2)))
    assert results[0][0] != results[1][0]
    assert all(width == 800 for _, width in results)


def test_concurrent_desktops_both_alive() -> None:
    with Desktop(screen="640x480") as a, Desktop(screen="800x600") as b:
        assert a.display != b.display
        assert a.size == (640, 480) and b.size == (800, 600)


def test_attach_to_existing_display_does_not_own_it() -> None:
    with Desktop(screen="800x600") as owner:
        with Desktop(display=owner.display) as guest:
            assert guest.display == owner.display
            assert guest.size == (800, 600)
            guest.click(10, 10)
        # The guest closed; the owner's Xvfb is still there.
        owner.check_alive()
        assert owner.screenshot().shape == (600, 800, 3)


def test_attach_to_missing_display_fails_clearly() -> None:
    with pytest.raises(DisplayError, match=r"cannot open X display ':4242'"):
        Desktop(display=":4242").start()


@pytest.mark.parametrize("screen", ["big", "10x10", "1280x800x16", "99999x800"])
def test_bad_screen_is_refused(screen: str) -> None:
    with pytest.raises(DisplayError, match="screen"):
        Desktop(screen=screen)


def test_closed_desktop_cannot_reopen() -> None:
    desk = Desktop(screen="640x480")
    desk.start()
    desk.close()
    desk.close()  # idempotent
    with pytest.raises(DisplayError, match="cannot reopen"):
        desk.start()


def test_missing_xvfb_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(
        DisplayError, match="'Xvfb' is not installed; run desktop-image/provision.sh"
    ):
        Desktop().start()
    assert os.environ["PATH"] == "/nonexistent"


def test_works_without_any_xauthority_file(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh machine has no ~/.Xauthority: python-xlib alone would refuse to connect."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XAUTHORITY", raising=False)
    with Desktop(screen="640x480") as desk:
        desk.click(10, 10)
        assert desk.screenshot().shape == (480, 640, 3)
    assert "XAUTHORITY" not in os.environ


def test_a_socket_left_by_a_killed_server_does_not_hold_its_number() -> None:
    with Desktop(screen="640x480") as first:
        number = int(first.display.lstrip(":")) + 1
    stale = Path(f"/tmp/.X11-unix/X{number - 1}")
    # What a SIGKILLed Xvfb leaves: its socket file, nobody listening, no lock file.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        if not stale.exists():
            sock.bind(str(stale))
    with Desktop(screen="640x480") as second:
        assert second.display == f":{number - 1}"
        assert second.screenshot().shape == (480, 640, 3)
