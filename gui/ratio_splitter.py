"""A splitter that keeps its panes' proportions when the window is resized.

QSplitter hands extra width out by stretch factor only after each pane's size hint, so on a
large screen the 3D view stayed about as wide as on a small one. This one keeps the share the
user last chose (by dragging the handle), `SHARE_3D` until then.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QWidget

SHARE_3D = 0.45  # the second pane's (3D view's) share of the splitter, until the user drags


class RatioSplitter(QSplitter):
    """Two panes; the second gets `share` of the width whatever the window's size."""

    def __init__(self, share: float = SHARE_3D, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.share = float(share)
        self.splitterMoved.connect(self._moved)

    def _moved(self, _pos: int, _index: int) -> None:
        sizes = self.sizes()
        if len(sizes) == 2 and sum(sizes) > 0:
            self.share = sizes[1] / float(sum(sizes))

    def apply_share(self) -> None:
        total = sum(self.sizes())
        if self.count() == 2 and total > 0:
            second = round(total * self.share)
            blocked = self.blockSignals(True)
            self.setSizes([total - second, second])
            self.blockSignals(blocked)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.apply_share()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.apply_share()
