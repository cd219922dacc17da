"""A/B panels: the two architectures side by side with the differences marked, the `diff`
summary of the two files, and the per-joint distance between A's and B's poses.

`compare_card(comparison)` is the card the architecture panel shows on top while comparing
(`ArchPanel.set_comparison`); `DistanceReadout` is the "A/B" dock: the frame's and the
analysed frames' average distances in pixels and mm, per person (the selected one when there
is one), with a joint-by-joint table. Both read `session.compare` (core/session_compare.py).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from posescope.core.session import Session
from posescope.core.session_compare import Comparison, DistanceRow, Visibility
from posescope.gui.arch_panel import _Card, _label, human_count, human_size
from posescope.gui.chrome import tool_button
from posescope.gui.compare_overlay import dot, rich

DIFF_MARK = "≠"


def _join(values: Any) -> str:
    if values is None or values == []:
        return "—"
    if isinstance(values, list | tuple):
        return "-".join(str(v).lower() if isinstance(v, bool) else str(v) for v in values)
    return str(values)


def arch_rows(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(field, A, B, differs) for the architecture fields of two `Identification.to_dict()`s;
    the file's name and size are listed but never marked (they always differ)."""

    def fields(d: dict[str, Any]) -> dict[str, str]:
        bb, head = d.get("backbone") or {}, d.get("head") or {}
        resnet = bb.get("resnet_depth")
        return {
            "family": str(d.get("family") or "—"),
            "variant": str(d.get("variant") or "—"),
            "backbone": f"ResNet-{resnet}" if resnet else str(bb.get("type") or "—"),
            "depths": _join(bb.get("depths")),
            "widths": _join(bb.get("dims")),
            "head channels": _join(head.get("channels")),
            "head kernels": _join(head.get("kernels")),
            "head upsampling": _join(head.get("upsample")),
            "joints": f"{d.get('joint_num') or '—'} · {d.get('joint_set') or '—'}",
            "depth bins": str(d.get("depth_dim") or "—"),
            "input": _join(d.get("input_size")),
            "heatmap": _join(d.get("output_size")),
            "parameters": human_count(d.get("params")),
        }

    fa, fb = fields(a), fields(b)
    rows = [(k, fa[k], fb[k], fa[k] != fb[k]) for k in fa]
    for key, show in (("path", os.path.basename), ("file_size", human_size)):
        rows.append((key.replace("_", " "), show(a.get(key)), show(b.get(key)), False))  # type: ignore[operator]
    return rows


def diff_lines(compare: Comparison) -> list[tuple[str, str]]:
    """(text, style) lines of the files' diff: pending, failed, or its summary."""
    if compare.diff_pending:
        return [("Comparing the weights…", "Dim")]
    if compare.diff_error is not None:
        return [(f"Could not compare the files: {compare.diff_error}", "Warning")]
    d = compare.diff
    if d is None:
        return []
    if d.identical:
        return [(f"Identical: same architecture, all {d.tensors} tensors equal", "Success")]
    lines = [
        ("Same architecture" if d.same_architecture else "Different architectures", "FieldValue"),
        (f"Weights: {d.differing} of {d.tensors} tensors differ", "FieldValue"),
    ]
    if d.largest_change is not None:
        lines.append(
            (
                f"Largest change: {d.largest_change.tensor} "
                f"(relative {d.largest_change.relative:.3g})",
                "FieldValue",
            )
        )
    if d.same_architecture or d.max_abs_diff:
        lines.append((f"Max abs diff: {d.max_abs_diff:.3g}", "FieldValue"))
    lines += [(f"note: {n}", "Dim") for n in d.notes]
    return lines


def compare_card(compare: Comparison) -> QFrame:
    """A card: A and B side by side (differing fields marked ≠), then the diff summary."""
    card = _Card("A/B comparison")
    a, b = compare.a, compare.b
    grid = QGridLayout()
    grid.setHorizontalSpacing(10)
    grid.setVerticalSpacing(3)
    head_a = QLabel(f"{dot('a')} <b>A</b>")
    head_b = QLabel(f"{dot('b')} <b>B</b>")
    grid.addWidget(head_a, 0, 1)
    grid.addWidget(head_b, 0, 2)
    rows = arch_rows(a.ident.to_dict(), b.ident.to_dict()) if a and b else []
    card.marked = []  # type: ignore[attr-defined]  # fields marked as differing (tests)
    for r, (name, va, vb, differs) in enumerate(rows, start=1):
        key = _label(f"{DIFF_MARK} {name}" if differs else name, "FieldName")
        la, lb = _label(va, "FieldValue", wrap=True), _label(vb, "FieldValue", wrap=True)
        if differs:
            for lab in (key, la, lb):
                lab.setObjectName("DiffField")
                lab.setStyleSheet("color: #f5a524; font-weight: 600;")
            card.marked.append(name)  # type: ignore[attr-defined]
        grid.addWidget(key, r, 0, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(la, r, 1)
        grid.addWidget(lb, r, 2)
    grid.setColumnStretch(1, 1)
    grid.setColumnStretch(2, 1)
    card.body.addLayout(grid)
    for text, style in diff_lines(compare):
        lab = _label(text, style if style in ("Dim", "FieldValue") else "FieldValue", wrap=True)
        if style == "Warning":
            lab.setStyleSheet("color: #f5a524;")
        elif style == "Success":
            lab.setStyleSheet("color: #4ade80;")
        card.body.addWidget(lab)
    return card


def _fmt(px: float, mm: float) -> str:
    if not (math.isfinite(px) and math.isfinite(mm)):
        return "—"
    return f"{px:.1f} px · {mm:.0f} mm"


def row_text(row: DistanceRow) -> tuple[str, str]:
    """(this frame, average) mean-over-joints distance texts of one person."""
    frame = _fmt(row.frame.mean_pixels, row.frame.mean_mm) if row.frame else "not on screen"
    avg = row.average
    average = (
        _fmt(float(avg.pixels.mean()), float(avg.mm.mean()))
        if avg is not None and avg.count
        else "—"
    )
    return frame, average


class DistanceReadout(QWidget):
    """The A/B dock: visibility, the distance per person (frame and average), per joint."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DistanceReadout")
        self.session = session
        self.compare = session.compare
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.setSpacing(8)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.title)

        bar = QHBoxLayout()
        bar.setSpacing(4)
        self.buttons: dict[Visibility, QToolButton] = {}
        for value, text in (
            (Visibility.BOTH, "A + B"),
            (Visibility.A, "A only"),
            (Visibility.B, "B only"),
        ):
            button = tool_button(text, f"Show {text} in the 2D and 3D views")
            button.setCheckable(True)
            button.setObjectName("SegmentButton")
            button.clicked.connect(lambda _=False, v=value: self.compare.set_visibility(v))
            self.buttons[value] = button
            bar.addWidget(button)
        bar.addStretch(1)
        self.stop_button = QPushButton("Stop comparing")
        self.stop_button.clicked.connect(self.compare.stop)
        bar.addWidget(self.stop_button)
        layout.addLayout(bar)

        self.summary = QLabel()
        self.summary.setObjectName("FieldValue")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.summary)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["joint", "px", "mm", "avg px", "avg mm"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, 5):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table, 1)
        self.empty = QLabel(
            "Not comparing. Drop two pose checkpoints on the window, or File ▸ Compare with… "
            "when one is loaded: both run on the same frames and person boxes."
        )
        self.empty.setObjectName("Dim")
        self.empty.setWordWrap(True)
        layout.addWidget(self.empty)
        layout.addStretch(0)

        ev = self.compare.events
        ev.pair_changed.connect(lambda _a, _b: self.refresh())
        ev.visibility_changed.connect(lambda _v: self.refresh())
        ev.distances_changed.connect(self.refresh)
        session.selection.events.selected.connect(lambda _t: self.refresh())
        self.refresh()

    def rows(self) -> list[DistanceRow]:
        return self.compare.rows(self.session.selection.selected)

    def refresh(self) -> None:
        c = self.compare
        active = c.active
        for w in (self.title, self.summary, self.table, self.stop_button, *self.buttons.values()):
            w.setVisible(active)
        self.empty.setVisible(not active)
        if not active:
            return
        assert c.a is not None and c.b is not None
        self.title.setText(
            f"{dot('a')} <b>A</b> {rich(c.a.ident.title)} "
            f"<span style='color:#8b95ab'>{rich(os.path.basename(c.a.path))}</span><br>"
            f"{dot('b')} <b>B</b> {rich(c.b.ident.title)} "
            f"<span style='color:#8b95ab'>{rich(os.path.basename(c.b.path))}</span>"
        )
        for value, button in self.buttons.items():
            button.setChecked(value == c.visibility)
        rows = self.rows()
        frame_no = f"frame {c.frame_index}" if c.frame_index is not None else "this frame"
        cells = [("", frame_no, f"average ({c.averaged_frames} analysed frames)")]
        for row in rows:
            cells.append((f"#{row.track_id}", *row_text(row)))
        if c.overall.count and len(c.averages) > 1:
            cells.append(
                ("all", "", _fmt(float(c.overall.pixels.mean()), float(c.overall.mm.mean())))
            )
        td = "<td style='padding: 1px 10px 1px 0'>"
        html = (
            "<table>"
            + "".join(
                "<tr>"
                + "".join(f"{td}{'<b>' if i == 0 else ''}{rich(t)}</td>" for t in row)
                + "</tr>"
                for i, row in enumerate(cells)
            )
            + "</table>"
        )
        lines = [html]
        if not rows:
            lines.append("No distance yet: A and B have no person in common on this frame.")
        if c.note:
            lines.append(f"<span style='color:#f5a524'>{rich(c.note)}</span>")
        lines.append(
            "<span style='color:#8b95ab'>Mean over the joints of |A − B|: pixels in the image, "
            "mm in camera space. Joint by joint below"
            + (f" for #{rows[0].track_id}" if rows else "")
            + ".</span>"
        )
        self.summary.setText("<br>".join(lines))
        self._fill_table(rows[0] if rows else None)

    def _fill_table(self, row: DistanceRow | None) -> None:
        """Joint by joint, for one person (the selected one, or the first)."""
        js = self.session.model.estimator.joint_set if self.session.model else None
        frame = row.frame if row is not None else None
        avg = row.average if row is not None and row.average and row.average.count else None
        n = len(frame.pixels) if frame is not None else (len(avg.pixels) if avg else 0)
        self.table.setRowCount(n)
        names = list(js.joints) if js is not None else []
        for j in range(n):
            cells = [
                names[j] if j < len(names) else str(j),
                _num(frame.pixels[j], 1) if frame is not None else "—",
                _num(frame.mm[j], 0) if frame is not None else "—",
                _num(avg.pixels[j], 1) if avg is not None else "—",
                _num(avg.mm[j], 0) if avg is not None else "—",
            ]
            for col, text in enumerate(cells):
                item = self.table.item(j, col)
                if item is None:
                    item = QTableWidgetItem()
                    if col:
                        item.setTextAlignment(
                            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                        )
                    self.table.setItem(j, col, item)
                item.setText(text)

    def summary_text(self) -> str:
        return self.summary.text()


def _num(value: float, digits: int) -> str:
    return f"{float(value):.{digits}f}" if np.isfinite(value) else "—"


ComparisonCardFactory = Callable[[], QFrame]
