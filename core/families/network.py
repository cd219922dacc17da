"""The heatmap pose network every pose family builds: backbone + head + soft-argmax.

A family gives the backbone and the head (their state-dict names are the family's canonical
ones); the integral regression that turns heatmaps into coordinates is common to all.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from posescope.core.families.descriptor import Architecture


def soft_argmax_peak(
    heatmaps: torch.Tensor, joint_num: int, depth_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, J*D, H, W) logits -> (N, J, 3) expected (x, y, z) in heatmap units, and (N, J)
    peak: the probability of each joint's most likely heatmap pixel (depth summed out).

    Integral regression as published; x and y come from the 2D marginal, so the volume is
    summed twice (2D marginal, depth marginal) instead of three times.
    """
    n, _, h, w = heatmaps.shape
    p = F.softmax(heatmaps.float().reshape(n, joint_num, depth_dim * h * w), dim=2)
    p = p.reshape(n, joint_num, depth_dim, h, w)
    dev = heatmaps.device
    p2d = p.sum(dim=2)  # (N, J, H, W)
    x = (p2d.sum(dim=2) * torch.arange(w, device=dev, dtype=p.dtype)).sum(-1)
    y = (p2d.sum(dim=3) * torch.arange(h, device=dev, dtype=p.dtype)).sum(-1)
    z = (p.sum(dim=(3, 4)) * torch.arange(depth_dim, device=dev, dtype=p.dtype)).sum(-1)
    return torch.stack((x, y, z), dim=2), p2d.amax(dim=(2, 3))


def soft_argmax(heatmaps: torch.Tensor, joint_num: int, depth_dim: int) -> torch.Tensor:
    """(N, J*D, H, W) logits -> (N, J, 3) expected (x, y, z) in heatmap units (fp32)."""
    return soft_argmax_peak(heatmaps, joint_num, depth_dim)[0]


def soft_argmax_published(heatmaps: torch.Tensor, joint_num: int, depth_dim: int) -> torch.Tensor:
    """`soft_argmax` written as the published code writes it: each of the three marginals
    summed from the whole volume. Same values; what the plain network (the baseline) runs."""
    n, _, h, w = heatmaps.shape
    p = F.softmax(heatmaps.float().reshape(n, joint_num, depth_dim * h * w), dim=2)
    p = p.reshape(n, joint_num, depth_dim, h, w)
    dev = heatmaps.device
    x = (p.sum(dim=(2, 3)) * torch.arange(w, device=dev, dtype=p.dtype)).sum(-1)
    y = (p.sum(dim=(2, 4)) * torch.arange(h, device=dev, dtype=p.dtype)).sum(-1)
    z = (p.sum(dim=(3, 4)) * torch.arange(depth_dim, device=dev, dtype=p.dtype)).sum(-1)
    return torch.stack((x, y, z), dim=2)


class PoseNetwork(nn.Module):
    """Backbone + head + soft-argmax: image (N, 3, H, W) -> (N, J, 3) heatmap coordinates."""

    def __init__(self, arch: Architecture, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.arch = arch
        self.backbone = backbone
        self.head = head

    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return soft_argmax_published(self.heatmaps(x), self.arch.joint_num, self.arch.depth_dim)
