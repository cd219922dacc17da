"""The families PoseScope knows, in detection order (spandrel's MAIN_REGISTRY).

`identify` (core/identify.py) asks `REGISTRY.detect` which family's key conditions hold and
lets that family read the file; `build_model` / `load_weights` (core/model.py) and
`count_macs` look the family up by the name in the Architecture. Adding a family: one module
in this package and one line in `REGISTRY` below.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from posescope.core.families import convnextpose, posenet, rootnet
from posescope.core.families.base import Family
from posescope.core.families.descriptor import Architecture


class Registry:
    """Families in detection order: the first whose `detect` condition holds reads a file."""

    def __init__(self, families: Iterable[Family] = ()) -> None:
        self._families: list[Family] = []
        for family in families:
            self.add(family)

    def __iter__(self) -> Iterator[Family]:
        return iter(list(self._families))

    def __len__(self) -> int:
        return len(self._families)

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self._families)

    def get(self, name: str) -> Family | None:
        return next((f for f in self._families if f.name == name), None)

    def __getitem__(self, name: str) -> Family:
        family = self.get(name)
        if family is None:
            known = ", ".join(f.name for f in self._families)
            raise KeyError(f"no model family named {name!r} (known: {known})")
        return family

    def detect(self, shapes: Mapping[str, object]) -> Family | None:
        """The first family whose key conditions the state dict meets, or None."""
        return next((f for f in self._families if f.detect(shapes)), None)

    def add(self, family: Family, *, before: str | None = None) -> None:
        """Register a family, last or just before the family named `before`."""
        if family.name in self:
            raise ValueError(f"a model family named {family.name!r} is registered already")
        at = len(self._families) if before is None else self._families.index(self[before])
        self._families.insert(at, family)

    def remove(self, name: str) -> None:
        self._families.remove(self[name])


REGISTRY = Registry(
    [
        convnextpose.FAMILY,
        rootnet.FAMILY,  # before PoseNet: a file with a root head is a RootNet
        posenet.FAMILY,
    ]
)


def count_macs(arch: Architecture) -> int:
    """Multiply-accumulates of every convolution at the architecture's input size.

    Reported as "GFLOPs" like the paper's counters do (one MAC = one FLOP). BN, ReLU,
    upsampling and the soft-argmax are left out: they are folded or negligible.
    """
    return REGISTRY[arch.family].count_macs(arch)
