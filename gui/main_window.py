"""The main window: layout, menus, recent files, drag and drop, the banner, and the wiring.

The state lives in a Qt-free `Session` (core/session.py); a `Controller` (gui/controller.py)
runs what the session asks for in worker threads; `gui/messages.py` words what happens. The
window connects the session's events to the views and the views' input to the session.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from posescope import resources
from posescope.core.session import Session
from posescope.core.session_types import CheckpointChoice, Model, SourceInfo
from posescope.gui import engine, messages
from posescope.gui.arch_binding import bind_arch_panel
from posescope.gui.arch_panel import ArchPanel
from posescope.gui.banner import Banner, BannerMessage
from posescope.gui.chrome import tool_button, view_header
from posescope.gui.compare_ui import install_compare
from posescope.gui.controller import Controller
from posescope.gui.export_dialog import ExportController, Exports
from posescope.gui.joints_panel import JointsPanel
from posescope.gui.people_tools import PeopleTools
from posescope.gui.persist import load_settings, save_settings
from posescope.gui.ratio_splitter import RatioSplitter
from posescope.gui.recent import CameraMenu, RecentFiles
from posescope.gui.settings_panel import SettingsPanel
from posescope.gui.shortcuts import ShortcutsDialog
from posescope.gui.skeleton_view import CAMERA, ROOT_RELATIVE, SkeletonView
from posescope.gui.status import StatusPanel
from posescope.gui.timeline import Timeline
from posescope.gui.video_view import VideoView
from posescope.gui.workflow import install_workflow

log = logging.getLogger(__name__)

DOCK_SHARE = 0.27  # the right docks' widest share of a narrow window


class MainWindow(QMainWindow):
    """PoseScope's window. `open_paths(paths)` is what a drop does (tests call it directly);
    `session` holds the state, `controller` the threads."""

    sigIdentified = Signal(object)  # Identification of a dropped pose checkpoint (panel filled)
    sigModelReady = Signal(object)  # Identification of the model now running
    sigModelFailed = Signal(str)
    sigSourceOpened = Signal(object)  # SourceInfo
    sigFrameShown = Signal(object)  # FrameResult now on screen
    sigProblem = Signal(str, str)  # (level, text) of every warning / error shown
    sigExportDone = Signal(object)  # summary dict, or None when cancelled / failed

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self.setWindowTitle("PoseScope")
        self.setAcceptDrops(True)
        with contextlib.suppress(FileNotFoundError):
            self.setWindowIcon(QIcon(str(resources.path("icon.svg"))))
        self.qsettings = settings if settings is not None else QSettings("PoseScope", "PoseScope")
        self.session = Session(*load_settings(self.qsettings))
        self.controller = Controller(self.session, parent=self)
        self.exports = Exports(self.session, self, self._show, self.qsettings)
        self.exports.sigDone.connect(self.sigExportDone)
        self.recent = RecentFiles(self.qsettings, self.open_paths)
        self._build_ui()
        self._build_menus()
        for child in self.findChildren(QWidget):
            child.setAcceptDrops(False)  # a drop anywhere (even on a text field) opens files
        self._wire()
        self.workflow = install_workflow(self, self._show)  # playback modes, recording
        self.compare_ui = install_compare(self)  # A/B: two checkpoints compared
        self._update_hint()

    # ================================================================== layout

    def _build_ui(self) -> None:
        session = self.session
        self.banner = Banner()
        self.video_view = VideoView()
        self.video_view.bind(session)
        self.skeleton_view = SkeletonView()
        self.skeleton_view.bind(session)
        self.timeline = Timeline()
        self.timeline.bind(session)
        self.status = StatusPanel()
        self.status.bind(session)
        self.arch_panel = ArchPanel()
        bind_arch_panel(self.arch_panel, session)
        self.settings_panel = SettingsPanel(session)
        self.joints_panel = JointsPanel(session)
        self.video_view.sigClicked.connect(
            lambda x, y: session.selection.select_at(
                session.shown.poses if session.shown is not None else None, x, y
            )
        )

        video_box = QWidget()
        vb = QVBoxLayout(video_box)
        vb.setContentsMargins(0, 0, 0, 0)
        vb.setSpacing(0)
        header, self._video_header, self.source_label = view_header("Video", "no source")
        hl = self._video_header
        self.source_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        fit = tool_button("Fit", "Show the whole frame")
        fit.clicked.connect(self.video_view.fit)
        hl.addWidget(fit)
        vb.addWidget(header)
        vb.addWidget(self.video_view, 1)

        self.splitter = RatioSplitter()  # the 3D view keeps its share on any screen
        self.splitter.setObjectName("ViewSplitter")
        self.splitter.addWidget(video_box)
        self.splitter.addWidget(self.skeleton_view)
        self.splitter.setChildrenCollapsible(False)

        central = QWidget()
        central.setObjectName("Central")
        cl = QVBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(self.banner)
        cl.addWidget(self.splitter, 1)
        cl.addWidget(self.timeline)
        self.setCentralWidget(central)

        self.drop_overlay = QLabel("Drop to open", central)
        self.drop_overlay.setObjectName("DropOverlay")
        self.drop_overlay.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.drop_overlay.hide()

        self.arch_dock = self._dock("Architecture", "ArchDock", self.arch_panel)
        self.settings_dock = self._dock("Settings", "SettingsDock", self.settings_panel)
        self.joints_dock = self._dock("Joints", "JointsDock", self.joints_panel)
        self.tabifyDockWidget(self.arch_dock, self.settings_dock)
        self.tabifyDockWidget(self.settings_dock, self.joints_dock)
        self.setTabPosition(Qt.DockWidgetArea.RightDockWidgetArea, QTabWidget.TabPosition.North)
        self.arch_dock.raise_()
        self.resizeDocks([self.arch_dock], [400], Qt.Orientation.Horizontal)
        self.statusBar().setSizeGripEnabled(False)
        self.statusBar().addPermanentWidget(self.status, 1)
        self.people_tools = PeopleTools(
            self, session, self.video_view, self._video_header, self.settings_dock,
            self.settings_panel, lambda m: self.show_message(m.text, m.level, m.actions, m.details),
        )  # fmt: skip
        cl.insertWidget(1, self.people_tools.download_bar)  # under the banner

    def _dock(self, title: str, name: str, widget: QWidget) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        dock.setTitleBarWidget(QWidget())  # the tabs name them; View menu toggles them
        return dock

    def _build_menus(self) -> None:
        mb = self.menuBar()
        s, c = self.session, self.controller
        file_menu = mb.addMenu("&File")
        keys = QKeySequence.StandardKey
        self._action(file_menu, "Open checkpoint…", self.choose_checkpoint, keys.Open)
        self._action(file_menu, "Open video or image…", self.choose_media, "Ctrl+Shift+O")
        self._action(file_menu, "Open folder of images…", self.choose_folder)
        self.camera_menu = CameraMenu(c, self.open_source, self.show_message, file_menu)
        file_menu.addMenu(self.camera_menu)
        self.recent_menu = file_menu.addMenu("Open recent")
        self.recent.attach(self.recent_menu)
        file_menu.addSeparator()
        self.export_action = self._action(file_menu, "Export poses…", self.exports.choose, "Ctrl+E")
        self._action(file_menu, "Save 2D snapshot…", partial(self._choose_snapshot, "2d"), "Ctrl+S")
        self._action(
            file_menu, "Save 3D snapshot…", partial(self._choose_snapshot, "3d"), "Ctrl+Shift+S"
        )
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, keys.Quit)

        self.people_tools.add_menu(mb.addMenu("&Edit"))

        play = mb.addMenu("&Playback")
        self._action(play, "Play / pause", c.toggle_play, "Space")
        self._action(play, "Step back", partial(s.step, -1), "Left")
        self._action(play, "Step forward", partial(s.step, 1), "Right")
        self._action(play, "10 frames back", partial(s.step, -10), "Shift+Left")
        self._action(play, "10 frames forward", partial(s.step, 10), "Shift+Right")
        self._action(play, "First frame", partial(s.seek, 0), "Home")
        self._action(play, "Last frame", lambda: s.seek(max(0, s.frame_count - 1)), "End")

        view = mb.addMenu("&View")
        view.addAction(self.arch_dock.toggleViewAction())
        view.addAction(self.settings_dock.toggleViewAction())
        view.addAction(self.joints_dock.toggleViewAction())
        view.addSeparator()
        group = QActionGroup(self)
        self.root_action = self._action(view, "3D: root-relative", None, "R")
        self.camera_action = self._action(view, "3D: camera space", None, "C")
        for a, space in ((self.root_action, ROOT_RELATIVE), (self.camera_action, CAMERA)):
            a.setCheckable(True)
            group.addAction(a)
            a.triggered.connect(partial(self.skeleton_view.set_space, space))
        self.root_action.setChecked(True)
        self.skeleton_view.sigSpaceChanged.connect(
            lambda sp: (self.root_action if sp == ROOT_RELATIVE else self.camera_action).setChecked(
                True
            )
        )
        self._action(view, "Fit 3D view to skeleton", self.skeleton_view.fit, "F")
        self._action(view, "Reset 3D view", self.skeleton_view.reset_view, "Shift+F")
        self._action(view, "Fit video", self.video_view.fit, "V")
        for name, key in (("front", "1"), ("side", "2"), ("top", "3")):
            self._action(view, f"3D: {name} view", partial(self.skeleton_view.set_view, name), key)
        trail = self._action(view, "3D: root trail of the selected person", None, "T")
        trail.setCheckable(True)
        trail.toggled.connect(s.selection.set_trail)
        s.selection.events.trail_toggled.connect(lambda on: trail.setChecked(on))

        help_menu = mb.addMenu("&Help")
        self._action(help_menu, "Keyboard shortcuts", self.show_shortcuts, "F1")
        self._action(help_menu, "About PoseScope", self._about)

    def _action(
        self, menu: QMenu, text: str, slot: Callable[[], object] | None, shortcut=None
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if slot is not None:
            action.triggered.connect(lambda *_: slot())
        menu.addAction(action)
        return action

    # ================================================================== wiring

    def _wire(self) -> None:
        s, ev, c = self.session, self.session.events, self.controller
        c.sigBusy.connect(self.status.set_activity)
        messages.bind_messages(s, self._show, lambda path: s.open_checkpoints([path], True))
        self.timeline.sigSeek.connect(lambda i: s.seek(i, from_timeline=True))
        self.timeline.sigStep.connect(s.step)
        self.timeline.sigPlayToggled.connect(c.toggle_play)
        self.timeline.sigSpeedChanged.connect(c.set_speed)
        ev.build_requested.connect(lambda request: self.sigIdentified.emit(request.ident))
        ev.model_changed.connect(self._model_changed)
        ev.build_failed.connect(lambda f: self.sigModelFailed.emit(messages.build_failed(f).text))
        ev.checkpoints_chosen.connect(self._checkpoints_chosen)
        ev.source_changed.connect(self._source_changed)
        ev.frame_shown.connect(lambda result: self.sigFrameShown.emit(result))

    def _checkpoints_chosen(self, choice: CheckpointChoice) -> None:
        for opened in (choice.rootnet, choice.pose, *choice.passed_over):
            if opened is not None:
                self.recent.add(opened.path)

    def _model_changed(self, model: Model) -> None:
        self._update_hint()
        self.sigModelReady.emit(model.ident)

    def _source_changed(self, info: SourceInfo) -> None:
        parts = [info.name, f"{info.width}×{info.height}" if info.width and info.height else ""]
        if info.live or info.frame_count > 1:  # a single image has no rate and no frames
            parts.append(f"{info.fps:g} fps")
        if info.frame_count > 1 and not info.live:
            parts.append(f"{info.frame_count} frames")
        self.source_label.setText("  ·  ".join(p for p in parts if p))
        if not info.is_camera:
            self.recent.add(info.spec.removeprefix("replay:"))
        self.export_action.setEnabled(True)
        self.sigSourceOpened.emit(info)

    # ================================================================== messages

    def show_message(
        self,
        text: str,
        level: str = "error",
        actions: Sequence[tuple[str, Callable[[], None]]] = (),
        details: str | None = None,
    ) -> BannerMessage:
        """Show `text` in the banner (non-blocking); warnings and errors are also signalled."""
        if level in ("warning", "error"):
            log.info("%s: %s", level, text)
            self.sigProblem.emit(level, text)
        return self.banner.show_message(text, level, actions, details=details)

    def _show(self, m: messages.Message) -> None:
        self.show_message(m.text, m.level, m.actions, m.details)

    # ================================================================== what a user does

    def open_paths(self, paths: Sequence[str | os.PathLike[str]], trust: bool = False) -> None:
        """Open dropped files: checkpoints are identified and loaded (a RootNet beside a pose
        checkpoint gives root depth); a video, image or folder becomes the source."""
        checkpoints: list[str] = []
        media: list[str] = []
        for p in (str(x) for x in paths):
            if not os.path.exists(p):
                self.show_message(f"{os.path.basename(p) or p}: no such file", "error")
                continue
            (media if engine.classify_path(p) == "media" else checkpoints).append(p)
        self.session.open_checkpoints(checkpoints, trust)
        if media:
            if len(media) > 1:
                skipped = ", ".join(os.path.basename(m) for m in media[1:])
                self.show_message(
                    f"One source at a time: opened {os.path.basename(media[0])}, not {skipped}",
                    "info",
                )
            self.open_source(media[0])

    def open_source(self, spec: str, start_frame: int | None = None) -> None:
        """Open a video / image / folder path, or 'camera:N' / 'replay:PATH', in a worker."""
        self.session.open_source(spec, start_frame)

    def seek_when_open(self, frame: int) -> None:
        self.session.seek_when_open(frame)

    def use_person_box(self, box: Sequence[float]) -> None:
        """Estimate in this box (image pixels, x, y, w, h) instead of detecting people."""
        self.session.use_person_box(box)

    def use_detector(self, name: str | None, model: str | None = None) -> None:
        """Find people with this detector (rtmdet | yolox | hog | none; None: the default)
        and optionally a local ONNX file of it; raises SettingsError for a bad pair."""
        self.session.people.choose_detector(name, model)

    def play(self) -> None:
        self.controller.play()

    def pause(self) -> None:
        self.session.pause()

    def start_export(
        self, request: engine.ExportRequest, show_dialog: bool = True
    ) -> ExportController | None:
        """Export the current source (progress dialog, cancellable); None when refused."""
        return self.exports.start(request, show_dialog)

    def save_snapshot(self, which: str, path: str) -> bool:
        """Save the 2D ('2d') or 3D ('3d') view as a PNG."""
        image = self.video_view.grab_image() if which == "2d" else self.skeleton_view.grab_image()
        ok = bool(image.save(path, "PNG"))
        if ok:
            self.show_message(f"Saved {os.path.basename(path)}", "success")
        else:
            self.show_message(f"Could not write {path}", "error")
        return ok

    def _choose_snapshot(self, which: str) -> None:
        source = self.session.source
        base = source.spec.removeprefix("replay:") if source else "posescope"
        default = f"{Path(base).with_suffix('')}_{which}_{self.session.shown_index or 0:05d}.png"
        path, _ = QFileDialog.getSaveFileName(self, "Save snapshot", default, "PNG (*.png)")
        if path:
            self.save_snapshot(which, path)

    def choose_checkpoint(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Open checkpoint", self.recent.last_dir(), engine.CHECKPOINT_FILTER
        )
        if paths:
            self.open_paths(paths)

    def choose_media(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open video or image", self.recent.last_dir(), engine.MEDIA_FILTER
        )
        if path:
            self.open_paths([path])

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Open folder of images", self.recent.last_dir()
        )
        if path:
            self.open_source(path)

    def recent_files(self) -> list[str]:
        return self.recent.files()

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About PoseScope",
            "<b>PoseScope</b><br>Drop a 3D human pose checkpoint: PoseScope reads its tensors, "
            "says what network it is and why, rebuilds it and runs it on a video or a camera.",
        )

    def show_shortcuts(self) -> ShortcutsDialog:
        """Help ▸ Keyboard shortcuts (generated from the actions: every key, never stale)."""
        dialog = ShortcutsDialog(self)
        dialog.show()
        return dialog

    def _update_hint(self) -> None:
        if self.video_view.current_frame is not None:
            self.video_view.set_hint(None)
        elif self.session.model is None and self.session.base is None:
            self.video_view.set_hint(messages.HINT_NO_MODEL)
        else:
            self.video_view.set_hint(messages.HINT_NO_SOURCE)

    # ================================================================== drag and drop

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
            self._show_drop_overlay(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragLeaveEvent(self, event) -> None:
        self._show_drop_overlay(False)

    def dropEvent(self, event) -> None:
        """Only turns URLs into paths; `open_paths` does the work."""
        self._show_drop_overlay(False)
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    def _show_drop_overlay(self, show: bool) -> None:
        if show:
            self.drop_overlay.setGeometry(self.centralWidget().rect().adjusted(12, 12, -12, -12))
            self.drop_overlay.raise_()
            self.drop_overlay.show()
        else:
            self.drop_overlay.hide()

    # ================================================================== size

    def resizeEvent(self, event) -> None:
        """A narrow window: the right docks give way (at most DOCK_SHARE of the width) so the
        video and the 3D view keep room; the user can still widen them."""
        super().resizeEvent(event)
        cap = max(240, int(self.width() * DOCK_SHARE))
        docks = [d for d in (self.arch_dock, self.settings_dock, self.joints_dock) if d.isVisible()]
        if docks and max(d.width() for d in docks) > cap:
            self.resizeDocks(docks, [cap] * len(docks), Qt.Orientation.Horizontal)

    # ================================================================== closing

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self, timeout_s: float = 1.0) -> bool:
        """Stop every worker thread (within `timeout_s`); safe to call twice."""
        if self.controller.closed:
            return True
        try:
            save_settings(self.qsettings, self.session)
            self.qsettings.sync()
        except Exception:  # settings are a convenience; closing must go on
            log.debug("saving settings failed", exc_info=True)
        self.exports.cancel()
        self.workflow.shutdown()
        return self.controller.shutdown(timeout_s)
