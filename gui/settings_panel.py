"""Settings: device and precision, flip test, focal length, people (detector or a drawn box),
smoothing, and what the overlay shows. Emits what changed; the window decides what to rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QLabel,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

DEVICES: tuple[tuple[str, str], ...] = (
    ("auto", "Auto"),
    ("cpu", "CPU"),
    ("cuda", "CUDA"),
    ("mps", "MPS (Apple)"),
)


@dataclass
class ViewerSettings:
    device: str = "auto"
    fp16: bool = False
    flip: bool = False
    compile: bool = False
    focal: float = 1500.0
    smoothing: bool = True
    strength: float = 0.5
    use_box: bool = False
    show_labels: bool = False
    show_boxes: bool = True


class SettingsPanel(QScrollArea):
    """A form over `ViewerSettings`."""

    sigModelSettingsChanged = Signal()  # device, fp16, flip, focal: the estimator is rebuilt
    sigRunnerSettingsChanged = Signal()  # smoothing, people: the runner is rebuilt
    sigDisplayChanged = Signal()  # labels, boxes
    sigResetBox = Signal()

    def __init__(self, settings: ViewerSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("SettingsPanel")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        s = settings or ViewerSettings()
        page = QWidget()
        page.setObjectName("ArchPage")
        v = QVBoxLayout(page)
        v.setContentsMargins(10, 10, 10, 10)
        v.setSpacing(10)

        # -- model
        model, form = self._card("Model")
        self.device = QComboBox()
        for key, name in DEVICES:
            self.device.addItem(name, key)
        self.device.setCurrentIndex(max(0, [k for k, _ in DEVICES].index(s.device)))
        self.device.setToolTip("Where the network runs; Auto picks CUDA or MPS when present")
        form.addRow("Device", self.device)
        self.fp16 = QCheckBox("Half precision")
        self.fp16.setChecked(s.fp16)
        self.fp16.setToolTip("Faster on GPUs; ignored on CPU")
        form.addRow("", self.fp16)
        self.flip = QCheckBox("Flip test")
        self.flip.setToolTip("Average the pose with the pose of the mirrored crop (slower)")
        self.flip.setChecked(s.flip)
        form.addRow("", self.flip)
        self.compile = QCheckBox("Compile (torch.compile)")
        self.compile.setToolTip(
            "torch.compile instead of the default form: on a CPU the default (oneDNN) form is"
            " faster; the first build takes ~20 s longer and needs a C++ compiler"
        )
        self.compile.setChecked(s.compile)
        form.addRow("", self.compile)
        self.focal = QDoubleSpinBox()
        self.focal.setRange(100.0, 20000.0)
        self.focal.setDecimals(0)
        self.focal.setSingleStep(50.0)
        self.focal.setSuffix(" px")
        self.focal.setValue(s.focal)
        self.focal.setKeyboardTracking(False)
        self.focal.setToolTip("Camera focal length in pixels (the published demo uses 1500)")
        form.addRow("Focal length", self.focal)
        v.addWidget(model)

        # -- people
        people, form = self._card("People")
        self.detector_radio = QRadioButton("Detect people")
        self.box_radio = QRadioButton("Use a box I draw")
        group = QButtonGroup(self)
        group.addButton(self.detector_radio)
        group.addButton(self.box_radio)
        (self.box_radio if s.use_box else self.detector_radio).setChecked(True)
        form.addRow(self.detector_radio)
        form.addRow(self.box_radio)
        hint = QLabel("Shift+drag on the video to draw the box, then drag it or its corners.")
        hint.setObjectName("Dim")
        hint.setWordWrap(True)
        form.addRow(hint)
        self.reset_box = QPushButton("Reset box")
        self.reset_box.setObjectName("LinkButton")
        self.reset_box.clicked.connect(self.sigResetBox)
        form.addRow(self.reset_box)
        v.addWidget(people)

        # -- smoothing
        smooth, form = self._card("Smoothing")
        self.smoothing = QCheckBox("Smooth over time")
        self.smoothing.setToolTip("One-Euro filter per person and joint")
        self.smoothing.setChecked(s.smoothing)
        form.addRow(self.smoothing)
        self.strength = QSlider(Qt.Orientation.Horizontal)
        self.strength.setRange(0, 100)
        self.strength.setValue(round(s.strength * 100))
        self.strength.setToolTip("Light … heavy")
        form.addRow("Strength", self.strength)
        v.addWidget(smooth)

        # -- display
        disp, form = self._card("Display")
        self.labels = QCheckBox("Joint names")
        self.labels.setToolTip("Label every joint on the video")
        self.labels.setChecked(s.show_labels)
        self.boxes = QCheckBox("Person boxes and ids")
        self.boxes.setChecked(s.show_boxes)
        form.addRow(self.labels)
        form.addRow(self.boxes)
        v.addWidget(disp)
        v.addStretch(1)
        self.setWidget(page)

        for w in (self.device,):
            w.currentIndexChanged.connect(self.sigModelSettingsChanged)
        self.fp16.toggled.connect(self.sigModelSettingsChanged)
        self.flip.toggled.connect(self.sigModelSettingsChanged)
        self.compile.toggled.connect(self.sigModelSettingsChanged)
        self.focal.valueChanged.connect(self.sigModelSettingsChanged)
        self.detector_radio.toggled.connect(self._people_changed)
        self.smoothing.toggled.connect(self._smoothing_changed)
        self.strength.sliderReleased.connect(self.sigRunnerSettingsChanged)
        self.strength.valueChanged.connect(self._strength_changed)
        self.labels.toggled.connect(self.sigDisplayChanged)
        self.boxes.toggled.connect(self.sigDisplayChanged)
        self._people_changed()
        self.strength.setEnabled(s.smoothing)

    @staticmethod
    def _card(title: str) -> tuple[QFrame, QFormLayout]:
        card = QFrame()
        card.setObjectName("Card")
        v = QVBoxLayout(card)
        v.setContentsMargins(12, 10, 12, 12)
        t = QLabel(title.upper())
        t.setObjectName("CardTitle")
        v.addWidget(t)
        form = QFormLayout()
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(6)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        v.addLayout(form)
        return card, form

    def show_model_settings(self, model_settings: object) -> None:
        """Show the settings a model runs with (after a rebuild with others failed)."""
        widgets = (self.device, self.fp16, self.flip, self.compile, self.focal)
        blocked = [w.blockSignals(True) for w in widgets]
        keys = [k for k, _ in DEVICES]
        device = str(getattr(model_settings, "device", "auto"))
        if device in keys:
            self.device.setCurrentIndex(keys.index(device))
        self.fp16.setChecked(bool(getattr(model_settings, "fp16", False)))
        self.flip.setChecked(bool(getattr(model_settings, "flip", False)))
        self.compile.setChecked(bool(getattr(model_settings, "compile", False)))
        self.focal.setValue(float(getattr(model_settings, "focal", 1500.0)))
        for w, b in zip(widgets, blocked, strict=True):
            w.blockSignals(b)

    def settings(self) -> ViewerSettings:
        return ViewerSettings(
            device=str(self.device.currentData()),
            fp16=self.fp16.isChecked(),
            flip=self.flip.isChecked(),
            compile=self.compile.isChecked(),
            focal=float(self.focal.value()),
            smoothing=self.smoothing.isChecked(),
            strength=self.strength.value() / 100.0,
            use_box=self.box_radio.isChecked(),
            show_labels=self.labels.isChecked(),
            show_boxes=self.boxes.isChecked(),
        )

    def _people_changed(self) -> None:
        self.reset_box.setEnabled(self.box_radio.isChecked())
        self.sigRunnerSettingsChanged.emit()

    def _smoothing_changed(self) -> None:
        self.strength.setEnabled(self.smoothing.isChecked())
        self.sigRunnerSettingsChanged.emit()

    def _strength_changed(self) -> None:
        if not self.strength.isSliderDown():  # keyboard / wheel changes
            self.sigRunnerSettingsChanged.emit()
