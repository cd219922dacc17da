"""Which pixel scale a network was trained on, read from the BatchNorm after its first conv.

The published code (3DMPPE `data/dataset.py` `generate_patch_image`, ConvNeXtPose the same)
crops a **float32** array of 0..255 RGB values and hands it to torchvision's `ToTensor`, which
divides by 255 only for uint8 arrays (torchvision >= 0.3; 0.2.0 divided every array), then to
`Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))`. So the released networks
see `(pixel - mean) / std` with pixels in 0..255 ("0-255", the published convention). Some
re-implementations divide by 255 first ("0-1"); a network fine-tuned with those expects that.

A network with BatchNorm after its first convolution records which: the running variance of
that BN is the variance of the first conv's outputs on the training crops, about 255² = 65,025
times (4.8 decades) larger under 0..255 inputs than under 0..1. We predict that variance from
the file's own first-conv weights and a model of natural-image crops (channel covariance and
spatial correlation, measured on crops of people from the test videos), under 0..1 inputs,
and compare on a log scale: the median over channels of log10(running / predicted) is near 0
for a 0..1 network and near 4.8 for a 0..255 one. The model predicts the variance of random,
smooth and zero-mean (edge-like) kernels on those crops within 0.25 decades; the margin
(`MARGIN` decades each side) absorbs a training set whose statistics differ from ours by a
factor of 40. Statistics that say neither (freshly initialised, or a file without them) leave
the published convention, assumed, and say so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from posescope.core.variants import IMAGENET_MEAN, IMAGENET_STD

if TYPE_CHECKING:
    import torch

InputScale = Literal["0-255", "0-1"]
SCALES: tuple[InputScale, ...] = ("0-255", "0-1")
PUBLISHED: InputScale = "0-255"
CHOICES = ("auto", *SCALES)  # what a user may ask for (`--input-scale`)

# Natural crops of people (tests/media, 256x256 affine crops of labelled boxes), RGB in 0..1:
# the channel covariance, and the correlation of a pixel with its neighbour d pixels away
# (rows and columns averaged). Checked in tests/test_input_convention.py, which recomputes them.
RGB_COVARIANCE = (
    (0.0615, 0.0582, 0.0542),
    (0.0582, 0.0586, 0.0574),
    (0.0542, 0.0574, 0.0638),
)
SPATIAL_CORRELATION = (1.0, 0.967, 0.935, 0.909, 0.886, 0.866, 0.848, 0.830)

DECADES_0_255 = 2 * math.log10(255.0)  # 4.81: the variance ratio of the two conventions
MARGIN = 1.6  # decades either side of a convention's expected log ratio


@dataclass(frozen=True)
class Stem:
    """Where a family's first convolution and the BatchNorm after it are (canonical keys)."""

    conv: str  # e.g. "backbone.downsample_layers.0.0" (its .weight is (C, 3, k, k))
    norm: str  # e.g. "backbone.downsample_layers.0.1"
    name: str  # how the user hears of it: "the stem's BatchNorm"

    @property
    def named(self) -> str:
        """e.g. "the stem's BatchNorm (backbone.downsample_layers.0.1)"."""
        return f"{self.name} ({self.norm})"


@dataclass(frozen=True)
class InputConvention:
    """The pixel scale a network is fed with, and how that was decided.

    `how`: "read" (from the file's statistics), "assumed" (they say neither: the published
    one) or "chosen" (by the user, overriding the file). `decades`: the median log10 ratio of
    the stem BN's running variance to the 0..1 prediction (None when not measured).
    """

    scale: InputScale
    how: Literal["read", "assumed", "chosen"]
    reason: str
    decades: float | None = None

    @property
    def pixel_scale(self) -> float:
        """What 0..255 pixel values are multiplied by before the ImageNet mean and std."""
        return pixel_scale(self.scale)

    @property
    def words(self) -> str:
        """The input in words, e.g. "0..255 pixels, ImageNet mean/std (the published code)"."""
        return describe_scale(self.scale)

    def describe(self) -> str:
        """One line for the panel and `inspect`: the input and why."""
        return f"{self.words}; {self.reason}"

    def to_dict(self) -> dict[str, object]:
        return {
            "scale": self.scale,
            "how": self.how,
            "reason": self.reason,
            "log10_variance_ratio": None if self.decades is None else round(self.decades, 2),
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
        }


def pixel_scale(scale: str) -> float:
    if scale not in SCALES:
        raise ValueError(f"input scale {scale!r}: expected one of {', '.join(CHOICES)}")
    return 1.0 if scale == "0-255" else 1.0 / 255.0


def describe_scale(scale: str) -> str:
    if scale == "0-255":
        return "0..255 pixels, ImageNet mean/std (as the published code)"
    return "pixels / 255 (0..1), ImageNet mean/std (as some re-implementations)"


def chosen(scale: str, read: InputConvention | None) -> InputConvention:
    """The user's choice `scale` ("auto" keeps what was read or assumed)."""
    if scale == "auto":
        return read if read is not None else assumed("nothing read from the file")
    pixel_scale(scale)  # validates
    note = "" if read is None or read.scale == scale else f"; the file says {read.scale}"
    return InputConvention(scale, "chosen", f"chosen by the user{note}")  # type: ignore[arg-type]


def assumed(why: str, decades: float | None = None) -> InputConvention:
    """The published convention, assumed because the file's statistics do not tell (`why`)."""
    return InputConvention(PUBLISHED, "assumed", f"assumed, as the published code: {why}", decades)


def predicted_variance(weight: np.ndarray) -> np.ndarray:
    """Per output channel: the variance of a first conv's outputs on natural crops fed as
    (pixel / 255 - mean) / std. `weight` is (C, 3, kh, kw), its input RGB."""
    std = np.asarray(IMAGENET_STD, np.float64)
    cov = np.asarray(RGB_COVARIANCE, np.float64) / np.outer(std, std)
    rho = np.asarray(SPATIAL_CORRELATION, np.float64)
    kh, kw = weight.shape[2:]
    if max(kh, kw) > len(rho):
        rho = np.concatenate([rho, np.full(max(kh, kw) - len(rho), rho[-1])])
    ry = rho[np.abs(np.arange(kh)[:, None] - np.arange(kh)[None, :])]
    rx = rho[np.abs(np.arange(kw)[:, None] - np.arange(kw)[None, :])]
    w = weight.astype(np.float64)
    return np.einsum("ocij,odkl,cd,ik,jl->o", w, w, cov, ry, rx)


def read_input_convention(
    tensors: Mapping[str, torch.Tensor], stem: Stem | None
) -> InputConvention:
    """The convention the file's stem BatchNorm statistics tell (see the module docstring)."""
    if stem is None:
        return assumed("this network has no BatchNorm after its first convolution to read")
    weight = tensors.get(f"{stem.conv}.weight")
    mean = tensors.get(f"{stem.norm}.running_mean")
    var = tensors.get(f"{stem.norm}.running_var")
    if weight is None or mean is None or var is None:
        return assumed(f"the file has no running statistics for {stem.named}")
    w = weight.detach().float().cpu().numpy()
    v = var.detach().double().cpu().numpy()
    m = mean.detach().double().cpu().numpy()
    if w.ndim != 4 or w.shape[1] != 3 or v.shape != (w.shape[0],) or m.shape != v.shape:
        return assumed(f"{stem.named} does not have the expected shapes")
    if np.all(v == 1.0) and np.all(m == 0.0):
        return assumed(f"{stem.named} has untouched statistics (a freshly initialised network)")
    predicted = predicted_variance(w)
    ok = (v > 0) & np.isfinite(v) & (predicted > 0)
    if ok.sum() < max(1, len(v) // 2):
        return assumed(f"{stem.named} has no usable statistics")
    decades = float(np.median(np.log10(v[ok] / predicted[ok])))
    said = (
        f"its running variance is 10^{decades:.1f} x what 0..1 inputs give "
        f"(0..1: 10^0, 0..255: 10^{DECADES_0_255:.1f})"
    )
    if abs(decades - DECADES_0_255) <= MARGIN:
        return InputConvention("0-255", "read", f"read from {stem.named}: {said}", decades)
    if abs(decades) <= MARGIN:
        return InputConvention("0-1", "read", f"read from {stem.named}: {said}", decades)
    return assumed(f"{stem.named} says neither: {said}", decades)
