"""QObject workers moved to QThreads: tasks, capture, inference (latest request wins), jobs.

Rules (after napari's `_qt/threads` and superqt's `_qthreading`):

- Every worker is a QObject with a blocking `run()` loop started by its QThread's `started`;
  it ends when its abort flag is set, and then quits its thread.
- Results leave a worker only by signals. Connect them to bound methods of QObjects that live
  in the GUI thread, so that Qt queues the call into the GUI thread.
- `InferenceWorker` keeps one pending request: a new request replaces the old one, so the
  worker only ever computes the newest (timeline scrubbing, live frames).
- Every thread started here is tracked; `running_threads()` lists the ones still running and
  `stop_all()` ends them (used on close, and by the tests' leak check).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from posescope.core.types import Frame, FramePoses

log = logging.getLogger(__name__)

_THREADS: dict[int, tuple[QThread, QObject]] = {}
_ZOMBIES: list[tuple[QThread, QObject]] = []  # threads that would not stop in time: never freed


def wait_for_stragglers(timeout_s: float | None = None) -> bool:
    """Wait for threads that did not stop in time (a model build cannot be interrupted).

    Called at exit, so that Qt never destroys a running QThread (which aborts the process).
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    for thread, _ in list(_ZOMBIES):
        if deadline is None:
            thread.wait()
        else:
            thread.wait(max(1, int((deadline - time.monotonic()) * 1000)))
    _ZOMBIES[:] = [(t, w) for t, w in _ZOMBIES if t.isRunning()]
    return not _ZOMBIES


atexit.register(wait_for_stragglers)


def running_threads() -> list[QThread]:
    """QThreads started by `start_worker` that are still running."""
    return [t for t, _ in list(_THREADS.values()) + _ZOMBIES if t.isRunning()]


class _Stoppable(Protocol):
    def stop(self) -> None: ...


class _Reaper(QObject):
    """Lives in the GUI thread; forgets a thread once it has finished."""

    @Slot()
    def reap(self) -> None:
        self._reap(retries=5)

    def _reap(self, retries: int) -> None:
        removed = False
        for key, (thread, _) in list(_THREADS.items()):
            if thread.isFinished():
                thread.wait()
                del _THREADS[key]
                removed = True
        if not removed and retries > 0:  # `finished` is emitted just before the thread ends
            QTimer.singleShot(20, lambda: self._reap(retries - 1))


_reaper: _Reaper | None = None


def start_worker(worker: QObject, name: str) -> QThread:
    """Move `worker` to a new QThread named `name`, start it, and run `worker.run()` there.

    The worker must emit its `finished` signal when `run()` returns; the thread then quits.
    """
    global _reaper
    if _reaper is None:
        _reaper = _Reaper()
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit)
    thread.finished.connect(_reaper.reap)
    _THREADS[id(thread)] = (thread, worker)
    thread.start()
    return thread


def stop_worker(worker: _Stoppable, thread: QThread, timeout_s: float = 1.0) -> bool:
    """Ask `worker` to stop and wait for its thread; True when it stopped in time."""
    worker.stop()
    thread.quit()
    ok = thread.wait(max(1, int(timeout_s * 1000)))
    entry = _THREADS.pop(id(thread), None)
    if not ok:
        log.warning("thread %s did not stop within %.1f s", thread.objectName(), timeout_s)
        if entry is not None:
            _ZOMBIES.append(entry)
    return bool(ok)


def stop_all(timeout_s: float = 1.0) -> bool:
    """Stop every tracked worker thread, sharing `timeout_s` between them."""
    deadline = time.monotonic() + timeout_s
    entries = list(_THREADS.values())
    for _, worker in entries:
        stop = getattr(worker, "stop", None)
        if stop is not None:
            stop()
    ok = True
    for thread, worker in entries:
        left = max(0.05, deadline - time.monotonic())
        ok = stop_worker(worker, thread, left) and ok  # type: ignore[arg-type]
    return ok


def describe_error(exc: BaseException) -> str:
    """One line for the banner: the exception's own message, or its type when it has none."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if len(text) > 400 else text


# --------------------------------------------------------------------------------------------
# One-shot tasks, run one after the other in one thread.


@dataclass
class _Task:
    task_id: int
    fn: Callable[[], Any]


class TaskWorker(QObject):
    """Runs submitted callables in order in its thread; reports each result or exception."""

    sigDone = Signal(int, object)
    sigFailed = Signal(int, object)
    finished = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self._queue: deque[_Task] = deque()
        self._abort = False
        self._busy = False

    def submit(self, task: _Task) -> None:
        """Queue `task` (any thread)."""
        with self._cond:
            self._queue.append(task)
            self._cond.notify()

    def discard_pending(self) -> None:
        with self._cond:
            self._queue.clear()

    def is_busy(self) -> bool:
        with self._cond:
            return self._busy or bool(self._queue)

    def stop(self) -> None:
        with self._cond:
            self._abort = True
            self._queue.clear()
            self._cond.notify_all()

    @Slot()
    def run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._abort:
                    self._cond.wait()
                if self._abort:
                    break
                task = self._queue.popleft()
                self._busy = True
            try:
                result = task.fn()
            except BaseException as exc:
                log.debug("task %d failed:\n%s", task.task_id, traceback.format_exc())
                self.sigFailed.emit(task.task_id, exc)
            else:
                self.sigDone.emit(task.task_id, result)
            finally:
                with self._cond:
                    self._busy = False
        self.finished.emit()


class TaskRunner(QObject):
    """GUI-side face of a `TaskWorker`: `submit(fn, on_done, on_error)`; callbacks run in the
    GUI thread (the worker's signals are queued into this object's thread)."""

    sigBusyChanged = Signal(bool)
    sigUnhandledError = Signal(object)  # a task without `on_error` failed

    def __init__(self, name: str = "posescope-tasks", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._callbacks: dict[int, tuple[Callable | None, Callable | None]] = {}
        self._worker = TaskWorker()
        self._worker.sigDone.connect(self._on_done)
        self._worker.sigFailed.connect(self._on_failed)
        self._thread = start_worker(self._worker, name)

    def submit(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> int:
        """Run `fn()` in the worker thread; call `on_done(result)` or `on_error(exc)` here."""
        task_id = next(self._ids)
        self._callbacks[task_id] = (on_done, on_error)
        self._worker.submit(_Task(task_id, fn))
        if len(self._callbacks) == 1:
            self.sigBusyChanged.emit(True)
        return task_id

    def pending(self) -> int:
        """Tasks submitted whose callbacks have not run yet."""
        return len(self._callbacks)

    def stop(self, timeout_s: float = 1.0) -> bool:
        self._callbacks.clear()
        if not self._thread.isRunning():
            return True
        return stop_worker(self._worker, self._thread, timeout_s)

    @Slot(int, object)
    def _on_done(self, task_id: int, result: object) -> None:
        on_done, _ = self._callbacks.pop(task_id, (None, None))
        self._after()
        if on_done is not None:
            on_done(result)

    @Slot(int, object)
    def _on_failed(self, task_id: int, exc: object) -> None:
        _, on_error = self._callbacks.pop(task_id, (None, None))
        self._after()
        if on_error is not None:
            on_error(exc)  # type: ignore[arg-type]
        else:
            log.error("background task failed: %s", exc)
            self.sigUnhandledError.emit(exc)

    def _after(self) -> None:
        if not self._callbacks:
            self.sigBusyChanged.emit(False)


# --------------------------------------------------------------------------------------------
# Inference: latest request wins.


class FrameSource(Protocol):
    """The part of `core.sources.Source` the inference worker uses."""

    def get(self, index: int) -> Frame: ...
    def close(self) -> None: ...


class FrameProcessor(Protocol):
    """The part of `core.pipeline.PoseRunner` the inference worker uses."""

    def process(self, frame: Frame) -> FramePoses: ...
    def reset(self) -> None: ...


@dataclass
class FrameResult:
    """One computed request: the frame shown and the poses of exactly that frame."""

    frame: Frame
    poses: FramePoses | None
    requested_index: int | None  # the index asked for (seekable sources), None for live frames
    latency_ms: float  # from request to result
    dropped: int = 0  # requests replaced by newer ones since the previous result
    generation: int = 0  # source generation the frame belongs to
    model_generation: int = 0  # runner generation that computed the poses
    error: str | None = None  # the model failed on this frame (the frame is still shown)


@dataclass
class _Request:
    index: int | None
    frame: Frame | None
    t0: float
    generation: int
    force_reset: bool = False


@dataclass
class _InferenceState:
    source: FrameSource | None = None
    source_generation: int = 0
    runner: FrameProcessor | None = None
    runner_generation: int = 0
    pending: _Request | None = None
    closing: list[FrameSource] = field(default_factory=list)


class InferenceWorker(QObject):
    """Computes the newest frame request: reads the frame (seekable source) and runs the pose
    runner on it. A request made while another is pending replaces it (stale ones are dropped).
    """

    sigResult = Signal(object)  # FrameResult
    sigError = Signal(str)
    sigSourceError = Signal(int, str)  # (generation, message): reading a frame failed
    finished = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self._state = _InferenceState()
        self._abort = False
        self._busy = False
        self._dropped = 0
        self._last_index: int | None = None
        self._last_runner_generation = -1

    # -- any thread ----------------------------------------------------------------------

    def set_source(self, source: FrameSource | None, generation: int) -> None:
        """Hand over a seekable source (the worker owns and closes it); drops pending work."""
        with self._cond:
            if self._state.source is not None:
                self._state.closing.append(self._state.source)
            self._state.source = source
            self._state.source_generation = generation
            self._state.pending = None
            self._cond.notify()

    def set_runner(self, runner: FrameProcessor | None, generation: int) -> None:
        """Use `runner` from the next request on (None: frames pass through without poses)."""
        with self._cond:
            self._state.runner = runner
            self._state.runner_generation = generation

    def request_index(self, index: int, generation: int, reset: bool = False) -> None:
        """Compute frame `index` of the current source; replaces any pending request."""
        self._put(_Request(int(index), None, time.perf_counter(), generation, reset))

    def submit_frame(self, frame: Frame, generation: int) -> None:
        """Compute this live frame; replaces any pending request (newest frame wins)."""
        self._put(_Request(None, frame, time.perf_counter(), generation))

    def is_busy(self) -> bool:
        """True while a request is pending or being computed."""
        with self._cond:
            return self._busy or self._state.pending is not None

    def stop(self) -> None:
        with self._cond:
            self._abort = True
            self._state.pending = None
            self._cond.notify_all()

    def _put(self, request: _Request) -> None:
        with self._cond:
            if self._state.pending is not None:
                self._dropped += 1
            self._state.pending = request
            self._cond.notify()

    # -- worker thread -------------------------------------------------------------------

    @Slot()
    def run(self) -> None:
        while True:
            with self._cond:
                while self._state.pending is None and not self._abort and not self._state.closing:
                    self._cond.wait()
                closing, self._state.closing = self._state.closing, []
                if self._abort and self._state.source is not None:
                    closing.append(self._state.source)
                    self._state.source = None
                request = None if self._abort else self._state.pending
                self._state.pending = None
                source = self._state.source
                source_generation = self._state.source_generation
                runner = self._state.runner
                runner_generation = self._state.runner_generation
                dropped, self._dropped = self._dropped, 0
                self._busy = request is not None
            for old in closing:
                _close_quietly(old)
            if self._abort:
                break
            if request is None:
                continue
            try:
                self._compute(
                    request, source, source_generation, runner, runner_generation, dropped
                )
            finally:
                with self._cond:
                    self._busy = False
        self.finished.emit()

    def _compute(
        self,
        request: _Request,
        source: FrameSource | None,
        source_generation: int,
        runner: FrameProcessor | None,
        runner_generation: int,
        dropped: int,
    ) -> None:
        if request.frame is not None:
            frame = request.frame
        else:
            if source is None or request.generation != source_generation:
                return  # the request was for a source that is gone
            try:
                frame = source.get(int(request.index))  # type: ignore[arg-type]
            except Exception as exc:
                self.sigSourceError.emit(source_generation, describe_error(exc))
                return
        poses: FramePoses | None = None
        error: str | None = None
        if runner is not None:
            sequential = (
                request.index is None
                or self._last_index is None
                or request.index == self._last_index + 1
            )
            try:
                if (
                    request.force_reset
                    or not sequential
                    or runner_generation != self._last_runner_generation
                ):
                    runner.reset()
                poses = runner.process(frame)
            except Exception as exc:
                log.debug("inference failed:\n%s", traceback.format_exc())
                error = describe_error(exc)
            self._last_runner_generation = runner_generation
        self._last_index = request.index
        latency = (time.perf_counter() - request.t0) * 1000.0
        self.sigResult.emit(
            FrameResult(
                frame=frame,
                poses=poses,
                requested_index=request.index,
                latency_ms=latency,
                dropped=dropped,
                generation=request.generation,
                model_generation=runner_generation,
                error=error,
            )
        )


def _close_quietly(source: object) -> None:
    close = getattr(source, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:  # closing a broken source must not take the worker down
        log.debug("closing a source failed", exc_info=True)


# --------------------------------------------------------------------------------------------
# Live capture: reads as fast as the source gives frames and hands each to the inference
# worker, which keeps only the newest.


class LiveSource(Protocol):
    def read(self) -> Frame | None: ...
    def close(self) -> None: ...


class CaptureWorker(QObject):
    """Reads a live source in its own thread; every frame replaces the pending one."""

    sigEnded = Signal(int, str)  # generation, why: the source gave no more frames
    sigError = Signal(int, str)
    sigCaptureFps = Signal(float)
    finished = Signal()

    def __init__(self, source: LiveSource, sink: InferenceWorker, generation: int) -> None:
        super().__init__()
        self._source = source
        self._sink = sink
        self._generation = generation
        self._abort = threading.Event()
        self._paused = threading.Event()

    @property
    def generation(self) -> int:
        return self._generation

    def stop(self) -> None:
        self._abort.set()

    def set_paused(self, paused: bool) -> None:
        """Paused: frames are still read (the source stays current) but not submitted."""
        if paused:
            self._paused.set()
        else:
            self._paused.clear()

    @Slot()
    def run(self) -> None:
        count, t_mark = 0, time.perf_counter()
        try:
            while not self._abort.is_set():
                try:
                    frame = self._source.read()
                except Exception as exc:
                    self.sigError.emit(self._generation, describe_error(exc))
                    break
                if frame is None:
                    if not self._abort.is_set():
                        why = getattr(self._source, "end_reason", None)
                        self.sigEnded.emit(self._generation, why or "no more frames")
                    break
                if self._paused.is_set():
                    continue
                self._sink.submit_frame(frame, self._generation)
                count += 1
                now = time.perf_counter()
                if now - t_mark >= 1.0:
                    self.sigCaptureFps.emit(count / (now - t_mark))
                    count, t_mark = 0, now
        finally:
            _close_quietly(self._source)
            self.finished.emit()


# --------------------------------------------------------------------------------------------
# Long jobs (export): a generator that yields progress and checks an abort flag in between.


class JobWorker(QObject):
    """Runs `job(should_abort)`, a generator of (done, total, text) progress tuples whose
    return value is the result. `stop()` makes the next `should_abort()` true."""

    sigProgress = Signal(int, int, str)
    sigDone = Signal(object)
    sigFailed = Signal(object)
    sigCancelled = Signal()
    finished = Signal()

    def __init__(
        self, job: Callable[[Callable[[], bool]], Generator[tuple[int, int, str], None, Any]]
    ) -> None:
        super().__init__()
        self._job = job
        self._abort = threading.Event()

    def stop(self) -> None:
        self._abort.set()

    def aborted(self) -> bool:
        return self._abort.is_set()

    @Slot()
    def run(self) -> None:
        try:
            gen: Iterator[tuple[int, int, str]] = self._job(self._abort.is_set)
            result: Any = None
            while True:
                try:
                    done, total, text = next(gen)
                except StopIteration as stop:
                    result = stop.value
                    break
                self.sigProgress.emit(int(done), int(total), str(text))
                if self._abort.is_set():
                    gen.close()  # type: ignore[attr-defined]
                    break
            if self._abort.is_set():
                self.sigCancelled.emit()
            else:
                self.sigDone.emit(result)
        except BaseException as exc:
            log.debug("job failed:\n%s", traceback.format_exc())
            self.sigFailed.emit(exc)
        finally:
            self.finished.emit()
