"""What the checkpoint is, and why we think so.

Shows an `Identification` (core.identify): variant badge and confidence, family, evidence,
warnings, backbone stages, head layers (with an upsampling override), joints, depth bins,
heatmap size, parameters, GFLOPs and the facts about the file. Reads the verdict through
`Identification.to_dict()` so it shows exactly what `posescope inspect --json` prints.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from posescope.core.escape import escape
from posescope.gui import colors

FAMILY_NAMES = {
    "convnextpose": "ConvNeXtPose",
    "posenet": "3DMPPE PoseNet",
    "rootnet": "3DMPPE RootNet",
    "unknown": "not a pose network",
}

KEY_STYLES = {
    "modern": "modern  (deconv_layers_N.dwconv/norm/pwconv)",
    "legacy": "legacy  (deconv_layers_N.0/1/2)",
    "list": "list  (deconv_layers.i.*, all upsample)",
    "deconv": "3DMPPE  (deconv_layers.{0,3,6})",
}


def human_size(n: int | None) -> str:
    """Bytes as '14.2 MB'."""
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def human_count(n: int | None) -> str:
    """Parameter count as '3.53 M'."""
    if not n:
        return "—"
    if n >= 1e6:
        return f"{n / 1e6:.2f} M"
    if n >= 1e3:
        return f"{n / 1e3:.1f} k"
    return str(n)


def confidence_color(conf: float) -> str:
    if conf >= 0.9:
        return colors.SUCCESS
    if conf >= 0.6:
        return colors.WARNING
    return colors.ERROR


def _label(text: str, name: str | None = None, wrap: bool = False) -> QLabel:
    # Names come from the file: never markup, never raw control characters (core/escape.py).
    lab = QLabel(escape(text))
    lab.setTextFormat(Qt.TextFormat.PlainText)
    if name:
        lab.setObjectName(name)
    lab.setWordWrap(wrap)
    lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return lab


class _Card(QFrame):
    """A titled section."""

    def __init__(self, title: str, subtitle: str = "") -> None:
        super().__init__()
        self.setObjectName("Card")
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(12, 10, 12, 12)
        self.body.setSpacing(6)
        head = QHBoxLayout()
        head.setSpacing(6)
        t = _label(title.upper(), "CardTitle")
        head.addWidget(t)
        head.addStretch(1)
        if subtitle:
            head.addWidget(_label(subtitle, "CardSubtitle"))
        self.body.addLayout(head)


class ArchPanel(QScrollArea):
    """The architecture panel (a right dock's widget)."""

    sigUpsampleChanged = Signal(object)  # tuple[bool, ...] chosen by the user
    sigUpsampleReset = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ArchPanel")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setMinimumWidth(240)  # narrow windows: it scrolls rather than widening them
        self.data: dict[str, Any] | None = None
        self.rootnet: dict[str, Any] | None = None
        self.badge: QLabel | None = None
        self.title_label: QLabel | None = None
        self.warning_labels: list[QLabel] = []
        self.evidence_labels: list[QLabel] = []
        self.upsample_boxes: list[QCheckBox] = []
        self.fields: dict[str, QLabel] = {}
        self._overridden = False
        self.comparison: Any | None = None  # A/B: makes the side-by-side card (compare_panel)
        self.show_empty()

    # ------------------------------------------------------------------ public API

    def show_empty(self) -> None:
        """No checkpoint yet: say what to do."""
        self.data = None
        self._reset_refs()
        page, layout = self._page()
        card = _Card("Architecture")
        msg = _label(
            "No checkpoint loaded.\n\nDrop a ConvNeXtPose or 3DMPPE checkpoint on the window "
            "(or File ▸ Open checkpoint). PoseScope reads the tensors, names the network, "
            "and says why.",
            "Dim",
            wrap=True,
        )
        card.body.addWidget(msg)
        layout.addWidget(card)
        layout.addStretch(1)
        self.setWidget(page)

    def show_loading(self, name: str) -> None:
        """A checkpoint is being identified."""
        self._reset_refs()
        page, layout = self._page()
        card = _Card("Architecture")
        card.body.addWidget(_label(f"Reading {name} …", "Dim", wrap=True))
        bar = QProgressBar()
        bar.setRange(0, 0)
        bar.setTextVisible(False)
        bar.setFixedHeight(6)
        card.body.addWidget(bar)
        layout.addWidget(card)
        layout.addStretch(1)
        self.setWidget(page)

    def set_identification(
        self,
        ident: Any,
        overridden: bool = False,
        rootnet: Any | None = None,
        input_used: Any | None = None,
    ) -> None:
        """Fill the panel from an `Identification` (or its `to_dict()` dict); `input_used`:
        the `InputConvention` the network is fed, when it runs (else the file's is shown)."""
        data = ident.to_dict() if hasattr(ident, "to_dict") else dict(ident)
        if input_used is not None:
            data["input"] = input_used.to_dict()
        self.data = data
        self._overridden = overridden
        if rootnet is not None:
            self.rootnet = rootnet.to_dict() if hasattr(rootnet, "to_dict") else dict(rootnet)
        self._build()

    def set_rootnet(self, rootnet: Any | None) -> None:
        """Show (or clear) the RootNet used for absolute root depth."""
        if rootnet is None:
            self.rootnet = None
        else:
            self.rootnet = rootnet.to_dict() if hasattr(rootnet, "to_dict") else dict(rootnet)
        if self.data is not None:
            self._build()

    def set_comparison(self, make_card: Any | None) -> None:
        """A/B: `make_card()` builds the side-by-side card shown on top (None: not comparing)."""
        self.comparison = make_card
        if self.data is not None:
            self._build()

    def variant(self) -> str | None:
        return None if self.data is None else self.data.get("variant")

    def family(self) -> str | None:
        return None if self.data is None else self.data.get("family")

    def upsample(self) -> tuple[bool, ...]:
        return tuple(b.isChecked() for b in self.upsample_boxes)

    # ------------------------------------------------------------------ building

    def _reset_refs(self) -> None:
        self.badge = None
        self.title_label = None
        self.warning_labels = []
        self.evidence_labels = []
        self.upsample_boxes = []
        self.fields = {}

    def _page(self) -> tuple[QWidget, QVBoxLayout]:
        page = QWidget()
        page.setObjectName("ArchPage")
        layout = QVBoxLayout(page)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.setSpacing(10)
        return page, layout

    def _field(self, grid: QGridLayout, row: int, key: str, name: str, value: str) -> None:
        grid.addWidget(_label(name, "FieldName"), row, 0, Qt.AlignmentFlag.AlignTop)
        val = _label(value, "FieldValue", wrap=True)
        grid.addWidget(val, row, 1)
        self.fields[key] = val

    def _build(self) -> None:
        d = self.data or {}
        self._reset_refs()
        page, layout = self._page()
        if self.comparison is not None:
            layout.addWidget(self.comparison())
        layout.addWidget(self._summary_card(d))
        if d.get("warnings"):
            layout.addWidget(self._warnings_card(d["warnings"]))
        layout.addWidget(self._evidence_card(d.get("evidence") or []))
        if d.get("backbone", {}).get("depths"):
            layout.addWidget(self._backbone_card(d))
        if d.get("head", {}).get("channels"):
            layout.addWidget(self._head_card(d))
        layout.addWidget(self._output_card(d))
        if d.get("input"):
            layout.addWidget(self._input_card(d["input"]))
        layout.addWidget(self._file_card(d))
        layout.addWidget(self._root_card())
        layout.addStretch(1)
        self.setWidget(page)

    def _summary_card(self, d: dict[str, Any]) -> QFrame:
        card = QFrame()
        card.setObjectName("SummaryCard")
        v = QVBoxLayout(card)
        v.setContentsMargins(14, 12, 14, 12)
        v.setSpacing(8)
        top = QHBoxLayout()
        variant = d.get("variant")
        family = d.get("family") or "unknown"
        badge_text = variant or {"posenet": "PoseNet", "rootnet": "RootNet"}.get(family, "?")
        self.badge = QLabel(badge_text)
        self.badge.setObjectName("VariantBadge")
        self.badge.setProperty("custom", variant == "custom")
        self.badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.badge.setMinimumWidth(64)
        top.addWidget(self.badge)
        col = QVBoxLayout()
        col.setSpacing(2)
        title = FAMILY_NAMES.get(family, family)
        if family == "convnextpose" and variant and variant != "custom":
            title = f"ConvNeXtPose-{variant}"
        elif family in ("posenet", "rootnet") and d.get("backbone", {}).get("resnet_depth"):
            title = f"{FAMILY_NAMES[family]} · ResNet-{d['backbone']['resnet_depth']}"
        elif variant == "custom" and d.get("closest"):
            title = f"ConvNeXtPose (custom, closest {d['closest']})"
        self.title_label = _label(title, "ArchTitle", wrap=True)
        col.addWidget(self.title_label)
        path = d.get("path")
        col.addWidget(_label(os.path.basename(path) if path else "—", "Dim", wrap=True))
        top.addLayout(col, 1)
        v.addLayout(top)

        conf = float(d.get("confidence") or 0.0)
        row = QHBoxLayout()
        row.addWidget(_label("confidence", "FieldName"))
        bar = QProgressBar()
        bar.setObjectName("ConfidenceBar")
        bar.setRange(0, 100)
        bar.setValue(round(conf * 100))
        bar.setTextVisible(False)
        bar.setFixedHeight(8)
        bar.setStyleSheet(
            f"QProgressBar::chunk {{ background: {confidence_color(conf)}; border-radius: 4px; }}"
        )
        row.addWidget(bar, 1)
        self.fields["confidence"] = _label(f"{conf * 100:.0f}%", "FieldValue")
        row.addWidget(self.fields["confidence"])
        v.addLayout(row)
        return card

    def _warnings_card(self, warnings: list[str]) -> QFrame:
        card = QFrame()
        card.setObjectName("WarningCard")
        v = QVBoxLayout(card)
        v.setContentsMargins(12, 10, 12, 10)
        v.setSpacing(4)
        v.addWidget(_label("WARNINGS", "WarningTitle"))
        for w in warnings:
            lab = _label(f"⚠  {w}", "WarningText", wrap=True)
            self.warning_labels.append(lab)
            v.addWidget(lab)
        return card

    def _evidence_card(self, evidence: list[str]) -> QFrame:
        card = _Card("Why", "read from the tensors")
        if not evidence:
            card.body.addWidget(_label("—", "Dim"))
        for e in evidence:
            against = e.startswith(("against", "not "))
            lab = _label(("✗  " if against else "✓  ") + e, "EvidenceText", wrap=True)
            lab.setProperty("against", against)
            self.evidence_labels.append(lab)
            card.body.addWidget(lab)
        return card

    def _backbone_card(self, d: dict[str, Any]) -> QFrame:
        bb = d["backbone"]
        kind = bb.get("type") or "?"
        sub = {"convnext-bn": "ConvNeXt · BatchNorm", "resnet": "ResNet"}.get(kind, kind)
        if bb.get("resnet_depth"):
            sub = f"ResNet-{bb['resnet_depth']}"
        card = _Card("Backbone", sub)
        grid = QGridLayout()
        grid.setHorizontalSpacing(16)
        grid.setVerticalSpacing(3)
        for c, h in enumerate(("stage", "blocks", "width")):
            grid.addWidget(_label(h, "TableHead"), 0, c)
        for i, (depth, dim) in enumerate(zip(bb["depths"], bb["dims"], strict=False)):
            grid.addWidget(_label(str(i + 1), "Dim"), i + 1, 0)
            grid.addWidget(_label(str(depth), "Mono"), i + 1, 1)
            grid.addWidget(_label(str(dim), "Mono"), i + 1, 2)
        grid.setColumnStretch(3, 1)
        card.body.addLayout(grid)
        return card

    def _head_card(self, d: dict[str, Any]) -> QFrame:
        head = d["head"]
        style = head.get("style") or ""
        card = _Card("Head", f"{len(head['channels'])} layers")
        grid = QGridLayout()
        grid.setHorizontalSpacing(16)
        grid.setVerticalSpacing(3)
        for c, h in enumerate(("layer", "width", "kernel", "upsample ×2")):
            grid.addWidget(_label(h, "TableHead"), 0, c)
        fixed = style == "deconv"
        for i, (ch, k, up) in enumerate(
            zip(head["channels"], head["kernels"], head["upsample"], strict=False)
        ):
            grid.addWidget(_label(str(i + 1), "Dim"), i + 1, 0)
            grid.addWidget(_label(str(ch), "Mono"), i + 1, 1)
            grid.addWidget(_label(f"{k}×{k}", "Mono"), i + 1, 2)
            box = QCheckBox()
            box.setChecked(bool(up))
            box.setEnabled(not fixed)
            box.setToolTip(
                "3DMPPE transposed convolutions always upsample"
                if fixed
                else "Upsampling has no weights: the key spelling decides it; override here"
            )
            box.toggled.connect(self._upsample_toggled)
            self.upsample_boxes.append(box)
            grid.addWidget(box, i + 1, 3)
        grid.setColumnStretch(4, 1)
        card.body.addLayout(grid)
        note = "key spelling: " + KEY_STYLES.get(style, style or "—")
        card.body.addWidget(_label(note, "Dim", wrap=True))
        if self._overridden:
            row = QHBoxLayout()
            row.addWidget(_label("upsampling overridden", "WarningText"))
            row.addStretch(1)
            reset = QPushButton("Use file's convention")
            reset.setObjectName("LinkButton")
            reset.clicked.connect(self.sigUpsampleReset)
            row.addWidget(reset)
            card.body.addLayout(row)
        return card

    def _fields_card(self, title: str, rows: list[tuple[str, str, str]]) -> QFrame:
        """A card of name/value rows; each value label is kept in `fields[key]`."""
        card = _Card(title)
        grid = QGridLayout()
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(4)
        for r, (key, name, value) in enumerate(rows):
            self._field(grid, r, key, name, value)
        grid.setColumnStretch(1, 1)
        card.body.addLayout(grid)
        return card

    def _output_card(self, d: dict[str, Any]) -> QFrame:
        js = d.get("joint_set")
        jn = d.get("joint_num")
        return self._fields_card(
            "Output & cost",
            [
                ("joints", "joints", f"{jn} · {js}" if jn and js else str(jn or "—")),
                ("depth_dim", "depth bins", str(d.get("depth_dim") or "—")),
                ("input_size", "input", _hw(d.get("input_size"))),
                ("output_size", "heatmap", _hw(d.get("output_size"))),
                ("params", "parameters", human_count(d.get("params"))),
                ("gflops", "GFLOPs", f"{d['gflops']:.2f}" if d.get("gflops") else "—"),
            ],
        )

    def _input_card(self, convention: dict[str, Any]) -> QFrame:
        """What the network is fed: the pixel scale and why (read, assumed or chosen)."""
        card = _Card("Input pixels")
        scale = convention.get("scale")
        words = (
            "0..255 pixels, ImageNet mean/std (as the published code)"
            if scale == "0-255"
            else "pixels / 255 (0..1), ImageNet mean/std"
        )
        self.fields["input_scale"] = _label(words, "FieldValue", wrap=True)
        self.fields["input_reason"] = _label(str(convention.get("reason") or ""), "Dim", wrap=True)
        card.body.addWidget(self.fields["input_scale"])
        card.body.addWidget(self.fields["input_reason"])
        return card

    def _file_card(self, d: dict[str, Any]) -> QFrame:
        return self._fields_card(
            "File",
            [
                ("format", "container", str(d.get("format") or "—")),
                ("wrapper", "wrapper", str(d.get("wrapper") or "bare state dict")),
                ("key_prefix", "key prefix", str(d.get("key_prefix") or "none")),
                ("key_style", "key spelling", str(d.get("key_style") or "—")),
                ("file_size", "size", human_size(d.get("file_size"))),
            ],
        )

    def _root_card(self) -> QFrame:
        card = _Card("Root depth")
        if self.rootnet:
            r = self.rootnet
            depth = (r.get("backbone") or {}).get("resnet_depth")
            text = f"RootNet (ResNet-{depth}) · {os.path.basename(r.get('path') or '')}"
        else:
            text = "prior k = √(2000²·fx·fy / box area) — drop a RootNet checkpoint to use it"
        self.fields["rootnet"] = _label(text, "Dim", wrap=True)
        card.body.addWidget(self.fields["rootnet"])
        return card

    def _upsample_toggled(self) -> None:
        self.sigUpsampleChanged.emit(self.upsample())

    def sizeHint(self):
        hint = super().sizeHint()
        hint.setWidth(360)
        return hint


def _hw(v: Any) -> str:
    if not v:
        return "—"
    return f"{v[0]} × {v[1]}"


__all__ = ["ArchPanel", "human_count", "human_size"]
