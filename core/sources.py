"""Frame sources: video files, images, image folders, cameras and a real-time video replay.

Every source yields `core.types.Frame` objects (BGR uint8 images). Files are seekable with exact
random access; live sources (camera, replay) deliver the newest frame and drop the ones the
consumer was too slow for. All failures surface as `SourceError` with a user-facing message.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from posescope.core.imagesize import ImageTooLargeError, check_pixels
from posescope.core.types import Frame

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".jp2",
     ".pbm", ".pgm", ".ppm", ".pnm", ".pxm", ".sr", ".ras", ".exr", ".hdr", ".pic", ".avif"}
)  # fmt: skip

DEFAULT_FPS = 30.0
# A forward jump of at most this many frames is done by grabbing (decoding without converting)
# instead of seeking: cheaper than a seek, which must decode from the previous keyframe anyway.
GRAB_LIMIT = 16


class SourceError(Exception):
    """A source could not be opened or read; the message is meant for the user."""


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


def _sane_fps(value: float) -> float:
    return float(value) if math.isfinite(value) and 0.5 <= value <= 1000.0 else DEFAULT_FPS


def _imread(path: Path) -> np.ndarray | None:
    """Decode an image file as BGR uint8 (non-ASCII paths work); None if it does not decode."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    try:
        # numpy's stubs declare ndarray's buffer protocol for Python >= 3.12 only.
        check_pixels(memoryview(data))  # type: ignore[arg-type]  # before decoding: a small file can decode to GBs
    except ImageTooLargeError as exc:
        raise SourceError(f"{path.name}: {exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.ndim != 3 or image.size == 0:
        return None
    return image


def _natural_key(name: str) -> list[Any]:
    """Sort key that orders 'frame2' before 'frame10'."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part.lower())
        for part in re.split(r"(\d+)", name)
        if part
    ]


class Source:
    """Base class of all frame sources."""

    name: str = ""
    path: str = ""
    width: int = 0
    height: int = 0
    fps: float = DEFAULT_FPS
    frame_count: int | None = None
    is_live: bool = False
    seekable: bool = False

    def read(self) -> Frame | None:
        """The next frame in order; None at the end of the stream."""
        raise NotImplementedError

    def get(self, index: int) -> Frame:
        """Frame `index` exactly (seekable sources only); the next read() returns index + 1."""
        raise SourceError(f"{self.name} cannot seek (it is a live source)")

    def close(self) -> None:
        """Release the underlying file or device."""

    def info(self) -> dict[str, Any]:
        """{"path", "width", "height", "fps", "frames"} for the run document."""
        return {
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "frames": self.frame_count,
        }

    def _check_index(self, index: int) -> int:
        index = int(index)
        if index < 0 or (self.frame_count is not None and index >= self.frame_count):
            raise SourceError(
                f"frame {index} is out of range: {self.name} has {self.frame_count} frames"
            )
        return index

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.path!r}, {self.width}x{self.height}, "
            f"{self.fps:g} fps, frames={self.frame_count})"
        )


class VideoSource(Source):
    """A video file with exact random access.

    Sequential reads decode in order; a short forward jump grabs the frames in between; a longer
    or backward jump seeks with CAP_PROP_POS_FRAMES. That seek was checked frame-exact on the
    project's test videos (FFmpeg backend), and each seek is sanity-checked (the position and
    timestamp OpenCV reports after it); on any inconsistency the source switches, for good, to
    exact mode: reopen the file and decode forward to the wanted frame. `seek="decode"` forces
    that mode from the start.
    """

    seekable = True

    def __init__(self, path: str | Path, *, seek: str = "auto", decode_threads: int = 0) -> None:
        if seek not in ("auto", "decode"):
            raise ValueError(f"seek must be 'auto' or 'decode', not {seek!r}")
        self._decode_threads = int(decode_threads)
        p = Path(path).expanduser()
        self.path = str(p)
        self.name = p.name
        if not p.exists():
            raise SourceError(f"video file not found: {p}")
        if p.is_dir():
            raise SourceError(f"{p} is a folder, not a video file")
        if p.stat().st_size == 0:
            raise SourceError(f"{p.name} is empty (0 bytes)")
        self._seek_mode = seek
        self._stale = False  # the capture must be reopened before the next decode
        self._cap = self._open()
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.fps = _sane_fps(self._cap.get(cv2.CAP_PROP_FPS))
        header_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self._pos = 0  # index of the frame the capture decodes next
        self._cursor = 0  # index the next read() returns
        first = self._decode(0)
        if first is None:
            self._cap.release()
            raise SourceError(
                f"{p.name} contains no decodable video frames (empty, damaged or unsupported)"
            )
        # Frame 0, decoded to validate the file, is handed out by the first request for it.
        self._cached: tuple[int, np.ndarray] | None = (0, first)
        self.height, self.width = first.shape[:2]
        self.frame_count = header_count if header_count > 0 else self._count_frames()

    def _open(self) -> cv2.VideoCapture:
        params = [cv2.CAP_PROP_N_THREADS, self._decode_threads] if self._decode_threads else []
        cap = cv2.VideoCapture(self.path, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            cap = cv2.VideoCapture(self.path)  # any other backend that may know the format
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"cannot open {self.name} as a video: not a video file, an unsupported format, "
                "or the file is damaged (e.g. an incomplete download)"
            )
        return cap

    def _count_frames(self) -> int:
        """Count by decoding (only when the header gives no count), then rewind."""
        n = 1
        while self._cap.grab():
            n += 1
        self._rewind()
        return n

    def _rewind(self) -> None:
        self._cap.release()
        self._cap = self._open()
        self._pos = 0
        self._stale = False

    def _read_one(self) -> np.ndarray | None:
        ok, image = self._cap.read()
        if not ok or image is None:
            # A failed read (damaged data, end of file) can leave the decoder in a state where
            # later seeks give slightly wrong pixels: start from a fresh capture next time.
            self._stale = True
            return None
        self._pos += 1
        return image

    def _seek(self, index: int) -> np.ndarray | None:
        if self._seek_mode == "auto":
            ok = self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            if ok and abs(self._cap.get(cv2.CAP_PROP_POS_FRAMES) - index) < 0.5:
                self._pos = index
                image = self._read_one()
                if image is None:
                    return None  # nothing decodes there (a damaged or short file)
                msec = self._cap.get(cv2.CAP_PROP_POS_MSEC)
                if abs(msec - index * 1000.0 / self.fps) <= 500.0 / self.fps:
                    return image
                log.warning(
                    "%s: seeking is not frame-exact, decoding forward from now on", self.name
                )
                self._seek_mode = "decode"
            # else: OpenCV refused this seek; decode forward for this one.
        self._rewind()
        return self._grab_to(index)

    def _grab_to(self, index: int) -> np.ndarray | None:
        while self._pos < index:
            if not self._cap.grab():
                self._stale = True
                return None
            self._pos += 1
        return self._read_one()

    def _decode(self, index: int) -> np.ndarray | None:
        if self._stale:
            self._rewind()
        if index == self._pos:
            return self._read_one()
        if self._pos < index <= self._pos + GRAB_LIMIT:
            return self._grab_to(index)
        return self._seek(index)

    def _frame(self, index: int, image: np.ndarray) -> Frame:
        self._cached = None  # each Frame owns its image: callers may draw on it
        self._cursor = index + 1
        return Frame(image=image, index=index, time=index / self.fps)

    def read(self) -> Frame | None:
        index = self._cursor
        if self.frame_count is not None and index >= self.frame_count:
            return None
        if self._cached is not None and self._cached[0] == index:
            return self._frame(index, self._cached[1])
        image = self._decode(index)
        if image is None:
            # Damaged tail or a header that promised more frames: end the stream here.
            log.warning(
                "%s: decoding stopped at frame %d of %s", self.name, index, self.frame_count
            )
            self.frame_count = index
            return None
        return self._frame(index, image)

    def get(self, index: int) -> Frame:
        index = self._check_index(index)
        if self._cached is not None and self._cached[0] == index:
            return self._frame(index, self._cached[1])
        image = self._decode(index)
        if image is None:
            raise SourceError(f"frame {index} of {self.name} could not be decoded (damaged file?)")
        return self._frame(index, image)

    def close(self) -> None:
        self._cap.release()
        self._cached = None


class ImageSource(Source):
    """A single image as a one-frame source."""

    seekable = True

    def __init__(self, path: str | Path, *, fps: float = DEFAULT_FPS) -> None:
        p = Path(path).expanduser()
        self.path = str(p)
        self.name = p.name
        if not p.is_file():
            raise SourceError(f"image file not found: {p}")
        image = _imread(p)
        if image is None:
            raise SourceError(f"cannot decode {p.name} as an image")
        self._image: np.ndarray | None = image
        self.height, self.width = image.shape[:2]
        self.fps = fps
        self.frame_count = 1
        self._done = False

    def read(self) -> Frame | None:
        if self._done or self._image is None:
            return None
        self._done = True
        return Frame(image=self._image, index=0, time=0.0)

    def get(self, index: int) -> Frame:
        self._check_index(index)
        if self._image is None:
            raise SourceError(f"{self.name} is closed")
        self._done = True
        return Frame(image=self._image, index=0, time=0.0)

    def close(self) -> None:
        self._image = None


class FolderSource(Source):
    """The images of a folder in natural order (frame2 before frame10), as a seekable sequence.

    Sizes may differ; width/height are those of the first image. Files that do not decode are
    skipped by read() (with a warning) and raise SourceError from get().
    """

    seekable = True
    skips_bad_frames = True  # prefetch: a bad first image is skipped, not fatal

    def __init__(self, path: str | Path, *, fps: float = DEFAULT_FPS) -> None:
        p = Path(path).expanduser()
        self.path = str(p)
        self.name = p.name or str(p)
        if not p.is_dir():
            raise SourceError(f"folder not found: {p}")
        self.files = sorted(
            (f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS),
            key=lambda f: _natural_key(f.name),
        )
        if not self.files:
            raise SourceError(f"folder {p} contains no images")
        first = None
        for f in self.files:
            with contextlib.suppress(SourceError):  # too large: skipped like undecodable
                first = _imread(f)
            if first is not None:
                break
        if first is None:
            raise SourceError(f"none of the {len(self.files)} images in {p} can be decoded")
        self.height, self.width = first.shape[:2]
        self.fps = fps
        self.frame_count = len(self.files)
        self._cursor = 0

    def _load(self, index: int) -> np.ndarray | None:
        return _imread(self.files[index])

    def read(self) -> Frame | None:
        while self._cursor < len(self.files):
            index = self._cursor
            self._cursor += 1
            try:
                image = self._load(index)
            except SourceError as exc:
                log.warning("skipping %s", exc)
                continue
            if image is not None:
                return Frame(image=image, index=index, time=index / self.fps)
            log.warning("skipping %s: it does not decode as an image", self.files[index].name)
        return None

    def get(self, index: int) -> Frame:
        index = self._check_index(index)
        try:
            image = self._load(index)
        except SourceError:  # over the pixel cap
            self._cursor = index + 1
            raise
        if image is None:
            self._cursor = index + 1  # read() goes on after it (prefetch skips a bad first)
            raise SourceError(f"{self.files[index].name} cannot be decoded as an image")
        self._cursor = index + 1
        return Frame(image=image, index=index, time=index / self.fps)


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
        self.fps = _sane_fps(self._cap.get(cv2.CAP_PROP_FPS))
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


def _is_image_file(path: Path) -> bool:
    """True when OpenCV recognises the file's content (not just its name) as an image."""
    try:
        return bool(cv2.haveImageReader(str(path)))
    except cv2.error:
        return False


def open_source(spec: str | Path, *, replay_speed: float = 1.0, decode_threads: int = 0) -> Source:
    """Open a source from a user string.

    "camera:N" -> CameraSource, "replay:PATH" -> ReplaySource, a folder -> FolderSource, a file
    whose content decodes as an image -> ImageSource, any other file -> VideoSource.
    `decode_threads` is FFmpeg's thread count for video files (0: its own choice). `run` and
    `bench` ask for one thread when the network runs on the same CPU: FFmpeg's frame threads
    cost 35% more CPU per 1080p H.264 frame (5.0 against 3.7 ms, benchmarks/RESULTS.md),
    taken from the network. The app keeps FFmpeg's choice: seeking (scrubbing) is faster
    with its threads (166 against 235 ms to frame 90 of the Pose2Sim video).
    """
    if isinstance(spec, str):
        text = spec.strip()
        if text.lower().startswith("camera:"):
            arg = text.split(":", 1)[1].strip() or "0"
            if not (arg.isascii() and arg.isdigit()) or len(arg) > 4:
                raise SourceError(f"bad camera spec {spec!r}: expected camera:N, e.g. camera:0")
            return CameraSource(int(arg))
        if text.lower().startswith("replay:"):
            return ReplaySource(text.split(":", 1)[1], speed=replay_speed)
        spec = text
    p = Path(spec).expanduser()
    if not p.exists():
        raise SourceError(f"not found: {p}")
    mode = p.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a FIFO would block, a device not end
        raise SourceError(f"{p.name}: not a regular file or folder (a FIFO, device or socket)")
    if p.is_dir():
        return FolderSource(p)
    if _is_image_file(p) or p.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSource(p)  # decodes the content; a non-image gets a clear SourceError
    return VideoSource(p, decode_threads=decode_threads)


def list_cameras(max_index: int = 5, *, opener: Callable[[int], Any] | None = None) -> list[int]:
    """Indices of the cameras that open and deliver an image, probing 0..max_index-1."""
    opener = opener or CameraSource._open_capture
    found = []
    for index in range(max_index):
        cap = opener(index)
        if cap is None:
            continue
        try:
            if cap.isOpened():
                ok, _ = cap.read()
                if ok:
                    found.append(index)
        finally:
            cap.release()
    return found
