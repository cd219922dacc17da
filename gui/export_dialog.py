"""Export the current video's poses (JSON / CSV / NPZ) and an overlay video, from the cache.

`ExportDialog` asks where (the last folder used, else the user's Documents folder) and checks
the destination before anything starts; `ExportController` runs the job in a `JobWorker`
thread with a cancellable progress dialog (frames done, time left) and reports the outcome by
signal; `Exports` checks that the session can export now, starts one and words its outcome.
The job (core/cache_export.py) writes the analysis pass's poses: nothing is recomputed.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, QStandardPaths, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressDialog,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from posescope.core.cache_export import ExportPlan, check_plan, export_from_cache, header_for
from posescope.core.export import ExportError
from posescope.core.session import Session
from posescope.gui import engine, messages
from posescope.gui.elide import PathEdit
from posescope.gui.engine import ExportRequest
from posescope.gui.workers import JobWorker, start_worker, stop_worker

FOLDER_KEY = "export/folder"


def default_folder(settings: QSettings | None) -> str:
    """The folder last exported to, else the user's Documents folder (never beside the
    source, which may be read-only)."""
    last = settings.value(FOLDER_KEY, "", str) if settings is not None else ""
    if last and Path(last).is_dir():
        return last
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return docs if docs and Path(docs).is_dir() else str(Path.home())


POSE_FORMATS = (".json", ".csv", ".npz")


class ExportDialog(QDialog):
    """Choose the pose file and/or the overlay video."""

    def __init__(
        self,
        stem: str,
        folder: str,
        parent: QWidget | None = None,
        title: str = "Export poses",
        text: str = (
            "The poses of every frame, as analysed with the current model and settings "
            "(an export waits for the analysis to finish; nothing is computed again)."
        ),
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(560)
        stem = str(Path(folder) / (Path(stem).stem or "poses"))
        v = QVBoxLayout(self)
        intro = QLabel(text)
        intro.setObjectName("Dim")
        intro.setWordWrap(True)
        v.addWidget(intro)
        form = QFormLayout()
        self.poses_check = QCheckBox("Poses")
        self.poses_check.setChecked(True)
        self.poses_path = PathEdit(stem + "_poses.json")
        self.poses_path.setToolTip("The extension picks the format: .json, .csv or .npz")
        form.addRow(self.poses_check, self._with_browse(self.poses_path, self._browse_poses))
        self.video_check = QCheckBox("Overlay video")
        self.video_path = PathEdit(stem + "_overlay.mp4")
        form.addRow(self.video_check, self._with_browse(self.video_path, self._browse_video))
        v.addLayout(form)
        self.error = QLabel("")
        self.error.setObjectName("WarningText")
        v.addWidget(self.error)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        v.addWidget(buttons)

    @staticmethod
    def _with_browse(edit: QLineEdit, fn: Callable[[], None]) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(edit, 1)
        b = QPushButton("Browse…")
        b.clicked.connect(fn)
        h.addWidget(b)
        return w

    def _browse_poses(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Poses", self.poses_path.text(), "JSON (*.json);;CSV (*.csv);;NumPy (*.npz)"
        )
        if path:
            self.poses_path.setText(path)

    def _browse_video(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Overlay video", self.video_path.text(), "Video (*.mp4 *.avi)"
        )
        if path:
            self.video_path.setText(path)

    def request(self) -> ExportRequest:
        return ExportRequest(
            poses_path=self.poses_path.text().strip() if self.poses_check.isChecked() else None,
            video_path=self.video_path.text().strip() if self.video_check.isChecked() else None,
        )

    def _accept(self) -> None:
        req = self.request()
        if req.poses_path and Path(req.poses_path).suffix.lower() not in POSE_FORMATS:
            self.error.setText("Poses are written as .json, .csv or .npz.")
            return
        try:
            check_plan(req)  # the destination is checked before any work starts
        except ExportError as exc:
            text = str(exc)
            self.error.setText(text[:1].upper() + text[1:] + ".")
            return
        self.accept()

    def folder(self) -> str:
        """The folder chosen (remembered for the next export)."""
        path = self.poses_path.text() if self.poses_check.isChecked() else self.video_path.text()
        return str(Path(path.strip()).parent)


class ExportController(QObject):
    """Runs one export job in a worker thread with a cancellable progress dialog."""

    sigFinished = Signal(object)  # summary dict
    sigFailed = Signal(object)  # exception
    sigCancelled = Signal()

    def __init__(
        self,
        job: Callable[[Callable[[], bool]], Generator[tuple[int, int, str], None, Any]],
        parent: QWidget | None = None,
        show_dialog: bool = True,
    ) -> None:
        super().__init__(parent)
        self.worker = JobWorker(job)
        self.worker.sigProgress.connect(self._progress)
        self.worker.returned.connect(self._done)  # {"cancelled": True} when stopped
        self.worker.errored.connect(self._failed)
        self.dialog: QProgressDialog | None = None
        self.worker_progress = 0  # items done, as last reported
        self._latest: tuple[int, int, str] | None = None  # progress not shown yet
        self._showing = False  # inside _progress (see there)
        if show_dialog:
            self.dialog = QProgressDialog("Preparing…", "Cancel", 0, 0, parent)
            self.dialog.setWindowTitle("Exporting")
            self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
            self.dialog.setMinimumDuration(0)
            self.dialog.setAutoClose(False)
            self.dialog.setAutoReset(False)
            self.dialog.canceled.connect(self.cancel)
            self.dialog.show()
        self.thread = start_worker(self.worker, "posescope-export")
        self.running = True

    def cancel(self) -> None:
        self.worker.stop()

    def stop(self, timeout_s: float = 1.0) -> bool:
        """Cancel and wait for the thread (window closing)."""
        ok = stop_worker(self.worker, self.thread, timeout_s)
        self._close_dialog()
        return ok

    @Slot(int, int, str)
    def _progress(self, done: int, total: int, text: str) -> None:
        """Show the latest progress. setValue of a modal dialog runs the event loop, which
        delivers the next progress reports inside it: those only leave their values for the
        outermost call to show (one level deep, however many pile up while the GUI thread
        was busy: nested calls had overflowed the stack on a loaded machine); it may also
        finish the job and close the dialog under us, so each round reads `self.dialog`."""
        self.worker_progress = done
        self._latest = (done, total, text)
        if self._showing:
            return
        self._showing = True
        try:
            while self._latest is not None and self.dialog is not None:
                dialog = self.dialog
                done, total, text = self._latest
                self._latest = None
                dialog.setLabelText(text)
                dialog.setMaximum(max(0, total))
                dialog.setValue(min(done, total) if total else 0)
        finally:
            self._showing = False

    @Slot(object)
    def _done(self, summary: object) -> None:
        self._close_dialog()
        self.running = False
        if isinstance(summary, dict) and summary.get("cancelled"):
            self.sigCancelled.emit()
        else:
            self.sigFinished.emit(summary)

    @Slot(object)
    def _failed(self, exc: object) -> None:
        self._close_dialog()
        self.running = False
        self.sigFailed.emit(exc)

    def _close_dialog(self) -> None:
        dialog, self.dialog = self.dialog, None
        if dialog is not None:
            dialog.canceled.disconnect(self.cancel)
            dialog.close()
            dialog.deleteLater()


class SessionWrites(QObject):
    """What the export and recording controllers share: the session whose results they
    write, the window (dialogs' parent), how a message is shown, the settings where the last
    folder is remembered; `refusal()` says why nothing can start now."""

    def __init__(
        self,
        session: Session,
        parent: QWidget,
        show: Callable[[messages.Message], object],
        settings: QSettings | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self._parent = parent
        self._show = show
        self.settings = settings
        self._watch(session)

    def _watch(self, session: Session) -> None:
        """Subscribe to the session's events (each controller its own)."""

    def refusal(self) -> str | None:
        """Why nothing can start now; None when it can."""
        raise NotImplementedError

    def _refused(self) -> bool:
        """Tell the user why nothing can start now (True), or say nothing (False)."""
        why = self.refusal()
        if why is not None:
            self._show(messages.Message(why, "info"))
        return why is not None

    def remember(self, folder: str) -> None:
        """The folder written to, offered first next time."""
        if self.settings is not None and Path(folder).is_dir():
            self.settings.setValue(FOLDER_KEY, folder)


class Exports(SessionWrites):
    """Exports of the session's source with its running model (one at a time)."""

    sigDone = Signal(object)  # summary dict, or None when cancelled / failed

    current: ExportController | None = None
    _cache: object = None  # the pass's cache the current export writes

    def _watch(self, session: Session) -> None:
        # an export waits for the pass it writes: a new pass (settings, source) ends it
        session.events.analysis_stopped.connect(lambda: self._abandon("the analysis restarted"))
        session.events.analysis_error.connect(lambda _exc: self._abandon("the analysis failed"))

    def refusal(self) -> str | None:
        """Why an export cannot start now; None when it can."""
        if self.session.model is None:
            return "Load a checkpoint first, then export"
        if not self.session.seekable:
            return "Export works on a video, an image or a folder; record a live source"
        if self.current is not None and self.current.running:
            return "An export is already running"
        failure = getattr(self.session, "analysis_failure", None)
        if self.session.analysis is None and failure is not None:
            return (
                f"The analysis failed ({messages.describe_error(failure)}): retry it "
                "(Playback ▸ Retry analysis), then export"
            )
        if self.session.analysis is None:
            return "The video is not analysed yet: export once its first frame is shown"
        return None

    def choose(self) -> None:
        """Ask where (a dialog), then export."""
        if self._refused() or self.session.source is None:
            return
        stem = Path(self.session.source.spec.removeprefix("replay:").rstrip("/")).stem
        dialog = ExportDialog(stem, default_folder(self.settings), self._parent)
        if dialog.exec():
            self.remember(dialog.folder())
            self.start(dialog.request())

    def start(self, request: ExportRequest, show_dialog: bool = True) -> ExportController | None:
        """Run an export of the current source in a worker (progress dialog, cancellable)."""
        s = self.session
        if self._refused() or s.model is None or s.source is None or s.analysis is None:
            return None
        plan = ExportPlan(request.poses_path, request.video_path)
        try:
            check_plan(plan)  # before any work: a missing folder fails now, not at the end
            header = header_for(s.model, s.source)
        except ExportError as exc:
            self._show(messages.Message(f"Export: {exc}"))
            return None
        s.pause()
        self._cache = s.analysis
        job = partial(
            export_from_cache,
            s.analysis,
            header,
            plan,
            open_frames=partial(engine.open_media, s.source.spec),
        )
        self.current = ExportController(job, self._parent, show_dialog=show_dialog)
        self.current.sigFinished.connect(self._finished)
        self.current.sigFailed.connect(self._failed)
        self.current.sigCancelled.connect(self._cancelled)
        return self.current

    def cancel(self) -> None:
        if self.current is not None and self.current.running:
            self.current.cancel()

    def _abandon(self, why: str) -> None:
        """A pass the export waits for will never finish: stop the export."""
        finished = getattr(self._cache, "finished", False)
        if self.current is not None and self.current.running and not finished:
            self._show(messages.Message(f"Export stopped: {why}", "warning"))
            self.current.cancel()

    def _finished(self, summary: dict[str, object]) -> None:
        self._show(messages.export_done(summary))
        self.sigDone.emit(summary)

    def _failed(self, exc: BaseException) -> None:
        self._show(messages.Message(f"Export failed: {messages.describe_error(exc)}"))
        self.sigDone.emit(None)

    def _cancelled(self) -> None:
        self._show(messages.Message("Export cancelled", "info"))
        self.sigDone.emit(None)
