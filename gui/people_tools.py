"""The window's people tools, wired in one place: "Draw a person box" and Undo on the video
view's header, Edit ▸ Undo box edit (Ctrl+Z) / Redo, the weights download bar, the banner
lines about detectors, and the "Nobody found" card's two ways out."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QHBoxLayout, QMainWindow, QMenu

from posescope.core.session import Session
from posescope.core.session_types import RunnerSettings
from posescope.gui.chrome import tool_button
from posescope.gui.detector_form import choose_model_file
from posescope.gui.download import DownloadBar
from posescope.gui.messages import Message
from posescope.gui.people_messages import bind_people_messages
from posescope.gui.settings_panel import SettingsPanel
from posescope.gui.video_view import VideoView

DRAW_TIP = (
    "Draw a person box: drag on the video to draw it (then move it or its corners); the pose"
    " is estimated in it instead of detecting people. Click again to detect people."
)


class PeopleTools:
    """Creates the tools and connects them to `session`; `download_bar` goes under the
    banner (the window places it)."""

    def __init__(
        self,
        window: QMainWindow,
        session: Session,
        video_view: VideoView,
        header: QHBoxLayout,
        settings_dock: QDockWidget,
        settings_panel: SettingsPanel,
        show: Callable[[Message], object],
    ) -> None:
        self.window = window
        self.session = session
        self.video_view = video_view
        self.settings_dock = settings_dock
        self.settings_panel = settings_panel

        self.draw_button = tool_button("▭ Box", DRAW_TIP)
        self.draw_button.setObjectName("DrawBoxTool")
        self.draw_button.setAccessibleName("Draw a person box")
        self.draw_button.setCheckable(True)
        self.draw_button.toggled.connect(self.set_drawing)
        self.undo_button = tool_button("↶", "Undo the last person box edit (Ctrl+Z)")
        self.undo_button.clicked.connect(session.people.history.undo)
        header.insertWidget(max(0, header.count() - 1), self.draw_button)
        header.insertWidget(max(0, header.count() - 1), self.undo_button)

        self.undo_action = QAction("Undo box edit", window)
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.undo_action.triggered.connect(lambda *_: session.people.history.undo())
        self.redo_action = QAction("Redo box edit", window)
        self.redo_action.setShortcut(QKeySequence.StandardKey.Redo)
        self.redo_action.triggered.connect(lambda *_: session.people.history.redo())

        self.download_bar = DownloadBar(session)
        bind_people_messages(session, show, self.choose_file)

        video_view.nobody.sigDrawBox.connect(lambda: self.set_drawing(True))
        video_view.nobody.sigChooseDetector.connect(self.show_detector_choice)
        session.events.runner_settings_changed.connect(self._show_settings)
        session.people.events.history_changed.connect(self._show_history)
        self._show_settings(session.runner_settings)
        self._show_history(False, False)

    def add_menu(self, menu: QMenu) -> None:
        """Edit ▸ Undo / Redo box edit."""
        menu.addAction(self.undo_action)
        menu.addAction(self.redo_action)

    # ------------------------------------------------------------ actions

    def set_drawing(self, on: bool) -> None:
        """The box tool: on, the pose is estimated in a box (drawn by dragging); off, people
        are detected again (the box is kept for later)."""
        self.session.set_runner_settings(use_box=bool(on))
        self.video_view.viewbox.draw_tool = bool(on)
        if on:
            self.video_view.nobody.show_state("found")

    def show_detector_choice(self) -> None:
        """Settings ▸ People, the detector list open."""
        self.settings_dock.show()
        self.settings_dock.raise_()
        combo = self.settings_panel.detector_form.combo
        self.settings_panel.ensureWidgetVisible(combo)
        combo.setFocus()
        combo.showPopup()

    def choose_file(self, name: str) -> None:
        choose_model_file(self.window, self.session, name)

    # ------------------------------------------------------------ session -> tools

    def _show_settings(self, settings: RunnerSettings) -> None:
        blocked = self.draw_button.blockSignals(True)
        self.draw_button.setChecked(settings.use_box)
        self.draw_button.blockSignals(blocked)
        self.video_view.viewbox.draw_tool = settings.use_box

    def _show_history(self, can_undo: bool, can_redo: bool) -> None:
        self.undo_button.setEnabled(can_undo)
        self.undo_action.setEnabled(can_undo)
        self.redo_action.setEnabled(can_redo)
