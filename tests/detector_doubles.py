"""ONNX person-detector doubles with the exact mmdeploy signatures, exported at test time
from tiny torch modules (no weights anywhere).

Both "see" one thing: the bounding box of the bright pixels of the network input (after our
letterbox and normalisation), which the tests draw at known frame coordinates; so a box that
comes back in the wrong frame pixels (ratio, padding, normalisation, grid decoding) fails.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

STRIDES = (8, 16, 32)


def _bright_box(x: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(x1, y1, x2, y2) in input pixels of the pixels whose channel mean is above
    `threshold`, and 1.0 when there are any (else 0.0)."""
    mask = (x.mean(dim=1)[0] > threshold).float()  # (H, W)
    h, w = mask.shape
    cols, rows = mask.amax(dim=0), mask.amax(dim=1)
    ix = torch.arange(w, dtype=torch.float32)
    iy = torch.arange(h, dtype=torch.float32)
    x1 = (ix + (1 - cols) * 1e6).amin()
    y1 = (iy + (1 - rows) * 1e6).amin()
    x2 = (ix * cols).amax() + 1
    y2 = (iy * rows).amax() + 1
    return torch.stack([x1, y1, x2, y2]), cols.amax()


class End2End(nn.Module):
    """Outputs `dets` (1, 3, 5) and `labels` (1, 3): the bright box as a person (score 0.9),
    the same box shifted right as class 2 (score 0.95), and shifted down as a person of
    score 0.1 (below any sensible threshold)."""

    def __init__(self, threshold: float, score: float = 0.9):
        super().__init__()
        self.threshold = threshold
        self.score = score

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        box, found = _bright_box(x, self.threshold)
        shift_x = torch.tensor([40.0, 0.0, 40.0, 0.0])
        shift_y = torch.tensor([0.0, 30.0, 0.0, 30.0])
        rows = [
            torch.cat([box, (self.score * found).reshape(1)]),
            torch.cat([box + shift_x, (0.95 * found).reshape(1)]),
            torch.cat([box + shift_y, (0.1 * found).reshape(1)]),
        ]
        dets = torch.stack(rows)[None]
        labels = torch.tensor([[0, 2, 0]], dtype=torch.int64)
        return dets, labels


class RawYolox(nn.Module):
    """The raw YOLOX head (1, A, 5 + C): every stride-8 anchor predicts the bright box as a
    person (objectness 0.9 x class 0.9); every stride-16 anchor predicts a box shifted right
    as class 1 (0.99, person 0.01); every stride-32 anchor the box shifted down as a person of
    0.2 x 0.5 = 0.1."""

    def __init__(self, size: int, classes: int = 80, threshold: float = 200.0):
        super().__init__()
        self.threshold = threshold
        self.classes = classes
        grids, strides, groups = [], [], []
        for g, s in enumerate(STRIDES):
            gy, gx = np.mgrid[0 : size // s, 0 : size // s]
            grids.append(np.stack([gx.ravel(), gy.ravel()], axis=1))
            strides.append(np.full((gx.size, 1), s))
            groups.append(np.full(gx.size, g))
        self.register_buffer("grid", torch.tensor(np.concatenate(grids), dtype=torch.float32))
        self.register_buffer("stride", torch.tensor(np.concatenate(strides), dtype=torch.float32))
        group = torch.tensor(np.concatenate(groups))
        self.register_buffer("g8", (group == 0).float()[:, None])
        self.register_buffer("g16", (group == 1).float()[:, None])
        self.register_buffer("g32", (group == 2).float()[:, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        box, found = _bright_box(x, self.threshold)
        shift = self.g16 * torch.tensor([60.0, 0.0]) + self.g32 * torch.tensor([0.0, 50.0])
        centre = (box[:2] + box[2:]) / 2 + shift  # (A, 2)
        size = (box[2:] - box[:2]).clamp(min=1.0).expand(centre.shape[0], 2)
        xy = centre / self.stride - self.grid
        wh = torch.log(size / self.stride)
        obj = (self.g8 * 0.9 + self.g16 * 0.9 + self.g32 * 0.2) * found
        cls = torch.zeros(centre.shape[0], self.classes)
        person = self.g8 * 0.9 + self.g16 * 0.01 + self.g32 * 0.5
        other = self.g16 * 0.99
        cls = torch.cat([person, other, cls[:, 2:]], dim=1)
        return torch.cat([xy, wh, obj, cls], dim=1)[None]


def _export(module: nn.Module, size: int, path: Path, outputs: list[str]) -> Path:
    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about the constant tensors
        torch.onnx.export(
            module,
            (torch.zeros(1, 3, size, size),),
            str(path),
            input_names=["input"],
            output_names=outputs,
            opset_version=17,
            dynamo=False,
        )
    return path


def rtmdet_end2end(path: Path, size: int = 320, score: float = 0.9) -> Path:
    """An RTMDet-style end2end file: normalised input, so "bright" is > 1.5 (white is 2.6,
    the 114 padding 0.2, black -1.8)."""
    return _export(End2End(1.5, score), size, path, ["dets", "labels"])


def yolox_end2end(path: Path, size: int = 416) -> Path:
    """A YOLOX-style end2end file: raw 0-255 input, bright is > 200 (padding is 114)."""
    return _export(End2End(200.0), size, path, ["dets", "labels"])


def yolox_raw(path: Path, size: int = 416) -> Path:
    """A raw-head YOLOX file (1, A, 85), raw 0-255 input."""
    return _export(RawYolox(size), size, path, ["output"])


def frame_with_box(width: int, height: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """A black BGR frame with a white rectangle at (x, y, w, h)."""
    img = np.zeros((height, width, 3), np.uint8)
    x, y, w, h = box
    img[y : y + h, x : x + w] = 255
    return img
