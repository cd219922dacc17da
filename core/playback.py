"""The playback clock of a seekable source: which frame should be on screen at time `now`.

Qt-free and driven by the caller's clock (`now` in seconds, e.g. `time.perf_counter()`), so
its timing is tested with a fake clock. The clock restarts from the frame on screen whenever
playing starts or the speed changes. `REAL_TIME` follows the wall clock and skips the frames
the model cannot keep up with (what a live source needs); `EVERY_FRAME` shows each frame in
turn, never faster than the clock, and lets the clock wait for a frame that is late (what an
analysis cache will serve at full rate).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass


class PlaybackMode(enum.Enum):
    REAL_TIME = "real time"  # the frame the wall clock says; frames that are not ready skip
    EVERY_FRAME = "every frame"  # the next frame, when the clock says it is due


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
        due = self.start + int(elapsed * self.fps * self.speed + 1e-9)  # 0.6 - 0.5 is 0.0999…
        return max(0, min(due, frame_count - 1))

    def next_frame(self, now: float, frame_count: int, asked: int | None) -> int | None:
        """The frame to ask for at `now`, after `asked` (the last one asked for, whose result
        is on screen), or None when none is due yet."""
        due = self.target(now, frame_count)
        if self.mode is PlaybackMode.REAL_TIME:
            return due if due != asked else None
        following = 0 if asked is None else asked + 1
        if following > frame_count - 1 or due < following:
            return None
        if due > following:  # late: the clock waits for the frames instead of skipping them
            self.begin(following, now)
        return following

    def interval_ms(self) -> int:
        """How often to tick: twice per frame, at least every 4 ms."""
        return max(4, int(1000.0 / (self.fps * self.speed) / 2))
