"""Analyse a video once, then show any frame at once: the poses of every analysed frame, cached.

A video (or image folder) is analysed in frame order, from its first frame, with one runner:
tracking and smoothing see the frames in order, so frame k's poses do not depend on how the
user reached frame k. The cache holds poses only (a few KB a frame), never images: frames are
decoded again when shown. A change of any setting that changes results makes a new cache (a
new `key`); the old one is dropped whole.

Frames the pass has not reached yet can be computed on demand (a preview without tracking
history): they are kept apart from the analysed ones and replaced when the pass gets there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass

from posescope.core.types import FramePoses

# Poses of one person-frame are ~1 KB (18 joints x 6 floats + box); a cap keeps a pathological
# source (a "video" claiming billions of frames) from growing the cache without bound.
MAX_CACHED_FRAMES = 2_000_000


@dataclass(frozen=True)
class AnalysisProgress:
    """How far the pass is: frames [0, done) analysed, of `total` (None: not known yet)."""

    done: int
    total: int | None
    finished: bool = False

    @property
    def fraction(self) -> float:
        if self.finished:
            return 1.0
        if not self.total:
            return 0.0
        return min(1.0, self.done / self.total)


class PoseCache:
    """The analysed poses of one source under one set of settings (`key`).

    Thread-safe: the analysis thread writes, the UI thread reads. `put` takes frames in order
    only (the pass); `put_preview` keeps on-demand results for frames the pass has not reached.
    """

    def __init__(self, key: Hashable, frame_count: int | None = None) -> None:
        self.key = key
        self._frame_count = frame_count
        self._poses: list[FramePoses] = []
        self._previews: dict[int, FramePoses] = {}
        self._finished = False
        self._lock = threading.Lock()

    # -- reading -----------------------------------------------------------------------------

    @property
    def frame_count(self) -> int | None:
        """The source's frame count, corrected when the pass found fewer decodable frames."""
        return self._frame_count

    @property
    def analysed(self) -> int:
        """Frames [0, analysed) are analysed."""
        return len(self._poses)

    @property
    def finished(self) -> bool:
        return self._finished

    def progress(self) -> AnalysisProgress:
        with self._lock:
            return AnalysisProgress(len(self._poses), self._frame_count, self._finished)

    def get(self, index: int) -> FramePoses | None:
        """The analysed poses of frame `index`, or None when the pass has not reached it."""
        with self._lock:
            return self._poses[index] if 0 <= index < len(self._poses) else None

    def preview(self, index: int) -> FramePoses | None:
        """An on-demand result for a frame ahead of the pass (None when there is none)."""
        with self._lock:
            return self._previews.get(index)

    def frames(self) -> list[FramePoses]:
        """Every analysed frame, in order (what an export writes)."""
        with self._lock:
            return list(self._poses)

    # -- writing -----------------------------------------------------------------------------

    def put(self, poses: FramePoses) -> None:
        """The pass's next frame. Frames arrive in order; a frame the source skipped (an image
        of a folder that does not decode) is recorded as a frame with nobody in it."""
        with self._lock:
            if poses.index < len(self._poses):
                raise ValueError(
                    f"analysis out of order: got frame {poses.index}, expected {len(self._poses)}"
                )
            if poses.index >= MAX_CACHED_FRAMES:
                raise ValueError(f"more than {MAX_CACHED_FRAMES} frames: not cached")
            while len(self._poses) < poses.index:
                self._poses.append(FramePoses(len(self._poses), float("nan")))
            self._poses.append(poses)
            self._previews.pop(poses.index, None)

    def put_preview(self, poses: FramePoses) -> None:
        """An on-demand result for a frame the pass has not reached (ignored once it has)."""
        with self._lock:
            if poses.index >= len(self._poses):
                self._previews[poses.index] = poses
                if len(self._previews) > 64:  # keep the latest few only
                    del self._previews[min(self._previews)]

    def finish(self) -> int | None:
        """The pass reached the end of the source. Returns the corrected frame count when the
        source claimed more frames than it could decode (a damaged video), else None."""
        with self._lock:
            self._finished = True
            self._previews.clear()
            claimed, real = self._frame_count, len(self._poses)
            self._frame_count = real
            return real if claimed is not None and claimed != real else None


def analyse(
    frames: Iterator[FramePoses],
    cache: PoseCache,
    stop: threading.Event | None = None,
    on_progress: Callable[[AnalysisProgress], None] | None = None,
) -> AnalysisProgress:
    """Drive a pass: put each frame's poses into `cache` in order until the source ends (the
    cache is finished) or `stop` is set (it is not). `frames` yields the poses of frames
    0, 1, 2, ... of one source through one runner, e.g. `analysis_frames(...)`."""
    for poses in frames:
        cache.put(poses)
        if on_progress is not None:
            on_progress(cache.progress())
        if stop is not None and stop.is_set():
            return cache.progress()
    cache.finish()
    progress = cache.progress()
    if on_progress is not None:
        on_progress(progress)
    return progress


def analysis_frames(source, runner, start: int = 0) -> Iterator[FramePoses]:
    """The poses of `source`'s frames from `start`, in order, through `runner` (reset first, so
    a pass from frame 0 is deterministic), decoding ahead in a background thread."""
    from posescope.core.pipeline import prefetch

    runner.reset()
    items = prefetch(source, start, None, prepare=runner.prepare)
    for _frame, _ms, poses in runner.stream(items, runner.default_in_flight()):
        yield poses


__all__ = [
    "MAX_CACHED_FRAMES",
    "AnalysisProgress",
    "PoseCache",
    "analyse",
    "analysis_frames",
]
