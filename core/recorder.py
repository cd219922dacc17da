"""Record a live session: each frame's poses (and optionally the overlay video) as they come.

`LiveRecorder` checks its destinations and opens its writers when made (so a bad path fails
before recording starts), then takes frames with `add(frame, poses)` from any thread and
writes them in its own thread (a bounded queue: a slow disk drops frames, counted, instead of
holding up the caller). JSON is streamed frame by frame (core/export.py `JsonStreamWriter`);
CSV and NPZ, whose layouts need every frame, are written by `stop()` from the poses kept (a
few KB a frame, never images). `stop()` returns a summary; a recorder stops once.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from posescope.core.cache_export import (
    POSE_SUFFIXES,
    VIDEO_SUFFIXES,
    ExportHeader,
    ExportPlan,
    check_plan,
)
from posescope.core.export import (
    ExportError,
    JsonStreamWriter,
    OverlayVideoWriter,
    frame_dict,
    run_document,
    write_poses,
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
    """Streams frames to the writers of `plan` in a thread of its own."""

    def __init__(self, plan: ExportPlan, header: ExportHeader, draw: Any = None) -> None:
        check_plan(plan)
        self.plan = plan
        self.header = header
        self._draw = draw
        self._json: JsonStreamWriter | None = None
        self._video: OverlayVideoWriter | None = None
        self._kept: list[dict[str, Any]] = []  # frame dicts, for CSV / NPZ at the end
        suffix = Path(plan.poses_path).suffix.lower() if plan.poses_path else ""
        if suffix == ".json":
            self._json = JsonStreamWriter(
                cast(str, plan.poses_path),  # set: it has a suffix
                dict(header.checkpoint), dict(header.source), header.focal,
                header.principal, header.joint_set,
            )  # fmt: skip
        self._keep = suffix in (".csv", ".npz")
        if plan.video_path:
            try:
                self._video = OverlayVideoWriter(plan.video_path, header.fps, header.size)
            except ExportError:
                if self._json is not None:
                    self._json.close()
                raise
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

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # a writer failed: drain, write nothing more
            frame, fp = item
            try:
                if self._json is not None:
                    self._json.add(fp)
                if self._keep:
                    self._kept.append(frame_dict(fp))
                if self._video is not None:
                    self._video.write(self._drawn(frame, fp))
                self.frames += 1
            except Exception as exc:  # a full disk: stop writing, say why at the end
                self.error = str(exc) or type(exc).__name__

    def _drawn(self, frame: Frame, fp: FramePoses) -> Any:
        draw = self._draw
        if draw is None:
            from posescope.core.drawing import draw_frame as draw
        return draw(frame.image.copy(), fp, self.header.joint_set)

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
            written = self._close()
        return RecordingSummary(self.frames, self.dropped, tuple(written), self.error)

    def _close(self) -> list[str]:
        written: list[str] = []
        plan, header = self.plan, self.header
        if self._json is not None:
            self._json.close()
            written.append(str(plan.poses_path))
        if self._keep and plan.poses_path:
            doc = run_document(
                dict(header.checkpoint), dict(header.source), header.focal, header.principal,
                header.joint_set, [],
            )  # fmt: skip
            doc["frames"] = self._kept
            try:
                write_poses(plan.poses_path, doc)
                written.append(str(plan.poses_path))
            except Exception as exc:
                self.error = self.error or str(exc)
        if self._video is not None:
            self._video.close()
            written.append(str(plan.video_path))
        return written
