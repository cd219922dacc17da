"""BatchNorm folded into the neighbouring convolutions; the input normalisation into the stem.

`fuse(net)` gives the heatmap network (image -> logits) with every foldable BN folded;
`fuse_with_input(net, pixel_scale)` the same taking raw BGR pixels (0..255), with the input
convention folded in. Both work on a copy.
"""

from __future__ import annotations

import copy
from typing import TypeVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from posescope.core.families.convnextpose import (
    ConvNeXtBlock,
    ConvNeXtBN,
    ConvNeXtPoseHead,
    HeadLayer,
)
from posescope.core.families.network import PoseNetwork
from posescope.core.families.posenet import PoseNetHead
from posescope.core.families.resnet import Bottleneck, ResNetBackbone
from posescope.core.variants import IMAGENET_MEAN, IMAGENET_STD

_ConvT = TypeVar("_ConvT", nn.Conv2d, nn.ConvTranspose2d)


def _running_stats(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """The running mean and variance (an eval-mode BN of a loaded checkpoint has them)."""
    return cast(torch.Tensor, bn.running_mean), cast(torch.Tensor, bn.running_var)


def _bias(conv: nn.Conv2d | nn.ConvTranspose2d) -> torch.Tensor:
    """The bias of a conv made with one (the folded forms always have one)."""
    return cast(torch.Tensor, conv.bias)


def _fold_bn_after(conv: _ConvT, bn: nn.BatchNorm2d) -> _ConvT:
    """conv -> bn as one conv (the BN scales and shifts the conv's output channels)."""
    running_mean, running_var = _running_stats(bn)
    scale = bn.weight.detach() / torch.sqrt(running_var + bn.eps)
    shift = bn.bias.detach() - running_mean * scale
    fused = copy.deepcopy(conv)
    w = conv.weight.detach()
    if isinstance(conv, nn.ConvTranspose2d):  # weight (in, out/groups, k, k)
        fused.weight = nn.Parameter(w * scale.reshape(1, -1, 1, 1))
    else:  # weight (out, in/groups, k, k)
        fused.weight = nn.Parameter(w * scale.reshape(-1, 1, 1, 1))
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(shift)
    fused.bias = nn.Parameter(bias * scale + shift)
    return fused


def _fold_bn_before(bn: nn.BatchNorm2d, conv: nn.Conv2d) -> nn.Conv2d:
    """bn -> conv as one conv; exact only when the conv has no padding."""
    assert conv.padding in ((0, 0), 0) and conv.groups == 1
    running_mean, running_var = _running_stats(bn)
    scale = bn.weight.detach() / torch.sqrt(running_var + bn.eps)
    shift = bn.bias.detach() - running_mean * scale
    w = conv.weight.detach()
    fused = copy.deepcopy(conv)
    fused.weight = nn.Parameter(w * scale.reshape(1, -1, 1, 1))
    fused.bias = nn.Parameter(
        _bias(conv).detach() + (w * shift.reshape(1, -1, 1, 1)).sum((1, 2, 3))
    )
    return fused


class _Affine(nn.Module):
    """An eval-mode BN that cannot be folded (zero padding follows it) as scale + shift."""

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        running_mean, running_var = _running_stats(bn)
        scale = bn.weight.detach() / torch.sqrt(running_var + bn.eps)
        self.scale: torch.Tensor
        self.shift: torch.Tensor
        self.register_buffer("scale", scale.reshape(1, -1, 1, 1))
        self.register_buffer(
            "shift", (bn.bias.detach() - running_mean * scale).reshape(1, -1, 1, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, x, self.scale)


class _FusedBlock(nn.Module):
    def __init__(self, block: ConvNeXtBlock):
        super().__init__()
        self.dw = _fold_bn_after(block.dwconv, block.norm)
        self.pw1 = block.pwconv1
        self.pw2 = block.pwconv2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pw2(F.relu(self.pw1(self.dw(x)), inplace=True))


class _FusedHeadLayer(nn.Module):
    def __init__(self, layer: HeadLayer):
        super().__init__()
        self.dw = _fold_bn_after(layer.dwconv, layer.norm)
        self.pw = layer.pwconv
        self.upsample = layer.upsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.pw(self.dw(x)), inplace=True)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
        return x


class _FusedConvNeXtPose(nn.Module):
    def __init__(self, net: PoseNetwork):
        super().__init__()
        bb = cast(ConvNeXtBN, net.backbone)
        head = cast(ConvNeXtPoseHead, net.head)
        # Each downsampling layer is Sequential(conv, BN) (the first) or Sequential(BN, conv).
        first = cast(nn.Sequential, bb.downsample_layers[0])
        downs: list[nn.Module] = [
            _fold_bn_after(cast(nn.Conv2d, first[0]), cast(nn.BatchNorm2d, first[1]))
        ]
        downs += [
            _fold_bn_before(cast(nn.BatchNorm2d, d[0]), cast(nn.Conv2d, d[1]))
            for d in cast("list[nn.Sequential]", list(bb.downsample_layers)[1:])
        ]
        self.downs = nn.ModuleList(downs)
        self.stages = nn.ModuleList(
            nn.Sequential(*[_FusedBlock(b) for b in cast("list[ConvNeXtBlock]", stage)])
            for stage in bb.stages
        )
        # The final backbone BN feeds a zero-padded depthwise conv: kept as an affine.
        self.norm = _Affine(bb.norm)
        self.head = nn.Sequential(
            *[_FusedHeadLayer(h) for h in cast("list[HeadLayer]", head.layers)]
        )
        self.final = head.final_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downs, self.stages, strict=True):
            x = stage(down(x))
        return self.final(self.head(self.norm(x)))


class _FusedBottleneck(nn.Module):
    def __init__(self, b: Bottleneck):
        super().__init__()
        self.c1 = _fold_bn_after(b.conv1, b.bn1)
        self.c2 = _fold_bn_after(b.conv2, b.bn2)
        self.c3 = _fold_bn_after(b.conv3, b.bn3)
        self.down = (
            None
            if b.downsample is None
            else _fold_bn_after(
                cast(nn.Conv2d, b.downsample[0]), cast(nn.BatchNorm2d, b.downsample[1])
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.c1(x), inplace=True)
        out = F.relu(self.c2(out), inplace=True)
        out = self.c3(out)
        return F.relu(out + (x if self.down is None else self.down(x)), inplace=True)


class _FusedResNet(nn.Module):
    def __init__(self, bb: ResNetBackbone):
        super().__init__()
        self.stem = _fold_bn_after(bb.conv1, bb.bn1)
        self.layers = nn.Sequential(
            *[_FusedBottleneck(b) for i in range(1, 5) for b in getattr(bb, f"layer{i}")]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem(x), inplace=True), 3, 2, 1)
        return self.layers(x)


def _fused_deconvs(seq: nn.Sequential) -> nn.Sequential:
    mods = list(seq)  # (deconv, BN, ReLU) * n
    out: list[nn.Module] = []
    for i in range(0, len(mods), 3):
        deconv, bn = cast(nn.ConvTranspose2d, mods[i]), cast(nn.BatchNorm2d, mods[i + 1])
        out += [_fold_bn_after(deconv, bn), nn.ReLU(inplace=True)]
    return nn.Sequential(*out)


class _FusedPoseNet(nn.Module):
    def __init__(self, net: PoseNetwork):
        super().__init__()
        head = cast(PoseNetHead, net.head)
        self.backbone = _FusedResNet(cast(ResNetBackbone, net.backbone))
        self.deconvs = _fused_deconvs(head.deconv_layers)
        self.final = head.final_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.deconvs(self.backbone(x)))


def fuse(net: PoseNetwork) -> nn.Module:
    """The heatmap network (image -> logits) with every foldable BatchNorm folded.

    Works on a copy: the result shares no parameters with `net`, so moving or casting it
    (`.to("cuda", torch.float16)`) leaves `net` as it was.
    """
    net = copy.deepcopy(net)
    with torch.no_grad():
        if isinstance(net.backbone, ConvNeXtBN) and isinstance(net.head, ConvNeXtPoseHead):
            return _FusedConvNeXtPose(net).eval()
        if isinstance(net.backbone, ResNetBackbone) and isinstance(net.head, PoseNetHead):
            return _FusedPoseNet(net).eval()
        return _Unfolded(net).eval()


class _Unfolded(nn.Module):
    """The heatmap network of a family with no folded form here: its modules as they are."""

    def __init__(self, net: PoseNetwork):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.heatmaps(x)


def _normalize_into_stem(conv: nn.Conv2d, pixel_scale: float) -> nn.Conv2d:
    """Fold BGR->RGB, the pixel scale and ImageNet mean/std into an unpadded first conv
    (exact): the result takes raw BGR pixel values (0..255) instead of normalised RGB.

    The network's input is (pixel * pixel_scale - mean) / std: pixel_scale 1 is the published
    convention (0..255 values, core/families/input_convention.py), 1/255 the 0..1 one.
    """
    assert conv.padding in ((0, 0), 0)
    mean = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    w = conv.weight.detach()  # (out, 3 RGB, k, k)
    fused = copy.deepcopy(conv)
    fused.weight = nn.Parameter((w * (pixel_scale / std)).flip(1))  # input channels now B, G, R
    fused.bias = nn.Parameter(_bias(conv).detach() - (w * mean / std).sum((1, 2, 3)))
    return fused


class _NormalizeBGR(nn.Module):
    """BGR 0..255 -> (pixel * pixel_scale - mean) / std in RGB, for first convs with padding
    (ResNet: zero padding must stay zero in the normalised input)."""

    def __init__(self, pixel_scale: float):
        super().__init__()
        mean = torch.tensor(IMAGENET_MEAN[::-1]).reshape(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD[::-1]).reshape(1, 3, 1, 1)
        self.scale: torch.Tensor
        self.shift: torch.Tensor
        self.register_buffer("scale", pixel_scale / std)
        self.register_buffer("shift", -mean / std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, x, self.scale).flip(1)


def fuse_with_input(net: PoseNetwork, pixel_scale: float) -> nn.Module:
    """`fuse(net)` that takes raw BGR pixels (0..255) and applies the input convention
    `pixel_scale` (1: the published 0..255 input; 1/255: 0..1) and the ImageNet mean/std:
    folded into the stem when that is exact."""
    fused = fuse(net)
    with torch.no_grad():
        if isinstance(fused, _FusedConvNeXtPose):
            fused.downs[0] = _normalize_into_stem(fused.downs[0], pixel_scale)  # type: ignore[arg-type]
            return fused
    return nn.Sequential(_NormalizeBGR(pixel_scale), fused).eval()
