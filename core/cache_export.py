"""Export what the analysis pass cached: pose files and an overlay video, nothing recomputed.

`check_destination` (core/pose_job.py) says, before any work starts, why a path cannot be
written (the folder is missing or read-only, the extension is not one we write).
`export_from_cache` is a generator of (done, total, text) progress that waits for the pass to
finish (the cache fills in another thread), then feeds the cached poses, with the frames
decoded again when an overlay video is asked for, to the job every writer shares
(core/pose_job.py `write_frames` into a `PoseSink`): `should_abort()` is checked between
frames and no half-written file is left behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from posescope.core.analysis import PoseCache
from posescope.core.pose_job import (
    POSE_SUFFIXES,
    VIDEO_SUFFIXES,
    Draw,
    ExportHeader,
    ExportPlan,
    PoseSink,
    Progress,
    check_destination,
    check_plan,
    run_header,
    step_text,
    time_left,
    write_frames,
)
from posescope.core.types import FramePoses

if TYPE_CHECKING:
    from posescope.core.session_types import Model, SourceInfo
    from posescope.core.sources.base import Source

WAIT_S = 0.05  # how often a wait for the pass looks again


def header_for(model: Model, source: SourceInfo) -> ExportHeader:
    """The header of a run of `model` (session_types.Model) on `source` (SourceInfo)."""
    document = dict(source.document) or {"path": source.spec, "fps": source.fps}
    return run_header(model.estimator, document, source.width, source.height, source.fps)


def export_from_cache(
    cache: PoseCache,
    header: ExportHeader,
    plan: ExportPlan,
    should_abort: Callable[[], bool],
    open_frames: Callable[[], Source] | None = None,
    draw: Draw | None = None,
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
        yield done, total, step_text("Analysing", done, total, t0, clock, base)
        time.sleep(WAIT_S)
    frames = cache.frames()
    if not plan.video_path:
        sink = PoseSink(plan, header)
        return (yield from write_frames(
            ((None, fp) for fp in frames), sink, len(frames), should_abort,
            what="Writing poses", clock=clock,
        ))  # fmt: skip
    if open_frames is None:
        from posescope.core.export import ExportError

        raise ExportError("the overlay video needs the source opened again")
    source = open_frames()
    try:
        if not all(header.size):
            header = replace(header, size=(source.width, source.height))
        sink = PoseSink(plan, header, draw=draw)
        return (yield from write_frames(
            _decoded(source, frames), sink, len(frames), should_abort,
            what="Writing the video", clock=clock,
        ))  # fmt: skip
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _decoded(
    source: Source, frames: list[FramePoses]
) -> Iterator[tuple[np.ndarray | None, FramePoses]]:
    """Each cached frame's image decoded again (None: it does not decode), with its poses."""
    for fp in frames:
        try:
            frame = source.get(fp.index)
        except Exception:  # an image of a folder that does not decode: no video frame
            frame = None
        yield (frame.image if frame is not None else None), fp


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
