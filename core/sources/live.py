"""Live sources: a camera, and a video replayed in real time as if it were one.

Both keep only the newest frame (`_LiveSource`): a consumer too slow for them sees frames
dropped, never queued.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from posescope.core.sources.base import Source, SourceError, sane_fps
from posescope.core.sources.video import VideoSource
from posescope.core.types import Frame

log = logging.getLogger(__name__)


class _LiveSource(Source):
    """A background producer thread that keeps only the newest frame.

    read() blocks until a frame newer than the last one returned exists and returns it; frames
    that were overwritten before being read count in `dropped`. A producer that stops delivering
    for `stall_timeout` seconds ends the stream (None) instead of blocking forever. Once the
    stream has ended, `end_reason` says why, in words for the user ("it reached the last frame",
    "10 failed reads in a row", ...); None while it runs, or when close() ended it.
    """

    is_live = True
    seekable = False
    stall_timeout: float = 5.0

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._seq = 0  # frames published
        self._read_seq = 0  # seq of the last frame returned by read()
        self._finished = False  # the producer has no more frames
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0  # frames never returned by read()
        self.delivered = 0  # frames returned by read()
        self.end_reason: str | None = None
        self._t0 = time.monotonic()

    def start(self) -> None:
        """Start producing (read() does it on its first call)."""
        if self._thread is None:
            self._t0 = time.monotonic()
            self._thread = threading.Thread(
                target=self._run_guarded, name=f"{type(self).__name__}", daemon=True
            )
            self._thread.start()

    def _run_guarded(self) -> None:
        try:
            self._run()
        except Exception as exc:  # the consumer sees the end of the stream, the log says why
            log.exception("%s: frame producer failed", self.name)
            self._ended(f"reading failed ({type(exc).__name__}: {exc})")
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _run(self) -> None:
        raise NotImplementedError

    def _ended(self, reason: str) -> None:
        """The producer says why it stops (the first reason given stands)."""
        with self._cond:
            if self.end_reason is None and not self._stop.is_set():
                self.end_reason = reason

    def _publish(self, frame: Frame, skipped: int = 0) -> None:
        with self._cond:
            if self._latest is not None and self._seq != self._read_seq:
                self.dropped += 1  # the previous frame was never read
            self.dropped += skipped
            self._latest = frame
            self._seq += 1
            self._cond.notify_all()

    def read(self) -> Frame | None:
        self.start()
        with self._cond:
            deadline = time.monotonic() + self.stall_timeout
            while self._seq == self._read_seq and not self._finished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    log.warning(
                        "%s: no frame for %.1f s, ending the stream", self.name, self.stall_timeout
                    )
                    self._ended(f"no frame for {self.stall_timeout:g} s")  # (an RLock)
                    self._finished = True
                    self._stop.set()
                    return None
                self._cond.wait(remaining)
            if self._seq == self._read_seq:
                return None
            self._read_seq = self._seq
            self.delivered += 1
            return self._latest

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._finished = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)  # a hung driver cannot be interrupted anyway
        self._release()

    def _release(self) -> None:
        pass


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log while probing cameras (absent devices print several errors)."""
    logging_mod = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_mod is None:
        yield
        return
    old = logging_mod.getLogLevel()
    logging_mod.setLogLevel(logging_mod.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging_mod.setLogLevel(old)


def _camera_device_missing(index: int) -> bool:
    """On Linux an absent /dev/videoN tells quickly that there is no such camera."""
    return sys.platform.startswith("linux") and not os.path.exists(f"/dev/video{index}")


class CameraSource(_LiveSource):
    """A webcam through cv2.VideoCapture(index).

    Frame.time is wall-clock seconds since the camera was opened; Frame.index counts captured
    frames (gaps mean frames were dropped). `fail_limit` failed reads in a row (camera unplugged)
    or `stall_timeout` seconds without a frame end the stream.
    """

    def __init__(
        self,
        index: int = 0,
        *,
        width: int | None = None,
        height: int | None = None,
        fail_limit: int = 10,
        stall_timeout: float = 3.0,
    ) -> None:
        super().__init__()
        self.index = int(index)
        self.path = f"camera:{self.index}"
        self.name = f"camera {self.index}"
        self.fail_limit = fail_limit
        self.stall_timeout = stall_timeout
        self.frame_count = None
        self._cap = self._open_capture(self.index)
        if self._cap is None or not self._cap.isOpened():
            if self._cap is not None:
                self._cap.release()
            raise SourceError(f"camera {self.index} is not available")
        if width:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        first = None
        for _ in range(fail_limit):
            ok, image = self._cap.read()
            if ok and image is not None:
                first = image
                break
            time.sleep(0.05)
        if first is None:
            self._cap.release()
            raise SourceError(f"camera {self.index} opened but delivers no images")
        self.height, self.width = first.shape[:2]
        self.fps = sane_fps(self._cap.get(cv2.CAP_PROP_FPS))
        self._t0 = time.monotonic()
        self._first: np.ndarray | None = first

    @staticmethod
    def _open_capture(index: int) -> Any:
        """Open the device (tests replace this with a fake capture)."""
        if _camera_device_missing(index):
            return None
        with _quiet_opencv():
            return cv2.VideoCapture(index)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run_guarded, name=self.name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        count = 0
        if self._first is not None:
            self._publish(Frame(self._first, 0, time.monotonic() - self._t0))
            self._first = None
            count = 1
        fails = 0
        while not self._stop.is_set():
            ok, image = self._cap.read()
            if not ok or image is None:
                fails += 1
                if fails >= self.fail_limit:
                    log.warning("%s: %d failed reads in a row, ending the stream", self.name, fails)
                    self._ended(f"{fails} failed reads in a row")
                    return
                time.sleep(0.02)
                continue
            fails = 0
            self._publish(Frame(image, count, time.monotonic() - self._t0))
            count += 1

    def _release(self) -> None:
        self._cap.release()


class ReplaySource(_LiveSource):
    """A video file replayed in real time (times `speed`) as if it were a camera.

    A background thread decodes the frame due at each moment (frame i is due i / (fps * speed)
    seconds after the first read()); frames the producer or the consumer were too slow for are
    dropped, never queued. Frame.index is the video's frame index, Frame.time wall-clock seconds
    since playback started. At the end of the video read() returns None. After the end,
    delivered + dropped equals the video's frame count.
    """

    def __init__(self, path: str | Path, *, speed: float = 1.0, stall_timeout: float = 5.0):
        super().__init__()
        if not speed > 0:
            raise ValueError("speed must be positive")
        self._video = VideoSource(path)
        self.path = f"replay:{self._video.path}"
        self.name = f"replay of {self._video.name}"
        self.width, self.height = self._video.width, self._video.height
        self.fps = self._video.fps
        self.speed = float(speed)
        self.stall_timeout = stall_timeout
        self.frame_count = None
        self.source_frames = self._video.frame_count

    def _run(self) -> None:
        rate = self.fps * self.speed
        last = -1
        while not self._stop.is_set():
            total = self._video.frame_count or 0
            if last >= total - 1:
                # Hold the last frame for its duration, then end.
                wait = total / rate - (time.monotonic() - self._t0)
                if wait > 0:
                    self._stop.wait(wait)
                self._ended("it reached the last frame")
                return
            due = int((time.monotonic() - self._t0) * rate)
            if due <= last:
                self._stop.wait(max(0.0, (last + 1) / rate - (time.monotonic() - self._t0)))
                continue
            target = min(due, total - 1)
            try:
                frame = self._video.get(target)
            except SourceError:
                log.warning("%s: frame %d does not decode, ending the replay", self.name, target)
                self._ended(f"frame {target} does not decode")
                return
            now = time.monotonic() - self._t0
            self._publish(Frame(frame.image, frame.index, now), skipped=target - last - 1)
            last = target

    def _release(self) -> None:
        self._video.close()
