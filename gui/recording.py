"""Record a live source from the window: File ▸ Record live (or the ● REC button).

`Recordings` asks where (the export dialog, same formats), makes a `core.recorder.LiveRecorder`
and hands it every frame of the live source the session shows, with the poses of the runner
that runs now; it stops when the user says so, when the source ends or changes, and when the
window closes. The files are written in the recorder's own thread, and finished (the queued
frames written, CSV / NPZ laid out, the video closed) by a `FinishWorker` in a thread of its
own: stopping returns at once, the summary comes back by `sigStopped` when the files are whole.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QThread, Signal, Slot

from posescope.core.cache_export import ExportPlan, header_for
from posescope.core.export import ExportError
from posescope.core.recorder import LiveRecorder, RecordingSummary
from posescope.core.session import Session
from posescope.core.session_types import FrameResult
from posescope.gui import messages
from posescope.gui.export_dialog import ExportDialog, SessionWrites, default_folder
from posescope.gui.threads import WorkerBase, start_worker

RECORD_TEXT = (
    "Every frame the live source shows from now on, with its poses, until you stop "
    "(File ▸ Stop recording, or the ● REC button)."
)


class FinishWorker(WorkerBase):
    """Finishes one stopped recording's files (`LiveRecorder.stop`, which waits for the queued
    frames) away from the GUI thread; returns its `RecordingSummary`."""

    def __init__(self, recorder: LiveRecorder) -> None:
        super().__init__()
        self.recorder = recorder

    def work(self) -> RecordingSummary:
        return self.recorder.stop(timeout_s=600.0)  # the files must be whole: no early give-up


class Recordings(SessionWrites):
    """One recording at a time of the session's live source."""

    sigChanged = Signal(bool)  # recording or not
    sigStopped = Signal(object)  # RecordingSummary

    recorder: LiveRecorder | None = None
    _generation = -1  # the source generation being recorded

    def _watch(self, session: Session) -> None:
        self._finishing: list[tuple[FinishWorker, QThread]] = []  # stopped, files being finished
        self._pending = 0  # stopped recordings whose summary has not come back yet
        ev = session.events
        ev.frame_shown.connect(self._frame_shown)
        ev.source_changed.connect(lambda _info: self.stop())
        ev.source_stopped.connect(lambda _kind, _why: self.stop())

    @property
    def recording(self) -> bool:
        return self.recorder is not None

    def refusal(self) -> str | None:
        """Why a recording cannot start now; None when it can."""
        s = self.session
        if s.model is None:
            return "Load a checkpoint first, then record"
        if not s.live:
            return "Record works on a live source (a camera or a replay); export a video instead"
        return None

    def toggle(self) -> None:
        """Stop the recording, or ask where and start one."""
        if self.recording:
            self.stop()
            return
        if self._refused():
            return
        source = self.session.source
        assert source is not None
        stem = Path(source.spec.partition(":")[2] or source.spec).stem or "live"
        dialog = ExportDialog(
            f"{stem}_recording", default_folder(self.settings), self._parent, "Record live",
            RECORD_TEXT,
        )  # fmt: skip
        dialog.setObjectName("RecordDialog")
        if dialog.exec():
            self.remember(dialog.folder())
            self.start(dialog.request())

    def start(self, plan: ExportPlan) -> bool:
        """Record the live source to `plan` (checked first); False when refused."""
        s = self.session
        why = self.refusal()
        if why is not None or s.model is None or s.source is None:
            self._show(messages.Message(why or "Nothing to record", "info"))
            return False
        self.stop()
        try:
            self.recorder = LiveRecorder(ExportPlan(plan.poses_path, plan.video_path),
                                         header_for(s.model, s.source))  # fmt: skip
        except ExportError as exc:
            self._show(messages.Message(f"Record: {exc}"))
            return False
        self._generation = s.source_generation
        names = ", ".join(os.path.basename(p) for p in (plan.poses_path, plan.video_path) if p)
        self._show(messages.Message(f"Recording to {names}", "info"))
        self.sigChanged.emit(True)
        return True

    @property
    def finishing(self) -> bool:
        """A stopped recording's files are still being finished (in a worker)."""
        return self._pending > 0

    def stop(self) -> bool:
        """Stop recording now (no more frames are taken) and finish the files in a worker: it
        returns at once; `sigStopped(summary)` follows when they are whole. False when nothing
        was being recorded."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return False
        worker = FinishWorker(recorder)
        worker.returned.connect(self._finished)
        worker.errored.connect(self._finish_failed)
        self._pending += 1
        self._finishing.append((worker, start_worker(worker, "posescope-record-finish")))
        self.sigChanged.emit(False)
        return True

    def wait_finished(self, timeout_s: float = 30.0) -> bool:
        """Block until every stopped recording's files are whole (the window closing: the
        files matter more than a second); True when they all are."""
        ok = all(t.wait(max(1, int(timeout_s * 1000))) for _, t in self._finishing)
        self._finishing = [(w, t) for w, t in self._finishing if t.isRunning()]
        return ok

    @Slot(object)
    def _finished(self, summary: RecordingSummary) -> None:
        self._forget_finished()
        self.sigStopped.emit(summary)
        names = ", ".join(os.path.basename(p) for p in summary.written)
        text = f"Recorded {summary.frames} frames: {names}"
        if summary.dropped:
            text += f" ({summary.dropped} frames the disk could not keep up with were skipped)"
        if summary.error:
            self._show(messages.Message(f"{text}; writing stopped: {summary.error}", "warning"))
        else:
            self._show(messages.Message(text, "success"))

    @Slot(object)
    def _finish_failed(self, exc: BaseException) -> None:
        self._forget_finished()
        self._show(messages.Message(f"Record: finishing the files failed: "
                                    f"{messages.describe_error(exc)}"))  # fmt: skip
        self.sigStopped.emit(RecordingSummary(0, 0, (), messages.describe_error(exc)))

    def _forget_finished(self) -> None:
        self._pending = max(0, self._pending - 1)
        self._finishing = [(w, t) for w, t in self._finishing if not t.isFinished()]

    def _frame_shown(self, result: FrameResult) -> None:
        recorder = self.recorder
        if (
            recorder is not None
            and result.generation == self._generation
            and self.session.is_current(result)
        ):
            recorder.add(result.frame, result.poses)
