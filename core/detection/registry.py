"""Making a detector from a name (what `--detector` and the app's setting give).

Names: `rtmdet` (the default, RTMDet-nano), `yolox` (YOLOX-tiny), `hog` (OpenCV's HOG, never
chosen automatically) and `none` (no detector: the whole frame, or a box drawn by the user).
A CNN detector's weights come from `model_path` (a local ONNX file of that detector) or the
cache, downloaded on first use. `open_default` is the forgiving path the default takes: no
weights and no network give a warning and no detector, never a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posescope.core.detection.base import Detector, DetectorError, WeightsMissingError
from posescope.core.detection.download import CancelFn, ProgressFn
from posescope.core.detection.onnx_detector import OnnxDetector
from posescope.core.detection.weights import CATALOGUE, DEFAULT, ensure_weights, info

NAMES = ("rtmdet", "yolox", "hog", "none")


def default_threads() -> int:
    """onnxruntime's intra-op threads for a detector that shares the CPU with the pose
    network: half of torch's threads, at least one."""
    try:
        import torch

        return max(1, torch.get_num_threads() // 2)
    except ImportError:  # pragma: no cover - torch is a dependency
        return 1


def create_detector(
    name: str,
    model_path: str | Path | None = None,
    *,
    threads: int | None = None,
    device: str = "auto",
    min_score: float = 0.3,
    download: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> Detector | None:
    """The named detector, or None for `none`. Raises WeightsMissingError when a CNN
    detector's weights are neither given, cached nor downloadable; DetectorError for a file
    that is not such a detector; ValueError for an unknown name."""
    if name == "none":
        if model_path:
            raise ValueError("--detector-model needs --detector rtmdet or yolox")
        return None
    if name == "hog":
        if model_path:
            raise ValueError("--detector-model needs --detector rtmdet or yolox")
        from posescope.core.person import PeopleDetector

        return PeopleDetector()
    if name not in CATALOGUE:
        raise ValueError(f"unknown detector '{name}'; use one of {', '.join(NAMES)}")
    meta = info(name)
    if model_path is not None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise DetectorError(f"{path}: no such file")
    else:
        path = ensure_weights(name, download=download, progress=progress, cancel=cancel)
    return OnnxDetector(
        path,
        meta.preprocess,
        name=name,
        min_score=min_score,
        threads=threads if threads is not None else default_threads(),
        device=device,
    )


@dataclass
class DefaultDetector:
    """What `open_default` found: a detector, or None with the reason to tell the user."""

    detector: Detector | None
    problem: WeightsMissingError | DetectorError | None = None


def open_default(**kw) -> DefaultDetector:
    """The default detector (RTMDet-nano), or None and why: missing weights or a failed
    download never stop a run that did not ask for a detector by name."""
    try:
        return DefaultDetector(create_detector(DEFAULT, **kw))
    except (WeightsMissingError, DetectorError) as exc:
        return DefaultDetector(None, exc)


def missing_weights_hint(exc: WeightsMissingError) -> str:
    """One sentence for a warning or an error: where the file must go and from where."""
    why = f" (download failed: {exc.reason})" if exc.reason else ""
    url = exc.urls[0] if exc.urls else "?"
    return (
        f"no {exc.model} weights at {exc.path}{why}; get {url} (its end2end.onnx goes at that"
        " path) or pass --detector-model FILE"
    )
