"""A detector in its own thread, so that finding people is off the pose network's path.

The tracker submits a frame when it wants a detection round and goes on with the boxes it
carries from the last poses; the detections come back (tagged with the frame they were made
on) a few frames later and are merged then. Only the latest submitted frame is detected:
a request that arrives while one is running replaces the waiting one. `close()` ends the
thread (tested); `discard()` drops what was asked or found before a seek.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from posescope.core.detection.base import Detection, Detector


@dataclass(frozen=True)
class DetectionResult:
    """Detections made on frame `index`, `ms` milliseconds of detector time."""

    index: int
    detections: list[Detection]
    ms: float


class BackgroundDetector:
    """Runs `detector.detect` in a daemon thread on the latest submitted frame."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.name = getattr(detector, "name", type(detector).__name__)
        self._cond = threading.Condition()
        self._pending: tuple[int, int, np.ndarray] | None = None  # generation, index, image
        self._result: tuple[int, DetectionResult] | None = None
        self._error: BaseException | None = None
        self._busy = False
        self._closed = False
        self._generation = 0
        self.calls = 0
        self._thread = threading.Thread(target=self._run, name="posescope-detect", daemon=True)
        self._thread.start()

    # -- the caller's side

    def detect(self, image: np.ndarray) -> Sequence[Detection]:
        """Synchronous detection in the caller's thread (the Detector protocol)."""
        return self.detector.detect(image)

    @property
    def idle(self) -> bool:
        """Nothing waiting or running."""
        with self._cond:
            return self._pending is None and not self._busy

    def submit(self, index: int, image: np.ndarray) -> None:
        """Ask for a detection on this frame (replaces a request not started yet)."""
        with self._cond:
            self._raise_error()
            if self._closed:
                raise RuntimeError("detector thread closed")
            self._pending = (self._generation, index, image)
            self._cond.notify_all()

    def poll(self) -> DetectionResult | None:
        """The latest finished result, once (None when there is none new)."""
        with self._cond:
            self._raise_error()
            return self._take()

    def wait(self, timeout: float | None = None) -> DetectionResult | None:
        """Block until the requested detection is done (or `timeout` s); its result."""
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    self._result is not None
                    or self._error is not None
                    or self._closed
                    or (self._pending is None and not self._busy)
                ),
                timeout,
            )
            self._raise_error()
            return self._take()

    def discard(self) -> None:
        """Forget the waiting request and any result, and drop the one running (a seek)."""
        with self._cond:
            self._generation += 1
            self._pending = None
            self._result = None

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (after the detection running now, if any) and wait for it."""
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify_all()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _take(self) -> DetectionResult | None:
        if self._result is None:
            return None
        generation, result = self._result
        self._result = None
        return result if generation == self._generation else None

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    # -- the thread

    def _run(self) -> None:
        import time

        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._pending is not None)
                if self._closed:
                    return
                assert self._pending is not None
                generation, index, image = self._pending
                self._pending = None
                self._busy = True
            try:
                t = time.perf_counter()
                dets = list(self.detector.detect(image))
                ms = (time.perf_counter() - t) * 1e3
            except BaseException as exc:  # handed to the caller
                with self._cond:
                    self._error = exc
                    self._busy = False
                    self._cond.notify_all()
                continue
            with self._cond:
                self.calls += 1
                self._busy = False
                if generation == self._generation:
                    self._result = (generation, DetectionResult(index, dets, ms))
                self._cond.notify_all()
