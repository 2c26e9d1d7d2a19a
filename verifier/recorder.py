"""Screen video: ffmpeg x11grab of the whole display, crash-safe, with step chapters.

The recording goes straight to ``video.mp4`` as a *fragmented* MP4 with one-second
fragments (a keyframe a second), so whatever happens to the verifier the file plays up
to the last second: a plain MP4 without its moov atom does not play at all. ffmpeg's
parent-death signal is SIGINT, not SIGKILL, so even when the verifier is SIGKILLed
ffmpeg finalizes the file. On a clean stop the fragments are remuxed (no re-encode)
into a regular MP4 with a chapter per step and the index up front (faststart), and the
result is checked with ffprobe before it is listed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from verifier._process import OwnedProcess, Owner, require_binary, tail
from verifier._xauth import display_env
from verifier.errors import RecorderError

__all__ = ("Recorder", "VideoInfo", "probe_video")

_log = logging.getLogger(__name__)

_END_WAIT_S = 5.0  # how long end() waits for ffmpeg to stop grabbing


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What ffprobe says of a video file."""

    codec: str
    pix_fmt: str
    width: int
    height: int
    duration_s: float
    chapters: tuple[tuple[float, str], ...]


def _require(binary: str) -> str:
    return require_binary(binary, RecorderError, " (or use --no-video)")


def _run_tool(argv: list[str], what: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        msg = f"{what} failed: {exc}"
        raise RecorderError(msg) from exc


def probe_video(path: Path) -> VideoInfo:
    """Read codec, size, duration and chapters of ``path`` with ffprobe.

    :raises RecorderError: when the file is missing or not a playable video.
    """
    argv = [
        _require("ffprobe"),
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=codec_name,pix_fmt,width,height:format=duration",
        "-show_chapters",
        "-of",
        "json",
        str(path),
    ]
    done = _run_tool(argv, f"ffprobe of {str(path)!r}", timeout=30)
    try:
        data = json.loads(done.stdout or "{}")
        stream = data["streams"][0]
        duration = float(data.get("format", {}).get("duration") or 0.0)
    except (ValueError, KeyError, IndexError) as exc:
        msg = f"{str(path)!r} is not a playable video: {done.stderr.strip()[-300:]!r}"
        raise RecorderError(msg) from exc
    chapters = tuple(
        (float(c.get("start_time", 0.0)), str(c.get("tags", {}).get("title", "")))
        for c in data.get("chapters", [])
    )
    return VideoInfo(
        codec=str(stream.get("codec_name", "")),
        pix_fmt=str(stream.get("pix_fmt", "")),
        width=int(stream.get("width", 0)),
        height=int(stream.get("height", 0)),
        duration_s=duration,
        chapters=chapters,
    )


def _ffmeta_escape(text: str) -> str:
    out = text.replace("\\", "\\\\")
    for ch in "=;#\n":
        out = out.replace(ch, "\\" + ch)
    return out[:200]


def _srt_time(seconds: float) -> str:
    ms = max(0, int(round(seconds * 1000)))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _srt_text(text: str) -> str:
    """A cue's text on one line: no line breaks or controls (a blank line ends a cue)."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text).replace("-->", "→")
    return " ".join(flat.split())[:200] or "-"


def subtitles(marks: list[tuple[float, str]], duration: float) -> str:
    """SubRip cues, one per chapter: its title from its start to the next one's."""
    cues = []
    for i, (start, title) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else max(duration, start + 0.001)
        cues.append(f"{i + 1}\n{_srt_time(start)} --> {_srt_time(stop)}\n{_srt_text(title)}\n")
    return "\n".join(cues)


class Recorder(Owner):
    """Records ``display`` into ``path`` while open.

    :param display: the X display to grab (``":1"``).
    :param size: (width, height) of the screen.
    :param path: the final video file (``<bundle>/video.mp4``).
    :param log: where ffmpeg's messages go.
    :param fps: frames per second.
    :param crf: x264 quality (lower is better and larger; 30 keeps text readable).
    """

    def __init__(
        self,
        *,
        display: str,
        size: tuple[int, int],
        path: Path,
        log: Path,
        fps: int = 15,
        crf: int = 30,
        preset: str = "veryfast",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.display = display
        self._env = dict(env) if env is not None else display_env(display)
        self.size = size
        self.path = path
        self.log = log
        self.fps = fps
        self.crf = crf
        self.preset = preset
        self._proc: OwnedProcess | None = None
        self._end: float | None = None  # when end() asked ffmpeg to finish
        self._t0: float | None = None
        self._first_frame = threading.Event()
        self._reader: threading.Thread | None = None
        self._chapters: list[tuple[float, str]] = []
        self._stopped = False
        self._spawned = 0.0
        self._finisher: threading.Thread | None = None
        self._finish_error: BaseException | None = None
        self.info: VideoInfo | None = None

    def _argv(self) -> list[str]:
        width, height = self.size
        return [
            _require("ffmpeg"),
            *("-hide_banner", "-loglevel", "warning", "-nostdin"),  # ended by SIGINT
            # x11grab says what its stream is: probing it first (by reading frames) held
            # the recording's start back by ~70 ms.
            *("-probesize", "32", "-analyzeduration", "0", "-fpsprobesize", "0"),
            *("-f", "x11grab", "-draw_mouse", "1", "-framerate", str(self.fps)),
            *("-video_size", f"{width}x{height}", "-i", f"{self.display}+0,0"),
            *("-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2"),  # yuv420p needs even sizes
            # zerolatency: x264 holds no frames back, so ffmpeg exits ~30 ms after the
            # request to end, not ~120 (for files ~1.5x bigger, ~1.6 MB a minute).
            *(
                "-c:v",
                "libx264",
                "-preset",
                self.preset,
                "-crf",
                str(self.crf),
                "-tune",
                "zerolatency",
            ),
            # A keyframe a second, each starting a fragment: a cut-off file loses <= 1 s.
            *("-pix_fmt", "yuv420p", "-g", str(self.fps), "-keyint_min", str(self.fps)),
            *("-movflags", "+frag_keyframe+empty_moov+default_base_moof"),
            # A static screen encodes to a few KB a second: without this, fragments wait
            # in ffmpeg's output buffer and a killed run can leave an empty file.
            *("-flush_packets", "1"),
            *("-progress", "pipe:1", "-stats_period", "0.1"),
            *("-f", "mp4", "-y", str(self.path)),
        ]

    @property
    def pid(self) -> int | None:
        """ffmpeg's process id while it runs (for measuring its cost)."""
        return self._proc.pid if self._proc else None

    def start(self) -> Recorder:
        """Start ffmpeg and wait until it has grabbed its first frame."""
        return self.launch().wait_ready()

    def launch(self) -> Recorder:
        """Spawn ffmpeg without waiting (call :meth:`wait_ready` next)."""
        if self._proc is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._spawned = time.monotonic()
        with self.log.open("ab") as log:
            self._proc = OwnedProcess(
                self._argv(),
                name="ffmpeg",
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                death_signal=signal.SIGINT,
            )
        assert self._proc.popen.stdout is not None
        self._reader = threading.Thread(
            target=self._read_progress, args=(self._proc.popen.stdout,), daemon=True
        )
        self._reader.start()
        return self

    def wait_ready(self) -> Recorder:
        """Wait (handshake) until ffmpeg reports its first grabbed frame."""
        self.launch()
        assert self._proc is not None
        deadline = self._spawned + 10.0
        while not self._first_frame.wait(0.02):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                code = self._proc.poll()
                self._proc.stop(grace=1.0)
                msg = (
                    f"ffmpeg did not start recording {self.display} (exit {code}): "
                    f"{tail(self.log)!r}"
                )
                raise RecorderError(msg)
        _log.info("recording %s at %d fps into %s", self.display, self.fps, self.path)
        return self

    def _read_progress(self, stream: IO[bytes]) -> None:
        # -progress prints key=value blocks; the first "frame=N" with N >= 1 marks the start.
        for raw in stream:
            line = raw.decode("ascii", "replace").strip()
            if not self._first_frame.is_set() and line.startswith("frame="):
                frames = int(line.split("=", 1)[1] or 0)
                if frames >= 1:
                    # The first frame was grabbed about frames/fps ago.
                    self._t0 = time.monotonic() - (frames - 1) / self.fps
                    self._first_frame.set()

    def offset(self) -> float | None:
        """Seconds into the video now (None when not recording)."""
        if self._t0 is None or self._stopped:
            return None
        return round(max(0.0, time.monotonic() - self._t0), 3)

    def chapter(self, title: str) -> float | None:
        """Start a chapter titled ``title`` now; returns its offset in the video."""
        at = self.offset()
        if at is not None:
            self._chapters.append((at, title))
        return at

    def check_alive(self) -> None:
        if self._proc is None or self._end is not None:
            return  # not started, or ending on request
        if (code := self._proc.poll()) is not None:
            msg = f"ffmpeg (screen video) exited with code {code}: {tail(self.log)!r}"
            raise RecorderError(msg)

    def close(self) -> None:
        self.stop()

    def end(self) -> None:
        """End the video now, before the caller closes the browser (which the video should
        not show); chapters and the check follow on a thread, and :meth:`stop` waits for
        them. Idempotent.

        ffmpeg grabs the screen until it has seen the request, so this waits (bounded)
        for it to exit; without the wait a loaded machine ended videos on the closed
        browser's black desktop. The request is SIGINT, which ffmpeg finalizes on as it
        does on ``q``: it sees a signal at once and ``q`` within 100 ms (0.07 s to exit
        against 0.13 s, measured)."""
        if self._proc is None or self._end is not None:
            return
        self._end = time.monotonic()
        self._proc.signal(signal.SIGINT)
        if self._proc.wait(_END_WAIT_S) is not None:
            # The rest (chapters, ffprobe: ~0.15 s) needs no screen: it goes on beside
            # the caller closing the browser, and stop() collects it.
            self._finisher = threading.Thread(
                target=self._finish, name="verifier-video-finish", daemon=True
            )
            self._finisher.start()

    def _finish(self) -> None:
        try:
            self.stop()
        except BaseException as exc:  # noqa: BLE001 - stop() on the caller's thread raises it
            self._finish_error = exc

    def stop(self) -> VideoInfo | None:
        """Finish the recording, add chapters, verify it; idempotent. None if no video."""
        finisher = self._finisher
        if finisher is not None and finisher is not threading.current_thread():
            finisher.join()
            if self._finish_error is not None:
                error, self._finish_error = self._finish_error, None
                raise error
            return self.info
        if self._stopped or self._proc is None:
            return self.info
        self._stopped = True
        self.end()
        assert self._end is not None
        end = self._end
        proc = self._proc
        # 10 s from the request to end (end() may have waited for part of them).
        if proc.wait(max(0.0, end + 10.0 - time.monotonic())) is None:
            proc.signal(signal.SIGINT)  # ask once more, then stop() escalates
        proc.stop(grace=5.0)
        if proc.popen.stdout is not None:
            proc.popen.stdout.close()
        if self._reader is not None:
            self._reader.join(timeout=2)
        duration = end - self._t0 if self._t0 is not None else 0.0
        # ffprobe checks the recording while the chapters go in (a remux that copies its
        # packets): two tools starting up take ~0.15 s one after the other.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verifier-ffprobe") as pool:
            probing = pool.submit(probe_video, self.path)
            chapters: tuple[tuple[float, str], ...] = ()
            try:
                chapters = self._add_chapters(duration)
            except RecorderError as exc:
                _log.warning("chapters not added, the video stays fragmented: %s", exc)
            try:
                self.info = dataclasses.replace(probing.result(), chapters=chapters)
            except RecorderError as exc:
                _log.warning("the video is not playable: %s", exc)
                self.info = None
        return self.info

    def _add_chapters(self, duration: float) -> tuple[tuple[float, str], ...]:
        """Remux the video with chapter marks and the index up front; returns the marks."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            msg = f"ffmpeg wrote no video to {str(self.path)!r}: {tail(self.log)!r}"
            raise RecorderError(msg)
        meta = self.path.with_name(".chapters.ffmeta")
        lines = [";FFMETADATA1"]
        marks = [c for c in self._chapters if c[0] < duration] or [(0.0, "recording")]
        for i, (start, title) in enumerate(marks):
            stop = marks[i + 1][0] if i + 1 < len(marks) else max(duration, start + 0.001)
            lines += [
                "[CHAPTER]",
                "TIMEBASE=1/1000",
                f"START={int(start * 1000)}",
                f"END={int(stop * 1000)}",
                f"title={_ffmeta_escape(title)}",
            ]
        meta.write_text("\n".join(lines) + "\n", encoding="utf-8")
        # The same titles as a subtitle track (mov_text): any player shows the step.
        cues = self.path.with_name(".chapters.srt")
        cues.write_text(subtitles(marks, duration), encoding="utf-8")
        tmp = self.path.with_name(".video.final.mp4")
        argv = [
            _require("ffmpeg"),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(self.path),
            "-i",
            str(meta),
            "-i",
            str(cues),
            "-map",
            "0:v",
            "-map",
            "2",
            "-map_metadata",
            "1",
            "-map_chapters",
            "1",
            "-c",
            "copy",
            "-c:s",
            "mov_text",
            "-metadata:s:s:0",
            "handler_name=Steps",
            "-metadata:s:s:0",
            "title=Steps",
            "-movflags",
            "+faststart",
            str(tmp),
        ]
        try:
            done = _run_tool(argv, "remuxing the video", timeout=120)
        finally:
            meta.unlink(missing_ok=True)
            cues.unlink(missing_ok=True)
        if done.returncode != 0:
            tmp.unlink(missing_ok=True)
            msg = f"remuxing the video failed: {done.stderr.strip()[-300:]!r}"
            raise RecorderError(msg)
        os.replace(tmp, self.path)
        return tuple((int(start * 1000) / 1000, title) for start, title in marks)
