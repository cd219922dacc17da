"""A video file with exact random access (`VideoSource`)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from posescope.core.sources.base import Source, SourceError, sane_fps
from posescope.core.types import Frame

log = logging.getLogger(__name__)

# A forward jump of at most this many frames is done by grabbing (decoding without converting)
# instead of seeking: cheaper than a seek, which must decode from the previous keyframe anyway.
GRAB_LIMIT = 16


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
        self.fps = sane_fps(self._cap.get(cv2.CAP_PROP_FPS))
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
