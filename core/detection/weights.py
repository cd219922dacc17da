"""The CNN detectors PoseScope knows, where their weights live, and getting them.

Weights are never in the repository: they are fetched on first use from OpenMMLab's download
server, then from the Hugging Face mirror of the same files (Tau-J/RTMPose, by rtmlib's
author), into the user's cache directory. The SHA-256 pinned below is that of the
`end2end.onnx` inside each zip (what is kept), as public projects that verify these files pin
it (README, "Person detectors", says which); a file whose hash differs is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from posescope.core.detection.base import ChecksumError, WeightsMissingError
from posescope.core.detection.download import (
    TIMEOUT_S,
    CancelFn,
    DownloadError,
    ProgressFn,
    fetch,
    sha256_file,
)
from posescope.core.detection.onnx_detector import RTMDET, YOLOX, Preprocess
from posescope.core.userdirs import user_cache_dir

OPENMMLAB = "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/onnx_sdk/"
HF_MIRROR = "https://huggingface.co/Tau-J/RTMPose/resolve/main/rtmposev1/onnx_sdk/"
ENV_CACHE = "POSESCOPE_MODELS"  # overrides the cache folder (tests, shared installs)
# Comma-separated base URLs tried instead of the two above (an internal mirror; the tests
# point it at a closed local port so that nothing ever leaves the machine).
ENV_URLS = "POSESCOPE_MODEL_URLS"


@dataclass(frozen=True)
class ModelInfo:
    """One downloadable detector."""

    name: str  # what --detector takes
    title: str
    archive: str  # the zip's name on both servers
    file_name: str  # the ONNX file kept in the cache
    sha256: str | None  # of that ONNX file; None: cannot be pinned (checked by size only)
    preprocess: Preprocess
    size_mb: float
    note: str

    @property
    def short(self) -> str:
        return self.title.split(" (")[0]

    @property
    def urls(self) -> tuple[str, ...]:
        bases = [b.strip() for b in os.environ.get(ENV_URLS, "").split(",") if b.strip()]
        bases = bases or [OPENMMLAB, HF_MIRROR]
        return tuple(b.rstrip("/") + "/" + self.archive for b in bases)


CATALOGUE: dict[str, ModelInfo] = {
    "rtmdet": ModelInfo(
        "rtmdet",
        "RTMDet-nano 320 (person, COCO + Objects365)",
        "rtmdet_nano_8xb32-100e_coco-obj365-person-05d8511e.zip",
        "rtmdet_nano_person_320.onnx",
        "8297e829ccc5590c8e2d32d5a211f322a0585fb7467eec85eb12c9525b0b95d6",
        RTMDET,
        4.0,
        "default; 0.99 M params, 0.31 GFLOPs; Apache-2.0 (OpenMMLab)",
    ),
    "yolox": ModelInfo(
        "yolox",
        "YOLOX-tiny 416 (HumanArt + COCO)",
        "yolox_tiny_8xb8-300e_humanart-6f3252f9.zip",
        "yolox_tiny_humanart_416.onnx",
        "ceb11c07298f95c50d7c5abeb906d03340c85f23aa79e3e66966e7fb6c307250",
        YOLOX,
        20.0,
        "more accurate, ~4x the cost; 5.06 M params, 6.45 GFLOPs; Apache-2.0 (OpenMMLab)",
    ),
}
DEFAULT = "rtmdet"


def cache_dir() -> Path:
    """Where downloaded detectors live: $POSESCOPE_MODELS, else the platform's user cache
    ($XDG_CACHE_HOME or ~/.cache on Linux, ~/Library/Caches on macOS, %LOCALAPPDATA% on
    Windows) + posescope/models."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    return user_cache_dir() / "models"


def info(name: str) -> ModelInfo:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ValueError(f"unknown detector '{name}'; known: {', '.join(CATALOGUE)}") from None


def cached_path(name: str) -> Path:
    """Where the named detector's ONNX file is (or must be put by hand)."""
    return cache_dir() / info(name).file_name


def is_cached(name: str) -> bool:
    return cached_path(name).is_file()


def verify(name: str, path: Path | None = None) -> bool:
    """True when the file at `path` (default: the cache) is the pinned one (or nothing is
    pinned and the file exists)."""
    path = path or cached_path(name)
    if not path.is_file():
        return False
    pinned = info(name).sha256
    return pinned is None or sha256_file(path) == pinned


def ensure_weights(
    name: str,
    *,
    download: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    urls: tuple[str, ...] | None = None,
    timeout: float = TIMEOUT_S,
) -> Path:
    """The path of the named detector's ONNX file, downloading it first when it is not
    cached and `download` is true. Raises WeightsMissingError (where it must go, from where)
    when it is not there and could not be fetched; DownloadCancelled when cancelled."""
    meta = info(name)
    dest = cached_path(name)
    sources = urls if urls is not None else meta.urls
    if dest.is_file():
        if not verify(name, dest):
            raise ChecksumError(
                f"{dest} is not the published {meta.short} file (SHA-256 differs): delete it to"
                " download it again, or pass your own file with --detector-model"
            )
        return dest
    if not download:
        raise WeightsMissingError(meta.short, dest, sources)
    try:
        return fetch(sources, dest, sha256=meta.sha256, progress=progress, cancel=cancel,
                     timeout=timeout)  # fmt: skip
    except DownloadError as exc:
        raise WeightsMissingError(meta.short, dest, sources, str(exc)) from exc
