"""The main window: layout, menus, drag and drop, banner, and the glue to the workers.

Threads: one `TaskRunner` thread runs one-shot engine calls in order (identify, build, open a
source, list cameras); one `InferenceWorker` thread computes the newest frame request
(latest wins); a `CaptureWorker` thread reads a live source; an export runs in its own
`JobWorker` thread. Results come back by signals only; the GUI thread never waits on them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from posescope import resources
from posescope.gui import engine
from posescope.gui.arch_panel import ArchPanel
from posescope.gui.banner import Banner, BannerMessage
from posescope.gui.chrome import tool_button, view_header
from posescope.gui.export_dialog import ExportController, ExportDialog
from posescope.gui.settings_panel import SettingsPanel, ViewerSettings
from posescope.gui.skeleton_view import CAMERA, ROOT_RELATIVE, SkeletonView
from posescope.gui.status import StatusPanel
from posescope.gui.timeline import Timeline
from posescope.gui.video_view import VideoView
from posescope.gui.workers import (
    CaptureWorker,
    FrameResult,
    InferenceWorker,
    TaskRunner,
    describe_error,
    start_worker,
    stop_all,
    stop_worker,
)

log = logging.getLogger(__name__)

MAX_RECENT = 10
HINT_NO_MODEL = (
    "<div style='font-size:20pt; font-weight:600'>Drop a checkpoint here</div>"
    "<div style='margin-top:10px'>ConvNeXtPose XS / S / M / L, or 3DMPPE PoseNet "
    "(a RootNet beside it gives root depth)</div>"
    "<div style='margin-top:6px; color:#8b95ab'>.pth · .pth.tar · .tar · .safetensors · "
    "or a video, image or folder</div>"
)
HINT_NO_SOURCE = (
    "<div style='font-size:18pt; font-weight:600'>Now drop a video or an image</div>"
    "<div style='margin-top:10px'>or open a folder, or pick a camera in File ▸ Camera</div>"
)


class MainWindow(QMainWindow):
    """PoseScope's window. `open_paths(paths)` is what a drop does (tests call it directly)."""

    sigIdentified = Signal(object)  # Identification of a dropped pose checkpoint (panel filled)
    sigModelReady = Signal(object)  # Identification of the model now running
    sigModelFailed = Signal(str)
    sigSourceOpened = Signal(object)  # source info dict
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
        self._closed = False

        # engine state (GUI thread only)
        self.model: engine.Model | None = None  # the model running now
        self.rootnet: engine.Opened | None = None
        self._base: engine.Opened | None = None  # the pose checkpoint being (or last) loaded
        self._upsample: tuple[bool, ...] | None = None
        self._model_gen = 0  # increments per build request; only the newest build is used
        self._runner_gen = 0
        self._joint_sets: dict[int, Any] = {0: None}
        self._detector: Any = None  # created in the task thread, reused by runners
        self.source_spec: str | None = None
        self.source_info: dict[str, Any] | None = None
        self.source_name = ""
        self.source_live = False
        self._source_gen = 0
        self._frame_count = 0
        self._fps = 30.0
        self._requested: int | None = None
        self._shown: FrameResult | None = None
        self._pending_seek: int | None = None
        self._last_error_gen = -1
        self.playing = False
        self._play_t0 = 0.0
        self._play_start = 0
        self.capture: CaptureWorker | None = None
        self._capture_thread = None
        self.export: ExportController | None = None
        self._cameras: list[tuple[str, str]] | None = None

        self._build_ui()
        self._build_menus()
        for child in self.findChildren(QWidget):
            child.setAcceptDrops(False)  # a drop anywhere (even on a text field) opens files

        # workers
        self.tasks = TaskRunner(parent=self)
        self.tasks.sigBusyChanged.connect(self._busy_changed)
        self.tasks.sigUnhandledError.connect(
            lambda exc: self.show_message(describe_error(exc), "error")
        )
        self.inference = InferenceWorker()
        self.inference.sigResult.connect(self._on_result)
        self.inference.sigSourceError.connect(self._on_source_error)
        self.inference.sigError.connect(self._on_worker_error)
        self._inference_thread = start_worker(self.inference, "posescope-inference")

        self._play_timer = QTimer(self)
        self._play_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._play_timer.timeout.connect(self._play_tick)
        self._model_settings_timer = QTimer(self)
        self._model_settings_timer.setSingleShot(True)
        self._model_settings_timer.setInterval(300)
        self._model_settings_timer.timeout.connect(self._reload_model)
        self._update_hint()

    # ================================================================== layout

    def _build_ui(self) -> None:
        s = self._load_viewer_settings()
        self.banner = Banner()
        self.video_view = VideoView()
        self.video_view.set_show_labels(s.show_labels)
        self.video_view.set_show_boxes(s.show_boxes)
        self.video_view.sigBoxChanged.connect(self._box_changed)
        self.skeleton_view = SkeletonView()
        self.timeline = Timeline()
        self.status = StatusPanel()
        self.arch_panel = ArchPanel()
        self.settings_panel = SettingsPanel(s)

        video_box = QWidget()
        vb = QVBoxLayout(video_box)
        vb.setContentsMargins(0, 0, 0, 0)
        vb.setSpacing(0)
        header, hl, self.source_label = view_header("Video", "no source")
        fit = tool_button("Fit", "Show the whole frame")
        fit.clicked.connect(self.video_view.fit)
        hl.addWidget(fit)
        vb.addWidget(header)
        vb.addWidget(self.video_view, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("ViewSplitter")
        self.splitter.addWidget(video_box)
        self.splitter.addWidget(self.skeleton_view)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
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

        self.arch_dock = QDockWidget("Architecture", self)
        self.arch_dock.setObjectName("ArchDock")
        self.arch_dock.setWidget(self.arch_panel)
        self.arch_dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.arch_dock)
        self.settings_dock = QDockWidget("Settings", self)
        self.settings_dock.setObjectName("SettingsDock")
        self.settings_dock.setWidget(self.settings_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.settings_dock)
        self.tabifyDockWidget(self.arch_dock, self.settings_dock)
        self.setTabPosition(Qt.DockWidgetArea.RightDockWidgetArea, QTabWidget.TabPosition.North)
        self.arch_dock.raise_()
        for dock in (self.arch_dock, self.settings_dock):
            dock.setTitleBarWidget(QWidget())  # the tabs name them; View menu toggles them
        self.resizeDocks([self.arch_dock], [370], Qt.Orientation.Horizontal)

        self.statusBar().setSizeGripEnabled(False)
        self.statusBar().addPermanentWidget(self.status, 1)

        self.arch_panel.sigUpsampleChanged.connect(self._upsample_changed)
        self.arch_panel.sigUpsampleReset.connect(lambda: self._upsample_changed(None))
        self.settings_panel.sigModelSettingsChanged.connect(self._model_settings_timer_start)
        self.settings_panel.sigRunnerSettingsChanged.connect(self._runner_settings_changed)
        self.settings_panel.sigDisplayChanged.connect(self._display_changed)
        self.settings_panel.sigResetBox.connect(self._reset_box)
        self.timeline.sigSeek.connect(self._timeline_seek)
        self.timeline.sigStep.connect(self.step)
        self.timeline.sigPlayToggled.connect(self.toggle_play)
        self.timeline.sigSpeedChanged.connect(self._speed_changed)
        self.video_view.set_box_drawing(s.use_box)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        self._action(file_menu, "Open checkpoint…", self.choose_checkpoint, QKeySequence.Open)
        self._action(file_menu, "Open video or image…", self.choose_media, "Ctrl+Shift+O")
        self._action(file_menu, "Open folder of images…", self.choose_folder)
        self.camera_menu = file_menu.addMenu("Camera")
        self.camera_menu.aboutToShow.connect(self._fill_camera_menu)
        self.recent_menu = file_menu.addMenu("Open recent")
        self._rebuild_recent_menu()
        file_menu.addSeparator()
        self.export_action = self._action(file_menu, "Export poses…", self.choose_export, "Ctrl+E")
        self._action(file_menu, "Save 2D snapshot…", lambda: self._choose_snapshot("2d"), "Ctrl+S")
        self._action(
            file_menu, "Save 3D snapshot…", lambda: self._choose_snapshot("3d"), "Ctrl+Shift+S"
        )
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, QKeySequence.Quit)

        play = mb.addMenu("&Playback")
        self._action(play, "Play / pause", self.toggle_play, "Space")
        self._action(play, "Step back", lambda: self.step(-1), "Left")
        self._action(play, "Step forward", lambda: self.step(1), "Right")
        self._action(play, "First frame", lambda: self.seek(0), "Home")
        self._action(play, "Last frame", lambda: self.seek(max(0, self._frame_count - 1)), "End")

        view = mb.addMenu("&View")
        view.addAction(self.arch_dock.toggleViewAction())
        view.addAction(self.settings_dock.toggleViewAction())
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

        help_menu = mb.addMenu("&Help")
        self._action(help_menu, "About PoseScope", self._about)

    def _action(self, menu: QMenu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if slot is not None:
            action.triggered.connect(lambda *_: slot())
        menu.addAction(action)
        return action

    # ================================================================== messages

    def show_message(
        self,
        text: str,
        level: str = "error",
        actions: Sequence[tuple[str, Any]] = (),
        details: str | None = None,
    ) -> BannerMessage:
        """Show `text` in the banner (non-blocking); warnings and errors are also signalled."""
        if level in ("warning", "error"):
            log.info("%s: %s", level, text)
            self.sigProblem.emit(level, text)
        return self.banner.show_message(text, level, actions, details=details)

    def _busy_changed(self, busy: bool) -> None:
        if not busy:
            self.status.set_activity("")

    @Slot(str)
    def _on_worker_error(self, text: str) -> None:
        self.show_message(text, "error")

    # ================================================================== opening files

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
        if checkpoints:
            self._identify(checkpoints, trust)
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
        if start_frame is not None:
            self._pending_seek = int(start_frame)
        self.status.set_activity(f"Opening {_short(spec)}…")
        self.tasks.submit(
            partial(engine.open_media, spec),
            on_done=partial(self._source_opened, spec),
            on_error=partial(self._source_failed, spec),
        )

    def seek_when_open(self, frame: int) -> None:
        """Show frame `frame` of the next source opened (or of the current one)."""
        if self.source_info is not None and not self.source_live:
            self.seek(frame)
        else:
            self._pending_seek = int(frame)

    def _identify(self, paths: list[str], trust: bool) -> None:
        names = ", ".join(os.path.basename(p) for p in paths)
        self.status.set_activity(f"Reading {names}…")
        if self.model is None:
            self.arch_panel.show_loading(names)
        self.tasks.submit(
            partial(engine.identify_files, list(paths), trust),
            on_done=self._identified,
            on_error=lambda exc: self._identify_crashed(paths, exc),
        )

    def _identify_crashed(self, paths: list[str], exc: BaseException) -> None:
        self._restore_panel()
        self.show_message(f"Could not read {', '.join(paths)}: {describe_error(exc)}", "error")

    def _identified(self, results: list[engine.Opened | engine.OpenFailed]) -> None:
        poses: list[engine.Opened] = []
        roots: list[engine.Opened] = []
        for r in results:
            if isinstance(r, engine.OpenFailed):
                self._report_open_failure(r)
                continue
            self._add_recent(r.path)
            (roots if r.ident.family == "rootnet" else poses).append(r)
        if roots:
            self.rootnet = roots[-1]
            self.arch_panel.set_rootnet(self.rootnet.ident)
            if len(roots) > 1:
                self.show_message(
                    f"Several RootNets dropped; using {os.path.basename(roots[-1].path)}", "info"
                )
        if poses:
            chosen = poses[-1]
            for other in poses[:-1]:
                self.show_message(
                    f"{os.path.basename(other.path)} is {other.ident.title}; loaded "
                    f"{os.path.basename(chosen.path)} (the last one dropped)",
                    "info",
                )
            self._upsample = None
            self.load_model(chosen)
        elif roots:
            if self._base is not None:
                self.load_model(self._base)  # rebuild with the RootNet beside it
            else:
                self._restore_panel()
                self.show_message(
                    f"RootNet {os.path.basename(roots[-1].path)} is ready for root depth: "
                    "now drop a pose checkpoint",
                    "info",
                )
        elif not poses:
            self._restore_panel()

    def _report_open_failure(self, failed: engine.OpenFailed) -> None:
        from posescope.core.checkpoint import NeedsTrustError, NotACheckpointError

        name = os.path.basename(failed.path.rstrip("/")) or failed.path
        exc = failed.error
        if isinstance(exc, NeedsTrustError):
            names = list(exc.globals)
            shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
            self.show_message(
                f"{name} wants to import {shown or 'code'} while loading. Opening it runs code "
                "from the file: continue only if you trust where it came from.",
                "warning",
                actions=[("Trust and open", partial(self._identify, [failed.path], True))],
                details=str(exc),
            )
            return
        looks = getattr(exc, "looks_like", None)
        reason = describe_error(exc)
        if reason.lower().startswith("not a"):
            text = f"{name} is {reason}"  # the engine says what it is not, and why
        elif isinstance(exc, NotACheckpointError):
            text = f"{name} is not a checkpoint: {reason}"
        elif type(exc).__name__ == "NotAPoseCheckpointError":
            text = f"{name} is not a pose checkpoint: {reason}"
        else:
            text = f"Could not open {name}: {reason}"
        if looks and looks not in text:
            text += f" (looks like {looks})"
        if self.model is not None:
            text += f" — still using {self.model.ident.title}"
        self.show_message(text, "error")

    def _restore_panel(self) -> None:
        if self.model is not None:
            self.arch_panel.set_identification(
                self.model.ident,
                overridden=self.model.settings.upsample is not None,
                rootnet=self.model.rootnet.ident if self.model.rootnet else None,
            )
        elif self._base is None:
            self.arch_panel.show_empty()

    # ================================================================== model

    def load_model(self, opened: engine.Opened) -> None:
        """Show what `opened` is, then build it in the task thread and run it."""
        self._base = opened
        self._model_gen += 1
        gen = self._model_gen
        settings = self._model_settings()
        ident = opened.ident
        if settings.upsample is not None and ident.arch is not None:
            try:
                ident = ident.with_arch(ident.arch.with_upsample(settings.upsample))
            except ValueError as exc:
                self.show_message(str(exc), "warning")
                settings.upsample = self._upsample = None
                ident = opened.ident
        self.arch_panel.set_identification(
            ident,
            overridden=settings.upsample is not None,
            rootnet=self.rootnet.ident if self.rootnet else None,
        )
        self.sigIdentified.emit(ident)
        for warning in ident.warnings:
            self.show_message(f"{os.path.basename(opened.path)}: {warning}", "warning")
        self.status.set_activity(f"Building {ident.title}…")
        rootnet = self.rootnet
        runner_settings = self._runner_settings()

        def build() -> tuple[engine.Model, Any]:
            model = engine.build_model(opened.ckpt, opened.ident, settings, rootnet)
            return model, engine.make_runner(
                model.estimator, runner_settings, self._detector_for(runner_settings)
            )

        self.tasks.submit(
            build,
            on_done=partial(self._model_built, gen),
            on_error=partial(self._model_failed, gen, opened),
        )

    def _detector_for(self, settings: engine.RunnerSettings) -> Any:
        """The shared people detector (task thread only); None when a box is used."""
        if settings.box is not None:
            return None
        if self._detector is None:
            self._detector = engine.make_detector()
        return self._detector

    def _model_built(self, gen: int, built: tuple[engine.Model, Any]) -> None:
        if gen != self._model_gen or self._closed:
            return  # a newer checkpoint or setting is on its way
        model, runner = built
        self.model = model
        self._install_runner(runner)
        self.status.set_device(
            model.estimator.device, model.settings.fp16, model.estimator.model.form
        )
        self.arch_panel.set_identification(
            model.ident,
            overridden=model.settings.upsample is not None,
            rootnet=model.rootnet.ident if model.rootnet else None,
        )
        self.skeleton_view.request_fit()
        self.show_message(
            f"{model.ident.title} running on {model.estimator.device}"
            + (" with RootNet root depth" if model.rootnet else ""),
            "success",
        )
        if model.estimator.model.compile_error:
            self.show_message(
                f"Could not compile ({model.estimator.model.compile_error}); running uncompiled",
                "warning",
            )
        self._update_hint()
        self.sigModelReady.emit(model.ident)

    def _model_failed(self, gen: int, opened: engine.Opened, exc: BaseException) -> None:
        if gen != self._model_gen:
            return
        if self.model is not None:
            self._base = engine.Opened(self.model.ckpt.path, self.model.ckpt, self.model.base_ident)
        else:
            self._base = None
        self._restore_panel()
        if self.model is not None:  # the settings panel shows what runs
            self.settings_panel.show_model_settings(self.model.settings)
        kept = f" — still using {self.model.ident.title}" if self.model is not None else ""
        text = f"Could not build {os.path.basename(opened.path)}: {describe_error(exc)}{kept}"
        self.show_message(text, "error")
        self.sigModelFailed.emit(text)

    def _install_runner(self, runner: Any) -> None:
        self._runner_gen += 1
        self._joint_sets[self._runner_gen] = getattr(self.model.estimator, "joint_set", None)
        self.inference.set_runner(runner, self._runner_gen)
        self._refresh()

    def _reload_model(self) -> None:
        if self._base is not None:
            self.load_model(self._base)

    def _model_settings_timer_start(self) -> None:
        self._model_settings_timer.start()

    def _upsample_changed(self, upsample: tuple[bool, ...] | None) -> None:
        self._upsample = tuple(upsample) if upsample is not None else None
        if self._base is not None and self._base.ident.arch is not None:
            if self._upsample == self._base.ident.arch.upsample:
                self._upsample = None
            self.load_model(self._base)

    def _model_settings(self) -> engine.ModelSettings:
        s = self.settings_panel.settings()
        return engine.ModelSettings(
            device=s.device,
            fp16=s.fp16,
            flip=s.flip,
            focal=s.focal,
            upsample=self._upsample,
            compile=s.compile,
        )

    def _runner_settings(self) -> engine.RunnerSettings:
        s = self.settings_panel.settings()
        box = self.video_view.box() if s.use_box else None
        return engine.RunnerSettings(smoothing=s.smoothing, strength=s.strength, box=box)

    def _runner_settings_changed(self) -> None:
        s = self.settings_panel.settings()
        self.video_view.set_box_drawing(s.use_box)
        if s.use_box and self.video_view.box() is None:
            box = self.video_view.default_box()
            if box is not None:
                self.video_view.set_box(box)  # announces it: rebuilds the runner
                return
        self._rebuild_runner()

    def _rebuild_runner(self) -> None:
        if self.model is None:
            return
        model_gen = self._model_gen
        estimator = self.model.estimator
        settings = self._runner_settings()

        def make() -> Any:
            return engine.make_runner(estimator, settings, self._detector_for(settings))

        def done(runner: Any) -> None:
            if model_gen == self._model_gen and not self._closed:
                self._install_runner(runner)

        self.tasks.submit(make, on_done=done, on_error=self._runner_failed)

    def _runner_failed(self, exc: BaseException) -> None:
        self.show_message(f"Could not apply the settings: {describe_error(exc)}", "error")

    def _box_changed(self, box: Any) -> None:
        if self.settings_panel.settings().use_box:
            self._rebuild_runner()

    def use_person_box(self, box: Sequence[float]) -> None:
        """Estimate in this box (image pixels, x, y, w, h) instead of detecting people."""
        self.video_view.set_box(tuple(float(v) for v in box))
        self.settings_panel.box_radio.setChecked(True)

    def _reset_box(self) -> None:
        box = self.video_view.default_box()
        if box is not None:
            self.video_view.set_box(box)

    def _display_changed(self) -> None:
        s = self.settings_panel.settings()
        self.video_view.set_show_labels(s.show_labels)
        self.video_view.set_show_boxes(s.show_boxes)

    # ================================================================== sources

    def _source_opened(self, spec: str, source: Any) -> None:
        if self._closed:
            source.close()
            return
        self.pause()
        self._stop_capture()
        self._source_gen += 1
        gen = self._source_gen
        info = engine.source_info(source)
        self.source_spec = spec
        self.source_info = info
        self.source_live = bool(getattr(source, "is_live", False)) or not bool(
            getattr(source, "seekable", True)
        )
        self._fps = float(getattr(source, "fps", 0) or 30.0)
        self._shown = None
        self._requested = None
        self.status.reset()
        self.skeleton_view.request_fit()
        name = getattr(source, "name", None) or _short(spec)
        self.source_name = str(name)
        w, h = getattr(source, "width", 0), getattr(source, "height", 0)
        count = getattr(source, "frame_count", None)
        parts = [str(name), f"{w}×{h}" if w and h else "", f"{self._fps:g} fps"]
        if count and not self.source_live:
            parts.append(f"{count} frames")
        self.source_label.setText("  ·  ".join(p for p in parts if p))
        if self.source_live:
            self._frame_count = 0
            self.inference.set_source(None, gen)
            self.timeline.set_source(None, self._fps, live=True)
            self.capture = CaptureWorker(source, self.inference, gen)
            self.capture.sigEnded.connect(self._capture_ended)
            self.capture.sigError.connect(self._capture_error)
            self._capture_thread = start_worker(self.capture, "posescope-capture")
            self.playing = True
            self.timeline.set_playing(True)
        else:
            self._frame_count = int(count or 1)
            self.inference.set_source(source, gen)
            self.timeline.set_source(self._frame_count, self._fps, live=False)
            start = self._pending_seek or 0
            self._pending_seek = None
            self._request(max(0, min(start, self._frame_count - 1)), reset=True)
        if not spec.startswith("camera:"):
            self._add_recent(spec.removeprefix("replay:"))
        self.export_action.setEnabled(True)
        self.sigSourceOpened.emit(info)

    def _source_failed(self, spec: str, exc: BaseException) -> None:
        kept = f" — still showing {self.source_name}" if self.source_info is not None else ""
        self.show_message(f"Could not open {_short(spec)}: {describe_error(exc)}{kept}", "error")

    @Slot(int, str)
    def _on_source_error(self, gen: int, text: str) -> None:
        if gen == self._source_gen:
            self.pause()
            self.show_message(f"Reading the video failed: {text}", "error")

    @Slot(int, str)
    def _capture_ended(self, gen: int, why: str) -> None:
        if gen != self._source_gen:
            return
        self.playing = False
        self.timeline.set_playing(False)
        if (self.source_spec or "").startswith("camera:"):
            self.show_message(
                f"{self.source_name.capitalize()} stopped: {why}. Was it unplugged? When it is "
                "back, open it again from File ▸ Camera.",
                "warning",
            )
        else:
            self.show_message(f"The {self.source_name} ended: {why}", "info")

    @Slot(int, str)
    def _capture_error(self, gen: int, text: str) -> None:
        if gen == self._source_gen:
            self.playing = False
            self.timeline.set_playing(False)
            self.show_message(f"The camera stopped: {text}", "error")

    def _stop_capture(self) -> None:
        if self.capture is not None and self._capture_thread is not None:
            stop_worker(self.capture, self._capture_thread, 1.0)
        self.capture = None
        self._capture_thread = None

    # ================================================================== frames

    def _request(self, index: int, reset: bool = False) -> None:
        if self.source_info is None or self.source_live:
            return
        index = max(0, min(int(index), self._frame_count - 1))
        self._requested = index
        self.inference.request_index(index, self._source_gen, reset)

    def _refresh(self) -> None:
        """Recompute the frame on screen (after the model or its settings changed)."""
        if self.source_info is None or self.source_live:
            return
        index = self._shown.frame.index if self._shown is not None else (self._requested or 0)
        self._request(index, reset=True)

    @Slot(object)
    def _on_result(self, result: FrameResult) -> None:
        if result.generation != self._source_gen or self._closed:
            return  # a frame of a source that is gone
        js = self._joint_sets.get(result.model_generation)
        if result.poses is not None:
            if js is not self.video_view.joint_set:
                self.video_view.set_joint_set(js)
            if js is not self.skeleton_view.joint_set:
                self.skeleton_view.set_joint_set(js)
        self.video_view.set_frame(result.frame, result.poses)
        self.skeleton_view.set_poses(result.poses)
        self._shown = result
        if not self.timeline.dragging():
            self.timeline.set_position(result.frame.index, result.frame.time)
        if result.poses is not None:
            self.status.add_timings(result.poses.timings_ms, result.latency_ms, result.dropped)
        if result.error and self._last_error_gen != result.model_generation:
            self._last_error_gen = result.model_generation
            self.show_message(
                f"The model failed on frame {result.frame.index}: {result.error}", "error"
            )
        self.sigFrameShown.emit(result)

    # ================================================================== playback

    def seek(self, index: int) -> None:
        """Show frame `index` (paused)."""
        self.pause()
        self._request(index)
        self.timeline.set_position(max(0, min(int(index), max(0, self._frame_count - 1))))

    def step(self, delta: int) -> None:
        """One frame back (-1) or forward (+1) from the frame on screen."""
        if self.source_info is None or self.source_live:
            return
        base = self._requested if self._requested is not None else 0
        self.seek(base + int(delta))

    def toggle_play(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def play(self) -> None:
        if self.source_info is None:
            return
        if self.source_live:
            if self.capture is not None:
                self.capture.set_paused(False)
                self.playing = True
                self.timeline.set_playing(True)
            return
        if self._frame_count < 2:
            return
        current = self._shown.frame.index if self._shown is not None else 0
        if current >= self._frame_count - 1:
            current = 0
            self._request(0, reset=True)
        self.playing = True
        self._play_start = current
        self._play_t0 = time.perf_counter()
        speed = self.timeline.playback_speed()
        self._play_timer.start(max(4, int(1000.0 / (self._fps * speed) / 2)))
        self.timeline.set_playing(True)

    def pause(self) -> None:
        if self.source_live and self.capture is not None and self.playing:
            self.capture.set_paused(True)
        self.playing = False
        self._play_timer.stop()
        self.timeline.set_playing(False)

    def _play_tick(self) -> None:
        if not self.playing or self.source_live:
            self._play_timer.stop()
            return
        speed = self.timeline.playback_speed()
        elapsed = time.perf_counter() - self._play_t0
        target = self._play_start + int(elapsed * self._fps * speed)
        last = self._frame_count - 1
        if target >= last:
            target = last
        if not self.inference.is_busy() and target != self._requested:
            self._request(target)  # frames the model cannot keep up with are skipped
        shown = self._shown.frame.index if self._shown is not None else -1
        if target == last and shown == last:
            self.pause()

    def _speed_changed(self, speed: float) -> None:
        if self.playing and not self.source_live:
            self.play()  # restart the clock from the frame on screen

    def _timeline_seek(self, index: int) -> None:
        if self.playing:
            self.pause()
        self._request(index)

    # ================================================================== export, snapshots

    def choose_export(self) -> None:
        if not self._can_export():
            return
        dialog = ExportDialog(
            self.source_spec.removeprefix("replay:") if self.source_spec else None, self
        )
        if dialog.exec():
            self.start_export(dialog.request())

    def _can_export(self) -> bool:
        if self.model is None:
            self.show_message("Load a checkpoint first, then export", "info")
            return False
        if self.source_info is None or self.source_live:
            self.show_message("Export works on a video, an image or a folder", "info")
            return False
        if self.export is not None and self.export.running:
            self.show_message("An export is already running", "info")
            return False
        return True

    def start_export(
        self, request: engine.ExportRequest, show_dialog: bool = True
    ) -> ExportController | None:
        """Run an export of the current source in a worker (progress dialog, cancellable)."""
        if not self._can_export():
            return None
        self.pause()
        job = partial(
            engine.export_job,
            self.source_spec,
            self.model,
            self._runner_settings(),
            request,
        )
        self.export = ExportController(job, self, show_dialog=show_dialog)
        self.export.sigFinished.connect(self._export_finished)
        self.export.sigFailed.connect(self._export_failed)
        self.export.sigCancelled.connect(self._export_cancelled)
        return self.export

    def _export_finished(self, summary: dict[str, Any]) -> None:
        written = ", ".join(os.path.basename(p) for p in summary.get("written", []))
        self.show_message(f"Exported {summary.get('frames', 0)} frames: {written}", "success")
        self.sigExportDone.emit(summary)

    def _export_failed(self, exc: BaseException) -> None:
        self.show_message(f"Export failed: {describe_error(exc)}", "error")
        self.sigExportDone.emit(None)

    def _export_cancelled(self) -> None:
        self.show_message("Export cancelled", "info")
        self.sigExportDone.emit(None)

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
        base = self.source_spec.removeprefix("replay:") if self.source_spec else "posescope"
        index = self._shown.frame.index if self._shown is not None else 0
        default = f"{Path(base).with_suffix('')}_{which}_{index:05d}.png"
        path, _ = QFileDialog.getSaveFileName(self, "Save snapshot", default, "PNG (*.png)")
        if path:
            self.save_snapshot(which, path)

    # ================================================================== menus: files

    def choose_checkpoint(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Open checkpoint", self._last_dir(), engine.CHECKPOINT_FILTER
        )
        if paths:
            self.open_paths(paths)

    def choose_media(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open video or image", self._last_dir(), engine.MEDIA_FILTER
        )
        if path:
            self.open_paths([path])

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open folder of images", self._last_dir())
        if path:
            self.open_source(path)

    def _last_dir(self) -> str:
        recent = self.recent_files()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def recent_files(self) -> list[str]:
        value = self.qsettings.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _add_recent(self, path: str) -> None:
        path = os.path.abspath(path)
        items = [p for p in self.recent_files() if p != path]
        items.insert(0, path)
        self.qsettings.setValue("recent", items[:MAX_RECENT])
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        items = self.recent_files()
        for p in items:
            a = self.recent_menu.addAction(os.path.basename(p.rstrip("/")) or p)
            a.setToolTip(p)
            a.setStatusTip(p)
            a.triggered.connect(partial(self.open_paths, [p]))
        if not items:
            a = self.recent_menu.addAction("No recent files")
            a.setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear", self._clear_recent)

    def _clear_recent(self) -> None:
        self.qsettings.setValue("recent", [])
        self._rebuild_recent_menu()

    def _fill_camera_menu(self) -> None:
        self.camera_menu.clear()
        if self._cameras is None:
            a = self.camera_menu.addAction("Looking for cameras…")
            a.setEnabled(False)
            self.tasks.submit(
                engine.list_cameras, on_done=self._cameras_found, on_error=self._cameras_failed
            )
            self._cameras = []
            return
        for spec, label in self._cameras:
            self.camera_menu.addAction(label, partial(self.open_source, spec))
        if not self._cameras:
            a = self.camera_menu.addAction("No camera found")
            a.setEnabled(False)
        self.camera_menu.addSeparator()
        self.camera_menu.addAction("Search again", self._forget_cameras)

    def _forget_cameras(self) -> None:
        self._cameras = None

    def _cameras_found(self, cameras: list[Any]) -> None:
        self._cameras = [engine.camera_spec(c) for c in cameras]
        if self.camera_menu.isVisible():
            self._fill_camera_menu()

    def _cameras_failed(self, exc: BaseException) -> None:
        self._cameras = []
        self.show_message(f"Could not list cameras: {describe_error(exc)}", "warning")

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About PoseScope",
            "<b>PoseScope</b><br>Drop a 3D human pose checkpoint: PoseScope reads its tensors, "
            "says what network it is and why, rebuilds it and runs it on a video or a camera.",
        )

    # ================================================================== hints, settings

    def _update_hint(self) -> None:
        if self.video_view.current_frame is not None:
            self.video_view.set_hint(None)
        elif self.model is None and self._base is None:
            self.video_view.set_hint(HINT_NO_MODEL)
        else:
            self.video_view.set_hint(HINT_NO_SOURCE)

    def _load_viewer_settings(self) -> ViewerSettings:
        q = self.qsettings
        d = ViewerSettings()

        def get(key: str, default: Any, kind: type) -> Any:
            value = q.value(f"settings/{key}", default)
            try:
                if kind is bool:
                    return value if isinstance(value, bool) else str(value).lower() == "true"
                return kind(value)
            except (TypeError, ValueError):
                return default

        return ViewerSettings(
            device=get("device", d.device, str),
            fp16=get("fp16", d.fp16, bool),
            compile=get("compile", d.compile, bool),
            flip=get("flip", d.flip, bool),
            focal=get("focal", d.focal, float),
            smoothing=get("smoothing", d.smoothing, bool),
            strength=get("strength", d.strength, float),
            use_box=False,  # a box belongs to one video: start with the detector
            show_labels=get("show_labels", d.show_labels, bool),
            show_boxes=get("show_boxes", d.show_boxes, bool),
        )

    def _save_viewer_settings(self) -> None:
        s = self.settings_panel.settings()
        for key in ("device", "fp16", "flip", "compile", "focal", "smoothing", "strength"):
            self.qsettings.setValue(f"settings/{key}", getattr(s, key))
        self.qsettings.setValue("settings/show_labels", s.show_labels)
        self.qsettings.setValue("settings/show_boxes", s.show_boxes)

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

    # ================================================================== closing

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self, timeout_s: float = 1.0) -> bool:
        """Stop every worker thread (within `timeout_s`); safe to call twice."""
        if self._closed:
            return True
        self._closed = True
        self._play_timer.stop()
        self._model_settings_timer.stop()
        try:
            self._save_viewer_settings()
            self.qsettings.sync()
        except Exception:  # settings are a convenience; closing must go on
            log.debug("saving settings failed", exc_info=True)
        deadline = time.perf_counter() + timeout_s
        if self.export is not None and self.export.running:
            self.export.cancel()
        if self.capture is not None:
            self.capture.stop()
        self.inference.stop()
        self.tasks.stop(max(0.05, deadline - time.perf_counter()))
        ok = stop_all(max(0.05, deadline - time.perf_counter()))
        self.capture = None
        return ok


def _short(spec: str) -> str:
    if spec.startswith(("camera:", "replay:")):
        kind, _, rest = spec.partition(":")
        return f"{kind} {os.path.basename(rest) or rest}"
    return os.path.basename(spec.rstrip("/")) or spec
