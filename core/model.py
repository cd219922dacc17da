"""Architecture -> torch module; strict loading. Both go through the family registry.

`build_model(arch)` gives the plain network of the architecture's family (what the published
code computes, eager fp32); `load_weights` loads a state dict into it under the family's
canonical key names. The fast forms of a loaded network live in core/inference/.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from posescope.core.families.descriptor import Architecture
from posescope.core.families.registry import REGISTRY


def build_model(arch: Architecture) -> nn.Module:
    """The plain network for an architecture (random weights, eval mode)."""
    return REGISTRY[arch.family].build(arch).eval()


class ModelLoadError(Exception):
    """The tensors do not fit the network: names the tensor and both shapes."""


def load_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Strict load: every tensor used, none missing, shapes equal; legacy names remapped.

    `num_batches_tracked` may be absent (older torch); it carries no information at inference.
    """
    arch: Architecture = model.arch  # type: ignore[assignment]
    canonical_key = REGISTRY[arch.family].canonical_key
    sd = {canonical_key(k): v for k, v in state_dict.items()}
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
