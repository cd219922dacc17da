"""The typed descriptors a family gives back: `Architecture` (enough to rebuild the network)
and `Identification` (the verdict on one state dict: what it is, how sure, and why)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from posescope.core.variants import INPUT_SIZE, JointSet

if TYPE_CHECKING:
    from posescope.core.families.base import Family
    from posescope.core.families.input_convention import InputConvention


def _family(name: str) -> Family | None:
    """The registered family of that name (imported here: the registry imports this module)."""
    from posescope.core.families.registry import REGISTRY

    return REGISTRY.get(name)


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
    # the pixel scale the weights expect, read from their statistics (identify_checkpoint)
    input: InputConvention | None = None

    @property
    def is_pose(self) -> bool:
        """Whether the network predicts joints (its family says; RootNet and unknown do not)."""
        family = _family(self.family)
        return family is not None and family.is_pose

    @property
    def title(self) -> str:
        """Short human name, e.g. 'ConvNeXtPose-XS' or '3DMPPE PoseNet (ResNet-50)'."""
        family = _family(self.family)
        return family.title(self) if family is not None else "not a pose checkpoint"

    def with_arch(self, arch: Architecture) -> Identification:
        """Same verdict for an overridden architecture (upsampling, input size)."""
        from posescope.core.families.registry import count_macs

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
            "input": self.input.to_dict() if self.input else None,
        }
