"""The joints readout: the selected person's joints as numbers (name, 2D px, 3D mm, score),
a person chooser, and the root-trail switch. It follows `session.selection` (which holds
who is selected) and the frame on screen; it holds nothing of its own."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from posescope.core.selection import JointRow, joint_rows
from posescope.core.session import Session
from posescope.core.session_types import FrameResult

COLUMNS = ("joint", "x, y px", "X, Y, Z mm", "score")  # compact: fits a narrow dock
COLUMN_TIPS = (
    "Joint name",
    "2D position in the image, pixels",
    "3D position in camera space (x right, y down, z forward), millimetres",
    "The joint's heatmap peak (0..1): low means unsure",
)
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
HINT = "Click a person in the video or the 3D view (or choose one here) to see their joints."


def _num(value: float, fmt: str) -> str:
    return fmt.format(value) if np.isfinite(value) else "—"


def row_cells(row: JointRow) -> tuple[tuple[str, object], ...]:
    """(text, value) per column: pixels to 0.1, millimetres to 1, the score to 0.01."""
    px = (row.x_px, row.y_px)
    mm = (row.x_mm, row.y_mm, row.z_mm)
    return (
        (row.name, row.name),
        (", ".join(_num(v, "{:.1f}") for v in px), px),
        (", ".join(_num(v, "{:.0f}") for v in mm), mm),
        (_num(row.score, "{:.2f}"), row.score),
    )


class JointsPanel(QWidget):
    """A dock's widget: person chooser, trail switch, and a table of the selected person."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("JointsPanel")
        self.session = session
        self.selection = session.selection
        self.person_box = QComboBox()
        self.person_box.setToolTip("The person whose joints are listed")
        self.person_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.trail_check = QCheckBox("Root trail")
        self.trail_check.setToolTip("Draw the selected person's root joint over the frames seen")
        self.hint = QLabel(HINT)
        self.hint.setObjectName("Dim")
        self.hint.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("JointsTable")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        for c, tip in enumerate(COLUMN_TIPS):
            self.table.horizontalHeaderItem(c).setToolTip(tip)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        top = QHBoxLayout()
        top.addWidget(QLabel("Person"))
        top.addWidget(self.person_box, 1)
        top.addWidget(self.trail_check)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addLayout(top)
        lay.addWidget(self.hint)
        lay.addWidget(self.table, 1)

        self.person_box.activated.connect(self._chosen)
        self.trail_check.toggled.connect(self.selection.set_trail)
        self.selection.events.selected.connect(lambda _t: self.refresh())
        self.selection.events.trail_toggled.connect(self._trail_toggled)
        session.events.frame_shown.connect(lambda _r: self.refresh())
        self.refresh()

    def _trail_toggled(self, on: bool) -> None:
        blocked = self.trail_check.blockSignals(True)
        self.trail_check.setChecked(on)
        self.trail_check.blockSignals(blocked)

    def _chosen(self, index: int) -> None:
        self.selection.select(self.person_box.itemData(index))

    def refresh(self) -> None:
        """Fill the chooser with the people on screen and the table with the selected one."""
        shown: FrameResult | None = self.session.shown
        poses = shown.poses if shown is not None else None
        ids = [p.track_id for p in poses.people] if poses is not None else []
        selected = self.selection.selected
        blocked = self.person_box.blockSignals(True)
        self.person_box.clear()
        self.person_box.addItem("nobody", None)
        for t in ids:
            self.person_box.addItem(f"#{t}", t)
        if selected is not None and selected not in ids:
            self.person_box.addItem(f"#{selected} (not in this frame)", selected)
        self.person_box.setCurrentIndex(max(0, self.person_box.findData(selected)))
        self.person_box.blockSignals(blocked)
        person = self.selection.person(poses)
        rows = joint_rows(person, self.session.joint_set_for(shown)) if person else []
        self.hint.setVisible(person is None)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, (text, value) in enumerate(row_cells(row)):
                item = self.table.item(r, c)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(r, c, item)
                item.setText(text)
                item.setData(Qt.ItemDataRole.UserRole, value)
                if c:
                    item.setTextAlignment(RIGHT)

    def values(self) -> list[tuple]:
        """The table's rows as (name, x px, y px, X mm, Y mm, Z mm, score) (for tests)."""
        out = []
        for r in range(self.table.rowCount()):
            name, px, mm, score = (
                self.table.item(r, c).data(Qt.ItemDataRole.UserRole) for c in range(len(COLUMNS))
            )
            out.append((name, *px, *mm, score))
        return out
