"""What every frame source is (`Source`), and how it fails (`SourceError`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from posescope.core.types import Frame

DEFAULT_FPS = 30.0


class SourceError(Exception):
    """A source could not be opened or read; the message is meant for the user."""


def sane_fps(value: float) -> float:
    """A capture's frame rate, or DEFAULT_FPS when it reports none or nonsense."""
    return float(value) if math.isfinite(value) and 0.5 <= value <= 1000.0 else DEFAULT_FPS


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
