"""Record a live session: each frame's poses (and optionally the overlay video) as they come.

`LiveRecorder` checks its destinations and opens its sink when made (so a bad path fails
before recording starts), then takes frames with `add(frame, poses)` from any thread and
writes them in its own thread (a bounded queue: a slow disk drops frames, counted, instead of
holding up the caller). The writing is the job every writer shares (core/pose_job.py: a
`PoseSink` fed by `write_frames`): the pose file is replaced atomically every few seconds and
at `stop()`, the video is renamed into place at `stop()`. `stop()` returns a summary; a
recorder stops once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from posescope.core.pose_job import (
    FLUSH_SECONDS,
    POSE_SUFFIXES,
    VIDEO_SUFFIXES,
    Draw,
    ExportHeader,
    ExportPlan,
    PoseSink,
    check_plan,
    write_frames,
)
from posescope.core.types import Frame, FramePoses

QUEUE_FRAMES = 64
__all__ = ["POSE_SUFFIXES", "VIDEO_SUFFIXES", "LiveRecorder", "RecordingSummary"]


@dataclass(frozen=True)
class RecordingSummary:
    """What a recording wrote."""

    frames: int  # frames recorded
    dropped: int  # frames the writer thread could not keep up with
    written: tuple[str, ...]
    error: str | None = None  # writing failed part way (what was written is kept)


class LiveRecorder:
    """Streams frames to a `PoseSink` of `plan` in a thread of its own."""

    def __init__(self, plan: ExportPlan, header: ExportHeader, draw: Draw | None = None) -> None:
        check_plan(plan)
        self.plan = plan
        self.header = header
        self.sink = PoseSink(plan, header, draw=draw, flush_s=FLUSH_SECONDS)
        self.frames = 0
        self.dropped = 0
        self.error: str | None = None
        self._queue: queue.Queue[tuple[Frame, FramePoses] | None] = queue.Queue(QUEUE_FRAMES)
        self._stopped = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="posescope-record", daemon=True)
        self._thread.start()

    @property
    def recording(self) -> bool:
        return not self._stopped

    def add(self, frame: Frame, poses: FramePoses | None) -> bool:
        """Record one frame (its poses; None: nobody found). False when dropped or stopped."""
        with self._lock:
            if self._stopped:
                return False
            fp = poses if poses is not None else FramePoses(frame.index, frame.time)
            try:
                self._queue.put_nowait((frame, fp))
            except queue.Full:
                self.dropped += 1
                return False
            return True

    def _items(self) -> Iterator[tuple[np.ndarray | None, FramePoses]]:
        while (item := self._queue.get()) is not None:
            frame, fp = item
            yield frame.image, fp

    def _run(self) -> None:
        job = write_frames(self._items(), self.sink, finish=False, keep_partial=True)
        try:
            for done, _, _ in job:
                self.frames = done
        except Exception as exc:  # a full disk: stop writing, say why at the end
            self.error = str(exc) or type(exc).__name__
            while self._queue.get() is not None:  # drain: write nothing more
                pass

    def stop(self, timeout_s: float = 10.0) -> RecordingSummary:
        """Finish the files (waits for the queued frames); safe to call twice."""
        with self._lock:
            first = not self._stopped
            self._stopped = True
        if first:
            self._queue.put(None)
        self._thread.join(timeout_s)
        written: list[str] = []
        if first:
            try:
                written = list(self.sink.finish())
            except Exception as exc:
                self.error = self.error or str(exc) or type(exc).__name__
                written = list(self.sink.written)
        return RecordingSummary(self.frames, self.dropped, tuple(written), self.error)
