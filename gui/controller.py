"""The controller: turns the session's requests into worker calls and feeds the answers back.

Threads: one `TaskRunner` thread runs one-shot engine calls in order (identify, build, open a
source, list cameras); one `InferenceWorker` thread computes the newest frame request (latest
wins); a `CaptureWorker` thread reads a live source. The GUI thread never waits on them: each
answer comes back by signal and goes into a `Session` method, which drops it when it is stale.
The controller holds no state of its own beyond the workers (and the playback timer).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot

from posescope.core.session import Session
from posescope.core.session_analysis import AnalysisRequest
from posescope.core.session_types import (
    BuildRequest,
    FrameRequest,
    FrameResult,
    Model,
    Opened,
    OpenFailed,
    RunnerInstalled,
    RunnerRequest,
    RunnerSettings,
    SourceInfo,
    short_name,
)
from posescope.gui import engine
from posescope.gui.analysis_worker import AnalysisWorker
from posescope.gui.download import DownloadWorker
from posescope.gui.threads import start_worker, stop_all, stop_worker
from posescope.gui.workers import CaptureWorker, InferenceWorker, TaskRunner

if TYPE_CHECKING:  # the engine is imported where it is used, so the window opens fast
    from posescope.core.pipeline import PoseRunner
    from posescope.core.sources.base import Source

log = logging.getLogger(__name__)

MODEL_SETTINGS_DELAY_MS = 300  # a burst of setting changes rebuilds the model once


class Controller(QObject):
    """Runs what `session` asks for in workers. `clock()` is the playback clock (seconds)."""

    sigBusy = Signal(str)  # what the task thread is doing ('' when idle)
    sigCameras = Signal(object)  # list of (spec, label)
    sigCamerasFailed = Signal(object)  # exception

    def __init__(
        self,
        session: Session,
        parent: QObject | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.clock = clock
        self.closed = False
        self.download: DownloadWorker | None = None  # detector weights, with progress
        self.capture: CaptureWorker | None = None
        self._capture_thread: QThread | None = None
        self.analysis: AnalysisWorker | None = None  # the pass running now

        self.tasks = TaskRunner(parent=self)
        self.tasks.sigBusyChanged.connect(self._busy_changed)
        self.inference = InferenceWorker()
        self.inference.sigResult.connect(self._on_result)
        self.inference.sigSourceError.connect(self._on_source_error)
        self._inference_thread = start_worker(self.inference, "posescope-inference")

        self._play_timer = QTimer(self)
        self._play_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._play_timer.timeout.connect(self._tick)
        self._rebuild_timer = QTimer(self)
        self._rebuild_timer.setSingleShot(True)
        self._rebuild_timer.setInterval(MODEL_SETTINGS_DELAY_MS)
        self._rebuild_timer.timeout.connect(session.reload)

        ev = session.events
        ev.identify_requested.connect(self._identify)
        ev.build_requested.connect(self._build)
        ev.runner_requested.connect(self._make_runner)
        ev.runner_installed.connect(self._install_runner)
        ev.source_requested.connect(self._open_source)
        ev.frame_requested.connect(self._request_frame)
        ev.rebuild_wanted.connect(lambda: self._rebuild_timer.start())
        ev.playing_changed.connect(self._playing_changed)
        ev.speed_changed.connect(self._speed_changed)
        ev.analysis_requested.connect(self._analyse)
        ev.analysis_stopped.connect(self._stop_analysis)
        session.compare.events.diff_requested.connect(self._diff)
        people = session.people.events
        people.download_requested.connect(self._start_download)
        people.download_cancel_requested.connect(self._cancel_download)

    # ---------------------------------------------------------------- playback (GUI calls)

    def play(self) -> None:
        self.session.play(self.clock())

    def toggle_play(self) -> None:
        self.session.toggle_play(self.clock())

    def set_speed(self, speed: float) -> None:
        self.session.set_speed(speed, self.clock())

    def _tick(self) -> None:
        if not self.session.playing or not self.session.seekable:
            self._play_timer.stop()
            return
        self.session.tick(self.clock())

    def _playing_changed(self, playing: bool) -> None:
        if self.session.live:
            if self.capture is not None:
                self.capture.set_paused(not playing)
            return
        if playing:
            self._play_timer.start(self.session.playback.interval_ms())
        else:
            self._play_timer.stop()

    def _speed_changed(self, _speed: float) -> None:
        if self._play_timer.isActive():
            self._play_timer.setInterval(self.session.playback.interval_ms())

    # ---------------------------------------------------------------- checkpoints, model

    def _identify(self, paths: list[str], trust: bool) -> None:
        names = ", ".join(p.rstrip("/").rsplit("/", 1)[-1] for p in paths)
        self.sigBusy.emit(f"Reading {names}…")
        self.tasks.submit(
            partial(engine.identify_files, list(paths), trust),
            on_done=self._identified,
            on_error=partial(self._identify_crashed, list(paths)),
        )

    def _identified(self, results: list[Opened | OpenFailed]) -> None:
        if not self.closed:
            self.session.checkpoints_opened(results)

    def _identify_crashed(self, paths: list[str], exc: BaseException) -> None:
        self.session.identify_crashed(paths, exc)

    def _build(self, request: BuildRequest) -> None:
        self.sigBusy.emit(f"Building {request.ident.title}…")

        def build() -> tuple[Model, PoseRunner, engine.DetectorChoice]:
            model = engine.build_model(
                request.opened.ckpt, request.opened.ident, request.settings, request.rootnet
            )
            if request.compare is not None:  # A/B: B with the same settings, on A's boxes
                b = request.compare  # (A's upsampling override is A's own)
                settings_b = replace(request.settings, upsample=None)
                model.b = engine.build_model(b.ckpt, b.ident, settings_b, request.rootnet)
            estimator_b = model.b.estimator if model.b is not None else None
            choice = engine.make_detector(request.runner)  # a problem: runs without it
            runner = engine.make_runner(
                model.estimator, request.runner, choice.detector, estimator_b=estimator_b
            )
            return model, runner, choice

        self.tasks.submit(
            build,
            on_done=partial(self._built, request.generation, request.runner),
            on_error=partial(self._build_failed, request),
        )

    def _built(self, generation: int, settings: RunnerSettings, built: tuple) -> None:
        model, runner, choice = built
        if self.closed or not self.session.model_built(generation, model):
            runner.close()
        elif self.session.install_runner(generation, runner):
            self.session.people.detector_ready(settings, choice.running, choice.problem)
        else:
            runner.close()

    def _build_failed(self, request: BuildRequest, exc: BaseException) -> None:
        if not self.closed:
            error = exc if isinstance(exc, Exception) else RuntimeError(str(exc))
            self.session.model_failed(request.generation, request.opened, error)

    def _make_runner(self, request: RunnerRequest) -> None:
        settings = request.settings

        def make() -> tuple[PoseRunner | None, engine.DetectorChoice]:
            choice = engine.make_detector(settings)
            if choice.problem is not None and settings.detector_explicit:
                return None, choice  # asked for by name: the running runner is kept
            runner = engine.make_runner(
                request.estimator, settings, choice.detector, estimator_b=request.estimator_b
            )
            return runner, choice

        def done(made: tuple[PoseRunner | None, engine.DetectorChoice]) -> None:
            runner, choice = made
            people = self.session.people
            if runner is None:
                if not self.closed and choice.problem is not None:
                    people.detector_failed(settings, choice.problem)
            elif self.closed or not self.session.install_runner(request.model_generation, runner):
                runner.close()
            else:
                people.detector_ready(settings, choice.running, choice.problem)

        self.tasks.submit(make, on_done=done, on_error=self._runner_failed)

    def _runner_failed(self, exc: BaseException) -> None:
        self.session.runner_build_failed(exc if isinstance(exc, Exception) else RuntimeError(exc))

    def _install_runner(self, installed: RunnerInstalled) -> None:
        self.inference.set_runner(installed.runner, installed.generation)

    def _diff(self, key: int, a: Opened, b: Opened) -> None:
        """A/B: compare the two files' architectures and weights in the task thread."""

        def diff() -> object:
            from posescope.core.diff import diff_checkpoints

            return diff_checkpoints(a.ckpt, a.ident, b.ckpt, b.ident)

        def failed(exc: BaseException) -> None:
            error = exc if isinstance(exc, Exception) else RuntimeError(str(exc))
            self.session.compare.diff_failed(key, error)

        self.tasks.submit(
            diff,
            on_done=lambda d: self.closed or self.session.compare.diff_finished(key, d),
            on_error=failed,
        )

    # ---------------------------------------------------------------- sources, frames

    def _open_source(self, spec: str) -> None:
        self.sigBusy.emit(f"Opening {short_name(spec)}…")
        self.tasks.submit(
            partial(engine.open_media, spec),
            on_done=partial(self._source_opened, spec),
            on_error=partial(self._source_failed, spec),
        )

    def _source_opened(self, spec: str, source: Source) -> None:
        if self.closed:
            source.close()
            return
        info = SourceInfo.of(spec, source)
        self._stop_capture()
        generation = self.session.source_opened(info)
        if info.live:
            self.inference.set_source(None, generation)
            self.capture = CaptureWorker(source, self.inference, generation)
            self.capture.sigEnded.connect(self._capture_ended)
            self.capture.sigError.connect(self._capture_error)
            self._capture_thread = start_worker(self.capture, "posescope-capture")
        else:
            self.inference.set_source(source, generation)
        self.session.start_source()

    def _source_failed(self, spec: str, exc: BaseException) -> None:
        self.session.source_open_failed(spec, exc if isinstance(exc, Exception) else OSError(exc))

    def _request_frame(self, request: FrameRequest) -> None:
        self.inference.request_index(
            request.index,
            request.generation,
            request.reset,
            request.poses,
            request.model_generation,
        )

    @Slot(object)
    def _on_result(self, result: FrameResult) -> None:
        if not self.closed:
            self.session.apply_result(result)

    @Slot(int, str)
    def _on_source_error(self, generation: int, text: str) -> None:
        self.session.source_failed(generation, text)

    @Slot(int, str)
    def _capture_ended(self, generation: int, why: str) -> None:
        self.session.live_stopped(generation, why)

    @Slot(int, str)
    def _capture_error(self, generation: int, text: str) -> None:
        self.session.live_stopped(generation, text, error=True)

    def _stop_capture(self) -> None:
        if self.capture is not None and self._capture_thread is not None:
            stop_worker(self.capture, self._capture_thread, 1.0)
        self.capture = None
        self._capture_thread = None

    # ---------------------------------------------------------------- the analysis pass

    def _analyse(self, request: AnalysisRequest) -> None:
        """Run the pass in its own thread (an older one is asked to stop; it never waits)."""
        self._stop_analysis()
        if self.closed:
            return
        worker = AnalysisWorker(request)
        worker.sigProgress.connect(self._analysis_progress)
        worker.sigFailed.connect(self._analysis_failed)
        self.analysis = worker
        start_worker(worker, "posescope-analysis")

    def _stop_analysis(self) -> None:
        if self.analysis is not None:
            self.analysis.stop()
            self.analysis = None

    @Slot(object, object)
    def _analysis_progress(self, key: object, progress: object) -> None:
        if not self.closed:
            self.session.analysis_progressed(key, progress)  # type: ignore[arg-type]

    @Slot(object, object)
    def _analysis_failed(self, key: tuple[int, int], exc: object) -> None:
        if not self.closed:
            error = exc if isinstance(exc, Exception) else RuntimeError(str(exc))
            self.session.analysis_failed(key, error)

    # ---------------------------------------------------------------- detector weights

    def _start_download(self, name: str) -> None:
        """Fetch a detector's weights in their own thread (progress, cancel: people.*)."""
        if self.closed or self.download is not None:
            return
        worker = DownloadWorker(name)
        worker.sigProgress.connect(self._download_progress)
        worker.returned.connect(self._download_done)
        worker.errored.connect(self._download_failed)
        self.download = worker
        start_worker(worker, "posescope-download")

    @Slot(str, object, object)
    def _download_progress(self, name: str, done: object, total: object) -> None:
        self.session.people.download_progress(name, int(done), total)  # type: ignore[arg-type]

    @Slot(object)
    def _download_done(self, _path: object) -> None:
        worker, self.download = self.download, None
        if worker is not None and not self.closed:
            self.session.people.download_finished(worker.name)

    @Slot(object)
    def _download_failed(self, exc: BaseException) -> None:
        worker, self.download = self.download, None
        if worker is not None and not self.closed:
            error = exc if isinstance(exc, Exception) else RuntimeError(str(exc))
            self.session.people.download_failed(worker.name, error, worker.aborted())

    def _cancel_download(self) -> None:
        if self.download is not None:
            self.download.stop()

    # ---------------------------------------------------------------- cameras

    def find_cameras(self) -> None:
        """List the cameras in the task thread (answer: sigCameras or sigCamerasFailed)."""

        def found(cameras: Sequence[int]) -> None:
            self.sigCameras.emit([engine.camera_spec(c) for c in cameras])

        self.tasks.submit(engine.list_cameras, on_done=found, on_error=self.sigCamerasFailed.emit)

    # ---------------------------------------------------------------- state of the threads

    def _busy_changed(self, busy: bool) -> None:
        if not busy:
            self.sigBusy.emit("")

    def busy(self) -> bool:
        """A task, or a frame, is being computed."""
        return self.tasks.pending() > 0 or self.inference.is_busy()

    def shutdown(self, timeout_s: float = 1.0) -> bool:
        """Stop every worker thread (within `timeout_s`); safe to call twice."""
        if self.closed:
            return True
        self.closed = True
        self._play_timer.stop()
        self._rebuild_timer.stop()
        deadline = time.perf_counter() + timeout_s
        if self.capture is not None:
            self.capture.stop()
        self._stop_analysis()
        if self.download is not None:
            self.download.stop()  # the next chunk sees it (a socket read: seconds at most)
        self.inference.stop()
        self.tasks.stop(max(0.05, deadline - time.perf_counter()))
        ok = stop_all(max(0.05, deadline - time.perf_counter()))
        self.capture = None
        return ok
