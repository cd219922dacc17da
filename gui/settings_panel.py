"""Settings: device and precision, flip test, focal length, people (detector or a drawn box),
smoothing, and what the overlay shows. A view of the session's settings: a widget change is
handed to the session, and the widgets follow the session's events (as napari's QtDims
follows Dims); the panel never holds the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
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

from posescope.core.session import Session
from posescope.core.session_types import DisplaySettings, Model, ModelSettings, RunnerSettings
from posescope.gui.detector_form import DetectorForm

DEVICES: tuple[tuple[str, str], ...] = (
    ("auto", "Auto"),
    ("cpu", "CPU"),
    ("cuda", "CUDA"),
    ("mps", "MPS (Apple)"),
)
BACKEND_CHOICES: tuple[tuple[str, str], ...] = (
    ("auto", "Auto (the faster here)"),
    ("torch", "torch engine"),
    ("onnxruntime", "onnxruntime"),
)


# the input scale: "auto" is what the file's statistics say (filled in when a model runs)
INPUT_SCALE_CHOICES: tuple[tuple[str, str], ...] = (
    ("auto", "As the file says"),
    ("0-255", "0..255 pixels (published)"),
    ("0-1", "0..1 (pixels / 255)"),
)


@dataclass
class ViewerSettings:
    device: str = "auto"
    fp16: bool = False
    flip: bool = False
    compile: bool = False
    backend: str = "auto"
    input_scale: str = "auto"
    focal: float = 1500.0
    smoothing: bool = True
    strength: float = 0.5
    use_box: bool = False
    show_labels: bool = False
    show_boxes: bool = True


class SettingsPanel(QScrollArea):
    """A form over the session's model, runner and display settings."""

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("SettingsPanel")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.session = session
        s = _flat(session.model_settings, session.runner_settings, session.display)
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
        self.backend = QComboBox()
        for key, name in BACKEND_CHOICES:
            self.backend.addItem(name, key)
        self.backend.setCurrentIndex(max(0, [k for k, _ in BACKEND_CHOICES].index(s.backend)))
        self.backend.setToolTip(
            "Which runtime computes the network. Auto: onnxruntime on a CPU (measured faster"
            " there; its first build exports the network, ~3 s, then cached), the torch"
            " engine on a GPU or with Compile"
        )
        form.addRow("Inference", self.backend)
        self.input_scale = QComboBox()
        for key, name in INPUT_SCALE_CHOICES:
            self.input_scale.addItem(name, key)
        self.input_scale.setCurrentIndex(
            max(0, [k for k, _ in INPUT_SCALE_CHOICES].index(s.input_scale))
        )
        self.input_scale.setToolTip(
            "The pixel scale the network is fed, before the ImageNet mean and std. The"
            " published code feeds 0..255 pixels; some re-implementations divide by 255."
            " PoseScope reads which one a file was trained with from the BatchNorm after its"
            " first convolution; choose here only to override it (for this file)"
        )
        form.addRow("Input", self.input_scale)
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
        self.reset_box.clicked.connect(session.reset_box)
        form.addRow(self.reset_box)
        self.detector_form = DetectorForm(session, form)
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

        self.device.currentIndexChanged.connect(self._model_changed)
        self.backend.currentIndexChanged.connect(self._model_changed)
        self.input_scale.currentIndexChanged.connect(self._model_changed)
        for box in (self.fp16, self.flip, self.compile):
            box.toggled.connect(self._model_changed)
        self.focal.valueChanged.connect(self._model_changed)
        self.detector_radio.toggled.connect(self._runner_changed)
        self.smoothing.toggled.connect(self._runner_changed)
        self.strength.sliderReleased.connect(self._runner_changed)
        self.strength.valueChanged.connect(self._strength_changed)
        self.labels.toggled.connect(self._display_changed)
        self.boxes.toggled.connect(self._display_changed)
        self.reset_box.setEnabled(s.use_box)
        self.strength.setEnabled(s.smoothing)
        ev = session.events
        ev.model_settings_changed.connect(self.show_model_settings)
        ev.model_changed.connect(self._show_input_read)
        ev.runner_settings_changed.connect(self._show_runner_settings)
        ev.display_changed.connect(self._show_display)

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

    def show_model_settings(self, settings: ModelSettings) -> None:
        """Show the settings the session holds (after a rebuild with others failed, too)."""
        widgets = (
            self.device, self.fp16, self.flip, self.compile, self.backend, self.input_scale,
            self.focal,
        )  # fmt: skip
        blocked = [w.blockSignals(True) for w in widgets]
        keys = [k for k, _ in DEVICES]
        if settings.device in keys:
            self.device.setCurrentIndex(keys.index(settings.device))
        backends = [k for k, _ in BACKEND_CHOICES]
        if settings.backend in backends:
            self.backend.setCurrentIndex(backends.index(settings.backend))
        scales = [k for k, _ in INPUT_SCALE_CHOICES]
        if settings.input_scale in scales:
            self.input_scale.setCurrentIndex(scales.index(settings.input_scale))
        self.fp16.setChecked(settings.fp16)
        self.flip.setChecked(settings.flip)
        self.compile.setChecked(settings.compile)
        self.focal.setValue(settings.focal)
        for w, b in zip(widgets, blocked, strict=True):
            w.blockSignals(b)

    def _show_input_read(self, model: Model | None) -> None:
        """'As the file says (0..255)': what the running network's file says, and why."""
        read = model.base_ident.input if model is not None else None
        if read is None:
            self.input_scale.setItemText(0, INPUT_SCALE_CHOICES[0][1])
            return
        said = "0..255" if read.scale == "0-255" else "0..1"
        how = "read" if read.how == "read" else "assumed"
        self.input_scale.setItemText(0, f"As the file says ({said}, {how})")
        self.input_scale.setItemData(0, read.describe(), Qt.ItemDataRole.ToolTipRole)

    def _show_runner_settings(self, settings: RunnerSettings) -> None:
        widgets = (self.box_radio, self.detector_radio, self.smoothing, self.strength)
        blocked = [w.blockSignals(True) for w in widgets]
        (self.box_radio if settings.use_box else self.detector_radio).setChecked(True)
        self.smoothing.setChecked(settings.smoothing)
        if not self.strength.isSliderDown():
            self.strength.setValue(round(settings.strength * 100))
        for w, b in zip(widgets, blocked, strict=True):
            w.blockSignals(b)
        self.reset_box.setEnabled(settings.use_box)
        self.strength.setEnabled(settings.smoothing)

    def _show_display(self, display: DisplaySettings) -> None:
        for box, value in ((self.labels, display.show_labels), (self.boxes, display.show_boxes)):
            blocked = box.blockSignals(True)
            box.setChecked(value)
            box.blockSignals(blocked)

    def settings(self) -> ViewerSettings:
        """What the session holds, flat."""
        s = self.session
        return _flat(s.model_settings, s.runner_settings, s.display)

    # -- widgets into the session

    def _model_changed(self) -> None:
        self.session.set_model_settings(
            device=str(self.device.currentData()),
            fp16=self.fp16.isChecked(),
            flip=self.flip.isChecked(),
            compile=self.compile.isChecked(),
            backend=str(self.backend.currentData()),
            input_scale=str(self.input_scale.currentData()),
            focal=float(self.focal.value()),
        )

    def _runner_changed(self) -> None:
        self.session.set_runner_settings(
            use_box=self.box_radio.isChecked(),
            smoothing=self.smoothing.isChecked(),
            strength=self.strength.value() / 100.0,
        )

    def _strength_changed(self) -> None:
        if not self.strength.isSliderDown():  # keyboard / wheel changes
            self._runner_changed()

    def _display_changed(self) -> None:
        self.session.set_display(
            show_labels=self.labels.isChecked(), show_boxes=self.boxes.isChecked()
        )


def _flat(model: ModelSettings, runner: RunnerSettings, display: DisplaySettings) -> ViewerSettings:
    return ViewerSettings(
        device=model.device,
        fp16=model.fp16,
        flip=model.flip,
        compile=model.compile,
        backend=model.backend,
        input_scale=model.input_scale,
        focal=model.focal,
        smoothing=runner.smoothing,
        strength=runner.strength,
        use_box=runner.use_box,
        show_labels=display.show_labels,
        show_boxes=display.show_boxes,
    )
