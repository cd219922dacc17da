"""From whatever a checkpoint file held to a flat state dict: wrappers, prefixes, meta."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from posescope.core.checkpoint.budgets import Budget, check_tensors
from posescope.core.checkpoint.errors import NotACheckpointError
from posescope.core.checkpoint.pickles import Stub

WRAPPER_KEYS = ("network", "state_dict", "model", "model_state_dict")
PREFIXES = ("module.", "_orig_mod.", "model.")
V = TypeVar("V")

# Top-level keys that hold tensors but are never the weights.
_NOT_WEIGHTS = frozenset(
    {"optimizer", "optimizer_state_dict", "optim", "opt", "scheduler", "lr_scheduler", "scaler"}
)
_MAX_WRAPPER_DEPTH = 4
_MAX_FLATTEN_DEPTH = 8
_MAX_META_STR = 200

# --- from the unpickled object to a flat state dict -----------------------------------------


def extract(
    obj: Any, path: Path, budget: Budget | None = None, source_bytes: int = 0
) -> tuple[dict[str, torch.Tensor], str | None, str | None, dict[str, Any]]:
    """(state_dict, wrapper, prefix, meta) from whatever the file held.

    The tensors are checked against the budget (budgets.check_tensors) before they are
    copied out: the copies are what a hostile file would make huge."""
    obj = _as_mapping(obj)
    if not isinstance(obj, Mapping):
        looks = f"a torch.save file holding a {type(obj).__name__}, not a state dict"
        raise NotACheckpointError(f"not a checkpoint: {looks}", path, looks)
    chain, inner = _unwrap(obj)
    flat: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    _flatten(inner, "", flat, dropped, 0)
    if not flat:
        keys = ", ".join(str(k) for k in list(obj)[:8]) or "none"
        looks = "a torch.save file without tensors"
        raise NotACheckpointError(
            f"not a checkpoint: the file holds no tensors (top-level keys: {keys})", path, looks
        )
    flat, prefix = strip_prefix(flat)
    meta: dict[str, Any] = {}
    if chain:
        meta.update(_top_level_meta(obj, chain[0]))
        if len(chain) > 1:
            meta["wrapper_path"] = ".".join(chain)
    if dropped:
        meta["non_tensor_keys"] = dropped[:20]
    check_tensors(flat, budget or Budget(), path, source_bytes)
    # Own copies: drop the mmap of the file and any storage shared with what we leave behind.
    state_dict = {k: _own(v) for k, v in flat.items()}
    return state_dict, (chain[0] if chain else None), prefix, meta


def _as_mapping(obj: Any) -> Any:
    """A (possibly stubbed, trusted-only) nn.Module becomes its state dict."""
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, Stub) and "_modules" in vars(obj):
        out: dict[str, Any] = {}
        _module_like_state(obj, "", out, 0)
        return out
    return obj


def _module_like_state(obj: Any, prefix: str, out: dict[str, Any], depth: int) -> None:
    if depth > 64:
        return
    if isinstance(obj, torch.nn.Module):
        for k, v in obj.state_dict().items():
            out[prefix + k] = v
        return
    d = vars(obj)
    for group in ("_parameters", "_buffers"):
        for k, v in (d.get(group) or {}).items():
            if isinstance(v, torch.Tensor):
                out[prefix + k] = v
    for k, child in (d.get("_modules") or {}).items():
        if child is not None:
            _module_like_state(child, f"{prefix}{k}.", out, depth + 1)


def _holds_tensors(value: Any, depth: int = 0) -> bool:
    if isinstance(value, torch.nn.Module | torch.Tensor):
        return True
    if isinstance(value, Mapping) and depth < 3:
        return any(_holds_tensors(v, depth + 1) for v in value.values())
    return False


def _is_container(value: Any) -> bool:
    """A mapping or module (possibly stubbed) with tensors inside."""
    if isinstance(value, Stub):
        return "_modules" in vars(value)
    return isinstance(value, Mapping | torch.nn.Module) and _holds_tensors(value)


def _unwrap(obj: Mapping) -> tuple[list[str], Mapping]:
    """Follow wrapper keys ({'network': sd, ...}) down to the mapping that holds the weights."""
    chain: list[str] = []
    current: Any = obj
    for _ in range(_MAX_WRAPPER_DEPTH):
        # A flat state dict never holds mappings, so a wrapper key holding tensors wins.
        key = next((k for k in WRAPPER_KEYS if _is_container(current.get(k))), None)
        if key is None:
            if any(isinstance(v, torch.Tensor) for v in current.values()):
                break  # tensors right here: this is the state dict
            candidates = [
                k for k, v in current.items() if str(k) not in _NOT_WEIGHTS and _is_container(v)
            ]
            if len(candidates) != 1:
                break
            key = candidates[0]
        nxt = _as_mapping(current[key])
        if not isinstance(nxt, Mapping):
            break
        chain.append(str(key))
        current = nxt
    return chain, current


def _flatten(
    value: Mapping, prefix: str, out: dict[str, torch.Tensor], dropped: list[str], depth: int
) -> None:
    for k, v in value.items():
        key = f"{prefix}{k}"
        if isinstance(v, torch.Tensor):
            out[key] = v
        elif isinstance(v, np.ndarray) and v.dtype.kind in "biuf":  # only reachable if trusted
            out[key] = torch.from_numpy(np.ascontiguousarray(v))
        elif isinstance(v, Mapping | torch.nn.Module) and depth < _MAX_FLATTEN_DEPTH:
            _flatten(_as_mapping(v), key + ".", out, dropped, depth + 1)
        else:
            dropped.append(key)


def strip_prefix(sd: Mapping[str, V]) -> tuple[dict[str, V], str | None]:
    """Remove `module.` / `_orig_mod.` / `model.` (repeatedly) while every key has one;
    returns the keys without it and what was stripped (None when nothing was)."""
    out = dict(sd)
    stripped = ""
    while out:  # every round shortens every key, so this ends
        p = next((p for p in PREFIXES if all(k.startswith(p) for k in out)), None)
        if p is None:
            break
        out = {k[len(p) :]: v for k, v in out.items()}
        stripped += p
    return out, (stripped or None)


def _top_level_meta(obj: Mapping, wrapper: str) -> dict[str, Any]:
    """Small scalars beside the weights (epoch, ...) and the names of everything else."""
    meta: dict[str, Any] = {}
    other: list[str] = []
    for k, v in obj.items():
        key = str(k)
        if key == wrapper:
            continue
        if isinstance(v, torch.Tensor) and v.numel() == 1 and v.dim() == 0:
            v = v.item()
        if isinstance(v, bool | int | float) or (isinstance(v, str) and len(v) <= _MAX_META_STR):
            meta[key] = v
        else:
            other.append(key)
    if other:
        meta["other_keys"] = other
    return meta


def _own(t: torch.Tensor) -> torch.Tensor:
    """A compact, contiguous copy that shares no storage (and no mmap) with anything."""
    t = t.detach()
    if t.layout != torch.strided or t.is_quantized:
        return t.clone()
    return torch.empty_like(t, memory_format=torch.contiguous_format).copy_(t)
