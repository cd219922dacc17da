"""Export the current video's poses (JSON / CSV / NPZ) and an overlay video.

`ExportDialog` asks where; `ExportController` runs the job in a `JobWorker` thread with a
cancellable progress dialog and reports the outcome by signal; `Exports` checks that the
session can export now, starts one and words its outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
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

from posescope.core.session import Session
from posescope.gui import engine, messages
from posescope.gui.elide import PathEdit
from posescope.gui.engine import ExportRequest
from posescope.gui.workers import JobWorker, start_worker, stop_worker

POSE_FORMATS = (".json", ".csv", ".npz")


class ExportDialog(QDialog):
    """Choose the pose file and/or the overlay video."""

    def __init__(self, source_path: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export poses")
        self.setMinimumWidth(560)
        stem = Path(source_path).with_suffix("") if source_path else Path.home() / "poses"
        v = QVBoxLayout(self)
        intro = QLabel(
            "Every frame of the current video is estimated with the current model and settings."
        )
        intro.setObjectName("Dim")
        intro.setWordWrap(True)
        v.addWidget(intro)
        form = QFormLayout()
        self.poses_check = QCheckBox("Poses")
        self.poses_check.setChecked(True)
        self.poses_path = PathEdit(str(stem) + "_poses.json")
        self.poses_path.setToolTip("The extension picks the format: .json, .csv or .npz")
        form.addRow(self.poses_check, self._with_browse(self.poses_path, self._browse_poses))
        self.video_check = QCheckBox("Overlay video")
        self.video_path = PathEdit(str(stem) + "_overlay.mp4")
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
        if not req.poses_path and not req.video_path:
            self.error.setText("Choose poses, an overlay video, or both.")
            return
        if req.poses_path and Path(req.poses_path).suffix.lower() not in POSE_FORMATS:
            self.error.setText("Poses are written as .json, .csv or .npz.")
            return
        self.accept()


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
        self.worker_progress = done
        if self.dialog is not None:
            self.dialog.setMaximum(max(0, total))
            self.dialog.setValue(min(done, total) if total else 0)
            self.dialog.setLabelText(text)

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
        if self.dialog is not None:
            self.dialog.canceled.disconnect(self.cancel)
            self.dialog.close()
            self.dialog.deleteLater()
            self.dialog = None


class Exports(QObject):
    """Exports of the session's source with its running model (one at a time)."""

    sigDone = Signal(object)  # summary dict, or None when cancelled / failed

    def __init__(
        self,
        session: Session,
        parent: QWidget,
        show: Callable[[messages.Message], object],
    ) -> None:
        super().__init__(parent)
        self.session = session
        self._parent = parent
        self._show = show
        self.current: ExportController | None = None

    def refusal(self) -> str | None:
        """Why an export cannot start now; None when it can."""
        if self.session.model is None:
            return "Load a checkpoint first, then export"
        if not self.session.seekable:
            return "Export works on a video, an image or a folder"
        if self.current is not None and self.current.running:
            return "An export is already running"
        return None

    def _refused(self) -> bool:
        why = self.refusal()
        if why is not None:
            self._show(messages.Message(why, "info"))
        return why is not None

    def choose(self) -> None:
        """Ask where (a dialog), then export."""
        if self._refused() or self.session.source is None:
            return
        dialog = ExportDialog(self.session.source.spec.removeprefix("replay:"), self._parent)
        if dialog.exec():
            self.start(dialog.request())

    def start(self, request: ExportRequest, show_dialog: bool = True) -> ExportController | None:
        """Run an export of the current source in a worker (progress dialog, cancellable)."""
        s = self.session
        if self._refused() or s.model is None or s.source is None:
            return None
        s.pause()
        job = partial(engine.export_job, s.source.spec, s.model, s.runner_settings, request)
        self.current = ExportController(job, self._parent, show_dialog=show_dialog)
        self.current.sigFinished.connect(self._finished)
        self.current.sigFailed.connect(self._failed)
        self.current.sigCancelled.connect(self._cancelled)
        return self.current

    def cancel(self) -> None:
        if self.current is not None and self.current.running:
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
