"""Status strip: FPS, per-stage milliseconds, device, dropped frames, and a latency plot."""

from __future__ import annotations

import time
from collections import deque

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from posescope.core.session import Session
from posescope.core.session_types import FrameResult, Model
from posescope.gui import colors
from posescope.gui.elide import ElidedLabel

STAGES: tuple[str, ...] = ("detect", "crop", "model", "decode", "smooth", "total")
HISTORY = 240
# when the row is too narrow these give way, whole, in this order (the main readouts stay)
GIVE_WAY: tuple[str, ...] = ("latency", "crop", "decode", "smooth", "detect", "plot")


# InferenceModel.form -> what the device badge says, and its tooltip
ENGINE_FORMS = {
    "onnxruntime": ("onnxruntime", "onnxruntime, CPU provider (the default on a CPU)"),
    "onnxruntime-cuda": ("onnxruntime", "onnxruntime, CUDA provider"),
    "onednn": ("oneDNN", "torch engine: fused oneDNN program"),
    "torchscript": ("TorchScript", "traced TorchScript (the CPU fallback form)"),
    "compiled": ("compiled", "torch.compile"),
    "folded": ("", "folded network, eager"),
}


class StatusPanel(QWidget):
    """Shows how fast the pipeline runs; `add_timings` after each computed frame."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("StatusPanel")
        self._stamps: deque[float] = deque(maxlen=60)
        self._total: deque[float] = deque(maxlen=HISTORY)
        self._model: deque[float] = deque(maxlen=HISTORY)
        self.fps = 0.0
        self.dropped_total = 0
        self.playing = False  # frames per second are counted while playing only

        self.fps_label = QLabel("— fps")
        self.fps_label.setToolTip("Frames shown per second while playing")
        self.fps_label.setObjectName("FpsLabel")
        self.fps_label.setMinimumWidth(80)
        self.stage_labels: dict[str, QLabel] = {}
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 2, 10, 2)
        lay.setSpacing(14)
        lay.addWidget(self.fps_label)
        for stage in STAGES:
            # the main readouts keep a few characters; the others may shrink away (narrow window)
            main = stage in ("model", "total")
            lab = ElidedLabel(f"{stage} —", min_chars=14 if main else 0, all_or_nothing=not main)
            lab.setObjectName("StageLabel")
            lab.setToolTip(f"{stage} stage, milliseconds per frame")
            self.stage_labels[stage] = lab
            lay.addWidget(lab)
        self.dropped_label = ElidedLabel("")
        self.dropped_label.setObjectName("StageLabel")
        self.dropped_label.setToolTip("Frames skipped because the model could not keep up")
        lay.addWidget(self.dropped_label)
        lay.addStretch(1)
        self.activity_label = ElidedLabel("")
        self.activity_label.setObjectName("ActivityLabel")
        lay.addWidget(self.activity_label)
        self.device_label = QLabel("no model")
        self.device_label.setObjectName("DeviceBadge")
        self.device_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.device_label.setFixedHeight(22)
        lay.addWidget(self.device_label)

        self.plot = pg.PlotWidget(background=colors.PANEL)
        self.plot.setObjectName("LatencyPlot")
        self.plot.setFixedHeight(30)
        self.plot.setMinimumWidth(60)
        self.plot.setMaximumWidth(220)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        pi = self.plot.getPlotItem()
        pi.hideAxis("bottom")
        pi.hideAxis("left")
        pi.setContentsMargins(0, 1, 0, 1)
        pi.getViewBox().setDefaultPadding(0.05)
        self.total_curve = pi.plot(pen=pg.mkPen(colors.ACCENT, width=1.5))
        self.model_curve = pi.plot(pen=pg.mkPen(colors.SUCCESS, width=1))
        self.plot.setToolTip("Latency per frame (blue: total, green: model)")
        self.latency_label = ElidedLabel("", all_or_nothing=True)
        self.latency_label.setObjectName("StageLabel")
        lay.addWidget(self.latency_label)
        lay.addWidget(self.plot)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit_width()

    def fit_width(self) -> None:
        """Readouts of less importance give way, whole (`GIVE_WAY` order), when the row is
        narrower than everything it shows: no stubs like 'cro…', and the window never has to
        widen for its status bar."""
        lay = self.layout()
        parts = {"latency": self.latency_label, "plot": self.plot}
        parts.update({s: self.stage_labels[s] for s in STAGES})
        for name in GIVE_WAY:
            parts[name].setMaximumWidth(220 if name == "plot" else 16777215)
        m = lay.contentsMargins()
        room = self.width() - m.left() - m.right()
        kids = self.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly)
        shown = [w for w in kids if w.isVisibleTo(self)]
        need = sum(_width(w) + lay.spacing() for w in shown)
        for name in GIVE_WAY:
            if need <= room:
                break
            w = parts[name]
            if w.isVisibleTo(self):
                need -= _width(w) + lay.spacing()
                w.setMaximumWidth(0)

    def bind(self, session: Session) -> None:
        """Follow `session`: the running model's device, each frame's timings, a new source."""

        def shown(result: FrameResult) -> None:
            if result.poses is not None:
                self.add_timings(result.poses.timings_ms, result.latency_ms, result.dropped)

        def model(m: Model) -> None:
            self.set_device(m.estimator.device, m.settings.fp16, m.estimator.model.form)

        session.events.frame_shown.connect(shown)
        session.events.model_changed.connect(model)
        session.events.source_changed.connect(lambda _info: self.reset())
        session.events.playing_changed.connect(self.set_playing)

    def set_playing(self, playing: bool) -> None:
        """Paused: no frame rate (a stale one would claim frames are still coming)."""
        self.playing = bool(playing)
        self._stamps.clear()
        if not playing:
            self.fps = 0.0
            self.fps_label.setText("— fps")

    def set_activity(self, text: str) -> None:
        """What the workers are busy with ('' when idle)."""
        self.activity_label.setText(text)

    def set_device(self, device: str | None, fp16: bool = False, form: str | None = None) -> None:
        if not device:
            self.device_label.setText("no model")
            self.device_label.setToolTip("")
            return
        short, long = ENGINE_FORMS.get(form or "", ("", ""))
        parts = [device] + (["fp16"] if fp16 else []) + ([short] if short else [])
        self.device_label.setText(" · ".join(parts))
        self.device_label.setToolTip(
            f"The network runs on {device}" + (f" as {long}" if long else "")
        )

    def add_timings(self, timings_ms: dict[str, float] | None, latency_ms: float, dropped: int = 0):
        """Record one computed frame: its stage timings and the request-to-result latency."""
        now = time.perf_counter()
        self._stamps.append(now)
        timings = timings_ms or {}
        if not self.playing:
            pass  # a seek or a step: no rate to tell
        elif len(self._stamps) >= 2 and self._stamps[-1] > self._stamps[0]:
            self.fps = (len(self._stamps) - 1) / (self._stamps[-1] - self._stamps[0])
            self.fps_label.setText(f"{self.fps:5.1f} fps")
        elif timings.get("total", latency_ms) > 0:  # one frame so far: what the pipeline allows
            self.fps = 1000.0 / float(timings.get("total", latency_ms))
            self.fps_label.setText(f"≤{self.fps:4.1f} fps")
        for stage, lab in self.stage_labels.items():
            v = timings.get(stage)
            lab.setText(f"{stage} {v:.1f} ms" if v is not None else f"{stage} —")
            lab.setVisible(v is not None or stage in ("model", "total"))
        self._total.append(float(timings.get("total", latency_ms)))
        self._model.append(float(timings.get("model", np.nan)))
        self.dropped_total += int(dropped)
        text = f"dropped {self.dropped_total}" if self.dropped_total else ""
        self.dropped_label.setText(text)
        # whole or nothing: "dropped…" without its number says nothing
        self.dropped_label.setMinimumWidth(self.dropped_label.fontMetrics().horizontalAdvance(text))
        total = np.asarray(self._total, dtype=float)
        self.total_curve.setData(total)
        self.latency_label.setText(f"max {np.nanmax(total):.0f} ms" if len(total) else "")
        model = np.asarray(self._model, dtype=float)
        if np.isfinite(model).any():
            self.model_curve.setData(np.nan_to_num(model))
        self.fit_width()  # the texts changed width

    def reset(self) -> None:
        self._stamps.clear()
        self._total.clear()
        self._model.clear()
        self.dropped_total = 0
        self.fps = 0.0
        self.fps_label.setText("— fps")
        self.dropped_label.setText("")
        self.dropped_label.setMinimumWidth(0)
        for stage, lab in self.stage_labels.items():
            lab.setText(f"{stage} —")
        self.total_curve.setData([])
        self.latency_label.setText("")
        self.model_curve.setData([])


def _width(w: QWidget) -> int:
    """The width the row's layout gives `w` when there is room."""
    return min(max(w.sizeHint().width(), w.minimumSizeHint().width()), w.maximumWidth())
