"""The app's calls into the engine (`core`), in one place, each meant to run in a worker.

Nothing here touches a widget: functions take plain values and return engine objects, so the
main window can hand them to `TaskRunner.submit` and receive the results by signal. Engine
modules are imported where they are used, so the window opens fast and without them.
"""

from __future__ import annotations

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
    estimator_b: Estimator | None = None,
) -> PoseRunner:
    """A fresh runner around `estimator` (core/runner_setup.py `build_runner`): for viewing,
    the detector works in its own thread and the first frame after a seek is detected afresh;
    `synchronous`: the analysis pass, which detects in its own thread on each frame it
    estimates (its results must not depend on timing)."""
    from posescope.core.runner_setup import build_runner

    return build_runner(
        estimator,
        settings,
        detector,
        background=not synchronous,
        seeking=not synchronous,
        estimator_b=estimator_b,
    )


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
