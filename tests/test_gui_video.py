"""A video in the window: exact scrubbing (the pose shown is the pose of the frame shown),
the 3D view's points, keyboard stepping, live replay (newest frame wins), export, snapshots."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from tests.gui_helpers import VIDEO, banner_texts, read_frames, wait_model, wait_shown

pytestmark = pytest.mark.gui


def test_scrubbing_shows_frame_n_with_its_pose(qtbot, loaded) -> None:
    window = loaded
    truth = read_frames(VIDEO, 80)
    assert window.timeline.frame_count == 100
    seen: list = []
    window.sigFrameShown.connect(seen.append)
    # a drag: many positions in a row; only the newest must end up on screen
    for value in range(10, 78, 3):
        window.timeline.slider.setValue(value)
    window.timeline.slider.setValue(77)
    wait_shown(qtbot, window, 77)
    shown = window.session.shown
    assert shown.frame.index == 77
    assert shown.poses.index == 77  # the pose is the pose of the frame shown
    expected = cv2.cvtColor(truth[77], cv2.COLOR_BGR2RGB)
    assert window.video_view.image_rgb.shape == expected.shape
    assert np.array_equal(window.video_view.image_rgb, expected)
    assert window.video_view.current_poses is shown.poses
    assert "frame 77" in window.timeline.frame_label.text()
    # latest request wins: far fewer frames computed than requested
    assert len(seen) < 20
    assert all(r.poses is None or r.poses.index == r.frame.index for r in seen)


def test_3d_view_holds_one_point_per_joint_per_person(qtbot, loaded) -> None:
    window = loaded
    poses = window.session.shown.poses
    people = len(poses.people)
    assert people >= 1
    joints = window.session.model.estimator.joint_set
    points = window.skeleton_view.joint_positions()
    assert points.shape == (people * joints.num, 3)
    assert window.skeleton_view.bone_segments().shape == (people * len(joints.bones) * 2, 3)
    assert np.isfinite(points).all()
    # 2D overlay agrees
    assert window.video_view.overlay_points().shape == (people * joints.num, 2)
    # camera space moves the skeleton away from the origin, along the depth axis
    window.skeleton_view.set_space("camera")
    cam = window.skeleton_view.joint_positions()
    assert cam.shape == points.shape
    assert cam[:, 1].mean() > 1.0  # metres in front of the camera
    window.skeleton_view.set_space("root")


def test_keyboard_steps_and_jumps(qtbot, loaded) -> None:
    window = loaded
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)  # shortcuts need the active window
    qtbot.keyClick(window, Qt.Key.Key_Right)
    wait_shown(qtbot, window, 1)
    qtbot.keyClick(window, Qt.Key.Key_End)
    wait_shown(qtbot, window, 99)
    qtbot.keyClick(window, Qt.Key.Key_Left)
    wait_shown(qtbot, window, 98)
    qtbot.keyClick(window, Qt.Key.Key_Home)
    wait_shown(qtbot, window, 0)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.session.playing
    qtbot.waitUntil(lambda: window.session.shown.frame.index > 3, timeout=20000)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.session.playing


def test_live_replay_shows_only_the_newest_frames(qtbot, window, ckpt_files) -> None:
    wait_model(qtbot, window, [ckpt_files["xs"]])
    results: list = []
    window.sigFrameShown.connect(results.append)
    window.open_source(f"replay:{VIDEO}")
    qtbot.waitUntil(lambda: len([r for r in results if r.poses is not None]) >= 6, timeout=30000)
    assert window.session.live and window.timeline.live
    indices = [r.frame.index for r in results]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    # 60 fps in, a CPU model out: frames it could not keep up with were dropped, not queued
    assert sum(r.dropped for r in results) > 0 or indices[-1] > len(indices)
    assert all(r.latency_ms < 2000 for r in results[2:])
    window.pause()


def test_a_live_replay_that_ends_says_so_and_the_window_goes_on(
    qtbot, window, ckpt_files, short_video
) -> None:
    wait_model(qtbot, window, [ckpt_files["xs"]])
    window.open_source(f"replay:{short_video}")  # 12 frames at 30 fps: 0.4 s
    qtbot.waitUntil(lambda: bool(banner_texts(window, "info")), timeout=20000)
    assert banner_texts(window, "info") == [
        "The replay of short.avi ended: it reached the last frame"
    ]
    assert not window.session.playing and not window.timeline.playing
    window.open_source(str(short_video))  # still usable: a video opens and runs
    wait_shown(qtbot, window, 0)


def test_an_unplugged_camera_is_named_and_the_window_goes_on(
    qtbot, window, ckpt_files, short_video, monkeypatch
) -> None:
    from posescope.core.sources.live import CameraSource
    from tests.test_sources import FakeCapture

    # camera 0 delivers 40 frames, then every read fails: what unplugging it looks like
    monkeypatch.setattr(CameraSource, "_open_capture", staticmethod(lambda i: FakeCapture(40)))
    wait_model(qtbot, window, [ckpt_files["xs"]])
    window.open_source("camera:0")
    # (the other warning: no detector weights here, the whole frame is used)
    stopped = lambda: [t for t in banner_texts(window, "warning") if t.startswith("Camera")]  # noqa: E731
    qtbot.waitUntil(lambda: bool(stopped()), timeout=20000)
    (text,) = stopped()
    assert text.startswith("Camera 0 stopped: 10 failed reads in a row. Was it unplugged?")
    assert "File ▸ Camera" in text
    assert not window.session.playing and window.session.model is not None
    # its frames were shown
    qtbot.waitUntil(lambda: window.session.shown is not None, timeout=20000)
    assert window.session.shown.frame.index < 40
    window.open_source(str(short_video))
    wait_shown(qtbot, window, 0)


def test_export_poses_to_json(qtbot, window, ckpt_files, short_video, tmp_path) -> None:
    from posescope.gui.engine import ExportRequest

    wait_model(qtbot, window, [ckpt_files["xs"], short_video])
    wait_shown(qtbot, window, 0)
    out, overlay = tmp_path / "poses.json", tmp_path / "overlay.mp4"
    with qtbot.waitSignal(window.sigExportDone, timeout=60000) as blocker:
        window.start_export(ExportRequest(str(out), str(overlay)), show_dialog=False)
    assert blocker.args[0] is not None and blocker.args[0]["frames"] == 12
    doc = json.loads(out.read_text())
    assert len(doc["frames"]) == 12
    assert [f["index"] for f in doc["frames"]] == list(range(12))
    cap = cv2.VideoCapture(str(overlay))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    cap.release()
    assert any("Exported 12 frames" in t for t in banner_texts(window, "success"))


def test_export_can_be_cancelled(qtbot, loaded, tmp_path) -> None:
    from posescope.gui.engine import ExportRequest

    window = loaded
    out = tmp_path / "poses.csv"
    with qtbot.waitSignal(window.sigExportDone, timeout=30000) as blocker:
        controller = window.start_export(ExportRequest(str(out), None), show_dialog=True)
        assert controller is not None and controller.dialog is not None
        qtbot.waitUntil(lambda: controller.worker_progress >= 1, timeout=20000)
        controller.dialog.findChild(QPushButton).click()  # the dialog's Cancel button
    assert blocker.args[0] is None
    assert not out.exists()


def test_snapshots_of_both_views(qtbot, loaded, tmp_path) -> None:
    window = loaded
    p2, p3 = tmp_path / "v2d.png", tmp_path / "v3d.png"
    assert window.save_snapshot("2d", str(p2))
    assert window.save_snapshot("3d", str(p3))
    img2, img3 = cv2.imread(str(p2)), cv2.imread(str(p3))
    assert img2 is not None and img2.std() > 10
    assert img3 is not None and img3.std() > 2 and img3.max() > 60


def test_drawn_box_replaces_the_detector(qtbot, loaded) -> None:
    window = loaded
    box = (300.0, 400.0, 500.0, 1200.0)
    gen = window.session.runner_generation
    window.settings_panel.box_radio.setChecked(True)
    window.video_view.set_box(box)
    qtbot.waitUntil(lambda: window.session.runner_generation > gen + 1, timeout=20000)
    wait_shown(qtbot, window, window.session.shown.frame.index)
    assert window.video_view.roi is not None and window.video_view.roi.isVisible()
    people = window.session.shown.poses.people
    assert len(people) == 1
    assert np.allclose(people[0].bbox, box, atol=1.0)


def test_a_given_person_box_replaces_detection(qtbot, window, ckpt_files) -> None:
    box = (240.0, 320.0, 320.0, 860.0)  # the athlete; what `posescope gui --box` passes
    window.use_person_box(box)
    assert window.settings_panel.settings().use_box
    wait_model(qtbot, window, [ckpt_files["xs"], VIDEO])
    wait_shown(qtbot, window, 0)
    qtbot.waitUntil(
        lambda: (
            window.session.shown.poses is not None
            and [p.bbox for p in window.session.shown.poses.people] == [box]
        ),
        timeout=20000,
    )
    (person,) = window.session.shown.poses.people
    assert person.track_id == 1
