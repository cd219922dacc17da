"""Architecture -> torch module; strict loading.

The modules below keep the published state-dict names (so a modern-spelling file loads with
no renaming), except the ConvNeXtPose head, whose three spellings are all mapped onto
`head.layers.{i}.{dwconv,norm,pwconv}`.

`build_model(arch)` gives the plain network (what the published code computes, eager fp32);
its fast forms live in core/inference/.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from posescope.core.identify import Architecture

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
