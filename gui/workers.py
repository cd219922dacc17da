"""The app's workers, each a `WorkerBase` (gui/threads.py) that writes only its `work()`:
one-shot tasks in order (`TaskWorker` behind `TaskRunner`), frames (`InferenceWorker`: the
newest request wins), a live source (`CaptureWorker`) and long jobs (`JobWorker`: export).

`InferenceWorker` keeps one pending request: a new request replaces the old one, so the worker
only ever computes the newest (timeline scrubbing, live frames).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from PySide6.QtCore import QObject, Signal, Slot

from posescope.core.session_types import FrameResult
from posescope.core.types import Frame, FramePoses
from posescope.gui.messages import describe_error
from posescope.gui.threads import (
    WorkerBase,
    close_quietly,
    running_threads,
    start_worker,
    stop_all,
    stop_worker,
    wait_for_stragglers,
)

__all__ = [
    "CaptureWorker",
    "FrameResult",
    "InferenceWorker",
    "JobWorker",
    "TaskRunner",
    "TaskWorker",
    "WorkerBase",
    "describe_error",
    "running_threads",
    "start_worker",
    "stop_all",
    "stop_worker",
    "wait_for_stragglers",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# One-shot tasks, run one after the other in one thread.


@dataclass
class _Task:
    task_id: int
    fn: Callable[[], object]


class TaskWorker(WorkerBase):
    """Runs submitted callables in order in its thread; reports each result or exception."""

    sigDone = Signal(int, object)
    sigFailed = Signal(int, object)

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self._queue: deque[_Task] = deque()
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
            super().stop()
            self._queue.clear()
            self._cond.notify_all()

    def work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self.aborted():
                    self._cond.wait()
                if self.aborted():
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
        fn: Callable[[], T],
        on_done: Callable[[T], None] | None = None,
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
class _Request:
    index: int | None
    frame: Frame | None
    t0: float
    generation: int
    force_reset: bool = False
    poses: FramePoses | None = None  # analysed poses: decode only
    poses_generation: int = 0


@dataclass
class _InferenceState:
    source: FrameSource | None = None
    source_generation: int = 0
    runner: FrameProcessor | None = None
    runner_generation: int = 0
    pending: _Request | None = None
    closing: list[FrameSource] = field(default_factory=list)


class InferenceWorker(WorkerBase):
    """Computes the newest frame request: reads the frame (seekable source) and runs the pose
    runner on it. A request made while another is pending replaces it (stale ones are dropped).
    """

    sigResult = Signal(object)  # FrameResult
    sigSourceError = Signal(int, str)  # (generation, message): reading a frame failed

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self._state = _InferenceState()
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
        """Use `runner` from the next request on (None: frames pass through without poses).
        The runner it replaces is closed in the worker's thread (its detector thread ends)."""
        with self._cond:
            old = self._state.runner
            if old is not None and old is not runner:
                self._state.closing.append(old)  # type: ignore[arg-type]
                self._cond.notify()
            self._state.runner = runner
            self._state.runner_generation = generation

    def request_index(
        self,
        index: int,
        generation: int,
        reset: bool = False,
        poses: FramePoses | None = None,
        poses_generation: int = 0,
    ) -> None:
        """Compute frame `index` of the current source; replaces any pending request. With
        `poses` (the analysis pass's, of runner `poses_generation`) the frame is only decoded.
        """
        self._put(
            _Request(
                int(index), None, time.perf_counter(), generation, reset, poses, poses_generation
            )
        )

    def submit_frame(self, frame: Frame, generation: int) -> None:
        """Compute this live frame; replaces any pending request (newest frame wins)."""
        self._put(_Request(None, frame, time.perf_counter(), generation))

    def is_busy(self) -> bool:
        """True while a request is pending or being computed."""
        with self._cond:
            return self._busy or self._state.pending is not None

    def stop(self) -> None:
        with self._cond:
            super().stop()
            self._state.pending = None
            self._cond.notify_all()

    def _put(self, request: _Request) -> None:
        with self._cond:
            if self._state.pending is not None and self._state.pending.frame is not None:
                self._dropped += 1  # a live frame never shown (a replaced seek is no drop)
            self._state.pending = request
            self._cond.notify()

    # -- worker thread -------------------------------------------------------------------

    def work(self) -> None:
        while True:
            with self._cond:
                while (
                    self._state.pending is None and not self.aborted() and not self._state.closing
                ):
                    self._cond.wait()
                closing, self._state.closing = self._state.closing, []
                if self.aborted() and self._state.source is not None:
                    closing.append(self._state.source)
                    self._state.source = None
                if self.aborted() and self._state.runner is not None:
                    closing.append(self._state.runner)  # type: ignore[arg-type]
                    self._state.runner = None
                request = None if self.aborted() else self._state.pending
                self._state.pending = None
                source = self._state.source
                source_generation = self._state.source_generation
                runner = self._state.runner
                runner_generation = self._state.runner_generation
                dropped, self._dropped = self._dropped, 0
                self._busy = request is not None
            for old in closing:
                close_quietly(old)
            if self.aborted():
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
        if request.poses is not None:  # analysed: nothing to compute, the runner's state is
            self._last_index = None  # behind (the next computed frame starts afresh)
            self.sigResult.emit(
                FrameResult(
                    frame=frame,
                    poses=request.poses,
                    requested_index=request.index,
                    latency_ms=(time.perf_counter() - request.t0) * 1000.0,
                    dropped=dropped,
                    generation=request.generation,
                    model_generation=request.poses_generation,
                    analysed=True,
                )
            )
            return
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


# --------------------------------------------------------------------------------------------
# Live capture: reads as fast as the source gives frames and hands each to the inference
# worker, which keeps only the newest.


class LiveSource(Protocol):
    def read(self) -> Frame | None: ...
    def close(self) -> None: ...


class CaptureWorker(WorkerBase):
    """Reads a live source in its own thread; every frame replaces the pending one."""

    sigEnded = Signal(int, str)  # generation, why: the source gave no more frames
    sigError = Signal(int, str)
    sigCaptureFps = Signal(float)

    def __init__(self, source: LiveSource, sink: InferenceWorker, generation: int) -> None:
        super().__init__()
        self._source = source
        self._sink = sink
        self._generation = generation
        self._paused = threading.Event()

    @property
    def generation(self) -> int:
        return self._generation

    def set_paused(self, paused: bool) -> None:
        """Paused: frames are still read (the source stays current) but not submitted."""
        if paused:
            self._paused.set()
        else:
            self._paused.clear()

    def work(self) -> None:
        count, t_mark = 0, time.perf_counter()
        try:
            while not self.aborted():
                try:
                    frame = self._source.read()
                except Exception as exc:
                    self.sigError.emit(self._generation, describe_error(exc))
                    break
                if frame is None:
                    if not self.aborted():
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
            close_quietly(self._source)


# --------------------------------------------------------------------------------------------
# Long jobs (export): a generator that yields progress and checks an abort flag in between.


Progress = Generator[tuple[int, int, str], None, dict[str, object]]


class JobWorker(WorkerBase):
    """Runs `job(should_abort)`, a generator of (done, total, text) progress tuples whose
    return value is the result (`returned`). `stop()` makes the next `should_abort()` true;
    a stopped job emits `sigCancelled` and returns {"cancelled": True}."""

    sigProgress = Signal(int, int, str)
    sigCancelled = Signal()

    def __init__(self, job: Callable[[Callable[[], bool]], Progress]) -> None:
        super().__init__()
        self._job = job

    def work(self) -> dict[str, object]:
        gen: Iterator[tuple[int, int, str]] = self._job(self.aborted)
        result: dict[str, object] = {}
        while True:
            try:
                done, total, text = next(gen)
            except StopIteration as stop:
                result = stop.value
                break
            self.sigProgress.emit(int(done), int(total), str(text))
            if self.aborted():
                gen.close()  # type: ignore[attr-defined]
                break
        if self.aborted():
            self.sigCancelled.emit()
            return {"cancelled": True}
        return result
