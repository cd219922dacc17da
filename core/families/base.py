"""What a model family is: the keys that tell it apart, and what it knows about its networks.

`Family` is spandrel's per-architecture `__init__.py` as a class: `detect` is declarative (a
`KeyCondition` over key names, so "why this family" can be told from it), `identify` reads the
architecture from names and shapes, `count_macs`, `build` and `canonical_key` go with it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from torch import nn

    from posescope.core.families.descriptor import Architecture, Identification
    from posescope.core.families.input_convention import Stem

Shapes = Mapping[str, Sequence[int]]


class IdentificationError(Exception):
    """A state dict that is not (or not a complete) pose network."""

    def __init__(self, reason: str, looks_like: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.looks_like = looks_like


@dataclass(frozen=True)
class KeyCondition:
    """Which keys a state dict must have: all of them, or any of them (nestable)."""

    kind: Literal["all", "any"]
    keys: tuple[str | KeyCondition, ...]

    @staticmethod
    def has_all(*keys: str | KeyCondition) -> KeyCondition:
        return KeyCondition("all", keys)

    @staticmethod
    def has_any(*keys: str | KeyCondition) -> KeyCondition:
        return KeyCondition("any", keys)

    def __call__(self, shapes: Mapping[str, object]) -> bool:
        found = (k(shapes) if isinstance(k, KeyCondition) else k in shapes for k in self.keys)
        return all(found) if self.kind == "all" else any(found)

    def describe(self) -> str:
        """The condition in words, e.g. "all of: backbone.conv1.weight, root.xy_layer.weight"."""
        parts = [k.describe() if isinstance(k, KeyCondition) else k for k in self.keys]
        if len(parts) == 1:
            return f"has {parts[0]}"
        return f"{self.kind} of: " + ", ".join(parts)


class Family(ABC):
    """One kind of network. Subclasses set `name`, `display` and `detect`."""

    name: str  # the Architecture / Identification family field, e.g. "convnextpose"
    display: str  # e.g. "ConvNeXtPose"
    detect: KeyCondition  # holds for every state dict of this family
    is_pose: bool = True  # predicts joints (RootNet predicts the root only)
    # the first conv and the BatchNorm after it, whose statistics tell the input scale
    # (core/families/input_convention.py); None: the family has no such layer
    stem: Stem | None = None

    @abstractmethod
    def identify(self, shapes: dict[str, tuple[int, ...]]) -> Identification:
        """Read the architecture from names and shapes; raises IdentificationError."""

    @abstractmethod
    def count_macs(self, arch: Architecture) -> int:
        """Multiply-accumulates of every convolution at the architecture's input size."""

    @abstractmethod
    def build(self, arch: Architecture) -> nn.Module:
        """The plain network (random weights); its state-dict names are the canonical ones."""

    def canonical_key(self, key: str) -> str:
        """A file's key spelled as the built module names it (legacy spellings mapped)."""
        return key

    def backbone_summary(self, arch: Architecture) -> str:
        """One line on the backbone, for `posescope inspect`."""
        return arch.backbone_type

    def title(self, ident: Identification) -> str:
        """Short human name of an identified network."""
        return self.display

    def check_name(self, ident: Identification, path: Path) -> None:  # noqa: B027 (optional)
        """Compare what the file's name claims with the verdict (adds evidence or a warning);
        families without named variants have nothing to compare."""

    def __repr__(self) -> str:
        return f"<family {self.name}: {self.detect.describe()}>"
