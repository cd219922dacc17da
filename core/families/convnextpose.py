"""ConvNeXtPose (Seo et al. 2023): a ConvNeXt backbone with BatchNorm, a head of depthwise +
pointwise layers, 3D heatmaps. Everything known about the family: the modules, how files are
read (three head spellings), which published variant a file is, MACs, key canonicalisation.

The modules keep the published state-dict names (so a modern-spelling file loads with no
renaming), except the head, whose three spellings are all mapped onto
`head.layers.{i}.{dwconv,norm,pwconv}` (`canonical_key`).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from posescope.core.families.base import Family, IdentificationError, KeyCondition, Shapes
from posescope.core.families.descriptor import Architecture, Identification
from posescope.core.families.descriptor import HeadLayer as LayerSpec
from posescope.core.families.input_convention import Stem
from posescope.core.families.network import PoseNetwork
from posescope.core.families.shapes import conv_macs, factorize_output, indices, shape_of
from posescope.core.variants import VARIANTS

# ----------------------------------------------------------------------------- modules


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


# ----------------------------------------------------------------------------- reading


def _convnext_backbone(s: Shapes) -> tuple[tuple[int, ...], tuple[int, ...], int, int, list[str]]:
    notes = []
    stem = shape_of(s, "backbone.downsample_layers.0.0.weight")
    if len(stem) != 4 or stem[1] != 3:
        raise IdentificationError(f"stem conv has shape {stem}, expected (C, 3, 4, 4)")
    dims = [stem[0]]
    for i in indices(s, "backbone.downsample_layers.")[1:]:
        dims.append(shape_of(s, f"backbone.downsample_layers.{i}.1.weight")[0])
    stages = indices(s, "backbone.stages.")
    depths = [len(indices(s, f"backbone.stages.{st}.")) for st in stages]
    if len(depths) != len(dims):
        raise IdentificationError(
            f"backbone has {len(dims)} downsampling layers but {len(depths)} stages"
        )
    first = shape_of(s, "backbone.stages.0.0.dwconv.weight")
    kernel = first[-1]
    hidden = shape_of(s, "backbone.stages.0.0.pwconv1.weight")[0]
    ratio = hidden // dims[0]
    for st, dim in zip(stages, dims, strict=True):
        for b in indices(s, f"backbone.stages.{st}."):
            dw = shape_of(s, f"backbone.stages.{st}.{b}.dwconv.weight")
            if dw[0] != dim:
                raise IdentificationError(
                    f"block stages.{st}.{b} has width {dw[0]}, but its stage is {dim} wide"
                )
    notes.append(
        f"ConvNeXt-BN backbone: stem conv 4x4/4, {len(depths)} stages, "
        f"depths {'-'.join(map(str, depths))}, widths {'-'.join(map(str, dims))}"
    )
    if kernel != 7 or ratio != 4:
        notes.append(f"blocks use a {kernel}x{kernel} depthwise conv and MLP ratio {ratio}")
    return tuple(depths), tuple(dims), kernel, ratio, notes


def _convnext_head(s: Shapes) -> tuple[str, list[tuple[int, int, int]]]:
    """Head spelling and each layer's (in, out, kernel)."""
    modern = indices(s, "head.deconv_layers_")  # deconv_layers_1.…
    listed = indices(s, "head.deconv_layers.")
    layers: list[tuple[int, int, int]] = []
    if modern:
        probe = f"head.deconv_layers_{modern[0]}."
        style = "modern" if f"{probe}dwconv.weight" in s else "legacy"
        names = ("dwconv", "pwconv") if style == "modern" else ("0", "2")
        for i in modern:
            dw = shape_of(s, f"head.deconv_layers_{i}.{names[0]}.weight")
            pw = shape_of(s, f"head.deconv_layers_{i}.{names[1]}.weight")
            layers.append((dw[0], pw[0], dw[-1]))
        return style, layers
    if listed:
        for i in listed:
            dw = shape_of(s, f"head.deconv_layers.{i}.dwconv.weight")
            pw = shape_of(s, f"head.deconv_layers.{i}.pwconv.weight")
            layers.append((dw[0], pw[0], dw[-1]))
        return "list", layers
    return "none", layers


def default_upsample(style: str, n: int) -> tuple[bool, ...]:
    """The convention of each spelling (upsampling has no weights, so the name decides)."""
    if style in ("modern", "legacy"):
        return tuple(i < n - 1 for i in range(n))  # layers 1..n-1 upsample, the last does not
    return tuple(True for _ in range(n))  # list and 3DMPPE deconv: every layer upsamples


def _identify(s: Shapes) -> Identification:
    depths, dims, bkernel, ratio, evidence = _convnext_backbone(s)
    style, layers = _convnext_head(s)
    if style == "none" or "head.final_layer.weight" not in s:
        raise IdentificationError(
            "not a pose checkpoint: looks like a ConvNeXt-BN backbone without a pose head "
            "(no head.final_layer)",
            looks_like="a ConvNeXt backbone",
        )
    final = shape_of(s, "head.final_layer.weight")
    cin = dims[-1]
    for i, (lin, _, _) in enumerate(layers):
        if lin != cin:
            raise IdentificationError(f"head layer {i + 1} takes {lin} channels but receives {cin}")
        cin = layers[i][1]
    if final[1] != cin:
        raise IdentificationError(f"final layer takes {final[1]} channels but receives {cin}")
    joints, bins, notes = factorize_output(final[0])
    ups = default_upsample(style, len(layers))
    head = tuple(LayerSpec(i, o, k, u) for (i, o, k), u in zip(layers, ups, strict=True))
    arch = Architecture(
        family="convnextpose",
        backbone_type="convnext-bn",
        depths=depths,
        dims=dims,
        head_style=style,
        head_layers=head,
        joint_num=joints,
        depth_dim=bins,
        block_kernel=bkernel,
        mlp_ratio=ratio,
    )
    evidence.append(
        f"{style} head spelling: {len(layers)} layers, widths "
        f"{'-'.join(str(o) for _, o, _ in layers)}, kernels "
        f"{'-'.join(f'{k}x{k}' for _, _, k in layers)}; upsampling "
        f"{'/'.join('x2' if u else 'none' for u in ups)} by that spelling's convention"
    )
    evidence.extend(notes)
    ident = Identification(family="convnextpose", arch=arch, evidence=evidence)
    if any(n.startswith("ambiguous") or "ambiguous" in n for n in notes):
        ident.warnings.extend(n for n in notes if "ambiguous" in n)
    _match_variant(ident)
    return ident


def _dashed(value: object) -> str:
    """(2, 2, 6, 2) -> '2-2-6-2'; anything else as str."""
    return "-".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _match_variant(ident: Identification) -> None:
    """Name the published variant the architecture is, or the closest one if none."""
    a = ident.arch
    assert a is not None
    hard_best: tuple[int, str, list[str], list[str]] | None = None
    for name, v in VARIANTS.items():
        agree, differ = [], []
        checks = [
            ("stage depths", a.depths, v.depths),
            ("stage widths", a.dims, v.dims),
            ("head widths", tuple(h.out_channels for h in a.head_layers), v.head_channels),
            ("head kernels", tuple(h.kernel for h in a.head_layers), (v.head_kernel,) * 3),
            ("depth bins", a.depth_dim, v.depth_dim),
            ("block dwconv kernel", a.block_kernel, 7),
            ("block MLP ratio", a.mlp_ratio, 4),
        ]
        for label, got, want in checks:
            if got == want:
                agree.append(f"{label} {_dashed(got)}")
            else:
                differ.append(f"{label} {_dashed(got)} (published {name}: {_dashed(want)})")
        score = len(agree)
        if hard_best is None or score > hard_best[0]:
            hard_best = (score, name, agree, differ)
    assert hard_best is not None
    score, name, agree, differ = hard_best
    ident.closest = name
    if not differ:
        ident.variant = name
        conf = 1.0
        ident.evidence.append(f"matches published {name}: " + ", ".join(agree))
        if a.joint_num != VARIANTS[name].joint_num:
            conf -= 0.1
            ident.evidence.append(
                f"against: {a.joint_num} joints, the published {name} predicts "
                f"{VARIANTS[name].joint_num} (a retrained {name})"
            )
        if a.head_style == "list":
            conf -= 0.1
            ident.evidence.append(
                "against: list head spelling is a community variant (every layer upsamples)"
            )
        if ident.warnings:
            conf -= 0.1
        others = [n for n, v in VARIANTS.items() if n != name and v.dims == a.dims]
        for other in others:
            o = VARIANTS[other]
            if o.depths == a.depths and o.head_channels[0] != a.head_layers[0].out_channels:
                ident.evidence.append(
                    f"not {other}: head width {a.head_layers[0].out_channels}, "
                    f"{other} has {o.head_channels[0]}"
                )
            elif o.depths == a.depths and o.depth_dim != a.depth_dim:
                ident.evidence.append(
                    f"not {other}: {a.depth_dim} depth bins, {other} has {o.depth_dim}"
                )
        ident.confidence = max(0.0, conf)
    else:
        ident.variant = "custom"
        ident.confidence = 1.0 if not ident.warnings else 0.8
        ident.evidence.append(
            f"no published variant fits; closest is {name} "
            f"({score}/{score + len(differ)} features agree)"
        )
        ident.evidence.extend(f"against {name}: {d}" for d in differ)


# ----------------------------------------------------------------------------- counting


def _count_macs(arch: Architecture) -> int:
    """ConvNeXt-BN backbone, depthwise + pointwise head, heatmap layer (see Family)."""
    h, w = arch.input_size
    macs = 0
    hw = (h // 4, w // 4)
    macs += conv_macs(hw, arch.dims[0], 3, 4)
    for i, (depth, dim) in enumerate(zip(arch.depths, arch.dims, strict=True)):
        if i > 0:
            hw = (hw[0] // 2, hw[1] // 2)
            macs += conv_macs(hw, dim, arch.dims[i - 1], 2)
        hidden = dim * arch.mlp_ratio
        per_block = (
            conv_macs(hw, dim, 1, arch.block_kernel)
            + conv_macs(hw, hidden, dim, 1)
            + conv_macs(hw, dim, hidden, 1)
        )
        macs += depth * per_block
    hw = (h // arch.stride, w // arch.stride)
    for layer in arch.head_layers:
        macs += conv_macs(hw, layer.in_channels, 1, layer.kernel)
        macs += conv_macs(hw, layer.out_channels, layer.in_channels, 1)
        if layer.upsample:
            hw = (hw[0] * 2, hw[1] * 2)
    cin = arch.head_layers[-1].out_channels if arch.head_layers else arch.dims[-1]
    return macs + conv_macs(hw, arch.joint_num * arch.depth_dim, cin, 1)


# ----------------------------------------------------------------------------- file names


_NAME_WORDS = {
    "xs": "XS", "xsmall": "XS", "atto": "XS",
    "s": "S", "small": "S",
    "m": "M", "medium": "M",
    "l": "L", "large": "L",
}  # fmt: skip


def claimed_variant(path: Path) -> str | None:
    """The variant a file's name (or its folder's name) claims, if any."""
    for part in (path.name, path.parent.name):
        for token in re.split(r"[^A-Za-z0-9]+", part):
            if token.lower() in _NAME_WORDS:
                return _NAME_WORDS[token.lower()]
    return None


def _check_name(ident: Identification, path: Path) -> None:
    claim = claimed_variant(path)
    if claim is None:
        return
    said = (
        ident.variant
        if ident.variant != "custom"
        else f"a custom network (closest {ident.closest})"
    )
    if claim != ident.variant:
        ident.warnings.append(f"named {claim}, tensors say {said}")
    else:
        ident.evidence.append(f"the file name agrees ({claim})")


# ----------------------------------------------------------------------------- the family


class ConvNeXtPose(Family):
    name = "convnextpose"
    display = "ConvNeXtPose"
    detect = KeyCondition.has_all("backbone.downsample_layers.0.0.weight")
    stem = Stem(
        "backbone.downsample_layers.0.0",
        "backbone.downsample_layers.0.1",
        "the stem's BatchNorm",
    )

    def identify(self, shapes: dict[str, tuple[int, ...]]) -> Identification:
        return _identify(shapes)

    def count_macs(self, arch: Architecture) -> int:
        return _count_macs(arch)

    def build(self, arch: Architecture) -> nn.Module:
        backbone = ConvNeXtBN(arch.depths, arch.dims, arch.block_kernel, arch.mlp_ratio)
        return PoseNetwork(arch, backbone, ConvNeXtPoseHead(arch))

    def canonical_key(self, key: str) -> str:
        return canonical_key(key)

    def backbone_summary(self, arch: Architecture) -> str:
        stages = "  ".join(f"{n}x{w}" for n, w in zip(arch.depths, arch.dims, strict=True))
        return f"ConvNeXt-BN, stages (blocks x width): {stages}"

    def title(self, ident: Identification) -> str:
        return f"ConvNeXtPose-{ident.variant}" if ident.variant else "ConvNeXtPose"

    def check_name(self, ident: Identification, path: Path) -> None:
        _check_name(ident, path)


FAMILY = ConvNeXtPose()
