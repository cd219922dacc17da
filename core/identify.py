"""What network is this? A pure function of tensor names and shapes.

`identify(shapes)` reads the architecture from the state dict's key names and tensor shapes
(never from file names or notes), then compares it with the published variants. Detectors run
in order (spandrel style): ConvNeXtPose, 3DMPPE PoseNet, 3DMPPE RootNet; anything else is
described ("looks like an image classifier") and refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posescope.core.checkpoint import CheckpointError, strip_prefix
from posescope.core.escape import escape
from posescope.core.variants import (
    INPUT_SIZE,
    JOINT_SETS,
    KNOWN_DEPTH_BINS,
    RESNET_LAYERS,
    VARIANTS,
    JointSet,
    generic_joint_set,
)

if TYPE_CHECKING:
    from posescope.core.checkpoint import LoadedCheckpoint

Shapes = Mapping[str, Sequence[int]]

_STATS = ("running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class HeadLayer:
    """One upsampling layer of the head: depthwise kxk + BN + 1x1 (ConvNeXtPose) or a
    4x4 stride-2 transposed conv + BN (3DMPPE)."""

    in_channels: int
    out_channels: int
    kernel: int
    upsample: bool


@dataclass(frozen=True)
class Architecture:
    """Everything needed to rebuild the network; read from the tensors."""

    family: str  # convnextpose | posenet | rootnet
    backbone_type: str  # convnext-bn | resnet
    depths: tuple[int, ...]
    dims: tuple[int, ...]
    head_style: str  # modern | legacy | list | deconv
    head_layers: tuple[HeadLayer, ...]
    joint_num: int
    depth_dim: int
    resnet_depth: int | None = None
    block_kernel: int = 7  # ConvNeXt depthwise kernel
    mlp_ratio: int = 4  # ConvNeXt pwconv1 expansion
    input_size: tuple[int, int] = INPUT_SIZE  # (h, w)

    @property
    def stride(self) -> int:
        return 32  # both backbones reduce by 32

    @property
    def upsample(self) -> tuple[bool, ...]:
        return tuple(layer.upsample for layer in self.head_layers)

    @property
    def output_size(self) -> tuple[int, int]:
        """Heatmap (h, w) for this input size."""
        factor = 2 ** sum(self.upsample)
        h, w = self.input_size
        return (h // self.stride * factor, w // self.stride * factor)

    def with_upsample(self, upsample: Sequence[bool]) -> Architecture:
        """The same network with another upsampling pattern (it is not stored in files)."""
        if len(upsample) != len(self.head_layers):
            raise ValueError(
                f"upsample needs {len(self.head_layers)} values (one per head layer), "
                f"got {len(upsample)}"
            )
        if self.head_style == "deconv" and not all(upsample):
            raise ValueError("3DMPPE deconvolution layers always upsample")
        layers = tuple(
            replace(layer, upsample=bool(u))
            for layer, u in zip(self.head_layers, upsample, strict=True)
        )
        return replace(self, head_layers=layers)

    def with_input_size(self, size: Sequence[int]) -> Architecture:
        h, w = int(size[0]), int(size[1])
        if h % 32 or w % 32 or h <= 0 or w <= 0:
            raise ValueError(f"input size must be positive multiples of 32, got {h}x{w}")
        return replace(self, input_size=(h, w))


@dataclass
class Identification:
    """The verdict on one state dict: what it is, how sure, and why."""

    family: str  # convnextpose | posenet | rootnet | unknown
    variant: str | None = None  # XS | S | M | L | custom | None (PoseNet/RootNet/unknown)
    confidence: float = 0.0
    evidence: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    arch: Architecture | None = None
    joint_set: JointSet | None = None
    params: int = 0
    gflops: float = 0.0
    closest: str | None = None  # nearest published variant when custom
    looks_like: str | None = None  # for unknown files
    # facts about the file, filled by identify_checkpoint
    path: str | None = None
    file_size: int | None = None
    format: str | None = None
    wrapper: str | None = None
    key_prefix: str | None = None

    @property
    def is_pose(self) -> bool:
        return self.family in ("convnextpose", "posenet")

    @property
    def title(self) -> str:
        """Short human name, e.g. 'ConvNeXtPose-XS' or '3DMPPE PoseNet (ResNet-50)'."""
        if self.family == "convnextpose":
            return f"ConvNeXtPose-{self.variant}" if self.variant else "ConvNeXtPose"
        if self.family in ("posenet", "rootnet") and self.arch is not None:
            name = "PoseNet" if self.family == "posenet" else "RootNet"
            return f"3DMPPE {name} (ResNet-{self.arch.resnet_depth})"
        return "not a pose checkpoint"

    def with_arch(self, arch: Architecture) -> Identification:
        """Same verdict for an overridden architecture (upsampling, input size)."""
        return replace(self, arch=arch, gflops=round(count_macs(arch) / 1e9, 3))

    def to_dict(self) -> dict[str, Any]:
        a = self.arch
        return {
            "path": self.path,
            "file_size": self.file_size,
            "format": self.format,
            "wrapper": self.wrapper,
            "key_prefix": self.key_prefix,
            "key_style": a.head_style if a else None,
            "family": self.family,
            "variant": self.variant,
            "confidence": round(self.confidence, 3),
            "closest": self.closest,
            "evidence": list(self.evidence),
            "warnings": list(self.warnings),
            "backbone": {
                "type": a.backbone_type if a else None,
                "depths": list(a.depths) if a else [],
                "dims": list(a.dims) if a else [],
                "resnet_depth": a.resnet_depth if a else None,
            },
            "head": {
                "style": a.head_style if a else None,
                "channels": [h.out_channels for h in a.head_layers] if a else [],
                "kernels": [h.kernel for h in a.head_layers] if a else [],
                "upsample": [h.upsample for h in a.head_layers] if a else [],
            },
            "joint_num": a.joint_num if a else None,
            "joint_set": self.joint_set.name if self.joint_set else None,
            "depth_dim": a.depth_dim if a else None,
            "input_size": list(a.input_size) if a else None,
            "output_size": list(a.output_size) if a else None,
            "params": self.params,
            "gflops": self.gflops,
        }


class NotAPoseCheckpointError(CheckpointError):
    """A readable checkpoint that holds some other network (a classifier, a bare backbone)."""

    def __init__(self, path: str, reason: str, looks_like: str | None = None):
        Exception.__init__(self, reason)
        self.path = path
        self.reason = reason
        self.looks_like = looks_like

    def __str__(self) -> str:
        return self.reason


class IdentificationError(Exception):
    """A state dict that is not (or not a complete) pose network."""

    def __init__(self, reason: str, looks_like: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.looks_like = looks_like


# ----------------------------------------------------------------------------- helpers


def count_params(shapes: Shapes) -> int:
    """Weights + biases + BN affine; running statistics are not parameters."""
    total = 0
    for k, shape in shapes.items():
        if k.rsplit(".", 1)[-1] in _STATS:
            continue
        n = 1
        for s in shape:
            n *= int(s)
        total += n
    return total


def _indices(shapes: Shapes, prefix: str) -> list[int]:
    """Sorted distinct integers i in keys `prefix{i}.…`."""
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(m.group(1)) for k in shapes if (m := pat.match(k))})


def _shape(shapes: Shapes, key: str) -> tuple[int, ...]:
    if key not in shapes:
        raise IdentificationError(f"incomplete checkpoint: tensor '{key}' is missing")
    return tuple(shapes[key])


def factorize_output(channels: int, prefer_depth: int | None = None) -> tuple[int, int, list[str]]:
    """Split `final_layer`'s channels into joints x depth bins.

    Prefers known joint sets with the usual depth-bin counts; returns (joints, bins, notes),
    the notes saying how the choice was made and whether it was ambiguous.
    """
    known = [
        (j, d) for j in JOINT_SETS for d in KNOWN_DEPTH_BINS if j * d == channels
    ]  # ordered by joint-set then depth preference
    notes: list[str] = []
    if prefer_depth is not None:
        pref = [(j, d) for j, d in known if d == prefer_depth]
        known = pref + [c for c in known if c not in pref]
    if known:
        j, d = known[0]
        notes.append(
            f"{channels} output channels = {j} joints ({JOINT_SETS[j].name}) x {d} depth bins"
        )
        if len(known) > 1:
            alts = ", ".join(f"{a} x {b}" for a, b in known[1:])
            notes.append(f"ambiguous: {channels} could also be {alts}; chose {j} x {d}")
        return j, d, notes
    generic = [(channels // d, d) for d in KNOWN_DEPTH_BINS if channels % d == 0]
    if generic:
        j, d = generic[0]
        msg = f"{channels} output channels: no known joint set fits; read as {j} joints x {d} bins"
        if len(generic) > 1:
            alts = ", ".join(f"{a} x {b}" for a, b in generic[1:])
            msg += f" (ambiguous: could also be {alts})"
        notes.append(msg)
        return j, d, notes
    raise IdentificationError(
        f"final layer has {channels} output channels, which is no joints x depth-bins product "
        f"with {' or '.join(map(str, KNOWN_DEPTH_BINS))} bins"
    )


# ----------------------------------------------------------------------------- FLOPs


def _conv_macs(out_hw: tuple[int, int], cout: int, cin_per_group: int, k: int) -> int:
    return out_hw[0] * out_hw[1] * cout * cin_per_group * k * k


def count_macs(arch: Architecture) -> int:
    """Multiply-accumulates of every convolution at the architecture's input size.

    Reported as "GFLOPs" like the paper's counters do (one MAC = one FLOP). BN, ReLU,
    upsampling and the soft-argmax are left out: they are folded or negligible.
    """
    h, w = arch.input_size
    macs = 0
    if arch.backbone_type == "convnext-bn":
        hw = (h // 4, w // 4)
        macs += _conv_macs(hw, arch.dims[0], 3, 4)
        for i, (depth, dim) in enumerate(zip(arch.depths, arch.dims, strict=True)):
            if i > 0:
                hw = (hw[0] // 2, hw[1] // 2)
                macs += _conv_macs(hw, dim, arch.dims[i - 1], 2)
            hidden = dim * arch.mlp_ratio
            per_block = (
                _conv_macs(hw, dim, 1, arch.block_kernel)
                + _conv_macs(hw, hidden, dim, 1)
                + _conv_macs(hw, dim, hidden, 1)
            )
            macs += depth * per_block
    else:  # torchvision ResNet with bottlenecks
        hw = (h // 2, w // 2)
        macs += _conv_macs(hw, 64, 3, 7)
        hw = (hw[0] // 2, hw[1] // 2)
        cin = 64
        for i, blocks in enumerate(arch.depths):
            planes = 64 * 2**i
            for b in range(blocks):
                out = (hw[0] // 2, hw[1] // 2) if (b == 0 and i > 0) else hw
                macs += _conv_macs(hw, planes, cin, 1)
                macs += _conv_macs(out, planes, planes, 3)
                macs += _conv_macs(out, planes * 4, planes, 1)
                if b == 0:
                    macs += _conv_macs(out, planes * 4, cin, 1)
                cin = planes * 4
                hw = out
    hw = (h // arch.stride, w // arch.stride)
    for layer in arch.head_layers:
        if arch.head_style == "deconv":
            # ConvTranspose k4 s2: every input pixel scatters cout x k x k values.
            macs += hw[0] * hw[1] * layer.in_channels * layer.out_channels * 16
            hw = (hw[0] * 2, hw[1] * 2)
            continue
        macs += _conv_macs(hw, layer.in_channels, 1, layer.kernel)
        macs += _conv_macs(hw, layer.out_channels, layer.in_channels, 1)
        if layer.upsample:
            hw = (hw[0] * 2, hw[1] * 2)
    if arch.family == "rootnet":
        macs += _conv_macs(hw, 1, arch.head_layers[-1].out_channels, 1)
        macs += 2048
    else:
        cin = arch.head_layers[-1].out_channels if arch.head_layers else arch.dims[-1]
        macs += _conv_macs(hw, arch.joint_num * arch.depth_dim, cin, 1)
    return macs


# ----------------------------------------------------------------------------- detectors


def _convnext_backbone(s: Shapes) -> tuple[tuple[int, ...], tuple[int, ...], int, int, list[str]]:
    notes = []
    stem = _shape(s, "backbone.downsample_layers.0.0.weight")
    if len(stem) != 4 or stem[1] != 3:
        raise IdentificationError(f"stem conv has shape {stem}, expected (C, 3, 4, 4)")
    dims = [stem[0]]
    for i in _indices(s, "backbone.downsample_layers.")[1:]:
        dims.append(_shape(s, f"backbone.downsample_layers.{i}.1.weight")[0])
    stages = _indices(s, "backbone.stages.")
    depths = [len(_indices(s, f"backbone.stages.{st}.")) for st in stages]
    if len(depths) != len(dims):
        raise IdentificationError(
            f"backbone has {len(dims)} downsampling layers but {len(depths)} stages"
        )
    first = _shape(s, "backbone.stages.0.0.dwconv.weight")
    kernel = first[-1]
    hidden = _shape(s, "backbone.stages.0.0.pwconv1.weight")[0]
    ratio = hidden // dims[0]
    for st, dim in zip(stages, dims, strict=True):
        for b in _indices(s, f"backbone.stages.{st}."):
            dw = _shape(s, f"backbone.stages.{st}.{b}.dwconv.weight")
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
    modern = _indices(s, "head.deconv_layers_")  # deconv_layers_1.…
    listed = _indices(s, "head.deconv_layers.")
    layers: list[tuple[int, int, int]] = []
    if modern:
        probe = f"head.deconv_layers_{modern[0]}."
        style = "modern" if f"{probe}dwconv.weight" in s else "legacy"
        names = ("dwconv", "pwconv") if style == "modern" else ("0", "2")
        for i in modern:
            dw = _shape(s, f"head.deconv_layers_{i}.{names[0]}.weight")
            pw = _shape(s, f"head.deconv_layers_{i}.{names[1]}.weight")
            layers.append((dw[0], pw[0], dw[-1]))
        return style, layers
    if listed:
        for i in listed:
            dw = _shape(s, f"head.deconv_layers.{i}.dwconv.weight")
            pw = _shape(s, f"head.deconv_layers.{i}.pwconv.weight")
            layers.append((dw[0], pw[0], dw[-1]))
        return "list", layers
    return "none", layers


def default_upsample(style: str, n: int) -> tuple[bool, ...]:
    """The convention of each spelling (upsampling has no weights, so the name decides)."""
    if style in ("modern", "legacy"):
        return tuple(i < n - 1 for i in range(n))  # layers 1..n-1 upsample, the last does not
    return tuple(True for _ in range(n))  # list and 3DMPPE deconv: every layer upsamples


def _identify_convnext(s: Shapes) -> Identification:
    depths, dims, bkernel, ratio, evidence = _convnext_backbone(s)
    style, layers = _convnext_head(s)
    if style == "none" or "head.final_layer.weight" not in s:
        raise IdentificationError(
            "not a pose checkpoint: looks like a ConvNeXt-BN backbone without a pose head "
            "(no head.final_layer)",
            looks_like="a ConvNeXt backbone",
        )
    final = _shape(s, "head.final_layer.weight")
    cin = dims[-1]
    for i, (lin, _, _) in enumerate(layers):
        if lin != cin:
            raise IdentificationError(f"head layer {i + 1} takes {lin} channels but receives {cin}")
        cin = layers[i][1]
    if final[1] != cin:
        raise IdentificationError(f"final layer takes {final[1]} channels but receives {cin}")
    joints, bins, notes = factorize_output(final[0])
    ups = default_upsample(style, len(layers))
    head = tuple(HeadLayer(i, o, k, u) for (i, o, k), u in zip(layers, ups, strict=True))
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


def _resnet(s: Shapes) -> tuple[int, tuple[int, ...], list[str]]:
    counts = tuple(len(_indices(s, f"backbone.layer{i}.")) for i in range(1, 5))
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


def _deconv_layers(s: Shapes, prefix: str) -> list[HeadLayer]:
    layers = []
    for i in _indices(s, prefix):
        key = f"{prefix}{i}.weight"
        shape = tuple(s.get(key, ()))
        if len(shape) == 4 and f"{prefix}{i}.running_mean" not in s:
            # ConvTranspose2d weight: (in, out, k, k)
            layers.append(HeadLayer(shape[0], shape[1], shape[-1], True))
    return layers


def _resnet_arch(
    family: str, s: Shapes, head_prefix: str, joints: int, bins: int
) -> tuple[Architecture, list[str]]:
    """A 3DMPPE network: torchvision ResNet backbone + transposed-conv head."""
    depth, counts, evidence = _resnet(s)
    arch = Architecture(
        family=family,
        backbone_type="resnet",
        depths=counts,
        dims=(256, 512, 1024, 2048),
        head_style="deconv",
        head_layers=tuple(_deconv_layers(s, head_prefix)),
        joint_num=joints,
        depth_dim=bins,
        resnet_depth=depth,
    )
    return arch, evidence


def _identify_posenet(s: Shapes) -> Identification:
    final = _shape(s, "head.final_layer.weight")
    joints, bins, notes = factorize_output(final[0], prefer_depth=64)
    arch, evidence = _resnet_arch("posenet", s, "head.deconv_layers.", joints, bins)
    layers = arch.head_layers
    evidence.append(
        f"3DMPPE head: {len(layers)} transposed convs 4x4/2 "
        f"({'-'.join(str(h.out_channels) for h in layers)} channels), each upsampling x2"
    )
    evidence.extend(notes)
    ident = Identification(family="posenet", arch=arch, evidence=evidence, confidence=1.0)
    ident.warnings.extend(n for n in notes if "ambiguous" in n)
    if ident.warnings:
        ident.confidence = 0.8
    return ident


def _identify_rootnet(s: Shapes) -> Identification:
    _shape(s, "root.depth_layer.weight")
    arch, evidence = _resnet_arch("rootnet", s, "root.deconv_layers.", 1, 1)
    evidence.append(
        "3DMPPE RootNet: root.xy_layer (root x, y heatmap) and root.depth_layer "
        "(gamma for absolute root depth)"
    )
    return Identification(family="rootnet", arch=arch, evidence=evidence, confidence=1.0)


def describe_non_pose(s: Shapes) -> str:
    """A guess at what a state dict that is no pose network is."""
    keys = list(s)
    if not keys:
        return "an empty state dict"
    for fc in ("fc.weight", "classifier.weight", "head.fc.weight", "head.weight"):
        if fc in s and len(s[fc]) == 2:
            return f"an image classifier ({fc} with {s[fc][0]} classes)"
    joined = " ".join(keys[:200])
    if "attn" in joined or "attention" in joined:
        return "a transformer"
    if "backbone.downsample_layers" in joined or "downsample_layers.0.0" in joined:
        return "a ConvNeXt backbone"
    if any(k.startswith(("layer1.", "conv1.")) for k in keys):
        return "a ResNet without a pose head"
    return f"an unknown network ({len(keys)} tensors, e.g. '{keys[0]}')"


def identify(shapes: Shapes, filename: str | Path | None = None) -> Identification:
    """Identify a state dict from its names and shapes; `filename` only feeds the
    "named X, tensors say Y" warning and never the verdict."""
    stripped, prefix = strip_prefix(shapes)
    s = {k: tuple(int(d) for d in v) for k, v in stripped.items()}
    try:
        if "backbone.downsample_layers.0.0.weight" in s:
            ident = _identify_convnext(s)
        elif "root.xy_layer.weight" in s and "backbone.conv1.weight" in s:
            ident = _identify_rootnet(s)
        elif "head.final_layer.weight" in s and "backbone.conv1.weight" in s:
            ident = _identify_posenet(s)
        else:
            what = describe_non_pose(s)
            raise IdentificationError(f"not a pose checkpoint: looks like {what}", what)
    except IdentificationError as exc:
        return Identification(
            family="unknown",
            evidence=[escape(exc.reason)],
            looks_like=escape(exc.looks_like) if exc.looks_like else exc.looks_like,
            params=count_params(s),
            key_prefix=prefix,
        )
    ident.key_prefix = prefix
    ident.params = count_params(s)
    assert ident.arch is not None
    ident.gflops = round(count_macs(ident.arch) / 1e9, 3)
    if ident.family != "rootnet":
        a = ident.arch
        ident.joint_set = JOINT_SETS.get(a.joint_num) or generic_joint_set(a.joint_num)
    if filename is not None:
        _check_name(ident, Path(filename))
    # Names from the file reach the terminal and the panel: never raw (core/escape.py).
    ident.evidence = [escape(e) for e in ident.evidence]
    ident.warnings = [escape(w) for w in ident.warnings]
    return ident


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
    if claim is None or ident.family != "convnextpose":
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


def identify_checkpoint(ckpt: LoadedCheckpoint) -> Identification:
    """Identify an opened checkpoint and attach the facts about its file.

    Raises NotAPoseCheckpointError for files that hold some other network.
    """
    ident = identify(ckpt.shapes(), filename=ckpt.path)
    ident.path = str(ckpt.path)
    ident.file_size = ckpt.file_size
    ident.format = ckpt.format
    ident.wrapper = ckpt.wrapper
    ident.key_prefix = ckpt.prefix or ident.key_prefix
    if ident.family == "unknown":
        raise NotAPoseCheckpointError(str(ckpt.path), ident.evidence[0], ident.looks_like)
    return ident
