"""Worker threads: one worker base, and the registry of the QThreads that run workers.

Rules (after napari's `_qt/threads` and superqt's `_qthreading`):

- Every worker is a `WorkerBase`: a QObject moved to its own QThread whose `run()` emits
  `started`, calls `work()` (the only thing a subclass writes), emits `returned(result)` or
  `errored(exception)`, and always `finished`, which quits the thread.
- Results leave a worker only by signals. Connect them to bound methods of QObjects that live
  in the GUI thread, so that Qt queues the call into the GUI thread.
- Every thread started here is tracked; `running_threads()` lists the ones still running and
  `stop_all()` ends them (used on close, and by the tests' leak check).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import traceback
from typing import Protocol

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

log = logging.getLogger(__name__)


class WorkerBase(QObject):
    """A worker whose subclasses write only `work()`; `stop()` asks it to end.

    `work()` runs in the worker's thread; long loops check `aborted()` between items.
    """

    started = Signal()
    returned = Signal(object)  # what work() returned
    errored = Signal(object)  # the exception work() raised
    finished = Signal()  # always last; quits the thread

    def __init__(self) -> None:
        super().__init__()
        self._abort = threading.Event()

    def work(self) -> object:
        raise NotImplementedError

    def stop(self) -> None:
        """Ask the worker to end (any thread); `work()` sees `aborted()`."""
        self._abort.set()

    def aborted(self) -> bool:
        return self._abort.is_set()

    @Slot()
    def run(self) -> None:
        self.started.emit()
        try:
            result = self.work()
        except Exception as exc:
            log.debug("%s failed:\n%s", type(self).__name__, traceback.format_exc())
            self.errored.emit(exc)
        else:
            self.returned.emit(result)
        finally:
            self.finished.emit()


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


def start_worker(worker: WorkerBase, name: str) -> QThread:
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


def close_quietly(source: object) -> None:
    """Close `source` (if it can be), logging instead of raising."""
    close = getattr(source, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:  # closing a broken source must not take the worker down
        log.debug("closing a source failed", exc_info=True)
