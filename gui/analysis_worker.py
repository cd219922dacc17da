"""The analysis pass in its own thread: one `AnalysisRequest` (core/session_analysis.py).

Opens its own copy of the source, makes its own runner (synchronous detection, its own
detector) around the running estimator, and fills the request's `PoseCache` in frame order
(`core.analysis.analyse`). Progress leaves by signal, at most ten times a second (and always
the last one), tagged with the request's key so that the session drops a stale pass's.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Signal

from posescope.core.analysis import AnalysisProgress, analyse, analysis_frames
from posescope.core.session_analysis import AnalysisRequest
from posescope.gui import engine
from posescope.gui.threads import WorkerBase, close_quietly

PROGRESS_INTERVAL_S = 0.1


class AnalysisWorker(WorkerBase):
    """Runs one pass; `stop()` ends it after the frame being computed."""

    sigProgress = Signal(object, object)  # key, AnalysisProgress
    sigFailed = Signal(object, object)  # key, exception

    def __init__(self, request: AnalysisRequest) -> None:
        super().__init__()
        self.request = request

    def work(self) -> AnalysisProgress:
        try:
            return self._pass()
        except Exception as exc:  # the key travels with the failure
            self.sigFailed.emit(self.request.key, exc)
            raise

    def _pass(self) -> AnalysisProgress:
        req = self.request
        detector = (
            None if req.settings.tracker_box is not None
            else engine.make_detector(req.settings).detector
        )  # fmt: skip
        runner = engine.make_runner(
            req.estimator, req.settings, detector, req.synchronous, req.estimator_b
        )
        source = engine.open_media(req.spec)
        last = [0.0]

        def progress(p: AnalysisProgress) -> None:
            now = time.monotonic()
            if p.finished or now - last[0] >= PROGRESS_INTERVAL_S:
                last[0] = now
                self.sigProgress.emit(req.key, p)

        frames = analysis_frames(source, runner)
        try:
            done = analyse(frames, req.cache, self._abort, progress)
            if not done.finished:
                self.sigProgress.emit(req.key, done)
            return done
        finally:
            frames.close()
            close_quietly(source)
