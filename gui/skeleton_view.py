"""The 3D skeleton: a pyqtgraph.opengl view with ground grid, axes, bones and joints.

One item per kind (bones, joints, labels), created once and updated with `setData`; people
are drawn in the same side colours as the 2D overlay. Camera space (x right, y down, z
forward, mm) is shown in a z-up world in metres: world = (X, Z, -Y) / 1000, so the default
view looks along the camera's axis and left/right match the video.

In root-relative space several people stand side by side where their roots are in camera
space (`core.selection.side_by_side_offsets`), not on top of each other at the origin. The
person selected in `session.selection` is drawn in full, the others dimmed; the selected
person's root trail over the frames seen can be shown. Front / side / top buttons and a
visible hint for rotate / zoom / pan sit over the view.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph.opengl as gl
from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtGui import QColor, QFont, QVector3D
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from posescope.core.selection import Selection, root_mm, side_by_side_offsets
from posescope.core.session import Session
from posescope.core.session_types import FrameResult
from posescope.core.types import FramePoses
from posescope.core.variants import JointSet
from posescope.gui import colors
from posescope.gui.chrome import tool_button, view_header
from posescope.gui.skeleton_pick import SkeletonPicker

ROOT_RELATIVE = "root"
CAMERA = "camera"

_DEFAULT_VIEW = {"distance": 4.0, "elevation": 12.0, "azimuth": -72.0}
# (elevation, azimuth) in degrees of pyqtgraph's orbit camera, world z up, y = camera forward
VIEWS: dict[str, tuple[float, float]] = {
    "front": (0.0, -90.0),  # from the video camera's side, looking forward
    "side": (0.0, 0.0),  # from the right of the image
    "top": (90.0, -90.0),  # from above, the camera at the bottom of the view
}
MOUSE_HINT = "Click: select · Drag: rotate · Wheel: zoom · Ctrl+drag: pan"
MOUSE_TIP = "Click a skeleton: select · Drag: rotate · Wheel: zoom · Ctrl+drag or middle-drag: pan"
DIM_ALPHA = 0.3  # people other than the selected one


def camera_to_world(points_mm: np.ndarray) -> np.ndarray:
    """(..., 3) camera-space mm (x right, y down, z forward) -> z-up world metres."""
    p = np.asarray(points_mm, dtype=np.float64) / 1000.0
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)


def _forget_foreign_shaders() -> None:
    """pyqtgraph caches shader programs per class; without shared GL contexts (an app
    created before `gui` was imported) they belong to a dead context: compile anew."""
    if QCoreApplication.testAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts):
        return
    for item in (gl.GLLinePlotItem, gl.GLScatterPlotItem):
        if getattr(item, "_shaderProgram", None) is not None:
            item._shaderProgram = None


class SkeletonView(QWidget):
    """Rotatable 3D view of every person's skeleton; `set_poses` each frame."""

    sigSpaceChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SkeletonView")
        self.joint_set: JointSet | None = None
        self.space = ROOT_RELATIVE
        self.current_poses: FramePoses | None = None
        self._needs_fit = True
        self._world: np.ndarray = np.zeros((0, 3))
        self._person_count = 0

        _forget_foreign_shaders()
        self.gl = gl.GLViewWidget()
        self.gl.setAcceptDrops(False)
        self.gl.setBackgroundColor(QColor(colors.VIEW_BACKGROUND))
        self.gl.setMinimumSize(200, 200)

        self.grid = gl.GLGridItem(color=(120, 135, 160, 90))
        self.grid.setSize(8, 8)
        self.grid.setSpacing(0.5, 0.5)
        self.gl.addItem(self.grid)

        axes = np.array(
            [[0, 0, 0], [0.4, 0, 0], [0, 0, 0], [0, 0.4, 0], [0, 0, 0], [0, 0, 0.4]], float
        )
        axis_colors = np.array(
            [[0.94, 0.31, 0.43, 1]] * 2 + [[0.29, 0.87, 0.5, 1]] * 2 + [[0.3, 0.6, 1, 1]] * 2
        )
        self.axes = gl.GLLinePlotItem(
            pos=axes, color=axis_colors, mode="lines", width=2, antialias=True
        )
        self.gl.addItem(self.axes)

        self.bones = gl.GLLinePlotItem(pos=np.zeros((0, 3)), mode="lines", width=4, antialias=True)
        self.bones.setGLOptions("translucent")
        self.gl.addItem(self.bones)
        self.joints = gl.GLScatterPlotItem(pos=np.zeros((0, 3)), size=11, pxMode=True)
        self.joints.setGLOptions("translucent")
        self.gl.addItem(self.joints)
        self._labels: list[gl.GLTextItem] = []
        self.trail = gl.GLLinePlotItem(
            pos=np.zeros((0, 3)), mode="line_strip", width=2, antialias=True, color=(1, 1, 1, 0.8)
        )
        self.trail.setGLOptions("translucent")
        self.gl.addItem(self.trail)
        self.selection: Selection | None = None
        self.drawn_people: list[tuple[int, np.ndarray]] = []  # (track id, world joints) drawn
        self.picker = SkeletonPicker(self)  # a click on a skeleton selects that person

        # header: title, space toggle, fit, reset
        header, hl, self.info = view_header("3D")
        self.root_button = tool_button("Root-relative", "Skeleton centred on its root joint")
        self.camera_button = tool_button("Camera", "Camera space: where people are, in mm")
        for b in (self.root_button, self.camera_button):
            b.setCheckable(True)
            b.setObjectName("SegmentButton")
        self.root_button.setChecked(True)
        group = QButtonGroup(self)
        group.setExclusive(True)
        group.addButton(self.root_button)
        group.addButton(self.camera_button)
        self.root_button.toggled.connect(lambda on: self.set_space(ROOT_RELATIVE if on else CAMERA))
        hl.addWidget(self.root_button)
        hl.addWidget(self.camera_button)

        # over the view (not in the header, so they never widen the window): camera presets
        self.view_bar = QWidget(self.gl)
        self.view_bar.setObjectName("ViewBar")
        vl = QHBoxLayout(self.view_bar)
        vl.setContentsMargins(0, 0, 0, 0)
        vl.setSpacing(2)
        self.view_buttons: dict[str, object] = {}
        for name, tip in (
            ("front", "Look from the video camera's side"),
            ("side", "Look from the side (from the image's right)"),
            ("top", "Look from above"),
        ):
            b = tool_button(name.capitalize(), tip)
            b.clicked.connect(lambda _=False, n=name: self.set_view(n))
            self.view_buttons[name] = b
            vl.addWidget(b)
        fit = tool_button("Fit", "Frame the skeleton (F)")
        fit.clicked.connect(self.fit)
        reset = tool_button("Reset", "Reset the camera (Shift+F)")
        reset.clicked.connect(self.reset_view)
        vl.addWidget(fit)
        vl.addWidget(reset)
        self.view_bar.adjustSize()
        self.mouse_hint = QLabel(MOUSE_HINT, self.gl)
        self.mouse_hint.setObjectName("MouseHint")
        self.mouse_hint.adjustSize()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(header)
        layout.addWidget(self.gl, 1)

        def dot(side: str) -> str:
            r, g, b = colors.SIDE_RGB[side]
            return f"<span style='color:rgb({r},{g},{b})'>●</span>"

        self.legend = QLabel(
            f"{dot('left')} left&nbsp;&nbsp;{dot('right')} right&nbsp;&nbsp;{dot('centre')} centre",
            self.gl,
        )
        self.gl.setToolTip(MOUSE_TIP)
        self.legend.setObjectName("Legend")
        self.legend.move(10, 8)
        self.legend.adjustSize()
        self.reset_view()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_overlays()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._place_overlays()

    def _place_overlays(self) -> None:
        """The view buttons top right, the mouse hint bottom left (elided when narrow)."""
        w, h = self.gl.width(), self.gl.height()
        self.view_bar.adjustSize()
        self.view_bar.move(max(0, w - self.view_bar.width() - 8), 6)
        # the legend goes under the buttons when both do not fit on one line
        beside = self.legend.width() + 18 <= self.view_bar.x()
        self.legend.move(10, 8 if beside else self.view_bar.geometry().bottom() + 6)
        # wraps onto a second line in a narrow view: every part of the hint stays readable
        self.mouse_hint.setWordWrap(False)
        self.mouse_hint.setMinimumWidth(0)
        self.mouse_hint.setMaximumWidth(16777215)
        natural = self.mouse_hint.sizeHint().width()  # one line, with the style's padding
        self.mouse_hint.setWordWrap(True)
        self.mouse_hint.setFixedWidth(max(60, min(w - 20, natural)))
        self.mouse_hint.adjustSize()
        self.mouse_hint.move(10, max(0, h - self.mouse_hint.height() - 6))

    # ------------------------------------------------------------------ public API

    def bind(self, session: Session) -> None:
        """Show the poses of the frame on screen; fit the view to a new model or source."""

        def shown(result: FrameResult) -> None:
            joint_set = session.joint_set_for(result)
            if result.poses is not None and joint_set is not self.joint_set:
                self.set_joint_set(joint_set)
            self.set_poses(result.poses)

        session.events.frame_shown.connect(shown)
        session.events.model_changed.connect(lambda _model: self.request_fit())
        session.events.source_changed.connect(lambda _info: self.request_fit())
        self.selection = session.selection
        session.selection.events.selected.connect(lambda _t: self.set_poses(self.current_poses))
        session.selection.events.trail_toggled.connect(
            lambda _on: self.set_poses(self.current_poses)
        )

    def set_joint_set(self, joint_set: JointSet | None) -> None:
        self.joint_set = joint_set
        self._needs_fit = True

    def set_space(self, space: str) -> None:
        """ROOT_RELATIVE or CAMERA; refits the view."""
        if space not in (ROOT_RELATIVE, CAMERA):
            raise ValueError(f"unknown space {space!r}")
        if space == self.space:
            return
        self.space = space
        with_signals = self.root_button.blockSignals(True)
        self.root_button.setChecked(space == ROOT_RELATIVE)
        self.camera_button.setChecked(space == CAMERA)
        self.root_button.blockSignals(with_signals)
        self._needs_fit = True
        self.set_poses(self.current_poses)
        self.sigSpaceChanged.emit(space)

    def set_view(self, name: str) -> None:
        """A camera preset: 'front', 'side' or 'top' (distance and centre kept)."""
        elevation, azimuth = VIEWS[name]
        self.gl.setCameraPosition(elevation=elevation, azimuth=azimuth)

    def camera_angles(self) -> tuple[float, float]:
        """(elevation, azimuth) of the camera now, in degrees."""
        return float(self.gl.opts["elevation"]), float(self.gl.opts["azimuth"])

    def request_fit(self) -> None:
        """Fit the view on the next poses (after a model or source change)."""
        self._needs_fit = True

    def set_poses(self, poses: FramePoses | None) -> None:
        """Update bones, joints and labels in place from `poses` (None clears)."""
        self.current_poses = poses
        people = poses.people if poses is not None else []
        js = self.joint_set
        pts: list[np.ndarray] = []
        pcols: list[np.ndarray] = []
        segs: list[np.ndarray] = []
        scols: list[np.ndarray] = []
        label_pos: list[tuple[np.ndarray, str]] = []
        valid = [p for p in people if _drawable(p)]
        offsets = self.person_offsets(valid)
        selected = self.selection.selected if self.selection is not None else None
        if selected is not None and all(p.track_id != selected for p in valid):
            selected = None  # not in this frame: nobody is dimmed
        trail = np.zeros((0, 3))
        self.drawn_people = []
        for person, offset in zip(valid, offsets, strict=True):
            kp = np.asarray(person.keypoints_3d_mm, dtype=float)
            if self.space == ROOT_RELATIVE:
                kp = np.asarray(person.root_relative_mm, dtype=float) + offset
            w = camera_to_world(kp)
            n = w.shape[0]
            pts.append(w)
            self.drawn_people.append((int(person.track_id), w))
            alpha = 1.0 if selected is None or person.track_id == selected else DIM_ALPHA
            if js is not None and js.num == n:
                pc = np.array([colors.side_rgbf(js.side(j)) for j in range(n)])
                for a, b in js.bones:
                    segs.append(w[[a, b]])
                    c = colors.side_rgbf(js.bone_side((a, b)))
                    scols.append(np.array([c, c]))
                    scols[-1][:, 3] = alpha
            else:
                pc = np.tile(colors.side_rgbf("centre"), (n, 1))
            pc[:, 3] = alpha
            pcols.append(pc)
            if person.track_id == selected:
                trail = self._trail_points(person, offset)
            top = w[np.argmax(w[:, 2])] + np.array([0.0, 0.0, 0.12])
            label_pos.append((top, f"#{person.track_id}"))
        if pts:
            world = np.concatenate(pts)
            self.joints.setData(pos=world, color=np.concatenate(pcols), size=11)
        else:
            world = np.zeros((0, 3))
            self.joints.setData(pos=world)
        if segs:
            self.bones.setData(pos=np.concatenate(segs), color=np.concatenate(scols))
        else:
            self.bones.setData(pos=np.zeros((0, 3)))
        self.trail.setData(pos=camera_to_world(trail) if len(trail) >= 2 else np.zeros((0, 3)))
        self._world = world
        if (len(pts) != self._person_count and len(pts) > 1) or self._outside_fit(world):
            self._needs_fit = True  # people came, went or moved away: frame them all again
        self._person_count = len(pts)
        self._set_labels(label_pos if len(label_pos) > 1 or self.space == CAMERA else [])
        self.info.setText(
            f"{len(pts)} {'person' if len(pts) == 1 else 'people'}" if poses is not None else ""
        )
        if self._needs_fit and len(world):
            self.fit()

    def person_offsets(self, people: list) -> np.ndarray:
        """(N, 3) camera mm added to each root-relative skeleton (zeros in camera space)."""
        if self.space != ROOT_RELATIVE:
            return np.zeros((len(people), 3))
        return side_by_side_offsets(np.array([root_mm(p) for p in people]).reshape(-1, 3))

    def trail_points(self) -> np.ndarray:
        """(K, 3) world positions of the root trail now drawn (for tests)."""
        pos = self.trail.pos
        return np.zeros((0, 3)) if pos is None else np.array(pos, copy=True)

    def _trail_points(self, person, offset: np.ndarray) -> np.ndarray:
        """The selected person's root over the frames seen, in this view's camera mm."""
        sel = self.selection
        if sel is None or not sel.trail_enabled:
            return np.zeros((0, 3))
        trail = sel.trail(person.track_id)
        if self.space == ROOT_RELATIVE and len(trail):
            trail = trail - root_mm(person) + offset  # where it went, from where it stands now
        return trail

    def _fit_distance(self, lo: np.ndarray, hi: np.ndarray) -> float:
        """How far the camera stands to see the box lo..hi with a margin, whatever the view's
        shape: pyqtgraph's field of view is horizontal, the vertical one is narrower by h / w."""
        across = float(max(hi[0] - lo[0], hi[1] - lo[1], 0.5))
        up = float(max(hi[2] - lo[2], 0.5))
        aspect = self.gl.width() / max(1, self.gl.height())
        k = 1.3 / (2.0 * np.tan(np.radians(float(self.gl.opts["fov"]) / 2.0)))
        return max(across * k, up * k * aspect, 1.0)

    def _outside_fit(self, world: np.ndarray) -> bool:
        box = getattr(self, "_fit_box", None)
        if box is None or not len(world):
            return False
        return bool(np.any(world < box[0]) or np.any(world > box[1]))

    def joint_positions(self) -> np.ndarray:
        """(N*J, 3) world positions of the joint markers now shown (for tests)."""
        pos = self.joints.pos
        return np.zeros((0, 3)) if pos is None else np.array(pos, copy=True)

    def bone_segments(self) -> np.ndarray:
        pos = self.bones.pos
        return np.zeros((0, 3)) if pos is None else np.array(pos, copy=True)

    def fit(self) -> None:
        """Centre the camera on the skeleton(s), distance to see all, grid under the feet."""
        world = self._world
        if len(world) == 0:
            self._needs_fit = True
            return
        lo, hi = world.min(axis=0), world.max(axis=0)
        centre = (lo + hi) / 2.0
        extent = float(max(np.max(hi - lo), 0.5))
        self._fit_box = (centre - extent, centre + extent)  # refit once people leave this
        self.gl.setCameraPosition(
            pos=QVector3D(*centre.astype(float)), distance=self._fit_distance(lo, hi)
        )
        floor = (float(centre[0]), float(centre[1]), float(lo[2]) - 0.02)
        for item in (self.grid, self.axes):
            item.resetTransform()
            item.translate(*floor)
        size = max(4.0, np.ceil(extent * 3))
        self.grid.setSize(size, size)
        self._needs_fit = False

    def reset_view(self) -> None:
        """The default camera: a little above and to the side, looking at the centre."""
        centre = QVector3D(0, 0, 0)
        if len(self._world):
            lo, hi = self._world.min(axis=0), self._world.max(axis=0)
            centre = QVector3D(*((lo + hi) / 2.0).astype(float))
        self.gl.setCameraPosition(pos=centre, **_DEFAULT_VIEW)

    def grab_image(self):
        """The rendered GL scene as a QImage."""
        return self.gl.grabFramebuffer()

    # ------------------------------------------------------------------ internals

    def _set_labels(self, labels: list[tuple[np.ndarray, str]]) -> None:
        while len(self._labels) < len(labels):
            font = QFont()
            font.setPointSize(10)
            font.setBold(True)
            item = gl.GLTextItem(color=QColor(*colors.BOX_RGB), font=font)
            self.gl.addItem(item)
            self._labels.append(item)
        for i, item in enumerate(self._labels):
            if i < len(labels):
                pos, text = labels[i]
                item.setData(pos=pos, text=text)
                item.setVisible(True)
            else:
                item.setVisible(False)


def _drawable(person) -> bool:
    kp = np.asarray(person.keypoints_3d_mm, dtype=float)
    return kp.ndim == 2 and kp.shape[0] > 0 and bool(np.all(np.isfinite(kp)))
