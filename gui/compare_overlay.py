"""A/B skeletons in the 2D and 3D views: A and B overlaid in two colours, with a legend.

While `session.compare` is active, each view's side-coloured skeleton is hidden and these
layers draw A's and B's people (A's poses of the frame on screen and B's, paired by track id:
core/compare_runner.py) in `A_RGB` and `B_RGB`, each shown or hidden by the comparison's
visibility (both, A only, B only). Boxes, ids and labels stay the view's own. The layers hold
no state of their own beyond what they draw: they follow the session's events.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
import pyqtgraph.opengl as gl
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QLabel

from posescope.core.compare_runner import poses_b
from posescope.core.escape import escape
from posescope.core.session import Session
from posescope.core.session_types import FrameResult, Opened
from posescope.core.types import FramePoses, PersonPose
from posescope.gui.skeleton_view import ROOT_RELATIVE, SkeletonView, camera_to_world
from posescope.gui.video_view import VideoView

A_RGB: tuple[int, int, int] = (34, 211, 238)  # cyan
B_RGB: tuple[int, int, int] = (244, 114, 182)  # pink
COLORS = {"a": A_RGB, "b": B_RGB}


def rgbf(rgb: tuple[int, int, int], alpha: float = 1.0) -> tuple[float, float, float, float]:
    return (rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0, alpha)


def rich(text: object) -> str:
    """A name from a file, safe inside rich text: one printable line, markup escaped."""
    return html.escape(escape(text))


def dot(which: str) -> str:
    r, g, b = COLORS[which]
    return f"<span style='color:rgb({r},{g},{b})'>●</span>"


def legend_html(a: Opened | None, b: Opened | None, show_a: bool, show_b: bool) -> str:
    """'● A  ConvNeXtPose-XS  ·  ● B  ConvNeXtPose-S', a hidden one struck through."""
    parts = []
    for which, opened, shown in (("a", a, show_a), ("b", b, show_b)):
        if opened is None:
            continue
        name = rich(opened.ident.title)
        text = f"{dot(which)} <b>{which.upper()}</b> {name}"
        parts.append(text if shown else f"<s style='color:#8b95ab'>{text}</s>")
    return "&nbsp;&nbsp;".join(parts)


def _pen(rgb: tuple[int, int, int], width: float) -> QPen:
    pen = pg.mkPen(QColor(*rgb), width=width)
    pen.setCosmetic(True)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    return pen


def _bones_2d(people: list[PersonPose], bones: list[tuple[int, int]]) -> np.ndarray:
    segs = []
    for p in people:
        kp = np.asarray(p.keypoints_2d, dtype=float)
        if kp.ndim != 2 or not len(kp):
            continue
        segs += [kp[[a, b], :2] for a, b in bones if a < len(kp) and b < len(kp)]
    return np.concatenate(segs) if segs else np.zeros((0, 2))


class CompareOverlay2D:
    """A's and B's skeletons over the video, in two colours, and the legend."""

    def __init__(self, view: VideoView, session: Session) -> None:
        self.view = view
        self.session = session
        self.compare = session.compare
        self.poses: FramePoses | None = None
        self.bones: dict[str, pg.PlotCurveItem] = {}
        self.joints: dict[str, pg.ScatterPlotItem] = {}
        for z, which in ((12, "a"), (12.5, "b")):
            rgb = COLORS[which]
            line = pg.PlotCurveItem(pen=_pen(rgb, 3), connect="pairs")
            line.setZValue(z)
            dots = pg.ScatterPlotItem(
                size=7, pxMode=True, pen=pg.mkPen("#0b0e15", width=1), brush=QColor(*rgb)
            )
            dots.setZValue(z + 0.1)
            for item in (line, dots):
                view.viewbox.addItem(item, ignoreBounds=True)
            self.bones[which], self.joints[which] = line, dots
        self.legend = QLabel(view.graphics)
        self.legend.setObjectName("CompareLegend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setStyleSheet(
            "QLabel#CompareLegend { background: rgba(11,14,21,200); color: #e8edf7;"
            " border-radius: 4px; padding: 3px 8px; }"
        )
        self.legend.hide()
        ev = self.compare.events
        session.events.frame_shown.connect(self._shown)
        ev.pair_changed.connect(lambda _a, _b: self.redraw())
        ev.visibility_changed.connect(lambda _v: self.redraw())
        self.redraw()

    def _shown(self, result: FrameResult) -> None:
        self.poses = result.poses
        self.redraw()

    def redraw(self) -> None:
        c = self.compare
        active = c.active
        self.view.set_skeleton_visible(not active)
        js = self.view.joint_set
        bones = list(js.bones) if js is not None else []
        poses = self.poses if active else None
        for which, fp, shown in (("a", poses, c.show_a), ("b", poses_b(poses), c.show_b)):
            people = fp.people if fp is not None and shown else []
            segs = _bones_2d(people, bones)
            self.bones[which].setData(segs[:, 0], segs[:, 1])
            pts = [np.asarray(p.keypoints_2d, float)[:, :2] for p in people]
            pts = [p for p in pts if p.ndim == 2 and len(p)]
            if pts:
                self.joints[which].setData(pos=np.concatenate(pts))
            else:
                self.joints[which].setData([], [])
        self.legend.setVisible(active)
        if active:
            self.legend.setText(legend_html(c.a, c.b, c.show_a, c.show_b))
            self.legend.setToolTip(
                "\n".join(f"{w}: {o.path}" for w, o in (("A", c.a), ("B", c.b)) if o)
            )
            self.place_legend()

    def place_legend(self) -> None:
        """Top left of the video, wrapped when the view is narrow."""
        room = max(60, self.view.graphics.width() - 16)
        self.legend.setWordWrap(False)
        self.legend.setMinimumSize(0, 0)
        self.legend.setMaximumSize(16777215, 16777215)
        self.legend.adjustSize()
        if self.legend.width() > room:
            self.legend.setWordWrap(True)
            self.legend.setFixedWidth(room)
            self.legend.setFixedHeight(self.legend.heightForWidth(room))
        self.legend.move(8, 8)

    def drawn_points(self, which: str) -> np.ndarray:
        """(K, 2) joint positions drawn for 'a' or 'b' (for tests)."""
        x, y = self.joints[which].getData()
        return np.zeros((0, 2)) if x is None or not len(x) else np.stack([x, y], axis=1)


class CompareOverlay3D:
    """A's and B's skeletons in the 3D view, each person's pair side by side where the view
    puts A's person (root-relative) or where they are (camera space)."""

    def __init__(self, view: SkeletonView, session: Session) -> None:
        self.view = view
        self.session = session
        self.compare = session.compare
        self.poses: FramePoses | None = None
        self.bones: dict[str, gl.GLLinePlotItem] = {}
        self.joints: dict[str, gl.GLScatterPlotItem] = {}
        for which in ("a", "b"):
            line = gl.GLLinePlotItem(pos=np.zeros((0, 3)), mode="lines", width=3, antialias=True)
            line.setGLOptions("translucent")
            dots = gl.GLScatterPlotItem(pos=np.zeros((0, 3)), size=9, pxMode=True)
            dots.setGLOptions("translucent")
            view.gl.addItem(line)
            view.gl.addItem(dots)
            self.bones[which], self.joints[which] = line, dots
        self.legend = QLabel(view.gl)
        self.legend.setObjectName("CompareLegend3D")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setStyleSheet("color: #e8edf7; background: transparent;")
        self.legend.hide()
        ev = self.compare.events
        session.events.frame_shown.connect(self._shown)
        ev.pair_changed.connect(lambda _a, _b: self.redraw())
        ev.visibility_changed.connect(lambda _v: self.redraw())
        view.sigSpaceChanged.connect(lambda _s: self.redraw())
        self.redraw()

    def _shown(self, result: FrameResult) -> None:
        self.poses = result.poses
        self.redraw()

    def redraw(self) -> None:
        c, view = self.compare, self.view
        active = c.active
        view.bones.setVisible(not active)
        view.joints.setVisible(not active)
        view.legend.setVisible(not active)
        poses = self.poses if active else None
        a_people = [p for p in (poses.people if poses is not None else []) if _drawable(p)]
        placed = view.person_offsets(a_people)
        offsets = {p.track_id: o for p, o in zip(a_people, placed, strict=True)}
        js = view.joint_set
        bones = list(js.bones) if js is not None else []
        for which, fp, shown in (("a", poses, c.show_a), ("b", poses_b(poses), c.show_b)):
            people = [p for p in (fp.people if fp is not None and shown else []) if _drawable(p)]
            pts, segs = [], []
            for p in people:
                if view.space == ROOT_RELATIVE:
                    kp = np.asarray(p.root_relative_mm, float) + offsets.get(p.track_id, 0.0)
                else:
                    kp = np.asarray(p.keypoints_3d_mm, float)
                w = camera_to_world(kp)
                pts.append(w)
                segs += [w[[a, b]] for a, b in bones if a < len(w) and b < len(w)]
            color = rgbf(COLORS[which])
            if pts:
                self.joints[which].setData(pos=np.concatenate(pts), color=color, size=9)
            else:
                self.joints[which].setData(pos=np.zeros((0, 3)))
            if segs:
                self.bones[which].setData(pos=np.concatenate(segs), color=color)
            else:
                self.bones[which].setData(pos=np.zeros((0, 3)))
        self.legend.setVisible(active)
        if active:
            parts = [f"{dot(w)} {w.upper()}" for w, on in (("a", c.show_a), ("b", c.show_b)) if on]
            self.legend.setText("&nbsp;&nbsp;".join(parts))
            self.legend.adjustSize()
            self.legend.move(10, 8)

    def drawn_points(self, which: str) -> np.ndarray:
        """(K, 3) world positions of the joints drawn for 'a' or 'b' (for tests)."""
        pos = self.joints[which].pos
        return np.zeros((0, 3)) if pos is None else np.array(pos, copy=True)


def _drawable(person: PersonPose) -> bool:
    kp = np.asarray(person.keypoints_3d_mm, dtype=float)
    return kp.ndim == 2 and kp.shape[0] > 0 and bool(np.all(np.isfinite(kp)))
