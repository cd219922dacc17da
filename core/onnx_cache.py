"""A bounded disk cache of the onnxruntime form's exported models.

Exporting a network to ONNX in memory takes 2-4 s on a 2-core CPU (torch's torch.export-based
exporter), against ~0.2 s for the torch engine's forms; the export depends only on the weights,
the architecture and the form, so it is done once per checkpoint and kept. The key is a hash
of every tensor (name, dtype, shape, bytes), the architecture, the form's options and the
versions of torch and of this cache's format; a changed file is a new key.

The folder is the platform's user cache + posescope/onnx ($POSESCOPE_ONNX_CACHE overrides it;
"off" or "0" turns the cache off). It keeps at most `MAX_FILES` models and `MAX_BYTES` in all,
the least recently used going first. Writes are atomic (a temporary file renamed into place).
The cache never makes a build fail: a folder that cannot be written, a file that cannot be
read, or a file that onnxruntime refuses falls back to exporting again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

import torch

from posescope.core.userdirs import user_cache_dir

log = logging.getLogger(__name__)
S = TypeVar("S")

ENV = "POSESCOPE_ONNX_CACHE"
FORMAT = "2"  # bump when the exported graph changes for the same weights (network_export)
MAX_FILES = 16
MAX_BYTES = 1 << 30
SUFFIX = ".onnx"


def cache_dir() -> Path | None:
    """The cache folder, or None when the cache is turned off."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() in ("0", "off", "false", "no"):
        return None
    if value:
        return Path(value).expanduser()
    return user_cache_dir() / "onnx"


def model_key(tensors: Mapping[str, torch.Tensor], options: Iterable[object]) -> str:
    """A hex digest of the tensors and the options (architecture, form) they are exported with."""
    h = hashlib.blake2b(digest_size=20)
    for part in (FORMAT, torch.__version__, *map(repr, options)):
        h.update(part.encode())
        h.update(b"\0")
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data if t.numel() else b"")
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.suffix == SUFFIX and p.is_file()]
    except OSError:
        return []


def _trim(folder: Path, keep: Path) -> None:
    """Remove the least recently used models beyond MAX_FILES / MAX_BYTES (never `keep`)."""
    entries = []
    for p in _files(folder):
        try:
            st = p.stat()
        except OSError:
            continue
        entries.append((st.st_mtime, st.st_size, p))
    entries.sort(reverse=True)  # newest first
    count = total = 0
    for _, size, p in entries:
        count += 1
        total += size
        if p != keep and (count > MAX_FILES or total > MAX_BYTES):
            p.unlink(missing_ok=True)
            count -= 1
            total -= size


def load(key: str) -> bytes | None:
    """The cached model for `key`, or None (marked as just used when found)."""
    folder = cache_dir()
    if folder is None:
        return None
    path = folder / f"{key}{SUFFIX}"
    try:
        data = path.read_bytes()
        os.utime(path)
    except OSError:
        return None
    return data


def store(key: str, data: bytes) -> Path | None:
    """Keep `data` under `key`; the path, or None when the cache is off or not writable."""
    folder = cache_dir()
    if folder is None or len(data) > MAX_BYTES:
        return None
    path = folder / f"{key}{SUFFIX}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.debug("onnx cache: cannot write %s (%s)", folder, exc)
        return None
    _trim(folder, keep=path)
    return path


def forget(key: str) -> None:
    """Drop a cached model (onnxruntime refused it)."""
    folder = cache_dir()
    if folder is not None:
        (folder / f"{key}{SUFFIX}").unlink(missing_ok=True)


def cached_session(
    key: str, export: Callable[[], bytes], open_session: Callable[[bytes], S]
) -> tuple[S, bool]:
    """An onnxruntime session from the cached model, else from `export()` (then cached).
    Returns (session, whether it came from the cache)."""
    data = load(key)
    if data is not None:
        try:
            return open_session(data), True
        except Exception as exc:  # a damaged or foreign file: export again
            log.info("onnx cache: dropping an unreadable model (%s)", type(exc).__name__)
            forget(key)
    data = export()
    session = open_session(data)  # only a model onnxruntime accepts is kept
    store(key, data)
    return session, False


__all__ = ["ENV", "MAX_BYTES", "MAX_FILES", "cache_dir", "cached_session", "model_key"]
