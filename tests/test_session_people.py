"""The session's people finding, without Qt: the detector choice in the runner settings, a
refused detector keeping the running one, the weights download's state, the person box's
undo history, and what a shown frame says about people."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posescope.core.detection.base import WeightsMissingError
from posescope.core.session import Session
from posescope.core.session_people import people_state
from posescope.core.session_types import (
    FrameResult,
    Model,
    RunnerSettings,
    SettingsError,
    SourceInfo,
)
from posescope.core.types import Frame, FramePoses, PersonPose


class Recorder:
    def __init__(self, session: Session) -> None:
        self.runner_requests: list[RunnerSettings] = []
        self.downloads: list[str] = []
        self.cancels = 0
        self.status: list[object] = []
        self.refused: list[object] = []
        self.history: list[tuple[bool, bool]] = []
        session.events.runner_requested.connect(lambda r: self.runner_requests.append(r.settings))
        ev = session.people.events
        ev.download_requested.connect(self.downloads.append)
        ev.download_cancel_requested.connect(lambda: setattr(self, "cancels", self.cancels + 1))
        ev.detector_status.connect(self.status.append)
        ev.detector_refused.connect(self.refused.append)
        ev.history_changed.connect(lambda u, r: self.history.append((u, r)))


class FakeEstimator:
    joint_set = None


def running_session() -> tuple[Session, Recorder]:
    """A session with a model (a fake estimator) and a source, so runner rebuilds are asked."""
    s = Session()
    s.model = Model(None, None, None, FakeEstimator(), s.model_settings)  # type: ignore[arg-type]
    s.source = SourceInfo("clip.mp4", "clip.mp4", 640, 480, 30.0, 10, False)
    return s, Recorder(s)


def missing(name: str = "RTMDet-nano") -> WeightsMissingError:
    return WeightsMissingError(name, Path("/cache/x.onnx"), ("http://a/x.zip",))


# ---------------------------------------------------------------- the detector choice


def test_default_settings_ask_for_rtmdet_forgivingly() -> None:
    r = RunnerSettings()
    assert r.detector is None and r.detector_name == "rtmdet" and not r.detector_explicit
    assert r.whole_frame is True
    assert RunnerSettings(detector="rtmdet").detector_explicit
    assert RunnerSettings(detector_model="/m.onnx").detector_explicit


def test_bad_detector_settings_are_refused() -> None:
    s = Session()
    with pytest.raises(SettingsError, match="detector 'ssd'"):
        s.set_runner_settings(detector="ssd")
    with pytest.raises(SettingsError, match="rtmdet or yolox"):
        s.set_runner_settings(detector="hog", detector_model="/m.onnx")
    assert s.runner_settings == RunnerSettings()


def test_choosing_a_detector_rebuilds_the_runner() -> None:
    s, rec = running_session()
    s.people.choose_detector("yolox")
    s.set_runner_settings(whole_frame=False)
    s.people.choose_detector("yolox", "/models/yolox.onnx")
    s.people.choose_detector("yolox", "/models/yolox.onnx")  # no change: no rebuild
    assert [(r.detector, r.whole_frame, r.detector_model) for r in rec.runner_requests] == [
        ("yolox", True, None),
        ("yolox", False, None),
        ("yolox", False, "/models/yolox.onnx"),
    ]


def test_status_after_a_build() -> None:
    s, rec = running_session()
    st = s.people.detector_ready(RunnerSettings(), None, missing())
    assert st.running is None and not st.explicit and st.missing_weights == "rtmdet"
    st = s.people.detector_ready(RunnerSettings(detector="hog"), "hog", None)
    assert st.running == "hog" and st.explicit and st.missing_weights is None
    assert len(rec.status) == 2 and rec.status[-1] == s.people.status


def test_a_refused_detector_keeps_the_running_one() -> None:
    s, rec = running_session()
    s.people.detector_ready(s.runner_settings, "rtmdet", None)  # RTMDet-nano runs
    s.set_runner_settings(smoothing=False)
    s.people.choose_detector("yolox")  # asked for by name; the controller finds no weights
    asked = s.runner_settings
    rec.runner_requests.clear()
    refused = s.people.detector_failed(asked, missing("YOLOX-tiny"))
    assert refused.explicit and refused.wanted == "yolox" and refused.missing_weights == "yolox"
    assert rec.refused == [refused]
    # the settings show the detector that runs again, the other changes kept, no rebuild
    assert s.runner_settings.detector is None and s.runner_settings.smoothing is False
    assert rec.runner_requests == []
    assert s.people.status.running == "rtmdet"


# ---------------------------------------------------------------- weights download


def test_download_progress_and_switch_when_done() -> None:
    s, rec = running_session()
    assert s.people.request_download("yolox", use_when_done=True)
    assert not s.people.request_download("rtmdet")  # one at a time
    assert rec.downloads == ["yolox"] and s.people.downloading
    s.people.download_progress("yolox", 1000, 4000)
    assert s.people.download.fraction == pytest.approx(0.25)
    s.people.download_progress("rtmdet", 4000, 4000)  # not the running download: ignored
    assert s.people.download.done == 1000
    s.people.cancel_download()
    assert rec.cancels == 1
    s.people.download_finished("yolox")
    assert s.people.download.state == "done" and not s.people.downloading
    assert rec.runner_requests[-1].detector == "yolox"  # asked for by name: switched to it


def test_download_of_the_default_rebuilds_the_runner() -> None:
    s, rec = running_session()
    s.people.request_download("rtmdet")
    s.people.download_finished("rtmdet")
    assert len(rec.runner_requests) == 1 and rec.runner_requests[0].detector is None


def test_download_failed_or_cancelled() -> None:
    s, rec = running_session()
    s.people.request_download("rtmdet")
    s.people.download_failed("rtmdet", OSError("refused"), cancelled=True)
    assert s.people.download.state == "cancelled" and rec.runner_requests == []
    s.people.request_download("rtmdet")
    s.people.download_failed("rtmdet", OSError("refused"))
    assert s.people.download.state == "failed" and str(s.people.download.error) == "refused"
    with pytest.raises(ValueError, match="hog"):
        s.people.request_download("hog")


# ---------------------------------------------------------------- box undo


def test_box_edits_undo_and_redo() -> None:
    s, rec = running_session()
    h = s.people.history
    assert not h.can_undo
    s.use_person_box((10, 20, 100, 200))  # drawn
    s.set_box((15, 20, 100, 200))  # moved
    s.set_box((15, 20, 120, 220))  # resized
    assert h.can_undo and rec.history[-1] == (True, False)
    assert h.undo() and s.runner_settings.box == (15, 20, 100, 200)
    assert h.undo() and s.runner_settings.box == (10, 20, 100, 200)
    assert h.can_redo
    assert h.redo() and s.runner_settings.box == (15, 20, 100, 200)
    assert h.undo() and h.undo()  # back to before the box: detecting people again
    assert s.runner_settings.box is None and not s.runner_settings.use_box
    assert not h.undo() and not h.can_undo
    # a new edit after undoing drops the redo steps
    s.use_person_box((1, 2, 30, 40))
    assert not h.can_redo
    # undo rebuilt the runner each time the box in use changed
    assert rec.runner_requests[-1].tracker_box == (1, 2, 30, 40)


def test_switching_the_box_off_is_undoable_too() -> None:
    s, _ = running_session()
    s.use_person_box((10, 20, 100, 200))
    s.set_runner_settings(use_box=False)
    assert s.people.history.undo()
    assert s.runner_settings.use_box and s.runner_settings.tracker_box == (10, 20, 100, 200)
    s.set_runner_settings(smoothing=False)  # not a box edit: not in the history
    assert s.people.history.undo() and s.runner_settings.box is None
    assert s.runner_settings.smoothing is False


# ---------------------------------------------------------------- nobody found


def _result(people: list[PersonPose] | None, w: int = 64, h: int = 48) -> FrameResult:
    frame = Frame(np.zeros((h, w, 3), np.uint8), 0, 0.0)
    poses = None if people is None else FramePoses(0, 0.0, people)
    return FrameResult(frame, poses, 0, 1.0)


def _person(bbox, det=float("nan")) -> PersonPose:
    z = np.zeros((18, 2))
    return PersonPose(1, bbox, z, np.zeros(18), np.zeros((18, 3)), 5000.0, det_score=det)


def test_people_state() -> None:
    detect = RunnerSettings()
    assert people_state(None, detect) == "unknown"
    assert people_state(_result(None), detect) == "unknown"
    assert people_state(_result([]), detect) == "nobody"
    assert people_state(_result([_person((0, 0, 64, 48))]), detect) == "whole_frame"
    assert people_state(_result([_person((0, 0, 64, 48), det=0.9)]), detect) == "found"
    assert people_state(_result([_person((5, 5, 20, 30))]), detect) == "found"
    boxed = RunnerSettings(use_box=True, box=(0, 0, 64, 48))
    assert people_state(_result([_person((0, 0, 64, 48))]), boxed) == "found"
