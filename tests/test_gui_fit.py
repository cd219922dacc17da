"""The window fits (1024x700 with a video open; the 3D view's fair share of a large screen),
the 3D view's presets, hint and side-by-side people, the joints readout and root trail,
honest readouts for a single image, readable labels and headings, every key listed."""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QAction, QShortcut
from PySide6.QtWidgets import QLabel

from posescope.core.selection import MIN_GAP_MM, side_by_side_offsets
from posescope.core.types import FramePoses, PersonPose
from posescope.gui import colors
from posescope.gui.skeleton_view import CAMERA, ROOT_RELATIVE, VIEWS, camera_to_world
from tests.gui_helpers import VIDEO, read_frames, wait_model, wait_shown

pytestmark = pytest.mark.gui

# The rule for a large screen: at 1920x1080 the 3D view gets at least 30% of the window's width.
FAIR_3D_SHARE = 0.30


def _settle(qtbot, window, w: int, h: int) -> None:
    window.resize(w, h)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == (w, h), timeout=5000)
    qtbot.wait(50)


def test_window_fits_1024x700_with_a_video_open(qtbot, loaded) -> None:
    window = loaded
    hint = window.minimumSizeHint()
    assert hint.width() <= 1024 and hint.height() <= 700, hint
    assert window.statusBar().minimumSizeHint().width() <= 1024 - 200
    _settle(qtbot, window, 1024, 700)
    assert window.video_view.width() >= 300 and window.skeleton_view.width() >= 250
    # the readouts elide instead of widening the window: the model's time is still readable
    assert window.status.stage_labels["model"].displayed_text().startswith("model")


def test_3d_view_gets_a_fair_share_of_a_large_screen(qtbot, loaded) -> None:
    window = loaded
    _settle(qtbot, window, 1920, 1080)
    assert window.skeleton_view.width() >= FAIR_3D_SHARE * window.width()
    # the user's choice is kept when the window is resized
    window.splitter.setSizes([700, 300])
    window.splitter.splitterMoved.emit(700, 1)
    _settle(qtbot, window, 1600, 900)
    sizes = window.splitter.sizes()
    assert sizes[1] / sum(sizes) == pytest.approx(0.3, abs=0.02)


def test_view_buttons_set_the_camera_and_the_mouse_hint_shows(qtbot, window) -> None:
    view = window.skeleton_view
    for name, (elevation, azimuth) in VIEWS.items():
        qtbot.mouseClick(view.view_buttons[name], Qt.MouseButton.LeftButton)
        assert view.camera_angles() == (elevation, azimuth)
    assert VIEWS["top"][0] == 90 and VIEWS["front"] == (0.0, -90.0)
    hint = view.mouse_hint
    assert hint.isVisible() and hint.geometry().bottom() <= view.gl.height()
    for word in ("rotate", "zoom", "pan"):
        assert word in hint.text()


def _person(track: int, root) -> PersonPose:
    rng = np.random.default_rng(track)
    kp3 = np.asarray(root, float) + rng.normal(0, 150, (18, 3))
    return PersonPose(
        track, (0, 0, 10, 10), rng.uniform(0, 99, (18, 2)), kp3[:, 2], kp3, float(root[2]), 0
    )


def test_root_relative_people_stand_side_by_side(window) -> None:
    view = window.skeleton_view
    same = (0.0, 0.0, 4000.0)  # three people estimated at one spot
    people = [_person(1, same), _person(2, same), _person(3, (2500.0, 0.0, 6000.0))]
    view.set_poses(FramePoses(0, 0.0, people))
    assert view.space == ROOT_RELATIVE
    roots = np.array([p.keypoints_3d_mm[0] for p in people])
    offsets = side_by_side_offsets(roots)
    expected = np.concatenate(
        [camera_to_world(p.root_relative_mm + o) for p, o in zip(people, offsets, strict=True)]
    )
    np.testing.assert_allclose(view.joint_positions(), expected, atol=1e-5)
    drawn_roots = view.joint_positions().reshape(3, 18, 3)[:, 0]
    xs = np.sort(drawn_roots[:, 0])
    assert np.all(np.diff(xs) >= MIN_GAP_MM / 1000 - 1e-6)  # nobody on top of anybody
    view.set_space(CAMERA)  # camera space: where they are, unchanged
    np.testing.assert_allclose(
        view.joint_positions(),
        np.concatenate([camera_to_world(p.keypoints_3d_mm) for p in people]),
        atol=1e-5,
    )


def _click_image_point(qtbot, window, x: float, y: float) -> None:
    vb = window.video_view.viewbox
    scene = vb.mapViewToScene(QPointF(x, y))
    pos = window.video_view.graphics.mapFromScene(scene)
    qtbot.mouseClick(window.video_view.graphics.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def test_click_selects_a_person_and_the_readout_lists_their_joints(qtbot, loaded) -> None:
    window = loaded
    poses = window.session.shown.poses
    assert poses.people
    target = min(poses.people, key=lambda p: p.bbox[2] * p.bbox[3])
    x, y, w, h = target.bbox
    _click_image_point(qtbot, window, x + w / 2, y + h / 2)
    qtbot.waitUntil(lambda: window.session.selection.selected == target.track_id, timeout=3000)
    names = window.skeleton_view.joint_set.joints
    expected = [
        (
            names[j],
            *(float(v) for v in target.keypoints_2d[j]),
            *(float(v) for v in target.keypoints_3d_mm[j]),
            float(target.joint_scores[j]),
        )
        for j in range(len(names))
    ]
    assert window.joints_panel.values() == expected
    x0, y0 = target.keypoints_2d[0]
    assert window.joints_panel.table.item(0, 1).text() == f"{x0:.1f}, {y0:.1f}"
    assert 0.0 <= min(r[-1] for r in expected) <= max(r[-1] for r in expected) <= 1.0
    outline = window.video_view.selected_box_points()  # the selected box is outlined in 2D
    np.testing.assert_allclose(outline.min(axis=0), [x, y])
    np.testing.assert_allclose(outline.max(axis=0), [x + w, y + h])
    # the others are dimmed in 3D; a click on nothing clears the selection
    img_h = window.session.shown.frame.image.shape[0]
    assert all(p.bbox[0] > -20 for p in poses.people)
    qtbot.wait(600)  # not a double click
    _click_image_point(qtbot, window, -20.0, img_h / 2)  # left of a portrait frame: nobody
    assert window.session.selection.selected is None
    assert window.joints_panel.table.rowCount() == 0 and window.joints_panel.hint.isVisible()
    assert len(window.video_view.selected_box_points()) == 0


def test_root_trail_follows_the_frames_seen(qtbot, loaded) -> None:
    window = loaded
    s = window.session
    track = s.shown.poses.people[0].track_id
    s.selection.select(track)
    window.skeleton_view.set_space(CAMERA)
    window.joints_panel.trail_check.setChecked(True)
    assert s.selection.trail_enabled
    roots = {}
    for i in (1, 2, 3):
        s.seek(i)
        wait_shown(qtbot, window, i)
        p = next((p for p in s.shown.poses.people if p.track_id == track), None)
        if p is not None:
            roots[i] = p.keypoints_3d_mm[p.root]
    trail = window.skeleton_view.trail_points()
    want = camera_to_world(s.selection.trail(track))
    np.testing.assert_allclose(trail, want, atol=1e-5)
    assert len(trail) >= 2
    for i, root in roots.items():
        assert any(np.allclose(t, camera_to_world(root), atol=1e-5) for t in trail), i


def test_a_single_image_has_no_clock_and_no_steps(qtbot, window, ckpt_files, tmp_path) -> None:
    image = tmp_path / "still.png"
    cv2.imwrite(str(image), read_frames(VIDEO, 1)[0])
    wait_model(qtbot, window, [ckpt_files["xs"], image])
    wait_shown(qtbot, window, 0)
    tl = window.timeline
    for b in (tl.start_button, tl.back_button, tl.forward_button, tl.end_button, tl.play_button):
        assert not b.isEnabled()
    assert tl.time_label.text() == "" and "/" not in tl.frame_label.text()
    text = window.source_label.text()
    assert "fps" not in text and "frames" not in text and "still.png" in text


def test_shift_arrows_jump_ten_frames(qtbot, loaded) -> None:
    window = loaded
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)  # shortcuts need the active window
    qtbot.keyClick(window, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert window.session.requested == 10
    qtbot.keyClick(window, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(window, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    assert window.session.requested == 10
    qtbot.keyClick(window, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(window, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    assert window.session.requested == 0  # clamped


def test_keyboard_shortcuts_lists_every_key(qtbot, window) -> None:
    from PySide6.QtGui import QKeySequence

    extra = QShortcut(QKeySequence("Ctrl+Alt+K"), window)  # one added later is listed too
    extra.setWhatsThis("a later shortcut")
    dialog = window.show_shortcuts()
    qtbot.addWidget(dialog)
    listed = dialog.listed()
    listed_keys = {k.strip() for _, keys in listed for k in keys.split(",")}
    fmt = QKeySequence.SequenceFormat.NativeText
    keys = [k for a in window.findChildren(QAction) for k in a.shortcuts() if not k.isEmpty()]
    keys += [s.key() for s in window.findChildren(QShortcut) if not s.key().isEmpty()]
    assert len(keys) >= 20
    missing = [k.toString(fmt) for k in keys if k.toString(fmt) not in listed_keys]
    assert missing == []
    names = [n for n, _ in listed]
    assert "10 frames forward" in names and "Keyboard shortcuts" in names
    assert "a later shortcut" in names


def _rendered_contrast(widget) -> float:
    """Contrast of a widget's text as drawn: the most common pixel is the background, the
    pixel farthest from it in contrast is the text."""
    img = widget.grab().toImage()
    arr = np.array(
        [
            [img.pixelColor(x, y).getRgb()[:3] for x in range(img.width())]
            for y in range(img.height())
        ]
    ).reshape(-1, 3)
    background = Counter(map(tuple, arr)).most_common(1)[0][0]
    return max(colors.contrast_ratio(tuple(p), background) for p in set(map(tuple, arr)))


def test_table_headings_have_aa_contrast(qtbot, loaded) -> None:
    window = loaded
    assert colors.contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    heads = [w for w in window.arch_panel.findChildren(QLabel) if w.objectName() == "TableHead"]
    assert heads
    for lab in heads:
        assert _rendered_contrast(lab) >= 4.5, lab.text()
    window.joints_dock.raise_()
    header = window.joints_panel.table.horizontalHeader()
    qtbot.waitUntil(header.isVisible, timeout=3000)
    assert _rendered_contrast(header) >= 4.5


def test_joint_labels_are_backed_for_light_walls(window) -> None:
    from posescope.gui.video_view import VideoView

    item = VideoView._new_label_item()
    fill = item.fill.color()
    alpha = fill.alphaF()
    # worst case: the label over a white wall, its backing blended over it
    behind = tuple(round(alpha * c + (1 - alpha) * 255) for c in fill.getRgb()[:3])
    assert colors.contrast_ratio(colors.LABEL_RGB, behind) >= 4.5


def test_export_paths_elide_in_the_middle(qtbot) -> None:
    from posescope.gui.elide import PathEdit

    path = "/home/someone/projects/gait-study/2026/session-04/camera-01/clip_0042_poses.json"
    edit = PathEdit(path)
    qtbot.addWidget(edit)
    edit.resize(260, 30)
    edit.show()
    shown = edit.displayed_text()
    assert "…" in shown and shown.startswith("/home") and shown.endswith("poses.json")
    assert edit.text() == path
    edit.resize(900, 30)
    assert edit.displayed_text() == path  # room enough: the whole path


def test_empty_file_is_worded_once() -> None:
    from posescope.core.checkpoint import NotACheckpointError
    from posescope.core.session_types import OpenFailed
    from posescope.gui import messages

    err = NotACheckpointError("not a checkpoint: the file is empty", "/x/a.pth", "empty file")
    text = messages.open_failure(OpenFailed("/x/a.pth", err), None).text
    assert "looks like" not in text and text.count("empty") == 1, text
    err = NotACheckpointError("not a checkpoint", "/x/b.pth", "a ZIP archive")
    assert (
        "(looks like a ZIP archive)"
        in messages.open_failure(OpenFailed("/x/b.pth", err), None).text
    )


def test_status_readouts_give_way_whole_on_a_narrow_row(qtbot) -> None:
    from posescope.gui.status import StatusPanel

    panel = StatusPanel()
    qtbot.addWidget(panel)
    panel.show()
    timings = {"detect": 183.3, "crop": 1.1, "model": 137.9, "decode": 0.4, "smooth": 0.2}
    panel.add_timings({**timings, "total": 323.0}, 330.0)
    for width, all_shown in ((1900, True), (620, False)):
        panel.resize(width, 34)
        qtbot.wait(20)
        panel.fit_width()
        for stage, lab in panel.stage_labels.items():
            shown = lab.displayed_text()
            assert shown in ("", lab.text()), (width, shown)  # whole, or not at all
            if stage in ("model", "total") or all_shown:
                assert shown == lab.text(), (width, stage)
        gone = [s for s, lab in panel.stage_labels.items() if not lab.displayed_text()]
        assert (gone == []) == all_shown
