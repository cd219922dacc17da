"""The video workflow in the window: a video is analysed once (the same frame shows the same
poses by scrubbing, stepping and playing), a setting change restarts the pass, export writes
the cache (a missing folder is refused at once), cancelling while the dialog closes is safe,
a replay is recorded, a damaged video is shortened, steps are no dropped frames, a paused
window shows no frame rate, and closing mid-pass ends every thread."""

from __future__ import annotations

import json
import random

import cv2
import numpy as np
import pytest

from posescope.core.cache_export import ExportPlan
from posescope.core.playback import PlaybackMode
from tests.gui_helpers import VIDEO, banner_texts, damaged_video, wait_model, wait_shown

pytestmark = pytest.mark.gui


def wait_analysed(qtbot, window, timeout: int = 90000) -> None:
    qtbot.waitUntil(lambda: window.session.analysis_progress.finished, timeout=timeout)


@pytest.fixture
def analysed(qtbot, window, ckpt_files, short_video):
    """The XS model on the 12-frame clip, analysed to the end."""
    wait_model(qtbot, window, [ckpt_files["xs"], short_video])
    wait_shown(qtbot, window, 0)
    wait_analysed(qtbot, window)
    return window


def keypoints(result) -> np.ndarray:
    return np.stack([p.keypoints_2d for p in result.poses.people]) if result.poses.people else 0


def test_the_same_frame_shows_the_same_poses_by_scrubbing_stepping_and_playing(
    qtbot, analysed
) -> None:
    window, s = analysed, analysed.session
    assert s.analysis.analysed == 12 and window.timeline.analysis_bar.analysed_fraction() == 1.0
    assert "analysed" in window.timeline.analysis_bar.toolTip()
    seen: list = []
    window.sigFrameShown.connect(seen.append)
    window.timeline.slider.setValue(5)  # scrubbing
    wait_shown(qtbot, window, 5)
    scrubbed = s.shown
    s.seek(2)
    wait_shown(qtbot, window, 2)
    for _ in range(3):  # stepping
        s.step(1)
    wait_shown(qtbot, window, 5)
    stepped = s.shown
    s.seek(3)
    wait_shown(qtbot, window, 3)
    assert s.playback.mode is PlaybackMode.EVERY_FRAME  # a video plays every frame
    window.play()  # playing
    qtbot.waitUntil(lambda: not s.playing, timeout=20000)
    played = next(r for r in seen if r.frame.index == 5 and r is not stepped and r is not scrubbed)
    assert [r.frame.index for r in seen[-9:]] == list(range(3, 12))  # every frame, in order
    assert all(r.analysed for r in seen)  # nothing was computed again
    for other in (stepped, played):
        assert other.analysed and other.poses is scrubbed.poses is s.analysis.get(5)
        assert np.array_equal(keypoints(other), keypoints(scrubbed))
    assert "preview" not in window.timeline.frame_label.text()


def test_a_setting_change_restarts_the_pass_from_the_frame_on_screen(qtbot, analysed) -> None:
    window, s = analysed, analysed.session
    s.seek(7)
    wait_shown(qtbot, window, 7)
    old = s.analysis_key
    seen: list = []
    window.sigFrameShown.connect(seen.append)
    requests: list = []
    s.events.analysis_requested.connect(requests.append)
    s.set_runner_settings(smoothing=not s.runner_settings.smoothing)
    qtbot.waitUntil(lambda: bool(requests), timeout=30000)
    assert requests[0].key != old and requests[0].key == s.analysis_key
    assert seen and seen[0].frame.index == 7 and not seen[0].analysed  # on screen first
    wait_analysed(qtbot, window)
    assert s.analysis.analysed == 12


def test_export_writes_the_cache_and_refuses_a_missing_folder_at_once(
    qtbot, analysed, tmp_path
) -> None:
    window, s = analysed, analysed.session
    refused = window.start_export(ExportPlan(str(tmp_path / "nowhere" / "p.json"), None))
    assert refused is None
    assert any("does not exist" in t for t in banner_texts(window, "error"))
    out, overlay = tmp_path / "p.json", tmp_path / "o.mp4"
    with qtbot.waitSignal(window.sigExportDone, timeout=30000) as blocker:
        window.start_export(ExportPlan(str(out), str(overlay)), show_dialog=False)
    assert blocker.args[0]["frames"] == 12
    doc = json.loads(out.read_text())
    for fr in doc["frames"]:
        cached = s.analysis.get(fr["index"])
        assert len(fr["people"]) == len(cached.people)
        for p, c in zip(fr["people"], cached.people, strict=True):
            assert np.allclose(p["keypoints_2d"], c.keypoints_2d, atol=0.006)
    cap = cv2.VideoCapture(str(overlay))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    cap.release()


def test_the_export_dialog_starts_in_the_last_folder_used(qtbot, analysed, tmp_path) -> None:
    from posescope.gui.export_dialog import ExportDialog, default_folder

    window = analysed
    assert default_folder(window.qsettings) != str(VIDEO.parent)  # not beside the source
    window.exports.remember(str(tmp_path))
    dialog = ExportDialog("short", default_folder(window.qsettings))
    qtbot.addWidget(dialog)
    assert dialog.request().poses_path == str(tmp_path / "short_poses.json")


def test_cancelling_or_closing_an_export_at_any_moment_is_safe(qtbot, window) -> None:
    from posescope.gui.export_dialog import ExportController

    def job(should_abort):
        for i in range(200):
            if should_abort():
                return {"cancelled": True}
            yield i, 200, f"frame {i}"
        return {"frames": 200, "written": []}

    rng = random.Random(0)
    for round_ in range(12):
        controller = ExportController(job, window, show_dialog=True)
        if round_ % 3 == 0:  # the modal dialog's setValue runs the event loop: the job ends
            dialog = controller.dialog  # and closes the dialog inside _progress
            real = dialog.setValue

            def reenter(value, real=real, c=controller):
                c._done({"cancelled": True})
                real(value)

            dialog.setValue = reenter
        qtbot.wait(rng.randint(0, 5))
        if round_ % 2:
            controller.cancel()
        else:
            controller.dialog and controller.dialog.cancel()
        controller.stop(2.0)  # the window closing
        qtbot.waitUntil(lambda c=controller: not c.thread.isRunning(), timeout=5000)
    qtbot.wait(50)  # queued progress of stopped jobs lands on closed dialogs: no error


def test_progress_that_piles_up_inside_set_value_is_shown_one_level_deep(qtbot, window) -> None:
    """A modal dialog's setValue runs the event loop, which delivers the progress reports that
    piled up while the GUI thread was busy: each used to nest one call deeper (a stack
    overflow on a loaded machine). Now the nested ones leave their values for the outer call,
    which shows the latest."""
    import threading

    from posescope.gui.export_dialog import ExportController

    release = threading.Event()

    def job(should_abort):
        release.wait(10)
        return {"cancelled": True}
        yield  # a generator that reports nothing itself

    controller = ExportController(job, window, show_dialog=True)
    dialog = controller.dialog
    real = dialog.setValue
    depth = {"now": 0, "most": 0, "values": []}

    def piling(value):
        depth["now"] += 1
        depth["most"] = max(depth["most"], depth["now"])
        depth["values"].append(value)
        if value < 300:  # the next report arrives while this one is being shown
            controller._progress(value + 1, 1000, f"frame {value + 1}")
        real(value)
        depth["now"] -= 1

    dialog.setValue = piling
    controller._progress(0, 1000, "frame 0")
    assert depth["most"] == 1  # never nested
    assert depth["values"] == list(range(301))  # every report shown, in order, the last last
    assert dialog.labelText() == "frame 300" and dialog.value() == 300
    release.set()
    controller.stop(2.0)
    qtbot.waitUntil(lambda: not controller.thread.isRunning(), timeout=5000)


def test_a_replay_is_recorded_from_the_window(qtbot, window, ckpt_files, tmp_path) -> None:
    wait_model(qtbot, window, [ckpt_files["xs"]])
    window.open_source(f"replay:{VIDEO}")
    qtbot.waitUntil(lambda: window.session.live, timeout=20000)
    flow = window.workflow
    assert flow.record_button.isVisible()
    plan = ExportPlan(str(tmp_path / "rec.json"), str(tmp_path / "rec.mp4"))
    with qtbot.waitSignal(flow.recordings.sigStopped, timeout=30000) as blocker:
        assert flow.recordings.start(plan)
        assert flow.record_button.isChecked() and flow.record_action.text() == "Stop recording"
    summary = blocker.args[0]  # the replay ended: the recording stopped with it
    assert summary.frames >= 1 and summary.error is None
    frames = json.loads((tmp_path / "rec.json").read_text())["frames"]
    assert len(frames) == summary.frames
    cap = cv2.VideoCapture(plan.video_path)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == summary.frames
    cap.release()
    assert not flow.record_button.isChecked() and flow.record_action.text() == "Record live…"
    assert any("Recorded" in t for t in banner_texts(window, "success"))


def test_recording_is_refused_for_a_video(qtbot, analysed, tmp_path) -> None:
    flow = analysed.workflow
    assert not flow.record_button.isVisible()
    assert not flow.recordings.start(ExportPlan(str(tmp_path / "r.json")))


def test_a_damaged_video_gets_its_real_frame_count(qtbot, window, ckpt_files, tmp_path) -> None:
    path = damaged_video(tmp_path / "cut.avi", 60)
    wait_model(qtbot, window, [ckpt_files["xs"], path])
    wait_shown(qtbot, window, 0)
    assert window.timeline.frame_count == 60  # what the file claims
    wait_analysed(qtbot, window)
    real = window.session.frame_count
    assert real < 60 and window.timeline.frame_count == real
    assert window.timeline.slider.maximum() == real - 1
    assert any(f"only {real} of the 60 frames" in t for t in banner_texts(window, "warning"))


def test_steps_are_not_dropped_frames_and_a_paused_window_shows_no_rate(qtbot, analysed) -> None:
    window, s = analysed, analysed.session
    for _ in range(10):
        s.step(1)
    wait_shown(qtbot, window, 10)
    assert window.status.dropped_label.text() == ""
    s.seek(0)
    wait_shown(qtbot, window, 0)
    window.play()
    qtbot.waitUntil(lambda: (s.shown_index or 0) >= 4, timeout=20000)
    window.pause()
    assert window.status.fps_label.text() == "— fps"
    s.step(1)
    wait_shown(qtbot, window, s.requested)
    assert window.status.fps_label.text() == "— fps"


def test_closing_mid_pass_ends_every_thread(qtbot, window, ckpt_files) -> None:
    from posescope.gui.workers import running_threads

    wait_model(qtbot, window, [ckpt_files["xs"], VIDEO])
    qtbot.waitUntil(lambda: (window.session.analysis_progress.done or 0) >= 1, timeout=60000)
    assert window.controller.analysis is not None
    window.close()
    assert not running_threads()


def test_an_export_waiting_for_a_pass_that_restarts_stops_and_says_why(
    qtbot, window, ckpt_files, tmp_path
) -> None:
    wait_model(qtbot, window, [ckpt_files["xs"], VIDEO])
    s = window.session
    qtbot.waitUntil(lambda: s.analysis is not None, timeout=60000)
    with qtbot.waitSignal(window.sigExportDone, timeout=30000) as blocker:
        assert window.start_export(ExportPlan(str(tmp_path / "p.json")), show_dialog=False)
        s.set_runner_settings(smoothing=not s.runner_settings.smoothing)
    assert blocker.args[0] is None and not (tmp_path / "p.json").exists()
    assert any("Export stopped" in t for t in banner_texts(window, "warning"))
