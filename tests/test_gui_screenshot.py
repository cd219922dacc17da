"""`posescope gui CKPT MEDIA --frame N --screenshot out.png` (gui.app.run_gui)."""

from __future__ import annotations

import cv2
import pytest

from tests.gui_helpers import VIDEO

pytestmark = pytest.mark.gui


def test_screenshot_of_a_frame_with_its_pose(qtbot, ckpt_files, tmp_path) -> None:
    from posescope.gui.app import LAST_GRAB, run_gui

    out = tmp_path / "shot.png"
    code = run_gui(ckpt_files["xs"], VIDEO, frame=12, screenshot=out, timeout_s=60)
    assert code == 0
    img = cv2.imread(str(out))
    assert img is not None
    assert img.shape[:2] == (900, 1400)
    assert img.std() > 20  # not blank
    x, y, w, h = LAST_GRAB["gl"]
    assert w > 200 and h > 200
    gl_area = img[y : y + h, x : x + w]
    assert gl_area.max() > 60 and gl_area.std() > 3  # the 3D view was rendered, not black
    # the skeleton's colours are in the 3D area (left blue, right orange, centre green)
    b, g, r = (gl_area[..., i].astype(int) for i in range(3))
    assert ((r > 180) & (g > 80) & (b < 120)).sum() > 20  # orange bones / joints


def test_screenshot_fails_for_a_bad_checkpoint(qtbot, ckpt_files, tmp_path) -> None:
    from posescope.gui.app import run_gui

    out = tmp_path / "bad.png"
    assert run_gui(ckpt_files["text"], VIDEO, frame=3, screenshot=out, timeout_s=30) != 0


def test_screenshot_fails_for_bad_media(qtbot, ckpt_files, tmp_path) -> None:
    from posescope.gui.app import run_gui

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    out = tmp_path / "bad.png"
    assert run_gui(ckpt_files["xs"], bad, screenshot=out, timeout_s=30) != 0
