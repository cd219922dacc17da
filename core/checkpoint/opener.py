"""open_checkpoint: sniff the container, load it with the matching reader, unwrap it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from posescope.core.checkpoint.archives import open_unpacked
from posescope.core.checkpoint.budgets import Budget
from posescope.core.checkpoint.pickles import torch_load
from posescope.core.checkpoint.result import LoadedCheckpoint
from posescope.core.checkpoint.safetensors_file import read_safetensors
from posescope.core.checkpoint.sniff import sniff
from posescope.core.checkpoint.unwrap import extract

# --------------------------------------------------------------------------------------------
# Opening


def open_checkpoint(
    path: str | os.PathLike[str], trust: bool = False, max_size: int | None = None
) -> LoadedCheckpoint:
    """Open a checkpoint of any supported container and return its weights.

    Pickles are loaded weights-only; when that refuses, NeedsTrustError is raised unless
    `trust` is True, in which case the file is fully unpickled (it can run code!).
    `max_size` (bytes) caps what the file may unpack to or its tensors need (budgets.py).
    Raises CheckpointError (or a subclass) for anything that is not a readable checkpoint.
    """
    p = Path(path)
    budget = Budget() if max_size is None else Budget(max_size=max_size)
    sniffed = sniff(p, budget)
    source = max(sniffed.unpacked, sniffed.on_disk)
    meta: dict[str, Any] = {}
    trusted = False
    if sniffed.format == "safetensors":
        tensors, st_meta = read_safetensors(p, budget)
        if st_meta:
            meta["safetensors_metadata"] = st_meta
        extracted = extract(tensors, p, budget, source)
    elif sniffed.format in ("torch-zip", "torch-legacy"):
        zip_file = sniffed.format == "torch-zip"
        obj, trusted = torch_load(p, p, trust, zip_file=zip_file, budget=budget)
        extracted = extract(obj, p, budget, source)
        del obj  # the mmap of the file (and any optimizer state) goes with it
    else:
        extracted, trusted = open_unpacked(p, sniffed, trust, meta, budget)
    state_dict, wrapper, prefix, found_meta = extracted
    meta.update(found_meta)
    return LoadedCheckpoint(
        p, sniffed.format, state_dict, wrapper, prefix, _size_of(p), meta, trusted
    )


def _size_of(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size
