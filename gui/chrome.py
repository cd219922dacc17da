"""Chrome shared by the views: the header bar over each view and its tool buttons."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from posescope.gui.elide import ElidedLabel


def view_header(title: str, info: str = "") -> tuple[QWidget, QHBoxLayout, QLabel]:
    """A header bar: the view's title, then an info label that takes the free space
    (and elides when there is little).

    Returns (bar, its layout for more buttons, the info label).
    """
    bar = QWidget()
    bar.setObjectName("ViewHeader")
    layout = QHBoxLayout(bar)
    layout.setContentsMargins(10, 4, 6, 4)
    heading = QLabel(title)
    heading.setObjectName("ViewTitle")
    layout.addWidget(heading)
    label = ElidedLabel(info)  # elides rather than widening the window
    label.setObjectName("ViewInfo")
    layout.addWidget(label, 1)
    return bar, layout, label


def tool_button(text: str, tip: str) -> QToolButton:
    """A flat text button for a header; it never takes keyboard focus from the views."""
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return button
