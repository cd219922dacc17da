"""Reading safetensors files."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from posescope.core.checkpoint.errors import CheckpointError, NotACheckpointError

_MAX_META_STR = 200
_SAFETENSORS_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
for _name, _attr in (
    ("U16", "uint16"),
    ("U32", "uint32"),
    ("U64", "uint64"),
    ("F8_E4M3", "float8_e4m3fn"),
    ("F8_E5M2", "float8_e5m2"),
):
    if hasattr(torch, _attr):
        _SAFETENSORS_DTYPES[_name] = getattr(torch, _attr)


# --- safetensors ----------------------------------------------------------------------------


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A small safetensors reader: u64 header length, JSON header, raw little-endian data."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            try:
                header = json.loads(f.read(n).decode("utf-8"))
                if not isinstance(header, dict):
                    raise ValueError("the header is not a JSON object")
            except (UnicodeDecodeError, ValueError) as e:
                raise NotACheckpointError(
                    f"corrupt safetensors header: {e}", path, "a corrupt safetensors file"
                ) from None
            base = 8 + n
            metadata = header.pop("__metadata__", None) or {}
            out: dict[str, torch.Tensor] = {}
            for key, entry in header.items():
                out[key] = _read_safetensors_tensor(f, path, key, entry, base, size)
    except OSError as e:
        raise CheckpointError(f"cannot read the file: {e.strerror or e}", path) from None
    small_meta = {str(k): str(v)[:_MAX_META_STR] for k, v in dict(metadata).items()}
    return out, small_meta


def _read_safetensors_tensor(
    f: IO[bytes], path: Path, key: str, entry: Any, base: int, size: int
) -> torch.Tensor:
    try:
        dtype_name = entry["dtype"]
        shape = tuple(int(s) for s in entry["shape"])
        start, end = (int(x) for x in entry["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise NotACheckpointError(
            f"corrupt safetensors header: bad entry for {key!r}", path, "a corrupt safetensors file"
        ) from None
    dtype = _SAFETENSORS_DTYPES.get(dtype_name)
    if dtype is None:
        raise CheckpointError(f"safetensors dtype {dtype_name} of {key!r} is not supported", path)
    nbytes = int(np.prod(shape, dtype=np.int64)) * torch.empty((), dtype=dtype).element_size()
    if end - start != nbytes or start < 0:
        raise NotACheckpointError(
            f"corrupt safetensors file: {key!r} has {end - start} bytes for shape {shape}",
            path,
            "a corrupt safetensors file",
        )
    if base + end > size:
        raise NotACheckpointError(
            f"truncated safetensors file: {key!r} ends past the end of the file",
            path,
            "a truncated safetensors file",
        )
    buf = torch.empty(nbytes, dtype=torch.uint8)
    f.seek(base + start)
    if nbytes and f.readinto(memoryview(buf.numpy())) != nbytes:  # type: ignore[attr-defined]
        raise NotACheckpointError(
            f"truncated safetensors file while reading {key!r}",
            path,
            "a truncated safetensors file",
        )
    return buf.view(dtype).reshape(shape)
