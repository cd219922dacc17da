"""What the video view says over the picture about people: "Nobody found" with the two ways
out (draw a box, choose a detector), and the legend of the scores over each box."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
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


class NobodyFound(QFrame):
    """A card over the top of the picture: what happened and two buttons."""

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
        self.hide()

    def show_state(self, state: str) -> None:
        """'nobody' or 'whole_frame' shows the card; anything else hides it."""
        self.state = state
        if state not in NOBODY_TEXT:
            self.hide()
            return
        title, detail = NOBODY_TEXT[state]
        self.title.setText(title)
        self.detail.setText(detail)
        self.detail.setVisible(bool(detail))
        self.setProperty("compact", not detail)
        self.setToolTip(
            "" if detail else "The detector found no one, so the whole frame is the person box"
        )
        for w in (self, self.title):
            w.style().unpolish(w)
            w.style().polish(w)
        self.adjustSize()
        self.place()
        self.show()
        self.raise_()

    def place(self) -> None:
        parent = self.parentWidget()
        if parent is None:
            return
        width = max(120, min(480, parent.width() - 16))
        narrow = width < 340  # a portrait video in a small window: the buttons one above the other
        self.row.setDirection(
            QBoxLayout.Direction.TopToBottom if narrow else QBoxLayout.Direction.LeftToRight
        )
        self.setFixedWidth(width)
        self.setFixedHeight(self.heightForWidth(width) if self.hasHeightForWidth() else
                            self.sizeHint().height())  # fmt: skip
        self.move((parent.width() - width) // 2, 8)


def score_label(track_id: int, det: float, pose: float) -> str:
    """ " #2  det 0.87 · pose 0.41 ": either score left out when unknown (nan)."""
    parts = []
    if det == det:  # not nan
        parts.append(f"det {det:.2f}")
    if pose == pose:
        parts.append(f"pose {pose:.2f}")
    scores = "  " + " · ".join(parts) if parts else ""
    return f" #{track_id}{scores} "
