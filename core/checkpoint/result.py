"""What opening a checkpoint gives: the flat weights and facts about their container."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

FORMATS = ("torch-zip", "torch-legacy", "archive-folder", "folder", "safetensors")


@dataclass
class LoadedCheckpoint:
    """The weights of one checkpoint and a few facts about the container they came in."""

    path: Path
    format: str  # one of FORMATS
    state_dict: dict[str, torch.Tensor] = field(repr=False)  # flat, prefix stripped, tensors only
    wrapper: str | None  # the key the weights were under, None for a bare state dict
    prefix: str | None  # the stripped key prefix, e.g. "module."
    file_size: int  # bytes; for a folder the sum of its files
    meta: dict = field(default_factory=dict)  # small non-tensor facts (epoch, other_keys, ...)
    trusted: bool = False  # True when the file needed (and got) a full, trusted unpickle

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Key -> tensor shape."""
        return {k: tuple(v.shape) for k, v in self.state_dict.items()}
