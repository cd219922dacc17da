"""Two pose networks on the same frames with the same person boxes (A/B comparison).

The tracker runs once per frame, for A (its runner: detection, tracks, boxes that follow A's
poses, smoothing); B's network then estimates on exactly the boxes A's people came from, so
B's people carry A's track ids and `core.pose_diff.pose_distances` pairs them. B is smoothed
by its own smoother with the same settings as A's.

A frame's result is a `PairedPoses`: A's `FramePoses` with B's attached (`.b`). It travels
wherever a `FramePoses` does (the inference worker, the analysis pass's `PoseCache`, exports
of A), so nothing on the way needs to know about the comparison.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from posescope.core.types import Frame, FramePoses

if TYPE_CHECKING:
    from posescope.core.person import PersonTracker
    from posescope.core.pipeline import Crops, Estimator, PoseRunner
    from posescope.core.smoothing import PoseSmoother


@dataclass
class PairedPoses(FramePoses):
    """A's poses of one frame, with B's poses on the same boxes (same track ids)."""

    b: FramePoses | None = None


def poses_b(poses: FramePoses | None) -> FramePoses | None:
    """B's poses of a frame computed by a `CompareRunner` (None for a single network)."""
    return getattr(poses, "b", None)


class CompareRunner:
    """Runs `runner` (A: tracker, network, smoother) and B's estimator on A's boxes.

    Has the parts of `PoseRunner` that the app's inference worker and the analysis pass use
    (`process`, `prepare`, `stream`, `default_in_flight`, `reset`, `close`)."""

    def __init__(
        self, runner: PoseRunner, estimator_b: Estimator, smoother_b: PoseSmoother | None = None
    ) -> None:
        self.runner = runner
        self.estimator_b = estimator_b
        self.smoother_b = smoother_b

    @property
    def estimator(self) -> Estimator:
        return self.runner.estimator

    @property
    def tracker(self) -> PersonTracker:
        return self.runner.tracker

    def estimate_b(self, frame: Frame, a: FramePoses) -> FramePoses:
        """B's poses of `frame` in the boxes (and with the track ids) of A's people."""
        t0 = time.perf_counter()
        b = self.estimator_b.estimate(frame, [(p.track_id, p.bbox) for p in a.people])
        scores = {p.track_id: p.det_score for p in a.people}
        b.people = [replace(p, det_score=scores.get(p.track_id, math.nan)) for p in b.people]
        if self.smoother_b is not None:
            b = self.smoother_b.smooth(b)
        b.timings_ms["total"] = (time.perf_counter() - t0) * 1e3
        return b

    def process(self, frame: Frame, prepared: Crops | None = None) -> PairedPoses:
        """A's poses (tracking included), then B's on the same boxes."""
        a = self.runner.process(frame, prepared)
        b = self.estimate_b(frame, a)
        timings = dict(a.timings_ms)
        timings["model B"] = b.timings_ms.get("model", 0.0)
        timings["total"] = timings.get("total", 0.0) + b.timings_ms["total"]
        return PairedPoses(a.index, a.time, a.people, timings, b=b)

    def prepare(self, frame: Frame) -> Crops | None:
        return self.runner.prepare(frame)

    def stream(
        self, items: Iterable[tuple[Frame, float, Crops | None]], in_flight: int = 1
    ) -> Generator[tuple[Frame, float, FramePoses], None, None]:
        """(frame, decode ms, paired poses) for each prefetched frame, one at a time."""
        for frame, ms, prepared in items:
            yield frame, ms, self.process(frame, prepared)

    def default_in_flight(self) -> int:
        return 1

    def reset(self) -> None:
        self.runner.reset()
        if self.smoother_b is not None:
            self.smoother_b.reset()

    def close(self) -> None:
        self.runner.close()

    def __enter__(self) -> CompareRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["CompareRunner", "PairedPoses", "poses_b"]
