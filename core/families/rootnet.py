"""3DMPPE RootNet (Moon et al. 2019): the root joint's image position and absolute depth."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from posescope.core.families.base import KeyCondition
from posescope.core.families.descriptor import Architecture, Identification
from posescope.core.families.resnet import (
    ResNetBackbone,
    ResNetFamily,
    deconv_stack,
    resnet_arch,
    resnet_deconv_macs,
)
from posescope.core.families.shapes import conv_macs, shape_of


class RootHead(nn.Module):
    def __init__(self, arch: Architecture):
        super().__init__()
        self.deconv_layers = deconv_stack(arch)
        self.xy_layer = nn.Conv2d(arch.head_layers[-1].out_channels, 1, 1)
        self.depth_layer = nn.Conv2d(2048, 1, 1)


class RootNetwork(nn.Module):
    """3DMPPE RootNet: image, k -> (N, 3): root x, y in heatmap units and depth = gamma * k."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        self.backbone = ResNetBackbone(arch.depths)
        self.root = RootHead(arch)

    def forward(self, x: torch.Tensor, k_value: torch.Tensor) -> torch.Tensor:
        fm = self.backbone(x)
        xy = self.root.xy_layer(self.root.deconv_layers(fm))
        n, _, h, w = xy.shape
        p = F.softmax(xy.float().reshape(n, h * w), dim=1).reshape(n, h, w)
        cx = (p.sum(dim=1) * torch.arange(w, device=x.device, dtype=p.dtype)).sum(-1)
        cy = (p.sum(dim=2) * torch.arange(h, device=x.device, dtype=p.dtype)).sum(-1)
        gamma = self.root.depth_layer(fm.mean(dim=(2, 3), keepdim=True)).reshape(n).float()
        return torch.stack((cx, cy, gamma * k_value.reshape(n).float()), dim=1)


class RootNet(ResNetFamily):
    name = "rootnet"
    short = "RootNet"
    display = "3DMPPE RootNet"
    detect = KeyCondition.has_all("root.xy_layer.weight", "backbone.conv1.weight")
    is_pose = False  # the root joint only: it serves a pose network as its depth source

    def identify(self, shapes: dict[str, tuple[int, ...]]) -> Identification:
        shape_of(shapes, "root.depth_layer.weight")
        arch, evidence = resnet_arch(self.name, shapes, "root.deconv_layers.", 1, 1)
        evidence.append(
            "3DMPPE RootNet: root.xy_layer (root x, y heatmap) and root.depth_layer "
            "(gamma for absolute root depth)"
        )
        return Identification(family=self.name, arch=arch, evidence=evidence, confidence=1.0)

    def count_macs(self, arch: Architecture) -> int:
        macs, hw = resnet_deconv_macs(arch)
        macs += conv_macs(hw, 1, arch.head_layers[-1].out_channels, 1)
        return macs + 2048

    def build(self, arch: Architecture) -> nn.Module:
        return RootNetwork(arch)


FAMILY = RootNet()
