"""What every person detector gives and how it fails (no onnxruntime, no network here).

A detector is anything with `detect(image) -> list[Detection]`: the HOG detector, the ONNX
CNN detectors, a test double. `Detection` is a named tuple so that `for box, score in dets`
keeps working where (box, score) pairs were used before.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

import cv2
import numpy as np

Box = tuple[float, float, float, float]  # x, y, w, h in frame pixels


class Detection(NamedTuple):
    """One person found in a frame: its box (x, y, w, h, frame pixels) and the detector's
    confidence (0..1)."""

    box: Box
    score: float


@runtime_checkable
class Detector(Protocol):
    """People in a BGR uint8 image, best first."""

    name: str

    def detect(self, image: np.ndarray) -> list[Detection]: ...


class DetectorError(Exception):
    """A detector could not be made or run; `str()` is one readable sentence."""


class WeightsMissingError(DetectorError):
    """The ONNX weights of a CNN detector are not on this machine and could not be fetched.

    `path` is where the file must go (the cache), `urls` where it is fetched from, `reason`
    why the last download attempt failed (None when none was tried)."""

    def __init__(self, model: str, path: Path, urls: tuple[str, ...], reason: str | None = None):
        self.model = model
        self.path = Path(path)
        self.urls = urls
        self.reason = reason
        why = f" ({reason})" if reason else ""
        super().__init__(f"no weights for {model} at {self.path}{why}")


class DownloadCancelled(DetectorError):
    """A download stopped because its caller asked (nothing is left in the cache)."""


class ChecksumError(DetectorError):
    """A downloaded file is not the one that was pinned (nothing is left in the cache)."""


def detector_input(image: np.ndarray | None) -> np.ndarray | None:
    """The image every detector works on: BGR (a grey image converted), or None when there is
    nothing to look at (no image, or an empty one)."""
    if image is None or image.ndim < 2 or image.size == 0:
        return None
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image


class ImageDetector:
    """What every detector does with its input: `detect` makes it BGR (`detector_input`) and
    finds nobody in nothing; the detector's own work is `detect_bgr` on a BGR image."""

    def detect(self, image: np.ndarray) -> list[Detection]:
        """People in an image: [Detection((x, y, w, h), score)], best first."""
        bgr = detector_input(image)
        return [] if bgr is None else self.detect_bgr(bgr)

    def detect_bgr(self, image: np.ndarray) -> list[Detection]:
        raise NotImplementedError


def whole_frame(width: int, height: int) -> Box:
    """The whole image as a person box (the fallback when nobody is found)."""
    return (0.0, 0.0, float(width), float(height))


__all__ = [
    "Box",
    "ChecksumError",
    "Detection",
    "Detector",
    "DetectorError",
    "DownloadCancelled",
    "ImageDetector",
    "WeightsMissingError",
    "detector_input",
    "whole_frame",
]
