"""The app's calls into the engine (`core`), in one place, each meant to run in a worker.

Nothing here touches a widget: functions take plain values and return engine objects, so the
main window can hand them to `TaskRunner.submit` and receive the results by signal. Engine
modules are imported where they are used, so the window opens fast and without them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from posescope.core.cache_export import ExportPlan
from posescope.core.session_types import (
    Model,
    ModelSettings,
    Opened,
    OpenFailed,
    RunnerSettings,
    SourceInfo,
)

if TYPE_CHECKING:
    from posescope.core.checkpoint import LoadedCheckpoint
    from posescope.core.detection.base import Detector
    from posescope.core.families.descriptor import Identification
    from posescope.core.pipeline import Estimator, PoseRunner
    from posescope.core.sources.base import Source

__all__ = [
    "Model",
    "ModelSettings",
    "OpenFailed",
    "Opened",
    "RunnerSettings",
    "SourceInfo",
]
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".gif"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
MEDIA_FILTER = (
    "Video or image ("
    + " ".join(f"*{e}" for e in sorted(VIDEO_EXTS | IMAGE_EXTS))
    + ");;All files (*)"
)
CHECKPOINT_FILTER = (
    "Checkpoints (*.pth *.pth.tar *.tar *.pt *.ckpt *.bin *.safetensors *.zip);;All files (*)"
)


def classify_path(path: str | os.PathLike[str]) -> str:
    """'media' (video, image, image folder) or 'checkpoint' (anything else: the engine decides).

    A folder is a checkpoint when it holds an unpacked torch checkpoint (`data.pkl`), media
    when it holds images.
    """
    p = Path(path)
    if p.is_dir():
        if (p / "data.pkl").exists() or any(p.glob("*/data.pkl")):
            return "checkpoint"
        try:
            names = [c.suffix.lower() for c in p.iterdir() if c.is_file()]
        except OSError:
            return "media"
        if any(s in IMAGE_EXTS or s in VIDEO_EXTS for s in names):
            return "media"
        return "checkpoint"
    suffix = p.suffix.lower()
    if suffix in VIDEO_EXTS or suffix in IMAGE_EXTS:
        return "media"
    return "checkpoint"


def identify_files(paths: Sequence[str], trust: bool = False) -> list[Opened | OpenFailed]:
    """Open and identify each file; one result per path, errors kept (never raised)."""
    from posescope.core.checkpoint import open_checkpoint
    from posescope.core.identify import identify_checkpoint

    out: list[Opened | OpenFailed] = []
    for path in paths:
        try:
            ckpt = open_checkpoint(path, trust=trust)
            ident = identify_checkpoint(ckpt)
        except Exception as exc:  # every failure is reported with its file
            out.append(OpenFailed(str(path), exc))
        else:
            out.append(Opened(str(path), ckpt, ident))
    return out


def build_model(
    ckpt: LoadedCheckpoint,
    ident: Identification,
    settings: ModelSettings,
    rootnet: Opened | None = None,
) -> Model:
    """Rebuild the network the tensors describe and load it (slow: call in a worker)."""
    from posescope.core.pipeline import Estimator

    estimator = Estimator.from_checkpoint(ckpt, ident, settings.config())
    if rootnet is not None:
        estimator.set_rootnet(rootnet.ckpt, rootnet.ident)
    # the estimator's ident has the upsampling override applied (heatmap size, GFLOPs)
    return Model(ckpt, ident, estimator.ident, estimator, settings, rootnet)


def make_runner(
    estimator: Estimator,
    settings: RunnerSettings,
    detector: Detector | None = None,
    synchronous: bool = False,
) -> PoseRunner:
    """A fresh PoseRunner (tracker + smoother) around `estimator`. The detector works in its
    own thread (a BackgroundDetector, ended by `runner.close()`), every DETECT_EVERY frames;
    `synchronous`: it detects in the calling thread on the frame being estimated instead (the
    analysis pass, whose results must not depend on timing). Nobody found: the whole frame is
    the box unless `settings.whole_frame` is off."""
    from posescope.core.detection.background import BackgroundDetector
    from posescope.core.detection.commands import DETECT_EVERY
    from posescope.core.person import PersonTracker
    from posescope.core.smoothing import PoseSmoother

    if settings.tracker_box is not None:
        tracker = PersonTracker.fixed(settings.tracker_box)
    else:
        in_thread = detector is not None and not synchronous
        tracker = PersonTracker(
            detector=BackgroundDetector(detector) if in_thread else detector,
            detect_every=DETECT_EVERY,
            whole_frame=settings.whole_frame,
        )
    smoother = PoseSmoother(
        enabled=settings.smoothing, min_cutoff=settings.smoother_args()["min_cutoff"]
    )
    if synchronous:  # frames in order from the first: no seeks to look at afresh
        from posescope.core.pipeline import PoseRunner

        return PoseRunner(estimator, tracker, smoother)
    return _app_runner()(estimator, tracker, smoother)


FAR_SEEK = 8  # frames: a seek farther than this (or back) looks at the frame afresh


@functools.cache
def _app_runner() -> type[PoseRunner]:
    from posescope.core.pipeline import PoseRunner

    class AppRunner(PoseRunner):
        """A PoseRunner whose first frame after a seek (`reset`) is detected in the calling
        thread before its poses, so a frame looked at after a seek shows the people found on
        it, not boxes carried from another moment; a seek farther than FAR_SEEK frames (or
        backwards, or a new source) also forgets the tracks (ids from 1). Between seeks the
        detector works in its own thread."""

        _fresh = True
        _last: int | None = None

        def reset(self) -> None:
            super().reset()
            self._fresh = True

        def process(self, frame, prepared=None):  # type: ignore[no-untyped-def]
            tracker = self.tracker
            bg = tracker.background
            if not self._fresh or bg is None:
                self._last = frame.index
                return super().process(frame, prepared)
            self._fresh = False
            last, self._last = self._last, frame.index
            if last is None or not 0 < frame.index - last <= FAR_SEEK:
                tracker.restart()
            tracker.detector = bg.detector  # this round synchronously
            try:
                return super().process(frame, prepared)
            finally:
                tracker.detector = bg

    return AppRunner


@dataclass
class DetectorChoice:
    """What `make_detector` found: the detector (None: nobody is detected: a drawn box, the
    whole frame, `none`), what runs ('rtmdet' | 'yolox' | 'hog' | 'box' | None), and why the
    wanted detector does not run (None: it does)."""

    detector: Detector | None
    running: str | None
    problem: Exception | None = None


def make_detector(settings: RunnerSettings) -> DetectorChoice:
    """The detector `settings` ask for, from the cache or a local file; never downloads (the
    app fetches weights in its own worker, with progress). No weights for the default: no
    detector and the problem (the app goes on with the whole frame)."""
    from posescope.core.detection import registry
    from posescope.core.detection.base import DetectorError

    if settings.tracker_box is not None:
        return DetectorChoice(None, "box")
    name = settings.detector_name
    if name == "none":
        return DetectorChoice(None, None)
    if not settings.detector_explicit:
        found = registry.open_default(download=False)
        running = name if found.detector is not None else None
        return DetectorChoice(found.detector, running, found.problem)
    try:
        detector = registry.create_detector(name, settings.detector_model, download=False)
    except (DetectorError, ValueError, OSError) as exc:
        return DetectorChoice(None, None, exc)
    return DetectorChoice(detector, name)


def open_media(spec: str) -> Source:
    """Open a video, image, folder or 'camera:N' / 'replay:PATH' source."""
    from posescope.core.sources.probe import open_source

    return open_source(spec)


def list_cameras() -> list[int]:
    from posescope.core.sources.probe import list_cameras as _list

    return list(_list())


def camera_spec(index: int) -> tuple[str, str]:
    """(spec, label) for one entry of `list_cameras()`."""
    return f"camera:{int(index)}", f"Camera {int(index)}"


ExportRequest = ExportPlan  # what to export: poses (.json/.csv/.npz) and/or a video
