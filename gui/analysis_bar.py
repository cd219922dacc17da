"""The analysed range under the timeline's slider, like a video editor's render bar.

Paints frames [0, done) of `total` as analysed (solid), the rest as still to do (dim), and the
whole bar green once the pass has finished, the part done in the warning colour when the pass
failed (the tooltip says what failed). Follows the session's `analysis_progressed` and
`analysis_error`.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from posescope.core.analysis import AnalysisProgress
from posescope.core.session import Session
from posescope.gui import colors

HEIGHT = 4


class AnalysisBar(QWidget):
    """How far the analysis pass is; a tooltip says it in words."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AnalysisBar")
        self.setFixedHeight(HEIGHT)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.progress = AnalysisProgress(0, None)
        self.total = 0  # the timeline's frame count (the pass's may not be known yet)
        self.margin = 0  # the slider handle's half width: frame k sits under the handle
        self.failure: str | None = None  # why the pass failed (None: it did not)
        self._update_tip()

    def bind(self, session: Session) -> None:
        session.events.analysis_progressed.connect(self.set_progress)
        session.events.source_changed.connect(lambda info: self.set_total(info.frame_count))
        session.events.frame_count_corrected.connect(lambda _old, new: self.set_total(new))
        session.events.analysis_error.connect(self.set_failed)

    def set_total(self, total: int) -> None:
        self.total = int(total or 0)
        self.update()
        self._update_tip()

    def set_failed(self, exc: BaseException) -> None:
        self.failure = str(exc).strip() or type(exc).__name__
        self.update()
        self._update_tip()

    def set_progress(self, progress: AnalysisProgress) -> None:
        self.failure = None  # progress comes from a pass that runs (or a new source)
        self.progress = progress
        self.update()
        self._update_tip()

    def analysed_fraction(self) -> float:
        p = self.progress
        if p.finished:
            return 1.0 if p.done else 0.0
        total = p.total or self.total
        return min(1.0, p.done / total) if total else 0.0

    def _update_tip(self) -> None:
        p = self.progress
        if self.failure is not None:
            text = (
                f"Analysis failed after {p.done} frames: {self.failure}. Frames are computed "
                "when shown; Playback ▸ Retry analysis runs the pass again"
            )
        elif p.finished:
            text = f"All {p.done} frames analysed: scrubbing and playback show them at once"
        elif p.done or p.total:
            text = (
                f"Analysed {p.done} of {p.total or self.total or '?'} frames; frames beyond "
                "are computed on demand (a preview) until the pass reaches them"
            )
        else:
            text = "Not analysed (a model and a video are needed)"
        self.setToolTip(text)

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        w, h = self.width() - 2 * self.margin, self.height()
        painter.fillRect(QRectF(self.margin, 0, w, h), QColor(colors.PANEL).lighter(140))
        fraction = self.analysed_fraction()
        if fraction > 0:
            color = QColor(colors.SUCCESS if self.progress.finished else colors.ACCENT)
            if self.failure is not None:
                color = QColor(colors.WARNING)
            painter.fillRect(QRectF(self.margin, 0, w * fraction, h), color)
        painter.end()
