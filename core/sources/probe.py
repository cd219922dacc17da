"""Which source a user's string names (`open_source`), and which cameras there are."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2

from posescope.core.sources.base import Source, SourceError
from posescope.core.sources.images import IMAGE_EXTENSIONS, FolderSource, ImageSource
from posescope.core.sources.live import CameraSource, ReplaySource
from posescope.core.sources.video import VideoSource


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
