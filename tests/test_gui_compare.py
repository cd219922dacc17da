"""A/B in the window, with two generated checkpoints (XS and S) on the Pose2Sim clip: both
skeletons drawn in their colours in the 2D and 3D views, the distance readout equal to the
distance between the two networks' poses computed here, the toggles hide and show each, the
architecture panel marks the differing fields and shows the diff, Compare with… and Stop
comparing."""

# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are parameters here

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QFrame, QLabel
from test_gui_support import (  # noqa: F401 (fixtures)
    isolated_settings,
    no_thread_leak,
    qsettings,
    wait_model,
    wait_shown,
    window,
)

from posescope.core.pipeline import Estimator
from posescope.core.session_compare import Visibility
from posescope.core.sources.probe import open_source
from posescope.gui import messages
from posescope.gui.compare_overlay import A_RGB, B_RGB
from posescope.gui.shortcuts import shortcut_rows
from tests import factory
from tests.media_files import POSE2SIM

pytestmark = pytest.mark.gui

BOX = (250.0, 450.0, 650.0, 1250.0)


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[str, str, str]:
    d = tmp_path_factory.mktemp("ab_ckpts")
    a = factory.save_torch_zip(
        factory.wrap(factory.state_dict_for("XS", seed=1), "network"), d / "xs_a.pth"
    )
    b = factory.save_torch_zip(
        factory.wrap(factory.state_dict_for("S", seed=2), "network"), d / "s_b.pth"
    )
    c = factory.save_torch_zip(
        factory.wrap(factory.state_dict_for("XS", seed=3), "network"), d / "xs_c.pth"
    )
    return str(a), str(b), str(c)


def colour_pixels(window, rgb: tuple[int, int, int], tol: int = 24) -> int:
    image = window.video_view.grab_image().toImage()
    from posescope.gui.app import _qimage_to_array

    arr = _qimage_to_array(image).astype(int)
    return int((np.abs(arr - np.array(rgb)).max(axis=2) <= tol).sum())


def settle(qtbot) -> None:
    qtbot.wait(50)


def test_two_checkpoints_are_compared_in_both_views_with_their_distance(
    qtbot, window, pair
) -> None:
    a_path, b_path, _ = pair
    s = window.session
    s.set_runner_settings(smoothing=False)
    window.use_person_box(BOX)
    wait_model(qtbot, window, [a_path, b_path, POSE2SIM], timeout=120000)
    wait_shown(qtbot, window, 0, timeout=120000)
    compare, ui = s.compare, window.compare_ui
    assert compare.active and compare.a.path == a_path and compare.b.path == b_path
    assert s.model is not None and s.model.b is not None
    poses = s.shown.poses
    b = poses.b
    assert [p.track_id for p in poses.people] == [p.track_id for p in b.people] == [1]

    # both overlays drawn where the poses are, the view's own skeleton hidden
    o2, o3 = ui.overlay_2d, ui.overlay_3d
    np.testing.assert_allclose(o2.drawn_points("a"), poses.people[0].keypoints_2d, atol=1e-3)
    np.testing.assert_allclose(o2.drawn_points("b"), b.people[0].keypoints_2d, atol=1e-3)
    assert not window.video_view._joints.isVisible()
    assert len(o3.drawn_points("a")) == len(o3.drawn_points("b")) == 18
    assert not window.skeleton_view.bones.visible()
    settle(qtbot)
    both_a, both_b = colour_pixels(window, A_RGB), colour_pixels(window, B_RGB)
    assert both_a > 50 and both_b > 50
    assert o2.legend.isVisible() and "ConvNeXtPose-S" in o2.legend.text()

    # the readout: the distance between the two networks' poses, computed here
    source = open_source(str(POSE2SIM))
    try:
        frame = source.get(0)
    finally:
        source.close()
    config = s.model_settings.config()
    pa = Estimator.from_path(a_path, config).estimate(frame, [(1, BOX)]).people[0]
    pb = Estimator.from_path(b_path, config).estimate(frame, [(1, BOX)]).people[0]
    px = np.linalg.norm(pa.keypoints_2d - pb.keypoints_2d, axis=1)
    mm = np.linalg.norm(pa.keypoints_3d_mm - pb.keypoints_3d_mm, axis=1)
    (d,) = compare.frame
    np.testing.assert_allclose(d.pixels, px, atol=0.05)
    np.testing.assert_allclose(d.mm, mm, atol=0.5)
    readout = ui.readout
    text = readout.summary_text()
    assert "frame 0" in text and f"{px.mean():.1f} px · {mm.mean():.0f} mm" in text
    names = [readout.table.item(j, 0).text() for j in range(readout.table.rowCount())]
    assert names[0] == s.model.estimator.joint_set.joints[0] and len(names) == 18
    assert readout.table.item(3, 1).text() == f"{px[3]:.1f}"
    qtbot.waitUntil(lambda: compare.averaged_frames >= 3, timeout=120000)
    qtbot.waitUntil(lambda: "average (0 analysed" not in readout.summary_text(), timeout=10000)
    (running,) = messages.model_running(s.model)
    assert running.text.startswith("A ConvNeXtPose-XS and B ConvNeXtPose-S running on cpu")

    # toggles: A only, then X cycles to B only, then both
    ui.visibility_actions[Visibility.A].trigger()
    settle(qtbot)
    assert len(o2.drawn_points("a")) == 18 and len(o2.drawn_points("b")) == 0
    assert len(o3.drawn_points("b")) == 0 and len(o3.drawn_points("a")) == 18
    assert colour_pixels(window, B_RGB) < both_b / 4
    assert ui.header_buttons[Visibility.A].isChecked()
    assert readout.buttons[Visibility.A].isChecked()
    ui.cycle_action.trigger()
    settle(qtbot)
    assert compare.visibility == Visibility.B
    assert len(o2.drawn_points("a")) == 0 and len(o2.drawn_points("b")) == 18
    assert colour_pixels(window, A_RGB) < both_a / 4
    ui.header_buttons[Visibility.BOTH].click()
    assert compare.visibility == Visibility.BOTH and len(o2.drawn_points("a")) == 18
    rows = dict(shortcut_rows(window))
    assert rows["A/B: cycle both / A only / B only"] == "X"
    assert rows["A/B: show A only"] == "Alt+2"

    # the architecture panel: A and B side by side, the differing fields marked, the diff
    qtbot.waitUntil(lambda: compare.diff is not None, timeout=60000)
    cards = [w for w in window.arch_panel.widget().findChildren(QFrame) if hasattr(w, "marked")]
    assert len(cards) == 1
    marked = cards[0].marked
    assert {"variant", "depths", "widths", "head channels", "parameters"} <= set(marked)
    assert "joints" not in marked and "depth bins" not in marked
    texts = [lab.text() for lab in cards[0].findChildren(QLabel)]
    assert "Different architectures" in texts
    assert any("tensors differ" in t for t in texts)

    # stop comparing: A alone again, in its side colours
    with qtbot.waitSignal(window.sigModelReady, timeout=60000):
        ui.stop_action.trigger()
    assert not compare.active and s.model.b is None
    wait_shown(qtbot, window, 0, timeout=60000)
    assert window.video_view._joints.isVisible() and not o2.legend.isVisible()
    assert len(o2.drawn_points("a")) == 0
    assert not [w for w in window.arch_panel.widget().findChildren(QFrame) if hasattr(w, "marked")]


def test_compare_with_loads_b_beside_the_running_a(qtbot, window, pair) -> None:
    a_path, _, c_path = pair
    s = window.session
    window.use_person_box(BOX)
    wait_model(qtbot, window, [a_path, POSE2SIM], timeout=60000)
    assert not s.compare.active and not window.compare_ui.stop_action.isEnabled()
    assert window.compare_ui.compare_action.isEnabled()
    with qtbot.waitSignal(window.sigModelReady, timeout=60000):
        s.compare.compare_with([c_path])
    assert s.compare.a.path == a_path and s.compare.b.path == c_path
    assert window.compare_ui.stop_action.isEnabled()
    qtbot.waitUntil(lambda: s.compare.diff is not None, timeout=60000)
    d = s.compare.diff
    assert d.same_architecture and not d.identical and d.differing > 0
    cards = [w for w in window.arch_panel.widget().findChildren(QFrame) if hasattr(w, "marked")]
    assert cards and cards[0].marked == []  # two seeds of XS: the same architecture
    wait_shown(qtbot, window, 0, timeout=60000)
    qtbot.waitUntil(lambda: s.compare.frame != [], timeout=60000)
    # one checkpoint dropped: comparison ends
    with qtbot.waitSignal(window.sigModelReady, timeout=60000):
        window.open_paths([c_path])
    assert not s.compare.active


def test_a_live_source_is_compared_frame_by_frame(qtbot, window, pair) -> None:
    """A live replay goes through the same A/B path: every shown frame carries B's poses on
    A's ids, and the readout follows the frame on screen (a live source has no analysis
    pass, so there is no average)."""
    a_path, b_path, _ = pair
    s = window.session
    window.use_person_box(BOX)
    wait_model(qtbot, window, [a_path, b_path], timeout=120000)
    window.open_source(f"replay:{POSE2SIM}")
    qtbot.waitUntil(lambda: s.live, timeout=20000)
    seen: set[int] = set()

    def compared_frames() -> bool:
        r = s.shown
        if r is not None and r.poses is not None and getattr(r.poses, "b", None) is not None:
            b = r.poses.b
            assert [p.track_id for p in b.people] == [p.track_id for p in r.poses.people]
            if s.compare.frame_index == r.frame.index and s.compare.frame:
                seen.add(r.frame.index)
        return len(seen) >= 3

    qtbot.waitUntil(compared_frames, timeout=60000)
    assert s.compare.active and s.analysis is None  # live: nothing cached
    (row,) = s.compare.frame
    assert row.track_id == 1 and row.pixels.shape == (18,) and np.isfinite(row.mm).all()
