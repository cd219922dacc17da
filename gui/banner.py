"""A non-blocking message banner at the top of the window: errors, warnings, questions.

Messages stack (newest at the bottom), each with optional action buttons and a close button;
information messages fade out by themselves. Nothing here is modal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from posescope.core.escape import escape

LEVELS = ("info", "success", "warning", "error")
_ICONS = {"info": "ℹ", "success": "✓", "warning": "⚠", "error": "✕"}


class BannerMessage(QFrame):
    """One message row."""

    sigClosed = Signal(object)

    def __init__(
        self,
        text: str,
        level: str,
        actions: Sequence[tuple[str, Callable[[], None]]] = (),
        details: str | None = None,
    ) -> None:
        super().__init__()
        self.level = level if level in LEVELS else "error"
        self.text = text
        self.setObjectName("BannerMessage")
        self.setProperty("level", self.level)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 6, 6, 6)
        lay.setSpacing(10)
        icon = QLabel(_ICONS[self.level])
        icon.setObjectName("BannerIcon")
        lay.addWidget(icon)
        self.label = QLabel(escape(text))  # text from a file: never markup or control chars
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setObjectName("BannerText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        if details:
            self.label.setToolTip(details)
        lay.addWidget(self.label, 1)
        self.buttons: list[QPushButton] = []
        for name, fn in actions:
            b = QPushButton(name)
            b.setObjectName("BannerAction")
            b.clicked.connect(fn)
            b.clicked.connect(self.close_message)
            self.buttons.append(b)
            lay.addWidget(b)
        close = QPushButton("✕")
        close.setObjectName("BannerClose")
        close.setToolTip("Dismiss")
        close.setFixedWidth(28)
        close.clicked.connect(self.close_message)
        lay.addWidget(close)

    def close_message(self) -> None:
        self.sigClosed.emit(self)


class Banner(QWidget):
    """Stack of `BannerMessage`s; hidden when empty."""

    MAX_MESSAGES = 4

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Banner")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(8, 6, 8, 0)
        self._layout.setSpacing(4)
        self._messages: list[BannerMessage] = []
        self.hide()

    def show_message(
        self,
        text: str,
        level: str = "error",
        actions: Sequence[tuple[str, Callable[[], None]]] = (),
        timeout_ms: int | None = None,
        details: str | None = None,
    ) -> BannerMessage:
        """Add a message; `timeout_ms` (default: 6 s for info/success) removes it later."""
        # the same text again replaces the old row instead of stacking duplicates
        for old in [m for m in self._messages if m.text == text]:
            self._remove(old)
        msg = BannerMessage(text, level, actions, details)
        msg.sigClosed.connect(self._remove)
        self._messages.append(msg)
        self._layout.addWidget(msg)
        while len(self._messages) > self.MAX_MESSAGES:
            self._remove(self._messages[0])
        if timeout_ms is None and msg.level in ("info", "success") and not actions:
            timeout_ms = 6000
        if timeout_ms:
            QTimer.singleShot(timeout_ms, msg, lambda m=msg: self._remove(m))
        self.show()
        return msg

    def messages(self) -> list[tuple[str, str]]:
        """(level, text) of every message shown, oldest first."""
        return [(m.level, m.text) for m in self._messages]

    def close_where(self, wanted: Callable[[str], bool]) -> int:
        """Close the messages whose text `wanted` accepts (they no longer apply); how many."""
        gone = [m for m in self._messages if wanted(m.text)]
        for m in gone:
            self._remove(m)
        return len(gone)

    def clear(self) -> None:
        for m in list(self._messages):
            self._remove(m)

    def _remove(self, msg: BannerMessage) -> None:
        if msg in self._messages:
            self._messages.remove(msg)
            self._layout.removeWidget(msg)
            msg.hide()
            msg.deleteLater()
        if not self._messages:
            self.hide()
