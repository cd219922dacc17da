"""Networks whose output follows the picture, as trained weights do (tests only).

Random weights give flat heatmaps: their soft-argmax barely depends on the image (0.005 px
between the two input conventions), so a parity test on them cannot see a wrong input scale, a
wrong crop or a wrong flip. These networks can:

1. **BatchNorm calibrated on real crops**: every BN's running statistics are those of its
   input over crops of people from tests/media, fed under the convention being tested ("0-255",
   the published one, or "0-1"); the BNs are calibrated in eval mode, in order, so the
   statistics are those the network meets at inference (the stem's BN records the pixel scale
   the way a trained network's does: core/families/input_convention.py reads it back).
2. **A sharpened final layer**: the heatmap logits scaled so that their spread over positions
   is `SHARPNESS`, so the soft-argmax lands on the strongest response instead of the middle.

`follows_the_picture(model, ...)` checks the result: its joints move with the picture.
State dicts are made once per (network, seed, convention) in a process and copied out.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import cv2
import numpy as np
import torch
from torch import nn

from tests import factory, published, reference
from tests.media_files import POSE2SIM, SPORTS2D

StateDict = dict[str, torch.Tensor]
SHARPNESS = 6.0  # std of the final layer's logits over positions, per joint (trained: 5-10)
CALIBRATE_EVERY = 2  # BN statistics from every other crop: 12 people, ~0.2 M positions each

# people in the test videos (x, y, w, h, full-resolution pixels; benchmarks/person_boxes.json)
PEOPLE = {
    POSE2SIM: {0: [(240, 320, 320, 840), (0, 284, 132, 484)], 40: [(85, 373, 629, 800)],
               99: [(430, 480, 640, 830)]},
    SPORTS2D: {0: [(585, 75, 132, 383)], 60: [(556, 55, 171, 401), (1273, 546, 224, 397)],
               120: [(629, 88, 141, 374), (711, 515, 232, 418)], 180: [(130, 515, 137, 424)]},
}  # fmt: skip
# each box also shifted and scaled, so that the crops differ as detections do
JITTER = ((0.0, 0.0, 1.0), (0.08, -0.05, 1.1))


@functools.cache
def frames() -> dict[tuple[str, int], np.ndarray]:
    """The frames of PEOPLE, decoded once (BGR uint8)."""
    out = {}
    for video, by_frame in PEOPLE.items():
        cap = cv2.VideoCapture(str(video))
        for index in by_frame:
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, img = cap.read()
            assert ok, f"{video.name}: frame {index} does not decode"
            out[(video.name, index)] = img
        cap.release()
    return out


def people() -> list[tuple[np.ndarray, tuple[float, float, float, float]]]:
    """(frame, box) for every person of PEOPLE with every JITTER."""
    found = frames()
    out = []
    for video, by_frame in PEOPLE.items():
        for index, boxes in by_frame.items():
            for x, y, w, h in boxes:
                for dx, dy, s in JITTER:
                    cx, cy = x + w / 2 + dx * w, y + h / 2 + dy * h
                    box = (cx - w * s / 2, cy - h * s / 2, w * s, h * s)
                    out.append((found[(video.name, index)], box))
    return out


@functools.cache
def patches(size: tuple[int, int] = (256, 256)) -> tuple[np.ndarray, ...]:
    """Float32 RGB 0..255 patches of the people, cropped as the published code does."""
    out = []
    for img, box in people():
        bbox = published.process_bbox(np.array(box), img.shape[1], img.shape[0], size)
        patch, _ = published.generate_patch_image(img, bbox, size)
        out.append(patch)
    return tuple(out)


def batch(convention: str, size: tuple[int, int] = (256, 256), every: int = 1) -> torch.Tensor:
    """The network input of every `every`-th patch under `convention` ("0-255" or "0-1")."""
    return torch.stack([published.network_input(p, convention) for p in patches(size)[::every]])


def _forward_fn(model: nn.Module) -> Callable[[torch.Tensor], object]:
    if isinstance(model, reference.RootNet):
        return lambda x: model(x, torch.full((len(x),), 5000.0))
    return model


@torch.no_grad()
def calibrate_(model: nn.Module, convention: str = "0-255") -> nn.Module:
    """Set every BatchNorm's running statistics to those of its input on real crops.

    One eval-mode pass over all crops at once; just before each BN runs, its statistics are
    set from the input it receives, which the already-calibrated layers before it produced:
    each BN gets the statistics it meets at inference."""

    def set_stats(bn: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        t = inputs[0].double()
        assert isinstance(bn, nn.BatchNorm2d)
        assert bn.running_mean is not None and bn.running_var is not None
        bn.running_mean.copy_(t.mean((0, 2, 3)).float())
        bn.running_var.copy_(t.var((0, 2, 3), unbiased=False).clamp_min(1e-12).float())

    model.eval()
    handles = [
        m.register_forward_pre_hook(set_stats)
        for m in model.modules()
        if isinstance(m, nn.BatchNorm2d)
    ]
    try:
        x = batch(convention, every=CALIBRATE_EVERY)
        _forward_fn(model)(x.to(memory_format=torch.channels_last))
    finally:
        for h in handles:
            h.remove()
    return model


def _final_layers(model: nn.Module) -> list[nn.Conv2d]:
    return [
        m
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and name.endswith(("final_layer", "xy_layer"))
    ]


@torch.no_grad()
def sharpen_(model: nn.Module, convention: str = "0-255", sharpness: float = SHARPNESS):
    """Scale the heatmap layer so that its logits spread over positions by `sharpness`."""
    x = batch(convention, every=2 * CALIBRATE_EVERY).to(memory_format=torch.channels_last)
    (final,) = _final_layers(model)
    seen: list[torch.Tensor] = []
    handle = final.register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        _forward_fn(model)(x)
    finally:
        handle.remove()
    logits = seen[0]
    spread = float(logits.flatten(2).std(2).median())  # per image and channel, over positions
    scale = sharpness / max(spread, 1e-6)
    final.weight.mul_(scale)
    if final.bias is not None:
        final.bias.mul_(scale)
    return model


def follow_(model: nn.Module, convention: str = "0-255") -> nn.Module:
    """Calibrate and sharpen `model` in place (see the module docstring). Run channels-last
    (the same arithmetic, ~1.5x faster on a CPU), given back contiguous."""
    model.to(memory_format=torch.channels_last)
    try:
        return sharpen_(calibrate_(model, convention), convention)
    finally:
        model.to(memory_format=torch.contiguous_format)


@functools.cache
def _following_state(kind: str, args: tuple, seed: int, convention: str) -> StateDict:
    if kind == "variant" and args[1] == "legacy":  # the modern network's, spelt .0/.1/.2
        modern = _following_state(kind, (args[0], "modern"), seed, convention)
        return {_legacy_key(k): v for k, v in modern.items()}
    model = _make(kind, args, seed)
    follow_(model, convention)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _legacy_key(key: str) -> str:
    """head.deconv_layers_1.norm.weight -> head.deconv_layers_1.1.weight (the same layers)."""
    for name, index in (("dwconv", "0"), ("norm", "1"), ("pwconv", "2")):
        key = key.replace(f".{name}.", f".{index}.") if ".deconv_layers_" in key else key
    return key


def _make(kind: str, args: tuple, seed: int) -> nn.Module:
    if kind == "variant":  # "XS", or "XS:21" for that network with 21 joints
        name, spelling = args
        base, _, joints = name.partition(":")
        variant = factory._variant(base)
        if joints:
            variant = dataclasses.replace(variant, name=name, joint_num=int(joints))
        return factory.model_for(variant, spelling, seed=seed)
    if kind == "posenet":
        depth, joints = args
        return factory.randomized(reference.make_posenet, depth, joints, seed=seed)
    if kind == "rootnet":
        (depth,) = args
        return factory.randomized(reference.make_rootnet, depth, seed=seed)
    raise ValueError(kind)


def _model(kind: str, args: tuple, seed: int, convention: str) -> nn.Module:
    model = _make(kind, args, seed)
    model.load_state_dict(_following_state(kind, args, seed, convention))
    return model.eval()


def following_model(
    name: str = "XS", spelling: str = "modern", seed: int = 0, convention: str = "0-255"
) -> nn.Module:
    """The reference ConvNeXtPose of a variant ("XS", "S", "M", "L", "tiny"; "XS:21" with 21
    joints), following the picture under `convention`."""
    return _model("variant", (name, spelling), seed, convention)


def following_state_dict(
    name: str = "XS", spelling: str = "modern", seed: int = 0, convention: str = "0-255"
) -> StateDict:
    """`following_model(...)`'s tensors (a fresh copy), in the published key layout."""
    state = _following_state("variant", (name, spelling), seed, convention)
    return {k: v.clone() for k, v in state.items()}


def following_posenet(
    depth: int = 50, joints: int = 18, seed: int = 0, convention: str = "0-255"
) -> nn.Module:
    return _model("posenet", (depth, joints), seed, convention)


def following_rootnet(depth: int = 50, seed: int = 0, convention: str = "0-255") -> nn.Module:
    return _model("rootnet", (depth,), seed, convention)


def state_of(model: nn.Module) -> StateDict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def joint_spread(model: nn.Module, convention: str = "0-255") -> float:
    """How far the 2D joints move between pictures: the median over joints of the std across
    the calibration crops of x and y, in heatmap units (a flat network gives ~0)."""
    out = model(batch(convention)[::2])
    return float(out[..., :2].std(0).median())
