"""Text that fits: a label that elides to the width it gets, and a path field that elides in
the middle (a path's start and its file name both matter) when it is not being edited."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import QLabel, QLineEdit, QSizePolicy, QStyle, QStyleOptionFrame, QWidget


class ElidedLabel(QLabel):
    """A one-line plain-text label that may shrink below its text: it then draws the text
    elided (the full text stays in `text()`), so a row of readouts never forces its window
    wider. `min_chars` is how many characters it keeps at least; `all_or_nothing` (for
    readouts of less importance) draws the whole text or nothing, never a stub like 'cro…'."""

    def __init__(
        self,
        text: str = "",
        parent: QWidget | None = None,
        mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight,
        min_chars: int = 0,
        all_or_nothing: bool = False,
    ) -> None:
        super().__init__(text, parent)
        self.mode = mode
        self.min_chars = int(min_chars)
        self.all_or_nothing = bool(all_or_nothing)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def minimumSizeHint(self) -> QSize:
        fm = self.fontMetrics()
        m = self.contentsMargins()
        width = fm.horizontalAdvance("x" * self.min_chars + "…") if self.min_chars else 0
        return QSize(width + m.left() + m.right(), super().minimumSizeHint().height())

    def displayed_text(self) -> str:
        """What is drawn at the current width ('' when not even an ellipsis fits)."""
        width = self.contentsRect().width()
        text = self.text()
        fm = self.fontMetrics()
        if fm.horizontalAdvance(text) <= width:
            return text
        if self.all_or_nothing or width < fm.horizontalAdvance("x…"):
            return ""
        return fm.elidedText(text, self.mode, width)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        painter.drawText(self.contentsRect(), int(self.alignment()), self.displayed_text())
        painter.end()


class PathEdit(QLineEdit):
    """A path field: while it does not have the focus, a path too long for it is drawn
    elided in the middle ('/home/me/…/clip_poses.json'), not cut at the start."""

    def displayed_text(self) -> str:
        """What is drawn now (the whole text while editing)."""
        if self.hasFocus():
            return self.text()
        return self.fontMetrics().elidedText(
            self.text(), Qt.TextElideMode.ElideMiddle, self._text_rect().width()
        )

    def _text_rect(self):
        opt = QStyleOptionFrame()
        self.initStyleOption(opt)
        rect = self.style().subElementRect(QStyle.SubElement.SE_LineEditContents, opt, self)
        m = self.textMargins()
        return rect.adjusted(m.left() + 2, m.top(), -m.right() - 2, -m.bottom())

    def paintEvent(self, event) -> None:
        if self.hasFocus() or self.fontMetrics().horizontalAdvance(self.text()) <= (
            self._text_rect().width()
        ):
            super().paintEvent(event)
            return
        painter = QPainter(self)
        opt = QStyleOptionFrame()
        self.initStyleOption(opt)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_PanelLineEdit, opt, painter, self)
        painter.setPen(self.palette().color(QPalette.ColorRole.Text))
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(self._text_rect(), int(align), self.displayed_text())
        painter.end()
