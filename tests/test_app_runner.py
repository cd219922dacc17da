"""The app's runners: live viewing detects in a background thread, the analysis pass detects in
its own thread on each frame it estimates (its results must not depend on timing)."""

from __future__ import annotations

from posescope.core.detection.background import BackgroundDetector
from posescope.core.session_types import RunnerSettings
from posescope.gui import engine
from tests.test_pipeline import estimator_for


class _Detector:
    name = "double"

    def detect(self, image):
        return []


def test_viewing_detects_in_the_background_and_the_pass_synchronously(tmp_path) -> None:
    est = estimator_for(tmp_path)
    settings = RunnerSettings()
    viewing = engine.make_runner(est, settings, _Detector())
    analysing = engine.make_runner(est, settings, _Detector(), synchronous=True)
    try:
        assert isinstance(viewing.tracker.detector, BackgroundDetector)
        assert isinstance(analysing.tracker.detector, _Detector)
        assert analysing.tracker.background is None
    finally:
        viewing.close()
        analysing.close()
