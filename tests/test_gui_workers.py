"""Workers: latest request wins, newest live frame wins, cancellable jobs, clean shutdown."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QObject, Slot

from posescope.core.types import Frame, FramePoses
from posescope.gui import workers
from tests.gui_helpers import VIDEO, wait_model, wait_shown

pytestmark = pytest.mark.gui


class FakeSource:
    """A seekable source of numbered frames."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def get(self, index: int) -> Frame:
        return Frame(np.full((4, 4, 3), index % 256, np.uint8), index, index / 30.0)

    def close(self) -> None:
        self.closed.set()


class SlowRunner:
    """Takes `delay` seconds per frame and remembers which frames it computed."""

    def __init__(self, delay: float = 0.03) -> None:
        self.delay = delay
        self.processed: list[int] = []
        self.resets = 0

    def process(self, frame: Frame) -> FramePoses:
        time.sleep(self.delay)
        self.processed.append(frame.index)
        return FramePoses(frame.index, frame.time, [], {"total": self.delay * 1e3})

    def reset(self) -> None:
        self.resets += 1


class Sink(QObject):
    """Receives results in the GUI thread, as the window does."""

    def __init__(self) -> None:
        super().__init__()
        self.results: list[workers.FrameResult] = []

    @Slot(object)
    def take(self, result: workers.FrameResult) -> None:
        self.results.append(result)


@pytest.fixture
def inference(qtbot):
    worker = workers.InferenceWorker()
    sink = Sink()
    worker.sigResult.connect(sink.take)
    thread = workers.start_worker(worker, "test-inference")
    yield worker, sink
    assert workers.stop_worker(worker, thread, 1.0)


def test_latest_request_wins(qtbot, inference) -> None:
    worker, sink = inference
    source, runner = FakeSource(), SlowRunner(0.03)
    worker.set_source(source, generation=1)
    worker.set_runner(runner, generation=1)
    for i in range(40):
        worker.request_index(i, generation=1)
    qtbot.waitUntil(lambda: bool(sink.results) and sink.results[-1].frame.index == 39, timeout=5000)
    assert runner.processed[-1] == 39
    assert len(runner.processed) < 10  # stale requests were dropped, not queued
    # a replaced seek is not a dropped frame (ten quick steps are not "dropped 9")
    assert sum(r.dropped for r in sink.results) == 0
    for r in sink.results:
        assert r.poses.index == r.frame.index == r.requested_index
    assert runner.resets >= 1  # a jump resets tracking and smoothing


def test_requests_for_a_replaced_source_are_dropped(qtbot, inference) -> None:
    worker, sink = inference
    old, new = FakeSource(), FakeSource()
    worker.set_source(old, generation=1)
    worker.request_index(5, generation=1)
    worker.set_source(new, generation=2)
    worker.request_index(7, generation=2)
    qtbot.waitUntil(lambda: any(r.frame.index == 7 for r in sink.results), timeout=5000)
    assert all(r.generation == 2 for r in sink.results if r.frame.index == 7)
    qtbot.waitUntil(old.closed.is_set, timeout=2000)  # the worker closed the old source
    assert sink.results[-1].poses is None  # no model: frames pass through


def test_live_frames_newest_wins(qtbot, inference) -> None:
    worker, sink = inference
    runner = SlowRunner(0.05)
    worker.set_runner(runner, generation=1)

    class Live:
        def __init__(self) -> None:
            self.i = 0

        def read(self) -> Frame | None:
            time.sleep(0.005)  # a 200 fps camera
            self.i += 1
            return None if self.i > 80 else Frame(np.zeros((2, 2, 3), np.uint8), self.i, 0.0)

        def close(self) -> None:
            pass

    capture = workers.CaptureWorker(Live(), worker, generation=0)
    ended = []

    class EndSink(QObject):
        @Slot(int, str)
        def take(self, gen: int, why: str) -> None:
            ended.append((gen, why))

    end_sink = EndSink()
    capture.sigEnded.connect(end_sink.take)
    thread = workers.start_worker(capture, "test-capture")
    qtbot.waitUntil(lambda: bool(ended), timeout=5000)
    qtbot.waitUntil(lambda: not worker.is_busy(), timeout=5000)
    workers.stop_worker(capture, thread, 1.0)
    indices = [r.frame.index for r in sink.results]
    assert indices == sorted(indices)
    assert len(indices) < 40  # most of the 80 frames were dropped
    assert sum(r.dropped for r in sink.results) == 80 - len(indices)  # live frames: counted
    assert indices[-1] >= 70  # and the newest ones were shown
    assert ended == [(0, "no more frames")]  # a source that does not say why


def test_job_worker_cancels_between_items(qtbot) -> None:
    done = []

    def job(should_abort):
        for i in range(1000):
            time.sleep(0.002)
            yield i, 1000, f"item {i}"
        done.append("finished")
        return {"frames": 1000}

    worker = workers.JobWorker(job)
    cancelled = []

    class CancelSink(QObject):
        @Slot()
        def take(self) -> None:
            cancelled.append(True)

        @Slot(int, int, str)
        def progress(self, i: int, n: int, text: str) -> None:
            if i == 10:
                worker.stop()

    sink = CancelSink()
    worker.sigCancelled.connect(sink.take)
    worker.sigProgress.connect(sink.progress)
    thread = workers.start_worker(worker, "test-job")
    qtbot.waitUntil(lambda: bool(cancelled), timeout=5000)
    assert workers.stop_worker(worker, thread, 1.0)
    assert not done


def test_task_runner_reports_results_and_errors(qtbot) -> None:
    runner = workers.TaskRunner()
    got: list = []
    runner.submit(lambda: 41 + 1, on_done=got.append)
    runner.submit(lambda: 1 / 0, on_error=lambda e: got.append(type(e).__name__))
    qtbot.waitUntil(lambda: len(got) == 2, timeout=5000)
    assert got == [42, "ZeroDivisionError"]
    assert runner.stop(1.0)


def test_closing_the_window_stops_every_thread_within_a_second(qtbot, window, ckpt_files) -> None:
    wait_model(qtbot, window, [ckpt_files["xs"], VIDEO])
    wait_shown(qtbot, window, 0)
    window.play()
    qtbot.waitUntil(lambda: window.session.shown.frame.index > 0, timeout=20000)
    assert len(workers.running_threads()) >= 2
    t0 = time.perf_counter()
    window.close()
    elapsed = time.perf_counter() - t0
    assert workers.running_threads() == []
    assert elapsed < 1.0
