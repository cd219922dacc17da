"""What the video view says over the picture about people: "Nobody found" with the two ways
out (draw a box, choose a detector), and the legend of the scores over each box.

The card goes where the picture is not (the view's free band above, below or beside the
picture, `card_place`); when no band holds it (a portrait video in a narrow pane), it shrinks
to a one-line chip in the top-right corner, which opens into the whole card when clicked."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QRect, QRectF, Qt, Signal
from PySide6.QtWidgets import QBoxLayout, QFrame, QLabel, QPushButton, QVBoxLayout, QWidget

SCORE_LEGEND = "det: person detector confidence  ·  pose: pose network confidence (heatmap peak)"
SCORE_TIP = (
    "Over each box: the person's id, then det (the person detector's confidence that this is"
    " a person; absent for a drawn box or the whole frame) and pose (the pose network's"
    " confidence: the mean of its heatmap peaks)."
)
NOBODY_TEXT = {
    "nobody": ("Nobody found in this frame", "No person box: no pose."),
    "whole_frame": (  # a pose is shown: a smaller card, its detail in the tooltip
        "Nobody found: pose on the whole frame",
        "",
    ),
}


MIN_CARD_WIDTH = 220  # narrower than this, the buttons would not read
CHIP_TEXT = "Nobody found ▾"


def free_bands(view: QRect, picture: QRectF | None) -> list[QRect]:
    """The parts of `view` the picture leaves free: above, below, right and left of it
    (empty when the picture covers the view or is not known), largest first."""
    if picture is None:
        return []
    pic = picture.toAlignedRect().intersected(view)
    if pic.isEmpty():
        return [QRect(view)]
    bands = [
        QRect(view.left(), view.top(), view.width(), pic.top() - view.top()),
        QRect(view.left(), pic.bottom() + 1, view.width(), view.bottom() - pic.bottom()),
        QRect(pic.right() + 1, view.top(), view.right() - pic.right(), view.height()),
        QRect(view.left(), view.top(), pic.left() - view.left(), view.height()),
    ]
    bands = [b for b in bands if b.width() > 0 and b.height() > 0]
    return sorted(bands, key=lambda b: -b.width() * b.height())


def card_place(
    view: QRect, picture: QRectF | None, height_for: Callable[[int], int], margin: int = 8
) -> QRect | None:
    """Where a card whose height is `height_for(width)` fits beside the picture (largest free
    band first), or None when it fits nowhere without covering the picture."""
    for band in free_bands(view, picture):
        width = min(480, band.width() - 2 * margin)
        if width < MIN_CARD_WIDTH:
            continue
        height = height_for(width)
        if height <= band.height() - 2 * margin:
            x = band.left() + (band.width() - width) // 2
            return QRect(x, band.top() + margin, width, height)
    return None


class NobodyFound(QFrame):
    """A card beside the picture (or a chip in its corner): what happened and two buttons."""

    sigDrawBox = Signal()
    sigChooseDetector = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("NobodyFound")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        v = QVBoxLayout(self)
        v.setContentsMargins(14, 10, 14, 10)
        v.setSpacing(4)
        self.title = QLabel("")
        self.title.setObjectName("NobodyTitle")
        self.title.setWordWrap(True)
        self.detail = QLabel("")
        self.detail.setObjectName("NobodyDetail")
        self.detail.setWordWrap(True)
        v.addWidget(self.title)
        v.addWidget(self.detail)
        self.row = row = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        row.setSpacing(8)
        self.draw_button = QPushButton("Draw a person box")
        self.draw_button.setObjectName("BannerAction")
        self.draw_button.setToolTip("Estimate the pose in a box you draw on the video")
        self.draw_button.clicked.connect(self.sigDrawBox)
        self.detector_button = QPushButton("Choose a detector…")
        self.detector_button.setObjectName("BannerAction")
        self.detector_button.setToolTip("Settings ▸ People: RTMDet-nano, YOLOX-tiny, HOG")
        self.detector_button.clicked.connect(self.sigChooseDetector)
        row.addWidget(self.draw_button)
        row.addWidget(self.detector_button)
        row.addStretch(1)
        v.addLayout(row)
        self.state = "found"
        self.picture_rect: Callable[[], QRectF | None] | None = None  # set by the video view
        self.collapsed = False  # a chip: no room beside the picture
        self.expanded = False  # the user opened the chip: the whole card, over the picture
        self._title_text = ""
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.hide()

    def mousePressEvent(self, event) -> None:
        """A click on the chip opens the whole card; a click on the opened card folds it."""
        if self.collapsed or self.expanded:
            self.expanded = not self.expanded
            self.place()
        super().mousePressEvent(event)

    def show_state(self, state: str) -> None:
        """'nobody' or 'whole_frame' shows the card; anything else hides it."""
        self.state = state
        if state not in NOBODY_TEXT:
            self.hide()
            return
        title, detail = NOBODY_TEXT[state]
        if state != getattr(self, "_shown_state", None):
            self.expanded = False  # a new state: placed afresh
        self._shown_state = state
        self._title_text = title
        self.title.setText(title)
        self.detail.setText(detail)
        self.detail.setVisible(bool(detail))
        self.setProperty("compact", not detail)
        self._base_tip = (
            "" if detail else "The detector found no one, so the whole frame is the person box"
        )
        self.setToolTip(self._base_tip)
        for w in (self, self.title):
            w.style().unpolish(w)
            w.style().polish(w)
        self.adjustSize()
        self.place()
        self.show()
        self.raise_()

    def place(self) -> None:
        """Beside the picture when a free band holds the card; else a chip in the top-right
        corner, clear of the boxes' id labels (the whole card over the picture once opened)."""
        parent = self.parentWidget()
        if parent is None:
            return
        picture = self.picture_rect() if self.picture_rect is not None else None
        self._set_collapsed(False)
        spot = card_place(parent.rect(), picture, self._height_for)
        if spot is not None and not self.expanded:
            self._layout_for(spot.width())
            self.setFixedSize(spot.size())
            self.move(spot.topLeft())
            return
        if picture is None or self.expanded:
            width = max(120, min(480, parent.width() - 16))
            self.setFixedWidth(width)
            self.setFixedHeight(self._height_for(width))
            self.move((parent.width() - width) // 2, 8)
            return
        self._set_collapsed(True)
        self.setFixedWidth(self.title.fontMetrics().horizontalAdvance(CHIP_TEXT) + 24)
        lay = self.layout()
        assert lay is not None
        lay.activate()
        self.setFixedHeight(max(self.title.sizeHint().height() + 8, lay.totalSizeHint().height()))
        self.move(max(8, parent.width() - self.width() - 8), 8)  # clear of the boxes' labels

    def _layout_for(self, width: int) -> None:
        narrow = width < 340  # the buttons one above the other
        self.row.setDirection(
            QBoxLayout.Direction.TopToBottom if narrow else QBoxLayout.Direction.LeftToRight
        )

    def _height_for(self, width: int) -> int:
        self._layout_for(width)
        self.setMinimumWidth(0)
        self.setMaximumWidth(16777215)
        layout = self.layout()
        if layout is not None and layout.hasHeightForWidth():
            return layout.totalHeightForWidth(width)
        return self.sizeHint().height()

    def _set_collapsed(self, collapsed: bool) -> None:
        """The chip shows a short title only; its tooltip says the rest."""
        self.collapsed = collapsed
        self.title.setText(CHIP_TEXT if collapsed else self._title_text)
        self.detail.setVisible(not collapsed and bool(self.detail.text()))
        for b in (self.draw_button, self.detector_button):
            b.setVisible(not collapsed)
        m = (8, 4, 8, 4) if collapsed else (14, 10, 14, 10)
        lay = self.layout()
        assert isinstance(lay, QVBoxLayout)
        lay.setContentsMargins(*m)
        lay.setSpacing(0 if collapsed else 4)  # the hidden rows add no gaps to the chip
        base = getattr(self, "_base_tip", "")
        chip_tip = f"{self._title_text}{': ' + base if base else ''}; click for the ways out"
        self.setToolTip(chip_tip if collapsed else base)


def score_label(track_id: int, det: float, pose: float) -> str:
    """ " #2  det 0.87 · pose 0.41 ": either score left out when unknown (nan)."""
    parts = []
    if det == det:  # not nan
        parts.append(f"det {det:.2f}")
    if pose == pose:
        parts.append(f"pose {pose:.2f}")
    scores = "  " + " · ".join(parts) if parts else ""
    return f" #{track_id}{scores} "
