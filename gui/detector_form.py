"""The detector rows of Settings ▸ People: which detector finds people (RTMDet-nano, YOLOX-tiny,
HOG, none), a local ONNX file of it, the whole-frame fallback, and what runs now (with a
Download button when weights are missing). A view of `session.runner_settings` and
`session.people.status`."""

from __future__ import annotations

import os

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from posescope.core.session import Session
from posescope.core.session_people import DetectorStatus
from posescope.core.session_types import RunnerSettings

# combo entries: (RunnerSettings.detector, label); None is the default (RTMDet-nano)
CHOICES: tuple[tuple[str | None, str], ...] = (
    (None, "RTMDet-nano (default)"),
    ("yolox", "YOLOX-tiny (more accurate)"),
    ("hog", "HOG (slow, many false boxes)"),
    ("none", "None: the whole frame"),
)
RUNNING = {"rtmdet": "RTMDet-nano", "yolox": "YOLOX-tiny", "hog": "HOG", "box": "your box"}
ONNX_FILTER = "ONNX detector (*.onnx);;All files (*)"


def choose_model_file(parent: QWidget | None, session: Session, name: str) -> str | None:
    """Ask for a local ONNX file of detector `name` and use it; the path, or None."""
    path, _ = QFileDialog.getOpenFileName(
        parent, f"Choose a {RUNNING.get(name, name)} ONNX file", os.path.expanduser("~"),
        ONNX_FILTER,
    )  # fmt: skip
    if path:
        session.people.choose_detector(name, path)
        return path
    return None


def _index(detector: str | None) -> int:
    keys = [k for k, _ in CHOICES]
    return keys.index(detector) if detector in keys else 0  # 'rtmdet' by name: the first


class DetectorForm:
    """Adds its rows to the People card's form."""

    def __init__(self, session: Session, form: QFormLayout) -> None:
        self.session = session
        self.combo = QComboBox()
        self.combo.setObjectName("DetectorChoice")
        self.combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.combo.setMinimumContentsLength(14)
        for key, label in CHOICES:
            self.combo.addItem(label, key)
        self.combo.setToolTip(
            "What finds the people to estimate: RTMDet-nano (fast, the default), YOLOX-tiny "
            "(more accurate, ~4x the cost), OpenCV's HOG (slow), or none (the whole frame)"
        )
        form.addRow("Detector", self.combo)

        self.file_label = QLabel("")
        self.file_label.setObjectName("Dim")
        self.file_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.choose = QPushButton("Model file…")
        self.choose.setObjectName("LinkButton")
        self.choose.setToolTip("A local ONNX file of this detector (like --detector-model FILE)")
        self.clear = QPushButton("Clear")
        self.clear.setObjectName("LinkButton")
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(self.file_label, 1)
        h.addWidget(self.choose)
        h.addWidget(self.clear)
        form.addRow("Weights", row)

        self.whole_frame = QCheckBox("Whole frame when nobody is found")
        self.whole_frame.setToolTip(
            "When the detector finds no one, estimate on the whole frame (as MMPose does), "
            "so a person filling the view still gets a pose"
        )
        form.addRow(self.whole_frame)

        self.status = QLabel("")
        self.status.setObjectName("DetectorStatus")
        self.status.setWordWrap(True)
        self.download = QPushButton("Download")
        self.download.setObjectName("LinkButton")
        self.download.hide()
        form.addRow(self.status)
        form.addRow(self.download)

        self.combo.currentIndexChanged.connect(self._chosen)
        self.choose.clicked.connect(self._choose_file)
        self.clear.clicked.connect(self._clear_file)
        self.whole_frame.toggled.connect(
            lambda on: session.set_runner_settings(whole_frame=bool(on))
        )
        self.download.clicked.connect(self._download)
        session.events.runner_settings_changed.connect(self.show_settings)
        people = session.people
        people.events.detector_status.connect(self.show_status)
        people.events.download_changed.connect(lambda _d: self._update_download())
        self.show_settings(session.runner_settings)
        self.show_status(people.status)

    # ------------------------------------------------------------ session -> widgets

    def show_settings(self, settings: RunnerSettings) -> None:
        for w in (self.combo, self.whole_frame):
            w.blockSignals(True)
        self.combo.setCurrentIndex(_index(settings.detector))
        self.whole_frame.setChecked(settings.whole_frame)
        for w in (self.combo, self.whole_frame):
            w.blockSignals(False)
        cnn = settings.detector_name in ("rtmdet", "yolox")
        model = settings.detector_model
        self.file_label.setText(os.path.basename(model) if model else "from the cache")
        self.file_label.setToolTip(model or "")
        self.file_label.setEnabled(cnn)
        self.choose.setEnabled(cnn)
        self.clear.setVisible(bool(model))
        self.combo.setEnabled(not settings.use_box)
        self.whole_frame.setEnabled(not settings.use_box)

    def show_status(self, status: DetectorStatus) -> None:
        if status.running == "box":
            text = "Running: your box (no detector)"
        elif status.running is not None:
            text = f"Running: {RUNNING.get(status.running, status.running)}"
        elif status.wanted == "none" and status.problem is None:
            text = "Running: no detector (the whole frame, when on)"
        else:
            text = "Running: the whole frame"
            if status.missing_weights:
                text += f" (no {RUNNING[status.wanted]} weights)"
            elif status.problem is not None:
                text += f" ({RUNNING.get(status.wanted, status.wanted)} failed)"
        self.status.setText(text)
        self.status.setToolTip(str(status.problem) if status.problem else "")
        self._update_download()

    def _update_download(self) -> None:
        people = self.session.people
        name = people.status.missing_weights
        self.download.setVisible(name is not None and not people.downloading)
        if name is not None:
            self.download.setText(f"Download {RUNNING[name]} weights")

    # ------------------------------------------------------------ widgets -> session

    def _chosen(self) -> None:
        detector = self.combo.currentData()
        current = self.session.runner_settings
        same_kind = (detector or "rtmdet") == current.detector_name
        model = current.detector_model if same_kind else None  # a file is of one kind
        self.session.people.choose_detector(detector, model)

    def _choose_file(self) -> None:
        name = self.session.runner_settings.detector_name
        choose_model_file(self.combo.window(), self.session, name)

    def _clear_file(self) -> None:
        self.session.people.choose_detector(self.session.runner_settings.detector, None)

    def _download(self) -> None:
        status = self.session.people.status
        if status.missing_weights:
            self.session.people.request_download(status.missing_weights, status.explicit)
