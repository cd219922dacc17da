"""Small vector icons drawn with QPainter (crisp on dark backgrounds, no image files)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPixmap

from posescope.gui import colors

KINDS = ("play", "pause", "step_back", "step_forward", "first", "last")


def _triangle(path: QPainterPath, x0: float, x1: float, y0: float, y1: float) -> None:
    """A triangle pointing right when x1 > x0, left otherwise."""
    path.moveTo(QPointF(x0, y0))
    path.lineTo(QPointF(x1, (y0 + y1) / 2))
    path.lineTo(QPointF(x0, y1))
    path.closeSubpath()


def media_icon(kind: str, color: str = colors.TEXT, size: int = 32) -> QIcon:
    """A transport icon: play, pause, step_back, step_forward, first, last."""
    if kind not in KINDS:
        raise ValueError(f"unknown icon {kind!r}")
    icon = QIcon()
    for mode, col in (
        (QIcon.Mode.Normal, QColor(color)),
        (QIcon.Mode.Disabled, QColor("#4d566b")),
    ):
        pm = QPixmap(size, size)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(col)
        s = size / 32.0
        path = QPainterPath()
        if kind == "play":
            _triangle(path, 10 * s, 25 * s, 7 * s, 25 * s)
        elif kind == "pause":
            path.addRoundedRect(QRectF(9 * s, 8 * s, 5 * s, 16 * s), 1.5 * s, 1.5 * s)
            path.addRoundedRect(QRectF(18 * s, 8 * s, 5 * s, 16 * s), 1.5 * s, 1.5 * s)
        elif kind == "step_forward":
            _triangle(path, 9 * s, 20 * s, 9 * s, 23 * s)
            path.addRect(QRectF(21 * s, 9 * s, 3 * s, 14 * s))
        elif kind == "step_back":
            _triangle(path, 23 * s, 12 * s, 9 * s, 23 * s)
            path.addRect(QRectF(8 * s, 9 * s, 3 * s, 14 * s))
        elif kind == "last":
            _triangle(path, 6 * s, 15 * s, 9 * s, 23 * s)
            _triangle(path, 15 * s, 24 * s, 9 * s, 23 * s)
            path.addRect(QRectF(24 * s, 9 * s, 3 * s, 14 * s))
        elif kind == "first":
            _triangle(path, 26 * s, 17 * s, 9 * s, 23 * s)
            _triangle(path, 17 * s, 8 * s, 9 * s, 23 * s)
            path.addRect(QRectF(5 * s, 9 * s, 3 * s, 14 * s))
        p.drawPath(path)
        p.end()
        icon.addPixmap(pm, mode)
    return icon
