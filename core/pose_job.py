"""The one job that writes a run's results: `posescope run`, the app's export and live
recording all feed it (image or None, FramePoses) items.

`PoseSink` writes the poses (core/export.py: JSON / CSV / NPZ, chosen by the extension; the
same document header everywhere) and/or the overlay video, never half a file: the video is
encoded into a temporary file beside its destination and renamed over it by `finish()`
(`discard()` removes it), the poses go through a temporary file too, at `finish()` and every
`flush_s` seconds while the job runs (a run stopped hard still leaves a valid file).
`write_frames` is the generator that drives a sink: progress (done, total, text) per frame,
`should_abort()` checked between frames (cancelled: nothing is left behind).

Where the items come from is the caller's: the CLI's runner stream (core/cli.py), the
analysis cache with the frames decoded again (core/cache_export.py), the live frames the app
shows (core/recorder.py).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from posescope.core.export import (
    ExportError,
    OverlayVideoWriter,
    frame_dict,
    run_document,
    write_poses,
)
from posescope.core.types import FramePoses
from posescope.core.variants import JointSet

if TYPE_CHECKING:
    from posescope.core.pipeline import Estimator

POSE_SUFFIXES = (".json", ".csv", ".npz")
VIDEO_SUFFIXES = (".mp4", ".avi")
FLUSH_SECONDS = 10.0  # the pose file is rewritten this often while a long job runs
FLUSH_SHARE = 0.2  # ... but no more than this share of the time goes to rewriting it

Progress = Generator[tuple[int, int, str], None, dict[str, object]]
Draw = Callable[[np.ndarray, FramePoses, JointSet], np.ndarray]


@dataclass(frozen=True)
class ExportPlan:
    """Where to write: poses (.json / .csv / .npz) and/or an overlay video (.mp4 / .avi)."""

    poses_path: str | None = None
    video_path: str | None = None


@dataclass(frozen=True)
class ExportHeader:
    """What a pose file says besides the frames (core/export.py's document header)."""

    checkpoint: Mapping[str, Any]
    source: Mapping[str, Any]
    focal: float | Sequence[float]
    principal: Sequence[float]
    joint_set: JointSet
    fps: float = 30.0
    size: tuple[int, int] = (0, 0)  # width, height of the overlay video
    extra: Mapping[str, Any] = field(default_factory=dict)


def run_header(
    estimator: Estimator, source: Mapping[str, Any], width: int, height: int, fps: float
) -> ExportHeader:
    """The header of a run of `estimator` on a source of this size and rate (`source`: its
    `info()` document); the principal point is the image centre unless the config sets one."""
    joint_set = estimator.joint_set
    if joint_set is None:
        raise ExportError(f"{estimator.ident.title} has no joint set: not a pose network")
    cfg = estimator.config
    # "input": the convention the network was fed in this run (the file's, or the user's)
    checkpoint = {**estimator.ident.to_dict(), "input": estimator.input.to_dict()}
    return ExportHeader(
        checkpoint=checkpoint,
        source=source,
        focal=cfg.focal,
        principal=cfg.principal or (width / 2.0, height / 2.0),
        joint_set=joint_set,
        fps=float(fps or 0) or 30.0,
        size=(int(width), int(height)),
    )


def check_destination(path: str | os.PathLike[str], suffixes: Sequence[str]) -> Path:
    """The path, checked: its folder exists and is writable, its extension is one of
    `suffixes`, it is not a folder. Raises ExportError (a sentence for the user) otherwise."""
    p = Path(os.path.expanduser(str(path).strip()))
    if not str(path).strip():
        raise ExportError("no file name given")
    if p.suffix.lower() not in suffixes:
        raise ExportError(f"{p.name}: the name must end in {' or '.join(suffixes)}")
    if p.is_dir():
        raise ExportError(f"{p}: is a folder, not a file name")
    folder = p.parent
    if not folder.is_dir():
        raise ExportError(f"cannot write {p.name}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {p.name}: the folder {folder} is read-only")
    if p.exists() and not os.access(p, os.W_OK):
        raise ExportError(f"cannot write {p}: the file is read-only")
    return p


def check_plan(plan: ExportPlan) -> None:
    """Both destinations checked (ExportError), and at least one chosen."""
    if not plan.poses_path and not plan.video_path:
        raise ExportError("choose poses, an overlay video, or both")
    if plan.poses_path:
        check_destination(plan.poses_path, POSE_SUFFIXES)
    if plan.video_path:
        check_destination(plan.video_path, VIDEO_SUFFIXES)
    if plan.poses_path and plan.video_path and Path(plan.poses_path) == Path(plan.video_path):
        raise ExportError("the poses and the video cannot be the same file")


def time_left(done: int, total: int, elapsed_s: float) -> str:
    """'about 12 s left' from the rate so far ('' until it is known)."""
    if done <= 0 or total <= done or elapsed_s <= 0:
        return ""
    left = (total - done) * elapsed_s / done
    if left < 60:
        return f"about {max(1, math.ceil(left))} s left"
    return f"about {int(left // 60)} min {int(left % 60):02d} s left"


def step_text(
    what: str, done: int, total: int, t0: float, clock: Callable[[], float], base: int = 0
) -> str:
    """'Analysing: frame 40 of 100 · about 12 s left' (the rate: frames since `base` at t0)."""
    left = time_left(done - base, total - base, clock() - t0)
    text = f"{what}: frame {done} of {total or '?'}"
    return f"{text} · {left}" if left else text


def _temp_beside(path: Path) -> Path:
    """An empty temporary file next to `path`, with its extension (writers choose by it)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}",
                               dir=path.parent)  # fmt: skip
    os.close(fd)
    return Path(tmp)


class PoseSink:
    """Takes (image or None, FramePoses) items; writes `plan` (see the module docstring).

    The poses are kept as document frames (converted once, a few KB each, never images);
    `document()` is the whole document so far, also when no pose file is planned (the CLI
    prints it). An image of None adds no video frame (a frame that did not decode)."""

    def __init__(
        self,
        plan: ExportPlan,
        header: ExportHeader,
        *,
        draw: Draw | None = None,
        flush_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plan = plan
        self.header = header
        self.flush_s = flush_s
        self.written: list[str] = []  # the files finished so far (poses first)
        self._draw = draw
        self._clock = clock
        self._frames: list[dict[str, Any]] = []
        self._people = 0
        self._last_flush = clock()
        self._flush_cost = 0.0
        self._done = False
        self._video: OverlayVideoWriter | None = None
        self._video_tmp: Path | None = None
        if plan.video_path:
            self._video_tmp = _temp_beside(Path(plan.video_path))
            try:
                self._video = OverlayVideoWriter(self._video_tmp, header.fps, header.size)
            except BaseException:
                self._video_tmp.unlink(missing_ok=True)
                raise

    @property
    def frames(self) -> int:
        return len(self._frames)

    @property
    def people(self) -> int:
        """Poses written so far, over all frames."""
        return self._people

    def add(self, image: np.ndarray | None, fp: FramePoses) -> None:
        """One frame: its poses, and its overlay when a video is written and `image` is given."""
        if self._video is not None and image is not None:
            self._video.write(self._drawn(image, fp))
        self._frames.append(frame_dict(fp))
        self._people += len(fp.people)
        if self.flush_s is not None and self.plan.poses_path:
            now = self._clock()
            if now - self._last_flush >= max(self.flush_s, self._flush_cost / FLUSH_SHARE):
                self.flush()
                self._flush_cost = self._clock() - now
                self._last_flush = self._clock()

    def _drawn(self, image: np.ndarray, fp: FramePoses) -> np.ndarray:
        if self._draw is not None:
            return self._draw(image, fp, self.header.joint_set)
        from posescope.core.drawing import draw_frame

        return draw_frame(image, fp, self.header.joint_set)

    def document(self) -> dict[str, Any]:
        """The run document of the frames so far (core/export.py layout)."""
        h = self.header
        doc = run_document(
            dict(h.checkpoint), dict(h.source), h.focal, h.principal, h.joint_set, []
        )
        doc["frames"] = list(self._frames)
        return doc

    def flush(self) -> None:
        """The poses so far replace the pose file atomically (never left truncated)."""
        if not self.plan.poses_path:
            return
        from posescope.core.outputs import atomic_path

        with atomic_path(self.plan.poses_path) as tmp:
            write_poses(tmp, self.document())

    def finish(self) -> list[str]:
        """The video so far replaces its destination, then the poses theirs; the files
        written. Once: later calls return the same list."""
        if self._done:
            return self.written
        self._done = True
        video = self._close_video()
        if self.plan.poses_path:
            self.flush()
            self.written.append(self.plan.poses_path)
        if video is not None:
            self.written.append(video)
        return self.written

    def _close_video(self) -> str | None:
        writer, tmp, self._video, self._video_tmp = self._video, self._video_tmp, None, None
        if writer is None or tmp is None:
            return None
        try:
            writer.close()
            os.replace(tmp, str(self.plan.video_path))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return str(self.plan.video_path)

    def discard(self) -> None:
        """Stop, leaving nothing behind: the video's temporary file is removed, the pose file
        not written (a flush that already replaced it stays)."""
        self._done = True
        writer, tmp, self._video, self._video_tmp = self._video, self._video_tmp, None, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _never() -> bool:
    return False


def write_frames(
    items: Iterable[tuple[np.ndarray | None, FramePoses]],
    sink: PoseSink,
    total: int | None = None,
    should_abort: Callable[[], bool] = _never,
    *,
    what: str = "Writing",
    finish: bool = True,
    keep_partial: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> Progress:
    """Feed `items` to `sink`, yielding (done, total, text) after each frame. Returns
    {"frames", "written"} (the sink finished, unless `finish` is off: the caller finishes it)
    or {"cancelled": True} (`should_abort()` said so: the sink discarded). An exception,
    Ctrl-C or closing the generator early discards the sink too, unless `keep_partial`: then
    the caller keeps what was written with `sink.finish()` (the CLI on Ctrl-C)."""
    n = int(total or 0)
    t0 = clock()
    done = 0
    try:
        for image, fp in items:
            if should_abort():
                sink.discard()
                return {"cancelled": True}
            sink.add(image, fp)
            done += 1
            yield done, n, step_text(what, done, n, t0, clock)
        if should_abort():
            sink.discard()
            return {"cancelled": True}
        written = sink.finish() if finish else []
    except BaseException:
        if not keep_partial:
            sink.discard()
        raise
    return {"frames": done, "written": list(written)}


__all__ = [
    "FLUSH_SECONDS",
    "POSE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "ExportHeader",
    "ExportPlan",
    "PoseSink",
    "check_destination",
    "check_plan",
    "run_header",
    "step_text",
    "time_left",
    "write_frames",
]
