"""What 3DMPPE PoseNet and RootNet share: a torchvision ResNet backbone (bottleneck blocks)
and a head of 4x4 stride-2 transposed convolutions; how both are read from shapes, built and
counted."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from posescope.core.families.base import Family, IdentificationError, Shapes
from posescope.core.families.descriptor import Architecture, HeadLayer, Identification
from posescope.core.families.input_convention import Stem
from posescope.core.families.shapes import conv_macs, indices
from posescope.core.variants import RESNET_LAYERS

# ----------------------------------------------------------------------------- modules


class Bottleneck(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNetBackbone(nn.Module):
    """torchvision ResNet names (conv1, bn1, layer1..4), no pooling head."""

    layer1: nn.Sequential  # set by name in __init__
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, blocks):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, n in enumerate(blocks):
            planes = 64 * 2**i
            layer = []
            for b in range(n):
                layer.append(Bottleneck(cin, planes, 2 if (b == 0 and i > 0) else 1))
                cin = planes * 4
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def deconv_stack(arch: Architecture) -> nn.Sequential:
    mods: list[nn.Module] = []
    for h in arch.head_layers:
        mods += [
            nn.ConvTranspose2d(h.in_channels, h.out_channels, h.kernel, 2, 1, bias=False),
            nn.BatchNorm2d(h.out_channels),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*mods)


# ----------------------------------------------------------------------------- reading


def read_resnet(s: Shapes) -> tuple[int, tuple[int, ...], list[str]]:
    """(ResNet depth, blocks per layer, evidence) of a torchvision bottleneck ResNet."""
    counts = tuple(len(indices(s, f"backbone.layer{i}.")) for i in range(1, 5))
    if "backbone.layer1.0.conv3.weight" not in s:
        raise IdentificationError(
            "ResNet backbone with basic blocks (ResNet-18/34): 3DMPPE uses bottleneck ResNets",
            looks_like="a ResNet-18/34",
        )
    depth = next((d for d, c in RESNET_LAYERS.items() if c == counts and d >= 50), None)
    evidence = [
        f"torchvision ResNet backbone with bottlenecks, blocks {'-'.join(map(str, counts))}"
    ]
    if depth is None:
        depth = 2 + 3 * sum(counts)
        evidence.append(f"block counts match no standard ResNet; read as ResNet-{depth}")
    else:
        evidence.append(f"block counts {'-'.join(map(str, counts))} are ResNet-{depth}")
    return depth, counts, evidence


def read_deconv_layers(s: Shapes, prefix: str) -> list[HeadLayer]:
    """The transposed convolutions under `prefix` (BatchNorms skipped by their statistics)."""
    layers = []
    for i in indices(s, prefix):
        key = f"{prefix}{i}.weight"
        shape = tuple(s.get(key, ()))
        if len(shape) == 4 and f"{prefix}{i}.running_mean" not in s:
            # ConvTranspose2d weight: (in, out, k, k)
            layers.append(HeadLayer(shape[0], shape[1], shape[-1], True))
    return layers


def resnet_arch(
    family: str, s: Shapes, head_prefix: str, joints: int, bins: int
) -> tuple[Architecture, list[str]]:
    """A 3DMPPE network: torchvision ResNet backbone + transposed-conv head."""
    depth, counts, evidence = read_resnet(s)
    arch = Architecture(
        family=family,
        backbone_type="resnet",
        depths=counts,
        dims=(256, 512, 1024, 2048),
        head_style="deconv",
        head_layers=tuple(read_deconv_layers(s, head_prefix)),
        joint_num=joints,
        depth_dim=bins,
        resnet_depth=depth,
    )
    return arch, evidence


class ResNetFamily(Family):
    """What the 3DMPPE families share as families: their names and backbone line."""

    short: str  # "PoseNet" | "RootNet"
    stem = Stem("backbone.conv1", "backbone.bn1", "the first BatchNorm")

    def backbone_summary(self, arch: Architecture) -> str:
        return f"ResNet-{arch.resnet_depth}, blocks {'-'.join(map(str, arch.depths))}"

    def title(self, ident: Identification) -> str:
        """'3DMPPE PoseNet (ResNet-50)'; without an architecture, no pose checkpoint."""
        if ident.arch is None:
            return "not a pose checkpoint"
        return f"3DMPPE {self.short} (ResNet-{ident.arch.resnet_depth})"


# ----------------------------------------------------------------------------- counting


def resnet_deconv_macs(arch: Architecture) -> tuple[int, tuple[int, int]]:
    """MACs of the backbone and the transposed-conv head, and the head's output (h, w)."""
    h, w = arch.input_size
    macs = 0
    hw = (h // 2, w // 2)
    macs += conv_macs(hw, 64, 3, 7)
    hw = (hw[0] // 2, hw[1] // 2)
    cin = 64
    for i, blocks in enumerate(arch.depths):
        planes = 64 * 2**i
        for b in range(blocks):
            out = (hw[0] // 2, hw[1] // 2) if (b == 0 and i > 0) else hw
            macs += conv_macs(hw, planes, cin, 1)
            macs += conv_macs(out, planes, planes, 3)
            macs += conv_macs(out, planes * 4, planes, 1)
            if b == 0:
                macs += conv_macs(out, planes * 4, cin, 1)
            cin = planes * 4
            hw = out
    hw = (h // arch.stride, w // arch.stride)
    for layer in arch.head_layers:
        # ConvTranspose k4 s2: every input pixel scatters cout x k x k values.
        macs += hw[0] * hw[1] * layer.in_channels * layer.out_channels * 16
        hw = (hw[0] * 2, hw[1] * 2)
    return macs, hw
