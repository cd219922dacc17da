"""The video workflow's pieces of the window: playback modes, recording, the analysis messages.

`install_workflow(window)` adds Playback ▸ Real time / Every frame (the session's
`PlaybackMode`; videos play every frame by default, live sources are always real time),
File ▸ Record live… with a ● REC button beside the LIVE mark, and the banner lines the
analysis pass calls for (a damaged video's real frame count, a pass that failed: what failed,
with Retry, also Playback ▸ Retry analysis).
"""

from __future__ import annotations

import time
from functools import partial

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QToolButton

from posescope.core.playback import PlaybackMode
from posescope.core.session import Session
from posescope.core.session_types import short_name
from posescope.gui import messages
from posescope.gui.recording import Recordings

MODE_TEXT = {
    PlaybackMode.EVERY_FRAME: "Every frame (waits for frames not analysed yet)",
    PlaybackMode.REAL_TIME: "Real time (skips frames that are not ready)",
}


def _menu(window: QMainWindow, title: str) -> QMenu | None:
    for action in window.menuBar().actions():
        if action.text().replace("&", "") == title and action.menu() is not None:
            return action.menu()  # type: ignore[return-value]
    return None


class Workflow(QObject):
    """What `install_workflow` added, for the tests and for closing."""

    def __init__(self, window, show) -> None:
        super().__init__(window)
        session: Session = window.session
        self.session = session
        self.recordings = Recordings(session, window, show, window.qsettings)
        self.mode_actions: dict[PlaybackMode, QAction] = {}

        play_menu = _menu(window, "Playback")
        if play_menu is not None:
            play_menu.addSeparator()
            group = QActionGroup(self)
            for mode in (PlaybackMode.EVERY_FRAME, PlaybackMode.REAL_TIME):
                action = QAction(MODE_TEXT[mode], window)
                action.setCheckable(True)
                group.addAction(action)
                action.triggered.connect(partial(self.set_mode, mode))
                play_menu.addAction(action)
                self.mode_actions[mode] = action
        session.events.playback_mode_changed.connect(self._mode_changed)
        self.set_mode(PlaybackMode.EVERY_FRAME)  # a video's analysed frames play in full

        self.record_action = QAction("Record live…", window)
        self.record_action.setShortcut(QKeySequence("Ctrl+R"))
        self.record_action.triggered.connect(lambda *_: self.recordings.toggle())
        file_menu = _menu(window, "File")
        if file_menu is not None:
            export = getattr(window, "export_action", None)
            actions = file_menu.actions()
            after = actions.index(export) + 1 if export in actions else len(actions)
            before = actions[after] if after < len(actions) else None
            file_menu.insertAction(before, self.record_action)  # type: ignore[arg-type]
        self.record_button = QToolButton()
        self.record_button.setObjectName("RecordButton")
        self.record_button.setText("● REC")
        self.record_button.setCheckable(True)
        self.record_button.setToolTip("Record the live source: poses and the overlay (Ctrl+R)")
        self.record_button.clicked.connect(lambda *_: self.recordings.toggle())
        self.record_button.hide()
        timeline = window.timeline
        lay = timeline.layout()
        lay.insertWidget(lay.indexOf(timeline.live_label) + 1, self.record_button)
        self.recordings.sigChanged.connect(self._recording_changed)
        session.events.source_changed.connect(
            lambda info: self.record_button.setVisible(bool(info.live))
        )

        def corrected(claimed: int, real: int) -> None:
            name = short_name(session.source.spec) if session.source else "the video"
            # a frame past the real end that failed to decode is explained by this line
            window.banner.close_where(
                lambda text: text.startswith("Reading the video failed") and "decoded" in text
            )
            show(
                messages.Message(
                    f"{name}: only {real} of the {claimed} frames it claims decode (the file "
                    f"is damaged or cut short); the timeline now ends at frame {real - 1}",
                    "warning",
                )
            )

        session.events.frame_count_corrected.connect(corrected)
        self.retry_action = QAction("Retry analysis", window)
        self.retry_action.setToolTip("Analyse the video again from its first frame")
        self.retry_action.setEnabled(False)
        self.retry_action.triggered.connect(lambda *_: self.retry_analysis())
        if play_menu is not None:
            play_menu.addAction(self.retry_action)
        self._show = show
        session.events.analysis_error.connect(self._analysis_failed)
        session.events.analysis_progressed.connect(
            lambda _p: self.retry_action.setEnabled(session.analysis_failure is not None)
        )

    def _analysis_failed(self, exc: BaseException) -> None:
        """Say what failed and how far the pass got, and offer to run it again."""
        self.retry_action.setEnabled(True)
        self._show(messages.analysis_failure(exc, self.session.analysis_progress.done,
                                             self.retry_analysis))  # fmt: skip

    def retry_analysis(self) -> bool:
        """The user asked to analyse again (the banner's Retry, Playback ▸ Retry analysis)."""
        ok = self.session.retry_analysis()
        self.retry_action.setEnabled(self.session.analysis_failure is not None)
        return ok

    def set_mode(self, mode: PlaybackMode) -> None:
        self.session.set_playback_mode(mode, time.perf_counter())

    def _mode_changed(self, mode: PlaybackMode) -> None:
        action = self.mode_actions.get(mode)
        if action is not None and not action.isChecked():
            action.setChecked(True)

    def _recording_changed(self, recording: bool) -> None:
        self.record_action.setText("Stop recording" if recording else "Record live…")
        self.record_button.setChecked(recording)

    def shutdown(self) -> None:
        """The window closes: stop recording and let the files be finished (bounded wait)."""
        self.recordings.stop()
        self.recordings.wait_finished()


def install_workflow(window, show) -> Workflow:
    """Add the workflow's menus, button and messages to `window` (a MainWindow)."""
    return Workflow(window, show)
