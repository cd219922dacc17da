"""Export what the analysis pass cached: pose files and an overlay video, nothing recomputed.

`check_destination` says, before any work starts, why a path cannot be written (the folder is
missing or read-only, the extension is not one we write). `export_from_cache` is a generator
of (done, total, text) progress that waits for the pass to finish (the cache fills in another
thread), writes the poses (core/export.py: JSON / CSV / NPZ) and, for the overlay video,
decodes the frames again and draws the cached poses on them. It checks `should_abort()`
between frames and leaves no half-written video behind.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posescope.core.analysis import PoseCache
from posescope.core.export import ExportError, OverlayVideoWriter, run_document, write_poses
from posescope.core.types import FramePoses
from posescope.core.variants import JointSet

POSE_SUFFIXES = (".json", ".csv", ".npz")
VIDEO_SUFFIXES = (".mp4", ".avi")
WAIT_S = 0.05  # how often a wait for the pass looks again

Progress = Generator[tuple[int, int, str], None, dict[str, object]]


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


def header_for(model: Any, source: Any) -> ExportHeader:
    """The header of a run of `model` (session_types.Model) on `source` (SourceInfo)."""
    estimator = model.estimator
    joint_set = estimator.joint_set
    if joint_set is None:
        raise ExportError(f"{model.ident.title} has no joint set: not a pose network")
    cfg = estimator.config
    principal = cfg.principal or (source.width / 2.0, source.height / 2.0)
    return ExportHeader(
        checkpoint=model.ident.to_dict(),
        source=dict(source.document) or {"path": source.spec, "fps": source.fps},
        focal=cfg.focal,
        principal=principal,
        joint_set=joint_set,
        fps=source.fps,
        size=(source.width, source.height),
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


def _step(
    what: str, done: int, total: int, t0: float, clock: Callable[[], float], base: int = 0
) -> str:
    """'Analysing: frame 40 of 100 · about 12 s left' (the rate: frames since `base` at t0)."""
    left = time_left(done - base, total - base, clock() - t0)
    text = f"{what}: frame {done} of {total or '?'}"
    return f"{text} · {left}" if left else text


def export_from_cache(
    cache: PoseCache,
    header: ExportHeader,
    plan: ExportPlan,
    should_abort: Callable[[], bool],
    open_frames: Callable[[], Any] | None = None,
    draw: Callable[[Any, FramePoses, JointSet], Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Progress:
    """Write `plan` from `cache` (see the module docstring). `open_frames()` opens the source
    again for the overlay video (a `core.sources.Source`); `draw(image, poses, joint_set)`
    draws one frame (default `core.drawing.draw_frame`). Returns {"frames", "written"} or
    {"cancelled": True}."""
    check_plan(plan)
    t0 = clock()
    base = cache.analysed
    while not cache.finished:  # the pass fills the cache in its own thread
        if should_abort():
            return {"cancelled": True}
        progress = cache.progress()
        done, total = progress.done, progress.total or 0
        yield done, total, _step("Analysing", done, total, t0, clock, base)
        time.sleep(WAIT_S)
    frames = cache.frames()
    total = len(frames)
    written: list[str] = []
    if plan.video_path:
        result = yield from _write_video(
            frames, header, plan.video_path, should_abort, open_frames, draw, clock
        )
        if result is not None:
            return result
        written.append(plan.video_path)
    if should_abort():
        return {"cancelled": True}
    if plan.poses_path:
        yield total, total, "Writing poses…"
        doc = run_document(
            dict(header.checkpoint),
            dict(header.source),
            header.focal,
            header.principal,
            header.joint_set,
            frames,
        )
        write_poses(plan.poses_path, doc)
        written.insert(0, plan.poses_path)
    return {"frames": total, "written": written}


def _write_video(
    frames: list[FramePoses],
    header: ExportHeader,
    path: str,
    should_abort: Callable[[], bool],
    open_frames: Callable[[], Any] | None,
    draw: Callable[[Any, FramePoses, JointSet], Any] | None,
    clock: Callable[[], float],
) -> Generator[tuple[int, int, str], None, dict[str, object] | None]:
    """Decode the frames again, draw the cached poses, encode. None when done."""
    if open_frames is None:
        raise ExportError("the overlay video needs the source opened again")
    if draw is None:
        from posescope.core.drawing import draw_frame

        draw = draw_frame
    total = len(frames)
    source = open_frames()
    completed = False
    t0 = clock()
    writer: OverlayVideoWriter | None = None
    try:
        size = header.size if all(header.size) else (source.width, source.height)
        writer = OverlayVideoWriter(path, header.fps, size)
        for done, fp in enumerate(frames, start=1):
            if should_abort():
                return {"cancelled": True}
            try:
                frame = source.get(fp.index)
            except Exception:  # an image of a folder that does not decode: no video frame
                frame = None
            if frame is not None:
                writer.write(draw(frame.image, fp, header.joint_set))
            yield done, total, _step("Writing the video", done, total, t0, clock)
        completed = True
    finally:
        if writer is not None:
            writer.close()
            if not completed:  # no half-written video left behind
                Path(path).unlink(missing_ok=True)
        close = getattr(source, "close", None)
        if close is not None:
            close()
    return None


__all__ = [
    "POSE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "ExportHeader",
    "ExportPlan",
    "check_destination",
    "check_plan",
    "export_from_cache",
    "header_for",
    "time_left",
]
