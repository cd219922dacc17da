"""3DMPPE PoseNet (Moon et al. 2019): ResNet backbone, transposed-conv head, 3D heatmaps."""

from __future__ import annotations

import torch
from torch import nn

from posescope.core.families.base import KeyCondition
from posescope.core.families.descriptor import Architecture, Identification
from posescope.core.families.network import PoseNetwork
from posescope.core.families.resnet import (
    ResNetBackbone,
    ResNetFamily,
    deconv_stack,
    resnet_arch,
    resnet_deconv_macs,
)
from posescope.core.families.shapes import conv_macs, factorize_output, shape_of


class PoseNetHead(nn.Module):
    def __init__(self, arch: Architecture):
        super().__init__()
        self.deconv_layers = deconv_stack(arch)
        self.final_layer = nn.Conv2d(
            arch.head_layers[-1].out_channels, arch.joint_num * arch.depth_dim, 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(x))


class PoseNet(ResNetFamily):
    name = "posenet"
    short = "PoseNet"
    display = "3DMPPE PoseNet"
    detect = KeyCondition.has_all("head.final_layer.weight", "backbone.conv1.weight")

    def identify(self, shapes: dict[str, tuple[int, ...]]) -> Identification:
        final = shape_of(shapes, "head.final_layer.weight")
        joints, bins, notes = factorize_output(final[0], prefer_depth=64)
        arch, evidence = resnet_arch(self.name, shapes, "head.deconv_layers.", joints, bins)
        layers = arch.head_layers
        evidence.append(
            f"3DMPPE head: {len(layers)} transposed convs 4x4/2 "
            f"({'-'.join(str(h.out_channels) for h in layers)} channels), each upsampling x2"
        )
        evidence.extend(notes)
        ident = Identification(family=self.name, arch=arch, evidence=evidence, confidence=1.0)
        ident.warnings.extend(n for n in notes if "ambiguous" in n)
        if ident.warnings:
            ident.confidence = 0.8
        return ident

    def count_macs(self, arch: Architecture) -> int:
        macs, hw = resnet_deconv_macs(arch)
        cin = arch.head_layers[-1].out_channels if arch.head_layers else arch.dims[-1]
        return macs + conv_macs(hw, arch.joint_num * arch.depth_dim, cin, 1)

    def build(self, arch: Architecture) -> nn.Module:
        return PoseNetwork(arch, ResNetBackbone(arch.depths), PoseNetHead(arch))


FAMILY = PoseNet()
