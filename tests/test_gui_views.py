"""Widgets on their own: video overlay and box drawing, the 3D view's in-place updates, the
architecture panel for other families, the banner, the timeline."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from posescope.core.types import Frame, FramePoses, PersonPose
from posescope.core.variants import H36M

pytestmark = pytest.mark.gui


def _poses(index: int, people: int, rng: np.random.Generator) -> FramePoses:
    out = []
    for pid in range(people):
        kp2 = rng.uniform(50, 400, (H36M.num, 2))
        kp3 = rng.normal(0, 300, (H36M.num, 3)) + np.array([pid * 800.0, 0, 4000.0])
        out.append(
            PersonPose(pid + 1, (40.0, 40.0, 300.0, 400.0), kp2, kp3[:, 2] - kp3[0, 2], kp3,
                       4000.0, root=0, score=0.8)
        )  # fmt: skip
    return FramePoses(index, index / 30.0, out, {"model": 5.0, "total": 7.0})


@pytest.fixture
def app(qapp):
    from posescope.gui.app import ensure_app

    return ensure_app()


def test_video_view_overlay_and_shift_drag_box(qtbot, app) -> None:
    from posescope.gui.video_view import VideoView

    view = VideoView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    qtbot.waitExposed(view)
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    view.set_joint_set(H36M)
    view.set_frame(Frame(image, 3, 0.1), _poses(3, 2, np.random.default_rng(1)))
    assert np.array_equal(view.image_rgb, image[:, :, ::-1])
    assert view.image_item.levels is not None and list(view.image_item.levels) == [0, 255]
    assert view.overlay_points().shape == (2 * H36M.num, 2)
    assert not view.hint_visible()
    ids = [item.toPlainText() for item in view._id_items if item.isVisible()]
    # the person id and its pose score, labelled (no detector score here), by its box
    assert ids == [" #1  pose 0.80 ", " #2  pose 0.80 "]
    assert view.legend.isVisible() and view.legend.text().startswith("det: person detector")
    assert "detector's confidence" in view._id_items[0].toolTip()
    view.set_show_labels(True)
    assert sum(item.isVisible() for item in view._label_items) == 2 * H36M.num
    view.set_frame(Frame(image, 4, 0.2), _poses(4, 1, np.random.default_rng(2)))
    assert sum(item.isVisible() for item in view._id_items) == 1  # reused, the spare hidden
    assert sum(item.isVisible() for item in view._label_items) == H36M.num

    boxes: list = []
    view.sigBoxChanged.connect(boxes.append)
    view.set_box_drawing(True)
    vp = view.graphics.viewport()
    shift = Qt.KeyboardModifier.ShiftModifier
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, shift, QPoint(200, 150))
    for i in range(1, 11):
        QTest.mouseMove(vp, QPoint(200 + 20 * i, 150 + 20 * i))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, shift, QPoint(400, 350))
    assert boxes and boxes[-1] is not None
    w, h = boxes[-1][2:]
    assert w > 50 and h > 50
    assert view.roi is not None and view.roi.isVisible()
    assert view.box() == pytest.approx(boxes[-1])


def test_skeleton_view_updates_items_in_place(qtbot, app) -> None:
    from posescope.gui.skeleton_view import CAMERA, SkeletonView

    view = SkeletonView()
    qtbot.addWidget(view)
    view.resize(500, 400)
    view.show()
    qtbot.waitExposed(view)
    view.set_joint_set(H36M)
    bones, joints = view.bones, view.joints
    items = list(view.gl.items)
    rng = np.random.default_rng(2)
    for i, people in enumerate((1, 3, 2, 0, 1)):
        view.set_poses(_poses(i, people, rng))
        assert view.joint_positions().shape == (people * H36M.num, 3)
        assert view.bone_segments().shape == (people * len(H36M.bones) * 2, 3)
    assert view.bones is bones and view.joints is joints
    assert all(item in view.gl.items for item in items)  # nothing was re-created
    view.set_space(CAMERA)
    pts = view.joint_positions()
    assert pts[:, 1].min() > 2.0  # 4 m in front of the camera, in metres along world y
    view.set_poses(None)
    assert view.joint_positions().shape == (0, 3)


def test_arch_panel_shows_posenet_and_custom(qtbot, app) -> None:
    from posescope.gui.arch_panel import ArchPanel

    panel = ArchPanel()
    qtbot.addWidget(panel)
    posenet = {
        "path": "/x/posenet_r50.pth", "file_size": 100_000_000, "format": "torch-legacy",
        "wrapper": "network", "key_prefix": "module.", "key_style": "deconv",
        "family": "posenet", "variant": None, "confidence": 1.0, "evidence": ["ResNet-50"],
        "warnings": [], "backbone": {"type": "resnet", "depths": [3, 4, 6, 3],
        "dims": [256, 512, 1024, 2048], "resnet_depth": 50},
        "head": {"style": "deconv", "channels": [256, 256, 256], "kernels": [4, 4, 4],
        "upsample": [True, True, True]}, "joint_num": 18, "joint_set": "Human3.6M",
        "depth_dim": 64, "input_size": [256, 256], "output_size": [64, 64],
        "params": 34_000_000, "gflops": 8.9,
    }  # fmt: skip
    panel.set_identification(posenet)
    assert panel.badge.text() == "PoseNet"
    assert "ResNet-50" in panel.title_label.text()
    assert all(not b.isEnabled() for b in panel.upsample_boxes)  # deconvs always upsample
    assert panel.fields["file_size"].text() == "95.4 MB"
    custom = dict(posenet, family="convnextpose", variant="custom", closest="S",
                  confidence=0.8, warnings=["ambiguous: 1152 could also be 36 x 32"],
                  key_style="list")  # fmt: skip
    custom["head"] = dict(posenet["head"], style="list", kernels=[3, 3, 3])
    panel.set_identification(custom)
    assert panel.badge.text() == "custom"
    assert "closest S" in panel.title_label.text()
    assert any("ambiguous" in lab.text() for lab in panel.warning_labels)
    assert all(b.isEnabled() for b in panel.upsample_boxes)
    got: list = []
    panel.sigUpsampleChanged.connect(got.append)
    panel.upsample_boxes[0].setChecked(False)
    assert got == [(False, True, True)]


def test_banner_stacks_and_dismisses(qtbot, app) -> None:
    from posescope.gui.banner import Banner

    banner = Banner()
    qtbot.addWidget(banner)
    banner.show()
    clicked: list = []
    banner.show_message("bad file", "error")
    msg = banner.show_message("trust?", "warning", actions=[("Trust", lambda: clicked.append(1))])
    banner.show_message("bad file", "error")  # same text: replaced, not stacked
    assert banner.messages() == [("warning", "trust?"), ("error", "bad file")]
    msg.buttons[0].click()
    assert clicked == [1]
    assert banner.messages() == [("error", "bad file")]
    for i in range(10):
        banner.show_message(f"m{i}", "error")
    assert len(banner.messages()) == banner.MAX_MESSAGES
    banner.clear()
    assert not banner.isVisible()


def test_timeline_labels_and_signals(qtbot, app) -> None:
    from posescope.gui.timeline import Timeline, format_time

    tl = Timeline()
    qtbot.addWidget(tl)
    tl.set_source(100, 60.0, live=False)
    seeks: list[int] = []
    tl.sigSeek.connect(seeks.append)
    tl.slider.setValue(42)
    assert seeks == [42]
    tl.set_position(60)
    assert seeks == [42]  # programmatic moves do not request frames
    assert tl.frame_label.text() == "frame 60 / 99"
    assert tl.time_label.text() == f"{format_time(1.0)} / {format_time(99 / 60)}"
    tl.set_source(None, 30.0, live=True)
    assert tl.live_label.isVisibleTo(tl) and not tl.slider.isVisibleTo(tl)
    assert format_time(62.5) == "1:02.50"


def test_export_dialog_names_files_and_refuses_what_it_cannot_write(
    qtbot, app, monkeypatch, tmp_path
) -> None:
    from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFileDialog

    from posescope.gui.export_dialog import ExportDialog

    dialog = ExportDialog("clip", str(tmp_path))
    qtbot.addWidget(dialog)
    export = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    assert export.text() == "Export"
    # defaults in the folder given (the last one used), named after the video: poses on
    req = dialog.request()
    assert req.poses_path == str(tmp_path / "clip_poses.json") and req.video_path is None

    dialog.poses_check.setChecked(False)
    export.click()
    assert "Choose" in dialog.error.text() and dialog.result() != QDialog.DialogCode.Accepted
    dialog.poses_check.setChecked(True)
    dialog.poses_path.setText(str(tmp_path / "poses.txt"))
    export.click()
    assert ".json, .csv or .npz" in dialog.error.text()
    assert dialog.result() != QDialog.DialogCode.Accepted
    dialog.poses_path.setText(str(tmp_path / "missing" / "poses.json"))
    export.click()  # checked before any work starts
    assert "does not exist" in dialog.error.text()
    assert dialog.result() != QDialog.DialogCode.Accepted

    # Browse… fills the field with what the save dialog returns (cancelled: unchanged)
    answers = iter([(str(tmp_path / "p.npz"), ""), ("", ""), (str(tmp_path / "o.avi"), "")])
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: next(answers))
    dialog._browse_poses()
    dialog._browse_poses()
    dialog.video_check.setChecked(True)
    dialog._browse_video()
    export.click()
    assert dialog.result() == QDialog.DialogCode.Accepted
    req = dialog.request()
    assert req.poses_path == str(tmp_path / "p.npz") and req.video_path == str(tmp_path / "o.avi")
