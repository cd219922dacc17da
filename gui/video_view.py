"""The frame and its 2D overlay: bones coloured by side, joints, box, person id, joint labels.

pyqtgraph `ImageItem` with row-major axis order and fixed levels (no auto levels), updated by
`setImage`; overlay items are created once and updated with `setData` (after pyqtgraph's
VideoSpeedTest). A box for the person can be drawn with Shift+drag, or edited as a `RectROI`.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QLabel, QVBoxLayout, QWidget

from posescope.core.session import Session
from posescope.core.session_people import people_state
from posescope.core.session_types import DisplaySettings, FrameResult, RunnerSettings
from posescope.core.types import Frame, FramePoses
from posescope.core.variants import JointSet
from posescope.gui import colors
from posescope.gui.people_overlay import SCORE_LEGEND, SCORE_TIP, NobodyFound, score_label

Box = tuple[float, float, float, float]

_SIDES = ("left", "right", "centre")


def bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) BGR uint8 -> contiguous RGB uint8 (greyscale is expanded)."""
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class _FrameViewBox(pg.ViewBox):
    """A ViewBox where Shift+left-drag draws a box (when allowed) instead of panning."""

    sigBoxDrawn = Signal(object)  # (x, y, w, h) in image pixels
    sigClicked = Signal(float, float)  # a left click, in image pixels

    def __init__(self) -> None:
        super().__init__(invertY=True, lockAspect=True, enableMenu=False)
        self.draw_enabled = False
        self.draw_tool = False  # "Draw a person box" is on: a plain left-drag draws too
        self._rubber = QGraphicsRectItem()
        pen = QPen(QColor(*colors.BOX_RGB))
        pen.setCosmetic(True)
        pen.setWidth(2)
        pen.setStyle(Qt.PenStyle.DashLine)
        self._rubber.setPen(pen)
        self._rubber.setZValue(1000)
        self._rubber.hide()
        self.addItem(self._rubber, ignoreBounds=True)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            self.sigClicked.emit(float(p.x()), float(p.y()))
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None) -> None:
        shift = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier) or self.draw_tool
        if not (self.draw_enabled and shift and ev.button() == Qt.MouseButton.LeftButton):
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        p0 = self.mapSceneToView(ev.buttonDownScenePos())
        p1 = self.mapSceneToView(ev.scenePos())
        rect = QRectF(p0, p1).normalized()
        if ev.isFinish():
            self._rubber.hide()
            if rect.width() >= 4 and rect.height() >= 4:
                self.sigBoxDrawn.emit((rect.x(), rect.y(), rect.width(), rect.height()))
        else:
            self._rubber.setRect(rect)
            self._rubber.show()


ID_LABEL_PX = 22  # a box's id label stands this high over the box


class VideoView(QWidget):
    """Shows one `Frame` and the `FramePoses` computed on exactly that frame."""

    sigBoxChanged = Signal(object)  # (x, y, w, h) or None
    sigClicked = Signal(float, float)  # a left click on the frame, image pixels (selects)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("VideoView")
        self.setAcceptDrops(False)  # drops go to the main window
        self.joint_set: JointSet | None = None
        self.current_frame: Frame | None = None
        self.current_poses: FramePoses | None = None
        self.image_rgb: np.ndarray | None = None
        self._show_labels = False
        self._show_boxes = True
        self._image_shape: tuple[int, int] | None = None

        self.graphics = pg.GraphicsView(background=colors.VIEW_BACKGROUND)
        self.graphics.setAcceptDrops(False)
        self.viewbox = _FrameViewBox()
        self.graphics.setCentralItem(self.viewbox)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.viewbox.addItem(self.image_item)

        self._bones = {
            side: pg.PlotCurveItem(pen=self._pen(colors.SIDE_RGB[side], 3), connect="pairs")
            for side in _SIDES
        }
        for item in self._bones.values():
            item.setZValue(10)
            self.viewbox.addItem(item, ignoreBounds=True)
        self._joints = pg.ScatterPlotItem(size=8, pxMode=True, pen=pg.mkPen("#0b0e15", width=1))
        self._joints.setZValue(11)
        self.viewbox.addItem(self._joints, ignoreBounds=True)
        self._boxes = pg.PlotCurveItem(pen=self._pen(colors.BOX_RGB, 2), connect="pairs")
        self._boxes.setZValue(9)
        self.viewbox.addItem(self._boxes, ignoreBounds=True)
        self.selected: int | None = None  # track id selected in the session (drawn in accent)
        self._selected_box = pg.PlotCurveItem(pen=self._pen(colors.SELECTED_RGB, 4))
        self._selected_box.setZValue(9.5)
        self.viewbox.addItem(self._selected_box, ignoreBounds=True)
        self._id_items: list[pg.TextItem] = []
        self._label_items: list[pg.TextItem] = []

        self.roi: pg.RectROI | None = None
        self.viewbox.sigBoxDrawn.connect(self.set_box)
        self.viewbox.sigClicked.connect(self.sigClicked)

        self.hint = QLabel(self.graphics)
        self.hint.setObjectName("DropHint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setText(
            "<div style='font-size:20pt; font-weight:600'>Drop a checkpoint here</div>"
            "<div style='margin-top:10px'>ConvNeXtPose XS / S / M / L or 3DMPPE PoseNet + "
            "RootNet (.pth, .tar, .safetensors)</div>"
            "<div style='margin-top:6px'>then a video, an image, a folder, "
            "or pick a camera from the File menu</div>"
        )

        # people: "nobody found" with the ways out, and what the scores over a box mean
        self.nobody = NobodyFound(self.graphics)
        self.nobody.picture_rect = self.picture_rect  # the card goes where the picture is not
        self.viewbox.sigRangeChanged.connect(self._place_nobody)
        self.legend = QLabel(SCORE_LEGEND, self.graphics)
        self.legend.setObjectName("ScoreLegend")
        self.legend.setWordWrap(True)
        self.legend.setToolTip(SCORE_TIP)
        self.legend.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)

    # ------------------------------------------------------------------ public API

    def set_joint_set(self, joint_set: JointSet | None) -> None:
        self.joint_set = joint_set
        self._update_overlay()

    def set_hint(self, text: str | None) -> None:
        """Show `text` centered over the view (rich text), or hide the hint with None."""
        if text is None:
            self.hint.hide()
        else:
            self.hint.setText(text)
            self.hint.show()
            self._place_hint()

    def hint_visible(self) -> bool:
        return self.hint.isVisible()

    def set_frame(self, frame: Frame, poses: FramePoses | None) -> None:
        """Show `frame` and the poses estimated on it (None: no model, or it failed)."""
        self.current_frame = frame
        self.current_poses = poses
        rgb = bgr_to_rgb(frame.image)
        self.image_rgb = rgb
        self.image_item.setImage(rgb, autoLevels=False, levels=(0, 255))
        shape = (rgb.shape[0], rgb.shape[1])
        if shape != self._image_shape:
            self._image_shape = shape
            # generous limits: the whole frame must fit whatever the view's aspect ratio
            margin = 3.0 * max(shape)
            self.viewbox.setLimits(
                xMin=-margin, xMax=shape[1] + margin, yMin=-margin, yMax=shape[0] + margin
            )
            self.fit()
        if self.hint.isVisible():
            self.hint.hide()
        self._update_overlay()

    def set_poses(self, poses: FramePoses | None) -> None:
        """Replace the overlay only (same frame)."""
        self.current_poses = poses
        self._update_overlay()

    def clear(self) -> None:
        self.current_frame = None
        self.current_poses = None
        self.image_rgb = None
        self._image_shape = None
        self.image_item.clear()
        self._update_overlay()

    def fit(self) -> None:
        if self._image_shape is not None:
            h, w = self._image_shape
            self.viewbox.setRange(QRectF(0, 0, w, h), padding=0.01)

    def set_show_labels(self, show: bool) -> None:
        self._show_labels = bool(show)
        self._update_overlay()

    def set_show_boxes(self, show: bool) -> None:
        self._show_boxes = bool(show)
        self._update_overlay()

    def set_skeleton_visible(self, visible: bool) -> None:
        """Show or hide the side-coloured bones and joints (A/B draws its own in two colours;
        boxes, ids and labels stay)."""
        for item in (*self._bones.values(), self._joints):
            item.setVisible(bool(visible))

    def set_box_drawing(self, enabled: bool) -> None:
        """Allow Shift+drag box drawing and show the editable box (None until drawn)."""
        self.viewbox.draw_enabled = bool(enabled)
        if self.roi is not None:
            self.roi.setVisible(enabled)

    def set_box(self, box: Box | None) -> None:
        """Place the editable person box (image pixels) and announce it."""
        if box is None:
            if self.roi is not None:
                self.viewbox.removeItem(self.roi)
                self.roi = None
            self.sigBoxChanged.emit(None)
            return
        x, y, w, h = (float(v) for v in box)
        if self.roi is None:
            self.roi = pg.RectROI([x, y], [w, h], pen=self._pen(colors.BOX_RGB, 2), removable=False)
            self.roi.addScaleHandle([0, 0], [1, 1])
            self.roi.setZValue(20)
            self.roi.sigRegionChangeFinished.connect(self._roi_changed)
            self.viewbox.addItem(self.roi, ignoreBounds=True)
        else:
            self.roi.setPos([x, y], update=False, finish=False)
            self.roi.setSize([w, h], update=True, finish=False)
        self.roi.setVisible(self.viewbox.draw_enabled)
        self.sigBoxChanged.emit((x, y, w, h))

    def box(self) -> Box | None:
        if self.roi is None:
            return None
        pos, size = self.roi.pos(), self.roi.size()
        return (float(pos.x()), float(pos.y()), float(size.x()), float(size.y()))

    def default_box(self) -> Box | None:
        """A box over the middle of the frame, to start from."""
        if self._image_shape is None:
            return None
        h, w = self._image_shape
        return (w * 0.25, h * 0.1, w * 0.5, h * 0.8)

    def bind(self, session: Session) -> None:
        """Show the session's person box and display settings; a box the user draws or moves
        goes to the session (which holds it)."""
        self.set_display(session.display)
        self.sigBoxChanged.connect(lambda box: box is not None and session.set_box(box))
        session.events.runner_settings_changed.connect(self._show_runner_settings)
        session.events.display_changed.connect(self.set_display)
        self._show_runner_settings(session.runner_settings)

        def shown(result: FrameResult) -> None:
            joint_set = session.joint_set_for(result)
            if result.poses is not None and joint_set is not self.joint_set:
                self.set_joint_set(joint_set)
            self.set_frame(result.frame, result.poses)

        session.events.frame_shown.connect(shown)
        session.selection.events.selected.connect(self.set_selected)
        session.events.frame_shown.connect(
            lambda result: self.nobody.show_state(people_state(result, session.runner_settings))
        )
        session.events.source_changed.connect(lambda _info: self.nobody.show_state("found"))

    def set_selected(self, track_id: int | None) -> None:
        """Outline this person's box (None: nobody)."""
        self.selected = track_id
        self._update_overlay()

    def selected_box_points(self) -> np.ndarray:
        """(K, 2) outline of the selected person's box now drawn (for tests)."""
        x, y = self._selected_box.getData()
        return np.zeros((0, 2)) if x is None else np.stack([x, y], axis=1)

    def set_display(self, display: DisplaySettings) -> None:
        self.set_show_labels(display.show_labels)
        self.set_show_boxes(display.show_boxes)

    def _show_runner_settings(self, settings: RunnerSettings) -> None:
        self.set_box_drawing(settings.use_box)
        if settings.box is not None and settings.box != self.box():
            self.set_box(settings.box)
        elif settings.box is None and self.roi is not None:  # undone back to no box
            self.viewbox.removeItem(self.roi)
            self.roi = None

    def grab_image(self):
        """The view as it is on screen (QPixmap)."""
        return self.graphics.grab()

    def overlay_points(self) -> np.ndarray:
        """(N*J, 2) joint positions currently drawn (for tests)."""
        data = self._joints.getData()
        if data[0] is None:
            return np.zeros((0, 2))
        return np.stack([np.asarray(data[0]), np.asarray(data[1])], axis=1)

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _pen(rgb: tuple[int, int, int], width: float) -> QPen:
        pen = pg.mkPen(QColor(*rgb), width=width)
        pen.setCosmetic(True)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        return pen

    def _roi_changed(self) -> None:
        self.sigBoxChanged.emit(self.box())

    def _update_overlay(self) -> None:
        poses, js = self.current_poses, self.joint_set
        people = poses.people if poses is not None and self.current_frame is not None else []
        segs: dict[str, list[np.ndarray]] = {s: [] for s in _SIDES}
        pts: list[np.ndarray] = []
        brushes: list[QColor] = []
        box_segs: list[np.ndarray] = []
        for person in people:
            kp = np.asarray(person.keypoints_2d, dtype=float)
            if kp.ndim != 2 or kp.shape[0] == 0:
                continue
            n = kp.shape[0]
            pts.append(kp[:, :2])
            if js is not None and js.num == n:
                for a, b in js.bones:
                    segs[js.bone_side((a, b))].append(kp[[a, b], :2])
                brushes.extend(QColor(*colors.SIDE_RGB[js.side(j)]) for j in range(n))
            else:
                brushes.extend(QColor(*colors.SIDE_RGB["centre"]) for _ in range(n))
            x, y, w, h = (float(v) for v in person.bbox)
            corners = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
            box_segs.append(corners[[0, 1, 1, 2, 2, 3, 3, 0]])
        for side in _SIDES:
            if segs[side]:
                arr = np.concatenate(segs[side])
                self._bones[side].setData(arr[:, 0], arr[:, 1])
            else:
                self._bones[side].setData([], [])
        if pts:
            allp = np.concatenate(pts)
            self._joints.setData(pos=allp, brush=brushes)
        else:
            self._joints.setData([], [])
        if box_segs and self._show_boxes:
            arr = np.concatenate(box_segs)
            self._boxes.setData(arr[:, 0], arr[:, 1])
        else:
            self._boxes.setData([], [])
        chosen = next((p for p in people if p.track_id == self.selected), None)
        if chosen is not None:
            x, y, w, h = (float(v) for v in chosen.bbox)
            self._selected_box.setData([x, x + w, x + w, x, x], [y, y, y + h, y + h, y])
        else:
            self._selected_box.setData([], [])
        self._update_ids(people)
        self._update_labels(people)

    def _update_ids(self, people: list) -> None:
        shown = people if self._show_boxes else []
        texts = []
        for p in shown:
            label = score_label(p.track_id, float(p.det_score), float(p.score))
            texts.append((label, float(p.bbox[0]), float(p.bbox[1])))
        self._show_texts(self._id_items, texts, self._new_id_item)
        # a box at the picture's top edge (the whole frame): its label inside, not cut off
        room = ID_LABEL_PX * abs(float(self.viewbox.viewPixelSize()[1]))
        for item, p in zip(self._id_items, shown, strict=False):
            item.setAnchor((0, 0) if float(p.bbox[1]) < room else (0, 1))
        scored = any(np.isfinite(p.score) or np.isfinite(p.det_score) for p in shown)
        self.legend.setVisible(scored)
        if scored:
            self._place_legend()

    def _update_labels(self, people: list) -> None:
        js = self.joint_set
        wanted: list[tuple[str, float, float]] = []
        if self._show_labels and js is not None:
            for p in people:
                kp = np.asarray(p.keypoints_2d, dtype=float)
                if kp.shape[0] != js.num:
                    continue
                wanted.extend((js.joints[j], kp[j, 0], kp[j, 1]) for j in range(js.num))
        self._show_texts(self._label_items, wanted, self._new_label_item)

    def _show_texts(
        self,
        pool: list[pg.TextItem],
        texts: list[tuple[str, float, float]],
        new_item: Callable[[], pg.TextItem],
    ) -> None:
        """Show (text, x, y) with the pool's items, growing it as needed and hiding the rest:
        items are reused across frames, never re-created."""
        while len(pool) < len(texts):
            item = new_item()
            self.viewbox.addItem(item, ignoreBounds=True)
            pool.append(item)
        for i, item in enumerate(pool):
            if i < len(texts):
                text, x, y = texts[i]
                item.setText(text)
                item.setPos(QPointF(x, y))
                item.show()
            else:
                item.hide()

    @staticmethod
    def _new_id_item() -> pg.TextItem:
        item = pg.TextItem(color=(11, 14, 21), fill=pg.mkBrush(*colors.BOX_RGB), anchor=(0, 1))
        font = QFont()
        font.setBold(True)
        font.setPointSize(10)
        item.setFont(font)
        item.setZValue(12)
        item.setToolTip(SCORE_TIP)
        return item

    @staticmethod
    def _new_label_item() -> pg.TextItem:
        # light text on a dark, nearly opaque backing: readable on light walls too
        item = pg.TextItem(
            color=colors.LABEL_RGB, fill=pg.mkBrush(*colors.LABEL_BACK_RGBA), anchor=(-0.1, 0.5)
        )
        font = QFont()
        font.setPointSize(8)
        item.setFont(font)
        item.setZValue(13)
        return item

    def _place_hint(self) -> None:
        r = self.graphics.rect()
        w = min(r.width() - 40, 640)
        h = min(r.height() - 40, 200)
        self.hint.setGeometry(
            int(r.x() + (r.width() - w) / 2), int(r.y() + (r.height() - h) / 2), int(w), int(h)
        )

    def _place_legend(self) -> None:
        r = self.graphics.rect()
        natural = self.legend.fontMetrics().horizontalAdvance(self.legend.text()) + 16
        self.legend.setFixedWidth(max(60, min(natural, r.width() - 16)))
        self.legend.setFixedHeight(self.legend.heightForWidth(self.legend.width()))
        self.legend.move(8, max(0, r.height() - self.legend.height() - 6))

    def _place_nobody(self, *_args) -> None:
        if self.nobody.isVisible():
            self.nobody.place()

    def picture_rect(self) -> QRectF | None:
        """Where the picture is drawn, in the graphics view's pixels (None: no picture)."""
        if self._image_shape is None:
            return None
        h, w = self._image_shape
        scene = self.viewbox.mapViewToScene(QRectF(0, 0, w, h))
        return self.graphics.mapFromScene(scene).boundingRect().toRectF()

    def id_texts(self) -> list[str]:
        """The labels over the boxes shown now (for tests)."""
        return [item.toPlainText() for item in self._id_items if item.isVisible()]

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_hint()
        self._place_legend()
        if self.nobody.isVisible():
            self.nobody.place()
