"""One place that builds a PoseRunner (tracker + smoother) for `posescope run`, `bench` and
the app, from the session's `RunnerSettings` and the detector chosen.

Where the people are: a fixed box (`settings.tracker_box`), else the detector every
`settings.detect_every` frames, with the whole frame as the box when nobody is found (unless
`settings.whole_frame` is off). Where the detector runs: in its own thread (a
`BackgroundDetector`, ended by `runner.close()`) when `background`, else in the calling thread
on the frame being estimated (single images; the app's analysis pass, whose results must not
depend on timing). `seeking`: the app's viewing runner, whose first frame after a seek is
looked at afresh (`SeekingRunner`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from posescope.core.detection.background import BackgroundDetector
from posescope.core.person import PersonTracker
from posescope.core.pipeline import Crops, PoseRunner
from posescope.core.smoothing import PoseSmoother
from posescope.core.types import Frame, FramePoses

if TYPE_CHECKING:
    from posescope.core.detection.base import Detector
    from posescope.core.pipeline import Estimator
    from posescope.core.session_types import RunnerSettings

FAR_SEEK = 8  # frames: a seek farther than this (or back) looks at the frame afresh


def build_tracker(
    settings: RunnerSettings, detector: Detector | None, background: bool
) -> PersonTracker:
    """The tracker `settings` ask for (see the module docstring)."""
    if settings.tracker_box is not None:
        return PersonTracker.fixed(settings.tracker_box)
    chosen: Detector | BackgroundDetector | None = detector
    if detector is not None and background:
        chosen = BackgroundDetector(detector)
    return PersonTracker(
        chosen,
        detect_every=max(1, int(settings.detect_every)),
        whole_frame=settings.whole_frame,
    )


def build_smoother(settings: RunnerSettings) -> PoseSmoother | None:
    """The One-Euro smoother of `settings`; None when smoothing is off."""
    if not settings.smoothing:
        return None
    args = settings.smoother_args()
    if "beta" in args:
        return PoseSmoother(args["min_cutoff"], args["beta"])
    return PoseSmoother(args["min_cutoff"])  # the engine's beta


def build_runner(
    estimator: Estimator,
    settings: RunnerSettings,
    detector: Detector | None = None,
    *,
    background: bool = True,
    seeking: bool = False,
    estimator_b: Estimator | None = None,
) -> PoseRunner:
    """A fresh runner around `estimator` (see the module docstring). `estimator_b`: an A/B
    comparison, B's network run on A's boxes with a smoother of its own
    (core/compare_runner.py)."""
    tracker = build_tracker(settings, detector, background)
    smoother = build_smoother(settings)
    cls = SeekingRunner if seeking else PoseRunner
    runner = cls(estimator, tracker, smoother)
    if estimator_b is None:
        return runner
    from posescope.core.compare_runner import CompareRunner

    return CompareRunner(runner, estimator_b, build_smoother(settings))  # type: ignore[return-value]


class SeekingRunner(PoseRunner):
    """A PoseRunner whose first frame after a seek (`reset`) is detected in the calling thread
    before its poses, so a frame looked at after a seek shows the people found on it, not boxes
    carried from another moment; a seek farther than FAR_SEEK frames (or backwards, or a new
    source) also forgets the tracks (ids from 1). Between seeks the detector works in its own
    thread."""

    _fresh = True
    _last: int | None = None

    def reset(self) -> None:
        super().reset()
        self._fresh = True

    def process(self, frame: Frame, prepared: Crops | None = None) -> FramePoses:
        tracker = self.tracker
        bg = tracker.background
        if not self._fresh or bg is None:
            self._last = frame.index
            return super().process(frame, prepared)
        self._fresh = False
        last, self._last = self._last, frame.index
        if last is None or not 0 < frame.index - last <= FAR_SEEK:
            tracker.restart()
        tracker.detector = bg.detector  # this round synchronously
        try:
            return super().process(frame, prepared)
        finally:
            tracker.detector = bg
