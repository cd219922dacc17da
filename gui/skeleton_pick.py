"""Click a skeleton in the 3D view to select that person.

`project` maps world points to the view's widget pixels with pyqtgraph's own projection and
view matrices; `SkeletonPicker` watches the GL widget's mouse: a left click (a press and a
release that did not move: a drag rotates) selects the skeleton nearest to it on screen
(`core.selection.nearest_skeleton`, within `PICK_RADIUS_PX` of a joint or bone) in the
session's `Selection`, so the 2D view, the 3D view and the joints readout all follow; a click
on nothing clears the selection, as in the 2D view.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph.opengl as gl
from PySide6.QtCore import QEvent, QObject, QPointF, Qt

from posescope.core.selection import nearest_skeleton

PICK_RADIUS_PX = 30.0
CLICK_SLOP_PX = 4.0  # a press and release further apart than this is a drag (rotate)


def project(view: gl.GLViewWidget, world: np.ndarray) -> np.ndarray:
    """(N, 3) world points -> (N, 2) widget pixels (x right, y down); NaN behind the camera."""
    w, h = max(1, view.width()), max(1, view.height())
    viewport = (0, 0, w, h)
    m = view.projectionMatrix(viewport, viewport) * view.viewMatrix()
    mvp = np.array(m.data(), dtype=float).reshape(4, 4).T  # Qt stores columns first
    pts = np.asarray(world, dtype=float).reshape(-1, 3)
    clip = np.c_[pts, np.ones(len(pts))] @ mvp.T
    out = np.full((len(pts), 2), np.nan)
    front = clip[:, 3] > 1e-9
    ndc = clip[front, :2] / clip[front, 3:4]
    out[front, 0] = (ndc[:, 0] + 1.0) * 0.5 * w
    out[front, 1] = (1.0 - ndc[:, 1]) * 0.5 * h
    return out


class SkeletonPicker(QObject):
    """Selects the clicked skeleton of a `SkeletonView` in its bound session's selection."""

    def __init__(self, view) -> None:
        super().__init__(view)
        self.view = view
        self._press: QPointF | None = None
        view.gl.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonDblClick):
            plain = event.modifiers() == Qt.KeyboardModifier.NoModifier
            left = event.button() == Qt.MouseButton.LeftButton
            self._press = event.position() if left and plain else None
        elif kind == QEvent.Type.MouseButtonRelease and self._press is not None:
            moved = event.position() - self._press
            self._press = None
            if event.button() == Qt.MouseButton.LeftButton and (
                abs(moved.x()) + abs(moved.y()) <= CLICK_SLOP_PX
            ):
                self.pick(event.position().x(), event.position().y())
        return False  # the view still rotates, zooms and pans as before

    def pick(self, x: float, y: float) -> int | None:
        """Select the skeleton nearest to widget point (x, y) (nobody near: clear)."""
        view = self.view
        if view.selection is None:
            return None
        screen = [(track, project(view.gl, world)) for track, world in view.drawn_people]
        js = view.joint_set
        track = nearest_skeleton(screen, js.bones if js else None, x, y, PICK_RADIUS_PX)
        view.selection.select(track)
        return track
