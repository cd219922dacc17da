"""Rough edges found walking the window: stopping a recording never blocks the window (the
files are finished in a worker), a failed analysis pass says what failed and offers a retry,
a click in the 3D view selects the nearest skeleton, the "nobody found" card stays compact."""

from __future__ import annotations

import json
import threading
from functools import partial

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QVector3D
from PySide6.QtWidgets import QApplication

from posescope.core.cache_export import ExportPlan
from posescope.core.drawing import draw_frame
from posescope.core.recorder import LiveRecorder
from posescope.core.types import FramePoses, PersonPose
from posescope.gui import recording
from posescope.gui.skeleton_pick import project
from tests.gui_helpers import banner_texts, damaged_video, wait_model
from tests.media_files import SPORTS2D

pytestmark = pytest.mark.gui


def _recording_a_replay(qtbot, window, ckpt, plan: ExportPlan, frames: int):
    """Replay the Sports2D clip live, record it to `plan`, and wait for `frames` frames shown
    while recording; the window's workflow."""
    wait_model(qtbot, window, [ckpt])
    window.open_source(f"replay:{SPORTS2D}")
    qtbot.waitUntil(lambda: window.session.live, timeout=20000)
    shown: list[int] = []
    window.session.events.frame_shown.connect(lambda r: shown.append(r.frame.index))
    assert window.workflow.recordings.start(plan)
    qtbot.waitUntil(lambda: len(shown) >= frames, timeout=30000)
    return window.workflow


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
    plan = ExportPlan(str(tmp_path / "rec.json"), str(tmp_path / "rec.avi"))
    flow = _recording_a_replay(qtbot, window, ckpt_files["xs"], plan, frames=3)
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
    plan = ExportPlan(str(tmp_path / "rec.csv"), str(tmp_path / "rec.avi"))
    _recording_a_replay(qtbot, window, ckpt_files["xs"], plan, frames=2)
    window.close()  # stops the recording; the worker finishes the files before threads end
    assert (tmp_path / "rec.csv").read_text().count("\n") >= 2
    cap = cv2.VideoCapture(plan.video_path)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) >= 2
    cap.release()


def _person(track: int, root) -> PersonPose:
    rng = np.random.default_rng(track)
    kp3 = np.asarray(root, float) + rng.normal(0, 150, (18, 3))
    return PersonPose(
        track, (0, 0, 10, 10), rng.uniform(0, 99, (18, 2)), kp3[:, 2], kp3, float(root[2]), 0
    )


def _click(qtbot, widget, x: float, y: float) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(round(x), round(y)))
    qtbot.wait(QApplication.doubleClickInterval() + 50)  # the next click is not a double click


def test_project_matches_the_views_own_matrices(window) -> None:
    view = window.skeleton_view.gl
    view.setCameraPosition(distance=5.0, elevation=20.0, azimuth=-60.0)
    pts = np.array([[0.0, 0.0, 0.0], [0.5, -0.3, 1.2], [-1.0, 2.0, 0.4]])
    got = project(view, pts)
    vp = (0, 0, view.width(), view.height())
    m = view.projectionMatrix(vp, vp) * view.viewMatrix()
    for p, (x, y) in zip(pts, got, strict=True):
        q = m.map(QVector3D(*p))  # normalised device coordinates
        assert x == pytest.approx((q.x() + 1) / 2 * view.width(), abs=1e-3)
        assert y == pytest.approx((1 - q.y()) / 2 * view.height(), abs=1e-3)
    assert np.allclose(got[0], [view.width() / 2, view.height() / 2], atol=1e-6)  # the centre


def test_a_click_in_the_3d_view_selects_the_nearest_skeleton(qtbot, window) -> None:
    view = window.skeleton_view
    sel = window.session.selection
    people = [_person(1, (0, 0, 4000)), _person(5, (0, 0, 4000)), _person(7, (1500, 0, 6000))]
    view.set_poses(FramePoses(0, 0.0, people))
    view.set_view("front")
    qtbot.wait(50)
    drawn = dict(view.drawn_people)
    assert sorted(drawn) == [1, 5, 7]
    for track in (5, 7, 1):
        x, y = project(view.gl, drawn[track])[0]  # the person's root on screen
        _click(qtbot, view.gl, x, y)
        assert sel.selected == track
    # a drag rotates and selects nobody
    x, y = project(view.gl, drawn[5])[0]
    qtbot.mousePress(view.gl, Qt.MouseButton.LeftButton, pos=QPoint(round(x), round(y)))
    qtbot.mouseMove(view.gl, QPoint(round(x) + 60, round(y)))
    qtbot.mouseRelease(view.gl, Qt.MouseButton.LeftButton, pos=QPoint(round(x) + 60, round(y)))
    assert sel.selected == 1
    qtbot.wait(QApplication.doubleClickInterval() + 50)
    _click(qtbot, view.gl, 3, view.gl.height() - 3)  # a corner: nobody there
    assert sel.selected is None


def test_a_3d_click_selects_in_every_view_and_the_readout(qtbot, loaded) -> None:
    window = loaded
    view = window.skeleton_view
    target = window.session.shown.poses.people[-1]
    drawn = dict(view.drawn_people)
    x, y = project(view.gl, drawn[target.track_id])[target.root]
    _click(qtbot, view.gl, x, y)
    assert window.session.selection.selected == target.track_id
    rows = window.joints_panel.values()
    assert rows[0][1:3] == tuple(float(v) for v in target.keypoints_2d[0])
    bx, by, bw, bh = target.bbox
    outline = window.video_view.selected_box_points()
    np.testing.assert_allclose(outline.min(axis=0), [bx, by])
    np.testing.assert_allclose(outline.max(axis=0), [bx + bw, by + bh])


def test_a_failed_analysis_says_what_failed_and_offers_a_retry(
    qtbot, window, ckpt_files, short_video, monkeypatch
) -> None:
    from posescope.gui import controller
    from posescope.gui.analysis_worker import AnalysisWorker

    failures = [OSError("read error at byte 4096")]

    class FailingOnce(AnalysisWorker):
        def _pass(self):
            if failures:
                raise failures.pop()
            return super()._pass()

    monkeypatch.setattr(controller, "AnalysisWorker", FailingOnce)
    wait_model(qtbot, window, [ckpt_files["xs"], short_video])
    s = window.session
    qtbot.waitUntil(lambda: s.analysis_failure is not None, timeout=30000)
    flow = window.workflow
    (msg,) = [m for m in window.banner._messages if m.text.startswith("Analysis failed")]
    assert msg.level == "warning" and "read error at byte 4096" in msg.text
    assert [b.text() for b in msg.buttons] == ["Retry"]
    assert flow.retry_action.isEnabled()
    why = window.exports.refusal()
    assert "not analysed yet" not in why and "analysis failed" in why and "Retry" in why
    assert "read error" in window.timeline.analysis_bar.toolTip()
    msg.buttons[0].click()  # Retry: the pass runs again, from frame 0, to the end
    qtbot.waitUntil(lambda: s.analysis_progress.finished, timeout=90000)
    assert s.analysis_failure is None and not flow.retry_action.isEnabled()
    assert s.analysis_progress.done == 12 and window.exports.refusal() is None
    assert "failed" not in window.timeline.analysis_bar.toolTip()


def _overlap(card, picture) -> float:
    """The share of the picture's area the card covers."""
    from PySide6.QtCore import QRectF

    inter = QRectF(card.geometry()).intersected(picture)
    return inter.width() * inter.height() / (picture.width() * picture.height())


@pytest.mark.parametrize(("size", "shape"), [((1024, 700), (720, 480)), ((1920, 1080), (360, 640))])
def test_the_nobody_card_leaves_the_picture_free(
    qtbot, window, ckpt_files, tmp_path, size, shape
) -> None:
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((*shape, 3), 230, np.uint8))
    window.session.set_runner_settings(detector="none", whole_frame=False)
    window.resize(*size)
    wait_model(qtbot, window, [ckpt_files["xs"], wall])
    view = window.video_view
    card = view.nobody
    qtbot.waitUntil(card.isVisible, timeout=30000)
    qtbot.wait(100)
    picture = view.picture_rect()
    assert picture is not None and picture.width() > 100
    if card.collapsed:  # no free band holds the card: a one-line chip in the corner
        assert card.height() <= 40 and _overlap(card, picture) < 0.05
        assert card.title.height() >= card.title.sizeHint().height()  # the text is not clipped
        assert not card.draw_button.isVisible() and "click" in card.toolTip()
        qtbot.mouseClick(card, Qt.MouseButton.LeftButton)  # the chip opens the whole card
        assert card.expanded and card.draw_button.isVisible() and card.detail.isVisible()
        qtbot.mouseClick(card, Qt.MouseButton.LeftButton)
        assert card.collapsed and not card.draw_button.isVisible()
    else:  # beside the picture, whole
        assert _overlap(card, picture) == 0.0
        assert card.draw_button.isVisible() and card.detector_button.isVisible()
    assert card.geometry().bottom() < view.graphics.height()
    assert size != (1920, 1080) or not card.collapsed  # a large screen has room beside it


def test_card_place_prefers_the_largest_free_band() -> None:
    from PySide6.QtCore import QRect, QRectF

    from posescope.gui.people_overlay import MIN_CARD_WIDTH, card_place, free_bands

    view = QRect(0, 0, 800, 600)
    picture = QRectF(0, 150, 800, 300)  # a wide picture: bands above and below
    assert [b.height() for b in free_bands(view, picture)] == [150, 150]
    spot = card_place(view, picture, lambda w: 90)
    assert spot is not None and spot.bottom() < 150 and spot.width() == 480
    assert card_place(view, picture, lambda w: 200) is None  # too tall for either band
    narrow = QRectF(300, 0, 200, 600)  # a portrait picture: bands left and right
    spot = card_place(view, narrow, lambda w: 120)
    assert spot is not None and not QRectF(spot).intersects(narrow)
    assert spot.width() >= MIN_CARD_WIDTH
    assert card_place(QRect(0, 0, 400, 600), QRectF(100, 0, 200, 600), lambda w: 60) is None
    assert card_place(view, None, lambda w: 60) is None  # no picture: the caller decides


def test_the_dropped_count_shows_whole_on_a_narrow_row(qtbot) -> None:
    from posescope.gui.status import StatusPanel

    panel = StatusPanel()
    qtbot.addWidget(panel)
    panel.show()
    timings = {"detect": 183.3, "crop": 1.1, "model": 137.9, "decode": 0.4, "smooth": 0.2}
    panel.add_timings({**timings, "total": 323.0}, 330.0, dropped=1234)
    panel.resize(560, 34)
    qtbot.wait(20)
    panel.fit_width()
    assert panel.dropped_label.displayed_text() == "dropped 1234"  # never "dropped…"
    panel.reset()
    assert panel.dropped_label.displayed_text() == "" and panel.dropped_label.minimumWidth() == 0


def test_a_damaged_video_ends_where_its_picture_does(qtbot, window, ckpt_files, tmp_path) -> None:
    path = damaged_video(tmp_path / "cut.avi", 60)
    wait_model(qtbot, window, [ckpt_files["xs"], path])
    s = window.session
    qtbot.waitUntil(lambda: s.shown is not None, timeout=30000)
    s.seek(59)  # the user goes to the end the file claims, before the pass finds the real one
    qtbot.waitUntil(lambda: s.analysis_progress.finished, timeout=90000)
    real = s.frame_count
    assert real < 60
    last = real - 1
    qtbot.waitUntil(lambda: s.shown is not None and s.shown.frame.index == last, timeout=30000)
    tl = window.timeline
    assert tl.slider.value() == last and tl.frame_label.text().startswith(f"frame {last} / {last}")
    assert not any("could not be decoded" in t for t in banner_texts(window))  # explained
    assert any(f"only {real} of the 60 frames" in t for t in banner_texts(window, "warning"))


def test_an_empty_file_dropped_on_the_window_is_worded_once(qtbot, window, tmp_path) -> None:
    empty = tmp_path / "weights.pth"
    empty.write_bytes(b"")
    problems: list[str] = []
    window.sigProblem.connect(lambda _level, text: problems.append(text))
    window.open_paths([str(empty)])
    qtbot.waitUntil(lambda: bool(problems), timeout=20000)
    (text,) = [t for t in banner_texts(window) if "weights.pth" in t]
    assert text.count("empty") == 1 and "looks like" not in text, text
