"""Architecture -> torch module; strict loading; the fast inference form.

The modules below keep the published state-dict names (so a modern-spelling file loads with
no renaming), except the ConvNeXtPose head, whose three spellings are all mapped onto
`head.layers.{i}.{dwconv,norm,pwconv}`.

`build_model(arch)` gives the plain network (what the published code computes, eager fp32).
`InferenceModel` wraps a loaded network in its fast form: BatchNorm folded into the
neighbouring convolutions, channels-last memory, inference mode, optional fp16 on GPU.
"""

from __future__ import annotations

import copy
import logging
import re
import warnings
from collections.abc import Mapping
from typing import TypeVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from posescope.core.identify import Architecture
from posescope.core.variants import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- ConvNeXt-BN


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, kernel: int = 7, mlp_ratio: int = 4):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.BatchNorm2d(dim)
        self.pwconv1 = nn.Conv2d(dim, mlp_ratio * dim, 1)
        self.pwconv2 = nn.Conv2d(mlp_ratio * dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pwconv2(F.relu(self.pwconv1(self.norm(self.dwconv(x)))))


class ConvNeXtBN(nn.Module):
    """ConvNeXt with BatchNorm and no layer scale, names as published."""

    def __init__(self, depths, dims, kernel: int = 7, mlp_ratio: int = 4):
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3, dims[0], 4, stride=4), nn.BatchNorm2d(dims[0]))]
        )
        for i in range(1, len(dims)):
            self.downsample_layers.append(
                nn.Sequential(nn.BatchNorm2d(dims[i - 1]), nn.Conv2d(dims[i - 1], dims[i], 2, 2))
            )
        self.stages = nn.ModuleList(
            nn.Sequential(*[ConvNeXtBlock(d, kernel, mlp_ratio) for _ in range(n)])
            for n, d in zip(depths, dims, strict=True)
        )
        self.norm = nn.BatchNorm2d(dims[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downsample_layers, self.stages, strict=True):
            x = stage(down(x))
        return self.norm(x)


class HeadLayer(nn.Module):
    """Depthwise kxk -> BN -> 1x1 -> ReLU -> optional bilinear x2 (align_corners=True)."""

    def __init__(self, cin: int, cout: int, kernel: int, upsample: bool):
        super().__init__()
        self.dwconv = nn.Conv2d(cin, cin, kernel, padding=kernel // 2, groups=cin)
        self.norm = nn.BatchNorm2d(cin)
        self.pwconv = nn.Conv2d(cin, cout, 1)
        self.upsample = upsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.pwconv(self.norm(self.dwconv(x))))
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
        return x


class ConvNeXtPoseHead(nn.Module):
    def __init__(self, arch: Architecture):
        super().__init__()
        self.layers = nn.ModuleList(
            HeadLayer(h.in_channels, h.out_channels, h.kernel, h.upsample) for h in arch.head_layers
        )
        cin = arch.head_layers[-1].out_channels if arch.head_layers else arch.dims[-1]
        self.final_layer = nn.Conv2d(cin, arch.joint_num * arch.depth_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.final_layer(x)


# ----------------------------------------------------------------------------- 3DMPPE


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


def _deconv_stack(arch: Architecture) -> nn.Sequential:
    mods: list[nn.Module] = []
    for h in arch.head_layers:
        mods += [
            nn.ConvTranspose2d(h.in_channels, h.out_channels, h.kernel, 2, 1, bias=False),
            nn.BatchNorm2d(h.out_channels),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*mods)


class PoseNetHead(nn.Module):
    def __init__(self, arch: Architecture):
        super().__init__()
        self.deconv_layers = _deconv_stack(arch)
        self.final_layer = nn.Conv2d(
            arch.head_layers[-1].out_channels, arch.joint_num * arch.depth_dim, 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(x))


class RootHead(nn.Module):
    def __init__(self, arch: Architecture):
        super().__init__()
        self.deconv_layers = _deconv_stack(arch)
        self.xy_layer = nn.Conv2d(arch.head_layers[-1].out_channels, 1, 1)
        self.depth_layer = nn.Conv2d(2048, 1, 1)


# ----------------------------------------------------------------------------- networks


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

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        self.backbone: ConvNeXtBN | ResNetBackbone
        self.head: ConvNeXtPoseHead | PoseNetHead
        if arch.backbone_type == "convnext-bn":
            self.backbone = ConvNeXtBN(arch.depths, arch.dims, arch.block_kernel, arch.mlp_ratio)
            self.head = ConvNeXtPoseHead(arch)
        else:
            self.backbone = ResNetBackbone(arch.depths)
            self.head = PoseNetHead(arch)

    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return soft_argmax_published(self.heatmaps(x), self.arch.joint_num, self.arch.depth_dim)


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


def build_model(arch: Architecture) -> nn.Module:
    """The plain network for an architecture (random weights, eval mode)."""
    if arch.family == "rootnet":
        return RootNetwork(arch).eval()
    return PoseNetwork(arch).eval()


# ----------------------------------------------------------------------------- loading


class ModelLoadError(Exception):
    """The tensors do not fit the network: names the tensor and both shapes."""


_LEGACY = {"0": "dwconv", "1": "norm", "2": "pwconv"}


def canonical_key(key: str) -> str:
    """Map the three ConvNeXtPose head spellings onto `head.layers.{i}.{part}`."""
    m = re.match(r"head\.deconv_layers_(\d+)\.(\w+)\.(.+)$", key)
    if m:
        idx, part, rest = int(m.group(1)) - 1, m.group(2), m.group(3)
        return f"head.layers.{idx}.{_LEGACY.get(part, part)}.{rest}"
    m = re.match(r"head\.deconv_layers\.(\d+)\.(dwconv|norm|pwconv)\.(.+)$", key)
    if m:
        return f"head.layers.{m.group(1)}.{m.group(2)}.{m.group(3)}"
    return key


def load_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Strict load: every tensor used, none missing, shapes equal; legacy names remapped.

    `num_batches_tracked` may be absent (older torch); it carries no information at inference.
    """
    arch: Architecture = model.arch  # type: ignore[assignment]
    remap = arch.family == "convnextpose"
    sd = {(canonical_key(k) if remap else k): v for k, v in state_dict.items()}
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in expected]
    mismatched = [
        f"{k}: file has {tuple(sd[k].shape)}, network expects {tuple(v.shape)}"
        for k, v in expected.items()
        if k in sd and tuple(sd[k].shape) != tuple(v.shape)
    ]
    problems = []
    if mismatched:
        problems.append("size mismatch for " + "; ".join(mismatched[:8]))
    if missing:
        problems.append(f"{len(missing)} tensors missing, e.g. " + ", ".join(missing[:5]))
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors, e.g. " + ", ".join(unexpected[:5]))
    if problems:
        raise ModelLoadError("; ".join(problems))
    for k, v in expected.items():
        if k not in sd:
            sd[k] = v
    model.load_state_dict(sd, strict=True)


# ----------------------------------------------------------------------------- fast form


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
        self.backbone = _FusedResNet(net.backbone)  # type: ignore[arg-type]
        self.deconvs = _fused_deconvs(net.head.deconv_layers)  # type: ignore[arg-type]
        self.final = net.head.final_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.deconvs(self.backbone(x)))


def fuse(net: PoseNetwork) -> nn.Module:
    """The heatmap network (image -> logits) with every foldable BatchNorm folded.

    Works on a copy: the result shares no parameters with `net`, so moving or casting it
    (`.to("cuda", torch.float16)`) leaves `net` as it was.
    """
    net = copy.deepcopy(net)
    with torch.no_grad():
        if net.arch.backbone_type == "convnext-bn":
            return _FusedConvNeXtPose(net).eval()
        return _FusedPoseNet(net).eval()


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then CPU; an unavailable device is an error."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for, but torch sees no CUDA device")
    if dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise RuntimeError("Apple MPS was asked for, but it is not available")
    return dev


def _normalize_into_stem(conv: nn.Conv2d) -> nn.Conv2d:
    """Fold BGR->RGB, /255 and ImageNet mean/std into an unpadded first conv (exact).

    The result takes raw BGR pixel values (0..255) instead of normalised RGB.
    """
    assert conv.padding in ((0, 0), 0)
    mean = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    w = conv.weight.detach()  # (out, 3 RGB, k, k)
    fused = copy.deepcopy(conv)
    fused.weight = nn.Parameter((w / (255.0 * std)).flip(1))  # input channels now B, G, R
    fused.bias = nn.Parameter(_bias(conv).detach() - (w * mean / std).sum((1, 2, 3)))
    return fused


class _NormalizeBGR(nn.Module):
    """BGR 0..255 -> normalised RGB, for first convs with padding (ResNet)."""

    def __init__(self):
        super().__init__()
        mean = torch.tensor(IMAGENET_MEAN[::-1]).reshape(1, 3, 1, 1) * 255.0
        std = torch.tensor(IMAGENET_STD[::-1]).reshape(1, 3, 1, 1) * 255.0
        self.mean: torch.Tensor
        self.inv_std: torch.Tensor
        self.register_buffer("mean", mean)
        self.register_buffer("inv_std", 1.0 / std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) * self.inv_std).flip(1)


def fuse_with_input(net: PoseNetwork) -> nn.Module:
    """`fuse(net)` that takes raw BGR pixels: normalisation folded into the stem when exact."""
    fused = fuse(net)
    with torch.no_grad():
        if isinstance(fused, _FusedConvNeXtPose):
            fused.downs[0] = _normalize_into_stem(fused.downs[0])  # type: ignore[arg-type]
            return fused
    return nn.Sequential(_NormalizeBGR(), fused).eval()


def _optimize_cpu(folded: nn.Module, arch: Architecture) -> nn.Module:
    h, w = arch.input_size
    example = torch.zeros(1, h, w, 3).permute(0, 3, 1, 2)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.optimize_for_inference(torch.jit.trace(folded.eval(), example))
    except Exception:  # an op the tracer or oneDNN cannot take: the eager folded form runs
        return folded


_HEAP_KEPT: bool | None = None


def keep_freed_memory() -> bool:
    """Keep freed heap memory in the process instead of handing it back to the OS (glibc).

    By default glibc serves large blocks (the activations here are 0.2-13 MB) with fresh
    mmaps and trims the heap top on free, so each pass page-faults its activations back in:
    ~2,300 minor faults per XS pass (plain network and engine together), none with this.
    Measured on the benchmark machine: plain eager XS 18.4 -> 15.2 ms, engine 11.5 ->
    10.6 ms. The torch CPU tuning guide's advice is a caching allocator (jemalloc,
    tcmalloc); this gets the effect from the C library already loaded. Process-wide (the
    benchmark's eager baseline runs under it too); a no-op where the C library is not glibc.
    Returns whether it took effect.
    """
    global _HEAP_KEPT
    if _HEAP_KEPT is None:
        _HEAP_KEPT = False
        try:
            import ctypes

            libc = ctypes.CDLL(None)
            mallopt = libc.mallopt
            m_trim_threshold, m_mmap_threshold = -1, -3
            _HEAP_KEPT = bool(
                mallopt(m_mmap_threshold, 1 << 30) and mallopt(m_trim_threshold, 1 << 30)
            )
        except (OSError, AttributeError, TypeError):  # not glibc (macOS, Windows, musl)
            pass
    return _HEAP_KEPT


_ONEDNN_AVAILABLE = torch.backends.mkldnn.is_available()


def _conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, p: int, s: int, g: int, attr: str):
    return torch.ops.mkldnn._convolution_pointwise(x, w, b, [p, p], [s, s], [1, 1], g, attr, [], "")


def _onednn_program(
    x: torch.Tensor,
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    pads: list[int],
    strides: list[int],
    groups: list[int],
    depths: list[int],
    upsample: list[bool],
    norm_scale: torch.Tensor,
    norm_shift: torch.Tensor,
    final_weight: torch.Tensor,
) -> torch.Tensor:
    """The folded ConvNeXtPose as a flat list of packed convolutions (see _OneDNNConvNeXtPose).

    Order: stem; per stage its downsampling conv (not for the first) then (dw, pw1, pw2) per
    block; per head layer (dw, pw). TorchScript-compiled: a oneDNN op called from Python
    costs ~25 us of argument handling, from TorchScript ~3 us (measured, ~60 calls a pass).
    """
    i = 0
    x = _conv(x, weights[0], biases[0], pads[0], strides[0], groups[0], "none")
    i += 1
    for stage, depth in enumerate(depths):
        if stage > 0:
            x = _conv(x, weights[i], biases[i], pads[i], strides[i], groups[i], "none")
            i += 1
        for _ in range(depth):
            y = _conv(x, weights[i], biases[i], pads[i], 1, groups[i], "none")
            y = _conv(y, weights[i + 1], biases[i + 1], 0, 1, 1, "relu")
            # residual add fused into pw2, written into x in place
            x = torch.ops.mkldnn._convolution_pointwise_(
                x, y, weights[i + 2], biases[i + 2], [0, 0], [1, 1], [1, 1], 1,
                "add", 1.0, None, [], None,
            )  # fmt: skip
            i += 3
    x = torch.addcmul(norm_shift, x, norm_scale)
    for up in upsample:
        x = _conv(x, weights[i], biases[i], pads[i], 1, groups[i], "none")
        x = _conv(x, weights[i + 1], biases[i + 1], 0, 1, 1, "relu")
        i += 2
        if up:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
    n, c, h, w = x.shape
    features = x.permute(0, 2, 3, 1).reshape(n, h * w, c)  # channels-last: a view
    if n == 1:
        # heatmaps as a "linear" layer whose weight is the features: (J*D, H*W) rows, i.e.
        # NCHW straight from the GEMM, with the bias riding in the ones channel
        out = torch.ops.mkldnn._linear_pointwise(final_weight, features[0], None, "none", [], "")
    else:
        out = torch.bmm(final_weight.expand(n, -1, -1), features.transpose(1, 2))
    return out.view(n, -1, h, w)


_SCRIPTED: dict[str, object] = {}


def _scripted_program():
    if "program" not in _SCRIPTED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript, torch >= 2.10
            _SCRIPTED["program"] = torch.jit.script(_onednn_program)
    return _SCRIPTED["program"]


class _OneDNNConvNeXtPose(nn.Module):
    """The folded ConvNeXtPose (`fuse_with_input`) as direct oneDNN calls (CPU only).

    What it saves over the TorchScript-traced form (`_optimize_cpu`):
    - weights reordered once into oneDNN's blocked layouts for this input size;
    - ReLU and the residual add fused into the convolutions as oneDNN post-ops (the add
      writes into the residual tensor in place), instead of separate passes over memory;
    - activations stay dense channels-last: no to_mkldnn / to_dense around the upsamplings;
    - the heatmap layer is one GEMM whose output is already (N, J*D, H*W) row-major, so the
      soft-argmax reads it with no layout copy; its bias rides in the GEMM (see
      `_with_ones_channel`).
    Needs a head (at least one head layer); `_onednn_form` checks it against the folded form.
    """

    def __init__(self, folded: _FusedConvNeXtPose, input_size: tuple[int, int]):
        super().__init__()
        layers = cast("list[_FusedHeadLayer]", list(folded.head))
        if not layers:
            raise ValueError("the oneDNN form needs at least one head layer")
        downs = cast("list[nn.Conv2d]", list(folded.downs))
        stages = cast("list[nn.Sequential]", list(folded.stages))
        convs: list[tuple[nn.Conv2d, int, int, int]] = []  # conv, its input's (c, h, w)
        h, w = input_size
        convs.append((downs[0], 3, h, w))
        h, w = h // 4, w // 4
        for i, stage in enumerate(stages):
            if i:
                convs.append((downs[i], downs[i].in_channels, h, w))
                h, w = h // 2, w // 2
            for b in cast("list[_FusedBlock]", stage):
                c = b.dw.in_channels
                convs += [(b.dw, c, h, w), (b.pw1, c, h, w), (b.pw2, b.pw2.in_channels, h, w)]
        final = cast(nn.Conv2d, folded.final)
        weight = final.weight.detach().reshape(final.out_channels, -1)
        for i, layer in enumerate(layers):
            c, pw = layer.dw.in_channels, layer.pw
            if i == len(layers) - 1:
                pw, weight = _with_ones_channel(pw, weight, _bias(final).detach())
            convs += [(layer.dw, c, h, w), (pw, c, h, w)]
            if layer.upsample:
                h, w = h * 2, w * 2
        self.weights = [
            torch.ops.mkldnn._reorder_convolution_weight(
                conv.weight.detach().contiguous(),
                list(conv.padding), list(conv.stride), [1, 1], conv.groups, [1, c, h_, w_],
            )
            for conv, c, h_, w_ in convs
        ]  # fmt: skip
        self.biases = [_bias(conv).detach().contiguous() for conv, *_ in convs]
        self.pads = [int(conv.padding[0]) for conv, *_ in convs]
        self.strides = [int(conv.stride[0]) for conv, *_ in convs]
        self.groups = [int(conv.groups) for conv, *_ in convs]
        self.depths = [len(stage) for stage in stages]
        self.upsample = [bool(layer.upsample) for layer in layers]
        self.norm_scale = folded.norm.scale
        self.norm_shift = folded.norm.shift
        self.final_weight = weight.contiguous()
        self._program = _scripted_program()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._program(
            x.contiguous(memory_format=torch.channels_last),
            self.weights, self.biases, self.pads, self.strides, self.groups,
            self.depths, self.upsample, self.norm_scale, self.norm_shift, self.final_weight,
        )  # fmt: skip


def _with_ones_channel(
    pw: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor
) -> tuple[nn.Conv2d, torch.Tensor]:
    """Move the heatmap layer's bias into its GEMM.

    Returns `pw` (the last head conv) with extra output channels [1, 0, ...], padded to a
    multiple of 8 (zero weights, biases 1 then 0: ReLU and bilinear upsampling keep them),
    and the heatmap `weight` (out, pw.out_channels) with the matching columns [bias, 0, ...].
    """
    extra = 8 - pw.out_channels % 8
    grown = nn.Conv2d(pw.in_channels, pw.out_channels + extra, 1)
    zeros = pw.weight.new_zeros(extra, pw.in_channels, 1, 1)
    grown.weight.data = torch.cat([pw.weight.detach(), zeros])
    ones = _bias(pw).new_zeros(extra)
    ones[0] = 1.0
    _bias(grown).data = torch.cat([_bias(pw).detach(), ones])
    columns = weight.new_zeros(weight.shape[0], extra)
    columns[:, 0] = bias
    return grown, torch.cat([weight, columns], dim=1)


def _onednn_form(folded: nn.Module, arch: Architecture) -> nn.Module | None:
    """The oneDNN form of a folded ConvNeXtPose, checked against it; None where unavailable."""
    if not _ONEDNN_AVAILABLE or not isinstance(folded, _FusedConvNeXtPose):
        return None
    try:
        with torch.no_grad():
            fast = _OneDNNConvNeXtPose(folded, arch.input_size)
            h, w = arch.input_size
            probe = torch.randint(0, 256, (1, h, w, 3), generator=torch.Generator().manual_seed(0))
            probe = probe.float().permute(0, 3, 1, 2)
            want, got = folded(probe), fast(probe)
        scale = float(want.abs().max()) or 1.0
        if got.shape != want.shape or float((got - want).abs().max()) > 1e-4 * scale:
            return None
    except Exception:  # an op this build of torch/oneDNN lacks: the next form runs
        return None
    return fast


def bgr_to_input(crops: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 BGR crops -> (N, 3, H, W) float normalised RGB (the published input)."""
    t = torch.as_tensor(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().flip(1) / 255.0
    mean = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    return (t - mean) / std


# Where fp16=True takes effect (CPU half convolutions are slower than fp32 ones).
_HALF_DEVICES: tuple[str, ...] = ("cuda", "mps")


class InferenceModel:
    """A loaded pose network in its fast form.

    Takes the crops as they come out of cv2.warpAffine, (N, H, W, 3) uint8 BGR: a permute of
    that is already channels-last NCHW, and the normalisation lives in the first conv, so no
    pre-processing pass over the pixels is needed. Returns (N, J, 3) heatmap coordinates.

    On CPU, a ConvNeXtPose runs as `_OneDNNConvNeXtPose`: oneDNN convolutions with weights
    packed once, ReLU and residual adds fused into them, channels-last throughout, and the
    heatmap layer as one GEMM whose output the soft-argmax reads in place; TorchScript-compiled
    to cut per-call overhead. It is checked against the folded network when built. Where it
    cannot run (no oneDNN, a network without head layers, the check fails) and for 3DMPPE
    PoseNet, the folded network is traced and handed to `torch.jit.optimize_for_inference`;
    should tracing fail, the eager folded form runs. `form` names the one in use. fp16
    applies on GPU devices only (CPU half convolutions are slower).

    `backend="onnxruntime"` runs the network through onnxruntime instead (core/onnx_form.py);
    "auto" takes the backend measured faster on the device (`onnx_form.choose_backend`: on a
    CPU onnxruntime, unless `compile`), and the torch engine should that one fail to build
    (`backend_note` says why).

    `compile=True` hands the folded network to `torch.compile` (inductor, with freezing on
    CPU) instead; it compiles for ~20 s on first use, needs a C++ compiler on CPU and is no
    faster than the oneDNN form on the CPU benchmark (benchmarks/RESULTS.md). If compiling
    fails, the default form runs and `compile_error` says why.
    """

    def __init__(
        self,
        net: PoseNetwork,
        device: str = "auto",
        fp16: bool = False,
        optimize: bool = True,
        compile: bool = False,
        backend: str = "auto",
    ):
        self.arch = net.arch
        self.device = resolve_device(device)
        self.fp16 = bool(fp16) and self.device.type in _HALF_DEVICES
        self.dtype = torch.float16 if self.fp16 else torch.float32
        # Module.to takes memory_format at run time; torch's stubs leave it out of the overloads.
        folded = fuse_with_input(net).to(  # type: ignore[call-overload]
            self.device, self.dtype, memory_format=torch.channels_last
        )
        self.net: nn.Module = folded
        self.optimized = False
        self.compiled = False
        self.compile_error: str | None = None
        if self.device.type == "cpu":
            keep_freed_memory()
        # the onnxruntime form (core/onnx_form.py) or this module's torch forms
        from posescope.core import onnx_form

        self.backend = onnx_form.choose_backend(self.device, backend, compile)
        self.backend_note: str | None = None  # why "auto" did not get its first choice
        self._ort: onnx_form.OnnxRuntimeForm | None = None
        if self.backend == "onnxruntime":
            try:
                self._ort = onnx_form.OnnxRuntimeForm(net, self.device, self.fp16)
            except Exception as exc:  # asked for by name: the caller says why; auto: torch
                if backend != "auto":
                    raise
                self.backend = "torch"
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                self.backend_note = (
                    f"the onnxruntime form could not be built ({type(exc).__name__}: {first});"
                    " the torch engine runs"
                )
                log.warning("%s", self.backend_note)
            else:
                self.form = self._ort.name
                return
        if compile:
            self.compile_error = self._try_compile(folded)
            if self.compiled:
                self.form = "compiled"
                return
        if optimize and self.device.type == "cpu" and not self.fp16:
            fast = _onednn_form(folded, self.arch)
            self.net = fast if fast is not None else _optimize_cpu(folded, self.arch)
            self.optimized = self.net is not folded
        self.form = (
            "onednn"
            if isinstance(self.net, _OneDNNConvNeXtPose)
            else ("torchscript" if self.optimized else "folded")
        )

    def _try_compile(self, folded: nn.Module) -> str | None:
        """Compile now (first call), so that failures surface here and not mid-video."""
        if self.device.type == "cpu":
            # Freezing (constant weights: prepacked, folded into the graph). Set globally: as a
            # per-call `options` entry it was measured not to take effect (10% slower).
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True
        joints, bins = self.arch.joint_num, self.arch.depth_dim

        def forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            # one graph from the uint8 view to the coordinates: the dtype conversion and the
            # soft-argmax reductions fuse with the network's last ops
            return soft_argmax_peak(folded(x.to(self.dtype)), joints, bins)

        try:
            self._compiled_forward = torch.compile(forward)
            self.compiled = True
            self.warmup(batch=1, iters=1)
        except Exception as exc:  # no compiler, unsupported backend: the default form runs
            self.net, self.compiled = folded, False
            return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return None

    def _prepare(self, crops: torch.Tensor | np.ndarray, convert: bool = True) -> torch.Tensor:
        t = torch.as_tensor(crops)
        if self.device.type != "cpu":
            t = t.pin_memory() if torch.cuda.is_available() else t
            t = t.to(self.device, non_blocking=True)
        t = t.permute(0, 3, 1, 2)  # channels-last view of the crops, no copy
        return t.to(self.dtype) if convert else t

    @torch.inference_mode()
    def heatmaps(self, crops: torch.Tensor | np.ndarray) -> torch.Tensor:
        return self.net(self._prepare(crops))

    @torch.inference_mode()
    def __call__(self, crops: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(N, H, W, 3) uint8 BGR -> (N, J, 3) float32 on the model's device."""
        return self.coords_and_peaks(crops)[0]

    @torch.inference_mode()
    def coords_and_peaks(
        self, crops: torch.Tensor | np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, J, 3) coordinates and (N, J) heatmap peak probabilities (see soft_argmax_peak)."""
        if self._ort is not None:
            coords, peaks = self._ort(torch.as_tensor(crops).cpu())
            return torch.from_numpy(coords).to(self.device), torch.from_numpy(peaks).to(self.device)
        if self.compiled:
            return self._compiled_forward(self._prepare(crops, convert=False))
        return soft_argmax_peak(self.heatmaps(crops), self.arch.joint_num, self.arch.depth_dim)

    def warmup(self, batch: int = 1, iters: int = 2) -> None:
        h, w = self.arch.input_size
        x = np.zeros((batch, h, w, 3), np.uint8)
        for _ in range(iters):
            self(x)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
