"""Timeline: slider with exact frame scrubbing, play / pause, step, speed, frame and time."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from posescope.core.session import Session
from posescope.core.session_types import FrameResult, SourceInfo
from posescope.gui.analysis_bar import AnalysisBar
from posescope.gui.icons import media_icon

SPEEDS: tuple[float, ...] = (0.25, 0.5, 1.0, 1.5, 2.0, 4.0)


def format_time(seconds: float) -> str:
    """'1:02.35' (minutes:seconds.hundredths)."""
    seconds = max(0.0, float(seconds))
    m, s = divmod(seconds, 60.0)
    return f"{int(m)}:{s:05.2f}"


class Timeline(QWidget):
    """Emits what the user asks for; the main window decides and calls `set_position`."""

    sigSeek = Signal(int)  # frame index (while dragging: every move; latest request wins)
    sigStep = Signal(int)  # -1 / +1
    sigPlayToggled = Signal()
    sigSpeedChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Timeline")
        self.frame_count = 0
        self.fps = 30.0
        self.live = False
        self.playing = False
        self.position = 0

        self.start_button = self._tool(media_icon("first"), "First frame (Home)")
        self.back_button = self._tool(media_icon("step_back"), "One frame back (Left)")
        self.play_button = self._tool(media_icon("play", "#ffffff"), "Play / pause (Space)")
        self.play_button.setObjectName("PlayButton")
        self.forward_button = self._tool(media_icon("step_forward"), "One frame forward (Right)")
        self.end_button = self._tool(media_icon("last"), "Last frame (End)")
        self.start_button.clicked.connect(lambda: self.sigSeek.emit(0))
        self.back_button.clicked.connect(lambda: self.sigStep.emit(-1))
        self.play_button.clicked.connect(self.sigPlayToggled)
        self.forward_button.clicked.connect(lambda: self.sigStep.emit(1))
        self.end_button.clicked.connect(lambda: self.sigSeek.emit(max(0, self.frame_count - 1)))

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("TimelineSlider")
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.setTracking(True)
        self.slider.setRange(0, 0)
        self.slider.valueChanged.connect(self._slider_moved)

        self.frame_label = QLabel("—")
        self.frame_label.setObjectName("FrameLabel")
        self.frame_label.setMinimumWidth(110)
        self.frame_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.time_label = QLabel("")
        self.time_label.setObjectName("TimeLabel")
        self.time_label.setMinimumWidth(100)

        self.speed = QComboBox()
        self.speed.setObjectName("SpeedBox")
        self.speed.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.speed.setToolTip("Playback speed")
        for s in SPEEDS:
            self.speed.addItem(f"{s:g}×", s)
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.speed.currentIndexChanged.connect(
            lambda i: self.sigSpeedChanged.emit(float(self.speed.itemData(i)))
        )

        self.live_label = QLabel("● LIVE")
        self.live_label.setObjectName("LiveLabel")
        self.live_label.hide()

        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        lay.setSpacing(4)
        for b in (
            self.start_button,
            self.back_button,
            self.play_button,
            self.forward_button,
            self.end_button,
        ):
            lay.addWidget(b)
        lay.addSpacing(8)
        lay.addWidget(self.live_label)
        self.analysis_bar = AnalysisBar()  # the analysed range, under the slider
        self.analysis_bar.margin = 8
        track = QVBoxLayout()
        track.setSpacing(1)
        track.addWidget(self.slider)
        track.addWidget(self.analysis_bar)
        lay.addLayout(track, 1)
        self.preview = False  # the frame on screen was computed on demand, ahead of the pass
        lay.addSpacing(8)
        lay.addWidget(self.frame_label)
        lay.addSpacing(10)
        lay.addWidget(self.time_label)
        lay.addWidget(self.speed)
        self.set_source(0, 30.0, live=False)

    @staticmethod
    def _tool(icon, tip: str) -> QToolButton:
        b = QToolButton()
        b.setIcon(icon)
        b.setIconSize(QSize(18, 18))
        b.setToolTip(tip)
        b.setAutoRaise(True)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        return b

    # ------------------------------------------------------------------ public API

    def set_source(self, frame_count: int | None, fps: float, live: bool) -> None:
        """Configure for a source: seekable with `frame_count` frames, or live."""
        self.frame_count = int(frame_count or 0)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.live = bool(live)
        seekable = not live and self.frame_count > 1  # one image: nothing to step to
        blocked = self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, self.frame_count - 1))
        self.slider.setValue(0)
        self.slider.blockSignals(blocked)
        for w in (self.start_button, self.back_button, self.forward_button, self.end_button):
            w.setEnabled(seekable)
        self.slider.setVisible(not live)
        self.analysis_bar.setVisible(not live)
        self.slider.setEnabled(seekable and self.frame_count > 1)
        self.speed.setEnabled(seekable)
        self.play_button.setEnabled(live or self.frame_count > 1)
        self.live_label.setVisible(live)
        self.position = 0
        if not live and self.frame_count == 0:
            self.frame_label.setText("no video")
            self.time_label.setText("")
        elif not live and self.frame_count == 1:
            self.frame_label.setText("single image")  # no frame count, no clock
            self.time_label.setText("")
        else:
            self._update_labels(0, 0.0)

    def set_position(self, index: int, time_s: float | None = None) -> None:
        """Show frame `index` as the current one (does not emit sigSeek)."""
        self.position = int(index)
        if not self.live:
            blocked = self.slider.blockSignals(True)
            self.slider.setValue(self.position)
            self.slider.blockSignals(blocked)
        t = time_s if time_s is not None else (index / self.fps if self.fps else 0.0)
        self._update_labels(self.position, t)

    def set_playing(self, playing: bool) -> None:
        self.playing = bool(playing)
        self.play_button.setIcon(media_icon("pause" if playing else "play", "#ffffff"))

    def playback_speed(self) -> float:
        return float(self.speed.currentData())

    def dragging(self) -> bool:
        return self.slider.isSliderDown()

    def bind(self, session: Session) -> None:
        """Follow `session`: its source, the frame on screen, seeks and playing. (The user's
        moves still leave by signal: the window hands them to the session.)"""
        ev = session.events
        ev.source_changed.connect(self._source_changed)
        ev.frame_shown.connect(self._frame_shown)
        ev.seeked.connect(self.set_position)
        ev.playing_changed.connect(self.set_playing)
        self.analysis_bar.bind(session)
        ev.frame_count_corrected.connect(self._frame_count_corrected)

    def _source_changed(self, info: SourceInfo) -> None:
        self.set_source(None if info.live else info.frame_count, info.fps, info.live)

    def _frame_count_corrected(self, _claimed: int, real: int) -> None:
        position = min(self.position, max(0, real - 1))
        self.set_source(real, self.fps, self.live)
        self.set_position(position)

    def _frame_shown(self, result: FrameResult) -> None:
        self.preview = result.poses is not None and not result.analysed and not self.live
        if not self.dragging():
            self.set_position(result.frame.index, result.frame.time)

    # ------------------------------------------------------------------ internals

    def _slider_moved(self, value: int) -> None:
        self._update_labels(value, value / self.fps)
        self.sigSeek.emit(int(value))

    def _update_labels(self, index: int, t: float) -> None:
        if not self.live and self.frame_count <= 1:
            return  # a single image (or nothing): the labels set by set_source stay
        if self.live:
            self.frame_label.setText(f"frame {index}")
            self.time_label.setText(format_time(t))
            return
        n = self.frame_count
        self.frame_label.setText(
            f"frame {index} / {max(0, n - 1)}" + (" · preview" if self.preview else "")
        )
        self.frame_label.setToolTip(
            "Computed on demand: the analysis pass has not reached this frame yet"
            if self.preview
            else ""
        )
        total = (n - 1) / self.fps if n else 0.0
        self.time_label.setText(f"{format_time(t)} / {format_time(total)}")
