"""The playback clock of a seekable source: which frame should be on screen at time `now`.

Qt-free and driven by the caller's clock (`now` in seconds, e.g. `time.perf_counter()`), so
its timing is tested with a fake clock. The clock restarts from the frame on screen whenever
playing starts or the speed changes. `REAL_TIME` follows the wall clock and skips the frames
the model cannot keep up with; a later mode (every frame, from an analysis cache) decides
the next frame differently in `target`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass


class PlaybackMode(enum.Enum):
    REAL_TIME = "real time"  # the frame the wall clock says; frames that are not ready skip


@dataclass
class Playback:
    """Playing or paused, at `speed`, from frame `start` at time `t0`."""

    fps: float = 30.0
    speed: float = 1.0
    playing: bool = False
    mode: PlaybackMode = PlaybackMode.REAL_TIME
    start: int = 0
    t0: float = 0.0

    def set_speed(self, speed: float) -> None:
        speed = float(speed)
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"playback speed {speed}: expected a positive number")
        self.speed = speed

    def begin(self, frame: int, now: float) -> None:
        """Start (or restart) the clock: frame `frame` is on screen at `now`."""
        self.playing = True
        self.start = int(frame)
        self.t0 = float(now)

    def stop(self) -> None:
        self.playing = False

    def target(self, now: float, frame_count: int) -> int:
        """The frame due at `now` (clamped to the last frame)."""
        elapsed = max(0.0, float(now) - self.t0)
        due = self.start + int(elapsed * self.fps * self.speed)
        return max(0, min(due, frame_count - 1))

    def interval_ms(self) -> int:
        """How often to tick: twice per frame, at least every 4 ms."""
        return max(4, int(1000.0 / (self.fps * self.speed) / 2))
