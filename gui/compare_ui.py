"""A/B in the window: what `install_compare(window)` adds for comparing two checkpoints.

File ▸ Compare with… (B beside the running A) and Stop comparing; View ▸ A/B (both, A only,
B only, and X to cycle); the same toggles in the video's header while comparing; the two
skeletons in the 2D and 3D views (gui/compare_overlay.py); the side-by-side card on top of the
architecture panel and the "A/B" dock with the distances (gui/compare_panel.py). The state is
`session.compare` (core/session_compare.py); the controller runs the builds and the diff.
"""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QToolButton, QWidget

from posescope.core.session import Session
from posescope.core.session_compare import Visibility
from posescope.core.session_types import CheckpointChoice
from posescope.gui import engine
from posescope.gui.chrome import tool_button
from posescope.gui.compare_overlay import CompareOverlay2D, CompareOverlay3D
from posescope.gui.compare_panel import DistanceReadout, compare_card
from posescope.gui.workflow import _menu

VISIBILITY_TEXT = {
    Visibility.BOTH: ("A/B: show A and B", "Alt+1"),
    Visibility.A: ("A/B: show A only", "Alt+2"),
    Visibility.B: ("A/B: show B only", "Alt+3"),
}
CYCLE_KEY = "X"


class CompareUI(QObject):
    """What `install_compare` added (kept for the tests)."""

    def __init__(self, window) -> None:  # the MainWindow
        super().__init__(window)
        self.window = window
        session: Session = window.session
        self.session = session
        compare = session.compare
        self.overlay_2d = CompareOverlay2D(window.video_view, session)
        self.overlay_3d = CompareOverlay3D(window.skeleton_view, session)
        self.readout = DistanceReadout(session)
        self.dock = QDockWidget("A/B", window)
        self.dock.setObjectName("CompareDock")
        self.dock.setWidget(self.readout)
        self.dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.setTitleBarWidget(QWidget())
        window.tabifyDockWidget(window.arch_dock, self.dock)
        window.arch_dock.raise_()

        # File ▸ Compare with… / Stop comparing, after Open checkpoint…
        self.compare_action = QAction("Compare with…", window)
        self.compare_action.setToolTip("Load a second pose checkpoint as B beside the one running")
        self.compare_action.triggered.connect(self.choose_b)
        self.stop_action = QAction("Stop comparing", window)
        self.stop_action.triggered.connect(compare.stop)
        file_menu = _menu(window, "File")
        if file_menu is not None:
            actions = file_menu.actions()
            before = actions[1] if len(actions) > 1 else None
            for action in (self.compare_action, self.stop_action):
                file_menu.insertAction(before, action)

        # View ▸ A/B toggles (and X cycles)
        self.visibility_actions: dict[Visibility, QAction] = {}
        view_menu = _menu(window, "View")
        group = QActionGroup(self)
        for value, (text, key) in VISIBILITY_TEXT.items():
            action = QAction(text, window)
            action.setCheckable(True)
            action.setShortcut(QKeySequence(key))
            action.triggered.connect(partial(compare.set_visibility, value))
            group.addAction(action)
            self.visibility_actions[value] = action
        self.cycle_action = QAction("A/B: cycle both / A only / B only", window)
        self.cycle_action.setShortcut(QKeySequence(CYCLE_KEY))
        self.cycle_action.triggered.connect(lambda *_: compare.cycle_visibility())
        if view_menu is not None:
            view_menu.addSeparator()
            view_menu.addAction(self.dock.toggleViewAction())
            for action in (*self.visibility_actions.values(), self.cycle_action):
                view_menu.addAction(action)
        else:
            window.addActions([*self.visibility_actions.values(), self.cycle_action])

        # the same toggles in the video's header, while comparing
        self.header_buttons: dict[Visibility, QToolButton] = {}
        header = getattr(window, "_video_header", None)
        for value, text in ((Visibility.BOTH, "A+B"), (Visibility.A, "A"), (Visibility.B, "B")):
            tip = f"{VISIBILITY_TEXT[value][0]} ({VISIBILITY_TEXT[value][1]}; {CYCLE_KEY} cycles)"
            button = tool_button(text, tip)
            button.setObjectName("SegmentButton")
            button.setCheckable(True)
            button.clicked.connect(partial(self._clicked, value))
            button.hide()
            if header is not None:
                header.insertWidget(max(0, header.count() - 1), button)
            self.header_buttons[value] = button

        ev = compare.events
        ev.pair_changed.connect(self._pair_changed)
        ev.diff_changed.connect(self._show_card)
        ev.visibility_changed.connect(lambda _v: self._sync())
        session.events.model_changed.connect(lambda _m: self._sync())
        session.events.checkpoints_chosen.connect(self._chosen)
        self._sync()

    # ---------------------------------------------------------------- user

    def choose_b(self) -> None:
        """File ▸ Compare with…: a pose checkpoint to compare with the one running."""
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Compare with", self.window.recent.last_dir(), engine.CHECKPOINT_FILTER
        )
        if path:
            self.session.compare.compare_with([path])

    def _clicked(self, value: Visibility, _checked: bool = False) -> None:
        self.session.compare.set_visibility(value)

    # ---------------------------------------------------------------- session

    def _pair_changed(self, _a: object, b: object) -> None:
        self._show_card()
        self._sync()
        if b is not None:
            self.dock.show()
            self.dock.raise_()

    def _show_card(self) -> None:
        compare = self.session.compare
        card = partial(compare_card, compare) if compare.active else None
        self.window.arch_panel.set_comparison(card)

    def _chosen(self, choice: CheckpointChoice) -> None:
        if choice.compare is not None:
            self.window.recent.add(choice.compare.path)

    def _sync(self) -> None:
        compare = self.session.compare
        active = compare.active
        self.compare_action.setEnabled(self.session.base is not None)
        self.stop_action.setEnabled(active)
        for value, action in self.visibility_actions.items():
            action.setEnabled(active)
            action.setChecked(value == compare.visibility)
        self.cycle_action.setEnabled(active)
        for value, button in self.header_buttons.items():
            button.setVisible(active)
            button.setChecked(value == compare.visibility)


def install_compare(window) -> CompareUI:  # the MainWindow
    """Add A/B comparison to `window` (see the module's docstring)."""
    return CompareUI(window)
