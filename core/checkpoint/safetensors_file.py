"""Reading safetensors files through the `safetensors` library (mmap, strict header checks).

The library validates the header (offsets in order, no overlap, sizes that match the shapes,
metadata as strings) far more strictly than a hand-written reader; its errors are turned into
PoseScope's one-line reasons here. Declared sizes are checked against the budget before any
tensor is read.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from posescope.core.checkpoint.budgets import Budget, fmt_bytes
from posescope.core.checkpoint.errors import CheckpointError, NotACheckpointError, TooLargeError

_MAX_META_STR = 200
_DTYPE_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2,
                "I16": 2, "U16": 2}  # fmt: skip
_TRUNCATED = ("incomplete", "too small", "unexpected end", "eof")


def read_safetensors(
    path: Path, budget: Budget | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors (own copies) and the `__metadata__` strings (each cut to 200 chars)."""
    budget = budget or Budget()
    limit = budget.for_source(path.stat().st_size)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            keys = list(f.keys())
            total = 0
            for key in keys:
                piece = f.get_slice(key)
                n = math.prod(piece.get_shape()) * _DTYPE_BYTES.get(piece.get_dtype(), 1)
                total += n
                if total > limit:
                    raise TooLargeError(
                        f"the tensors need {fmt_bytes(total)}, over the {fmt_bytes(limit)} "
                        "allowed for this file (see --max-size)",
                        path, key, total, limit,
                    )  # fmt: skip
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in keys}
    except SafetensorError as e:
        raise _translate(e, path) from None
    except (TypeError, ValueError, OverflowError) as e:  # dtype this torch lacks, odd header
        raise NotACheckpointError(
            f"corrupt safetensors file: {_first_line(e)}", path, "a corrupt safetensors file"
        ) from None
    except OSError as e:
        raise CheckpointError(f"cannot read the file: {e.strerror or e}", path) from None
    small_meta = {str(k)[:_MAX_META_STR]: str(v)[:_MAX_META_STR] for k, v in metadata.items()}
    return tensors, small_meta


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:300]


def _translate(e: BaseException, path: Path) -> NotACheckpointError:
    text = _first_line(e)
    if any(word in text.lower() for word in _TRUNCATED):
        return NotACheckpointError(
            f"truncated safetensors file: {text}", path, "a truncated safetensors file"
        )
    return NotACheckpointError(
        f"corrupt safetensors file: {text}", path, "a corrupt safetensors file"
    )
