"""Still images as sources: one image (`ImageSource`), a folder of them (`FolderSource`)."""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from posescope.core.imagesize import ImageTooLargeError, check_pixels
from posescope.core.sources.base import DEFAULT_FPS, Source, SourceError
from posescope.core.types import Frame

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".jp2",
     ".pbm", ".pgm", ".ppm", ".pnm", ".pxm", ".sr", ".ras", ".exr", ".hdr", ".pic", ".avif"}
)  # fmt: skip


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
