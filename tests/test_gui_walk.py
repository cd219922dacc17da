"""Rough edges found walking the window: stopping a recording never blocks the window (the
files are finished in a worker), a failed analysis pass says what failed and offers a retry,
a click in the 3D view selects the nearest skeleton, the "nobody found" card stays compact."""

from __future__ import annotations

import json
import threading
from functools import partial

import cv2
import pytest

from posescope.core.cache_export import ExportPlan
from posescope.core.drawing import draw_frame
from posescope.core.recorder import LiveRecorder
from posescope.gui import recording
from tests.gui_helpers import banner_texts, wait_model
from tests.media_files import SPORTS2D

pytestmark = pytest.mark.gui


def test_stopping_a_recording_returns_at_once_and_the_files_are_whole_after(
    qtbot, window, ckpt_files, tmp_path, monkeypatch
) -> None:
    gate = threading.Event()  # the writer thread's disk is "slow" until the test opens it
    drawn: list[int] = []

    def slow_draw(image, poses, joint_set):
        gate.wait(60)
        drawn.append(poses.index)
        return draw_frame(image, poses, joint_set)

    monkeypatch.setattr(recording, "LiveRecorder", partial(LiveRecorder, draw=slow_draw))
    wait_model(qtbot, window, [ckpt_files["xs"]])
    window.open_source(f"replay:{SPORTS2D}")
    qtbot.waitUntil(lambda: window.session.live, timeout=20000)
    flow = window.workflow
    plan = ExportPlan(str(tmp_path / "rec.json"), str(tmp_path / "rec.avi"))
    shown: list[int] = []
    window.session.events.frame_shown.connect(lambda r: shown.append(r.frame.index))
    assert flow.recordings.start(plan)
    qtbot.waitUntil(lambda: len(shown) >= 3, timeout=30000)
    stopped: list = []
    flow.recordings.sigStopped.connect(stopped.append)
    assert flow.recordings.stop()
    # stop returned while the writer still holds every frame: the window did not wait for it
    assert drawn == [] and not gate.is_set()
    assert flow.recordings.finishing and not flow.recordings.recording
    assert not flow.record_button.isChecked() and flow.record_action.text() == "Record live…"
    assert stopped == []
    gate.set()
    qtbot.waitUntil(lambda: bool(stopped), timeout=60000)
    summary = stopped[0]
    assert summary.error is None and summary.frames >= 3
    assert not flow.recordings.finishing
    frames = json.loads((tmp_path / "rec.json").read_text())["frames"]  # a whole document
    assert len(frames) == summary.frames == len(drawn)
    cap = cv2.VideoCapture(plan.video_path)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == summary.frames
    cap.release()
    assert any(f"Recorded {summary.frames} frames" in t for t in banner_texts(window, "success"))


def test_closing_the_window_while_a_recording_finishes_keeps_the_files_whole(
    qtbot, window, ckpt_files, tmp_path
) -> None:
    wait_model(qtbot, window, [ckpt_files["xs"]])
    window.open_source(f"replay:{SPORTS2D}")
    qtbot.waitUntil(lambda: window.session.live, timeout=20000)
    flow = window.workflow
    plan = ExportPlan(str(tmp_path / "rec.csv"), str(tmp_path / "rec.avi"))
    shown: list[int] = []
    window.session.events.frame_shown.connect(lambda r: shown.append(r.frame.index))
    assert flow.recordings.start(plan)
    qtbot.waitUntil(lambda: len(shown) >= 2, timeout=30000)
    window.close()  # stops the recording; the worker finishes the files before threads end
    assert (tmp_path / "rec.csv").read_text().count("\n") >= 2
    cap = cv2.VideoCapture(plan.video_path)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) >= 2
    cap.release()
