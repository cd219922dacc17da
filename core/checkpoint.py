"""Open any checkpoint container safely and return its weights as a flat state dict.

Containers (see docs/checkpoints.md): `torch.save` zip archives whatever the extension,
old non-zip `torch.save` pickles, a tar or zip archive holding an unpacked zip checkpoint
folder (`data.pkl`, `data/0`, ..., `version`), that folder itself, and safetensors files.
The format is told by the bytes, never by the file name.

Safety: pickles are only ever loaded with `torch.load(weights_only=True)`. When that refuses,
`NeedsTrustError` names the globals the file wants (found by disassembling the pickle, never by
running it); only `open_checkpoint(..., trust=True)` unpickles fully.

Memory: zip checkpoints are memory-mapped, and only the weights are copied out, so a large
optimizer state stored beside them is never read into RAM.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import pickle
import pickletools
import shutil
import struct
import tarfile
import tempfile
import types
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import torch

FORMATS = ("torch-zip", "torch-legacy", "archive-folder", "folder", "safetensors")

WRAPPER_KEYS = ("network", "state_dict", "model", "model_state_dict")
PREFIXES = ("module.", "_orig_mod.", "model.")
V = TypeVar("V")

# Top-level keys that hold tensors but are never the weights.
_NOT_WEIGHTS = frozenset(
    {"optimizer", "optimizer_state_dict", "optim", "opt", "scheduler", "lr_scheduler", "scaler"}
)
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_ALIGN = 64  # torch aligns zip records to 64 bytes so that mmap gives aligned tensors
_MAX_WRAPPER_DEPTH = 4
_MAX_ARCHIVE_DEPTH = 4  # folders above data.pkl inside an archive
_MAX_FLATTEN_DEPTH = 8
_MAX_META_STR = 200
_SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024

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


# --------------------------------------------------------------------------------------------
# Errors and result


class CheckpointError(Exception):
    """A checkpoint could not be opened. `str(e)` is the human-readable reason."""

    def __init__(self, reason: str, path: str | os.PathLike[str] = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = str(path)

    def __str__(self) -> str:
        return self.reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.reason, self.path))


class NotACheckpointError(CheckpointError):
    """The file is not a checkpoint at all; `looks_like` says what it seems to be instead."""

    def __init__(
        self, reason: str, path: str | os.PathLike[str] = "", looks_like: str | None = None
    ) -> None:
        super().__init__(reason, path)
        self.looks_like = looks_like

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.reason, self.path, self.looks_like))


class NeedsTrustError(CheckpointError):
    """The pickle wants to import globals that weights-only loading refuses (`globals`)."""

    def __init__(
        self, reason: str, path: str | os.PathLike[str] = "", globals: Sequence[str] = ()
    ) -> None:
        super().__init__(reason, path)
        self.globals = list(globals)

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.reason, self.path, self.globals))


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


# --------------------------------------------------------------------------------------------
# Sniffing


@dataclass
class _Sniffed:
    format: str
    root: str = ""  # archive-folder: member prefix of the checkpoint folder ("a/b/")
    folder: Path | None = None  # folder: the folder holding data.pkl
    tar: bool = False  # archive-folder: tar (else zip)


def sniff_format(path: str | os.PathLike[str]) -> str:
    """The container format of `path` (one of FORMATS), judged by its bytes.

    Raises NotACheckpointError (with `looks_like`) for anything else, CheckpointError for a
    missing path.
    """
    return _sniff(Path(path)).format


def _sniff(path: Path) -> _Sniffed:
    if not path.exists():
        raise CheckpointError("no such file", path)
    if path.is_dir():
        return _Sniffed("folder", folder=_find_checkpoint_folder(path))
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        raise CheckpointError(f"cannot read the file: {e.strerror or e}", path) from None
    if size == 0:
        raise NotACheckpointError("not a checkpoint: the file is empty", path, "empty file")
    if head.startswith(_ZIP_MAGICS):
        return _sniff_zip(path, head)
    if _is_torch_legacy(head):
        return _Sniffed("torch-legacy")
    if _looks_like_safetensors(path, head, size):
        return _Sniffed("safetensors")
    if head[257:262] == b"ustar" or head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")):
        return _sniff_tar(path, head)
    looks = _describe(head)
    raise NotACheckpointError(f"not a checkpoint: looks like {looks}", path, looks)


def _is_torch_legacy(head: bytes) -> bool:
    """Old `torch.save` files are several pickles in a row, the first being a magic number."""
    if not head.startswith(b"\x80"):
        return False
    try:
        first = _NoGlobalsUnpickler(io.BytesIO(head)).load()
    except Exception:
        return False
    return type(first) is int and first == _TORCH_LEGACY_MAGIC


class _NoGlobalsUnpickler(pickle.Unpickler):
    """Unpickles plain data only; used to read the legacy magic number."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"global {module}.{name} not allowed")


def _looks_like_safetensors(path: Path, head: bytes, size: int) -> bool:
    if size < 10 or head[8:9] != b"{":
        return False
    (n,) = struct.unpack("<Q", head[:8])
    if n > _SAFETENSORS_MAX_HEADER:
        return False
    if n > size - 8:
        raise NotACheckpointError(
            f"truncated safetensors file: header wants {n} bytes, the file has {size - 8}",
            path,
            "a truncated safetensors file",
        )
    return True


def _sniff_zip(path: Path, head: bytes) -> _Sniffed:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        first = _first_zip_member_name(head)
        if first is not None and _is_torch_record(first):
            raise NotACheckpointError(
                f"truncated torch zip archive: {e}", path, "a truncated torch zip"
            ) from None
        raise NotACheckpointError(
            f"not a checkpoint: broken or truncated zip archive: {e}",
            path,
            "a truncated zip archive",
        ) from None
    names = [i.filename for i in infos]
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1:
        top = next(iter(tops))
        if f"{top}/constants.pkl" in names or any(n.startswith(f"{top}/code/") for n in names):
            raise NotACheckpointError(
                "not a checkpoint: a TorchScript model (torch.jit.save); export its state_dict",
                path,
                "a TorchScript model",
            )
        stored = all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        if f"{top}/data.pkl" in names and stored:
            return _Sniffed("torch-zip")
    root = _single_root(path, names, "zip archive")
    if root is None:
        if names and all(n.endswith(".npy") for n in names):
            looks = "a NumPy .npz archive"
        else:
            looks = "a zip archive without a checkpoint inside"
        raise NotACheckpointError(f"not a checkpoint: {looks}", path, looks)
    return _Sniffed("archive-folder", root=root, tar=False)


def _sniff_tar(path: Path, head: bytes) -> _Sniffed:
    try:
        with tarfile.open(path, "r:*") as tf:
            members = tf.getmembers()
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        if head[257:262] == b"ustar":
            raise NotACheckpointError(
                f"not a checkpoint: broken or truncated tar archive: {e}",
                path,
                "a truncated tar archive",
            ) from None
        looks = _describe(head)
        raise NotACheckpointError(f"not a checkpoint: looks like {looks}", path, looks) from None
    names = [m.name for m in members if m.isfile()]
    if {"pickle", "storages", "tensors"} <= set(names):
        raise CheckpointError(
            "a pre-0.4 torch tar checkpoint: this format is not supported; re-save it with a "
            "recent torch",
            path,
        )
    root = _single_root(path, names, "tar archive")
    if root is None:
        looks = "a tar archive without a checkpoint inside"
        raise NotACheckpointError(f"not a checkpoint: {looks}", path, looks)
    return _Sniffed("archive-folder", root=root, tar=True)


def _single_root(path: Path, names: Sequence[str], what: str) -> str | None:
    """The member prefix of the one checkpoint folder (holding data.pkl) in an archive."""
    roots = sorted(
        n[: -len("data.pkl")]
        for n in names
        if (n == "data.pkl" or n.endswith("/data.pkl")) and n.count("/") <= _MAX_ARCHIVE_DEPTH
    )
    if not roots:
        return None
    if len(roots) > 1:
        shown = ", ".join(r or "./" for r in roots[:5])
        raise CheckpointError(
            f"the {what} holds {len(roots)} checkpoint folders ({shown}); unpack it and open one",
            path,
        )
    return roots[0]


def _first_zip_member_name(head: bytes) -> str | None:
    if not head.startswith(b"PK\x03\x04") or len(head) < 30:
        return None
    n = struct.unpack("<H", head[26:28])[0]
    return head[30 : 30 + n].decode("utf-8", "replace")


def _is_torch_record(name: str) -> bool:
    return name.endswith(("data.pkl", "/.format_version", "/byteorder", "/version")) or (
        "/data/" in name
    )


def _find_checkpoint_folder(path: Path) -> Path:
    """`path` itself when it holds data.pkl, else the one folder below it (two levels) that does."""
    if (path / "data.pkl").is_file():
        return path
    found = sorted(
        {
            p.parent
            for pattern in ("*/data.pkl", "*/*/data.pkl")
            for p in path.glob(pattern)
            if p.is_file()
        }
    )
    if not found:
        looks = "a folder without a checkpoint"
        raise NotACheckpointError(f"not a checkpoint: {looks} (no data.pkl)", path, looks)
    if len(found) > 1:
        shown = ", ".join(str(p.relative_to(path)) for p in found[:5])
        raise CheckpointError(
            f"the folder holds {len(found)} checkpoint folders ({shown}); open one of them", path
        )
    return found[0]


def _describe(head: bytes) -> str:
    """What a non-checkpoint file looks like, from its first bytes."""
    signatures = (
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"\x89PNG\r\n\x1a\n", "a PNG image"),
        (b"GIF8", "a GIF image"),
        (b"BM", "a BMP image"),
        (b"%PDF", "a PDF document"),
        (b"\x93NUMPY", "a NumPy .npy array"),
        (b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras?)"),
        (b"\x1f\x8b", "a gzip-compressed file"),
        (b"BZh", "a bzip2-compressed file"),
        (b"\xfd7zXZ\x00", "an xz-compressed file"),
        (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
        (b"Rar!", "a RAR archive"),
        (b"\x7fELF", "an executable"),
        (b"\x80", "a Python pickle (not made by torch.save)"),
    )
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    for magic, what in signatures:
        if head.startswith(magic):
            return what
    text = _as_text(head)
    if text is None:
        return "random bytes"
    stripped = text.lstrip().lower()
    if stripped.startswith("version https://git-lfs"):
        return "a Git LFS pointer (the real file was never downloaded)"
    if stripped.startswith(("<!doctype html", "<html")):
        return "HTML text (a web page: a failed download?)"
    if stripped.startswith(("{", "[")):
        return "JSON text"
    return "text"


def _as_text(head: bytes) -> str | None:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # a multi-byte char cut at the end is fine
            return None
        text = head[: e.start].decode("utf-8")
    if not text:
        return None
    printable = sum(c.isprintable() or c in "\r\n\t" for c in text)
    return text if printable / len(text) > 0.95 else None


# --------------------------------------------------------------------------------------------
# Opening


def open_checkpoint(path: str | os.PathLike[str], trust: bool = False) -> LoadedCheckpoint:
    """Open a checkpoint of any supported container and return its weights.

    Pickles are loaded weights-only; when that refuses, NeedsTrustError is raised unless
    `trust` is True, in which case the file is fully unpickled (it can run code!).
    Raises CheckpointError (or a subclass) for anything that is not a readable checkpoint.
    """
    p = Path(path)
    sniffed = _sniff(p)
    meta: dict[str, Any] = {}
    trusted = False
    if sniffed.format == "safetensors":
        tensors, st_meta = _read_safetensors(p)
        if st_meta:
            meta["safetensors_metadata"] = st_meta
        extracted = _extract(tensors, p)
    elif sniffed.format in ("torch-zip", "torch-legacy"):
        obj, trusted = _torch_load(p, p, trust, zip_file=sniffed.format == "torch-zip")
        extracted = _extract(obj, p)
        del obj  # the mmap of the file (and any optimizer state) goes with it
    else:
        extracted, trusted = _open_unpacked(p, sniffed, trust, meta)
    state_dict, wrapper, prefix, found_meta = extracted
    meta.update(found_meta)
    return LoadedCheckpoint(
        p, sniffed.format, state_dict, wrapper, prefix, _size_of(p), meta, trusted
    )


def _open_unpacked(
    p: Path, sniffed: _Sniffed, trust: bool, meta: dict[str, Any]
) -> tuple[tuple[dict[str, torch.Tensor], str | None, str | None, dict[str, Any]], bool]:
    """An unpacked checkpoint folder (on disk or in an archive): repack it as torch does."""
    with tempfile.TemporaryDirectory(prefix="posescope-") as tmp:
        repacked = Path(tmp) / "repacked.pth"
        if sniffed.format == "folder":
            assert sniffed.folder is not None
            _repack(p, repacked, _folder_records(sniffed.folder))
            if sniffed.folder != p:
                meta["inner_folder"] = sniffed.folder.relative_to(p).as_posix()
        elif sniffed.tar:
            with tarfile.open(p, "r:*") as tf:
                _repack(p, repacked, _tar_records(tf, sniffed.root))
            meta["inner_folder"] = sniffed.root.rstrip("/") or "."
        else:
            with zipfile.ZipFile(p) as zf:
                _repack(p, repacked, _zip_records(zf, sniffed.root))
            meta["inner_folder"] = sniffed.root.rstrip("/") or "."
        obj, trusted = _torch_load(repacked, p, trust, zip_file=True)
        # Copy the weights out before the temporary file goes away.
        extracted = _extract(obj, p)
        del obj
    return extracted, trusted


def _size_of(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


# --- torch.load -----------------------------------------------------------------------------


def _torch_load(file: Path, shown: Path, trust: bool, zip_file: bool) -> tuple[Any, bool]:
    """torch.load weights-only (mmap for zip files); a full unpickle only if `trust`.

    Returns (object, whether the full unpickle was needed).
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(file, map_location="cpu", weights_only=True, mmap=zip_file or None)
        return obj, False
    except pickle.UnpicklingError as e:
        if "weights only load failed" not in str(e).lower():
            raise _load_error(e, shown, zip_file) from None
        refusal = e
    except Exception as e:
        raise _load_error(e, shown, zip_file) from None
    if not trust:
        wanted = _unsafe_globals(file, zip_file)
        if wanted:
            shown_globals = ", ".join(wanted[:8])
            if len(wanted) > 8:
                shown_globals += f" and {len(wanted) - 8} more"
            reason = f"refusing to unpickle: the file wants to import {shown_globals}"
        else:
            reason = (
                "refusing to unpickle: weights-only loading cannot read this file "
                f"({_weights_only_detail(refusal)}), though it names no unsafe imports"
            )
        raise NeedsTrustError(
            reason + "; re-run with --trust only if you trust its source", shown, wanted
        )
    try:
        obj = torch.load(
            file,
            map_location="cpu",
            weights_only=False,
            mmap=zip_file or None,
            pickle_module=_LENIENT_PICKLE,
        )
    except Exception as e:
        raise CheckpointError(f"trusted unpickling failed: {_summary(e)}", shown) from None
    return obj, True


def _load_error(e: BaseException, path: Path, zip_file: bool) -> CheckpointError:
    text = _summary(e)
    low = text.lower()
    if isinstance(e, EOFError) or any(
        s in low for s in ("central directory", "truncat", "unexpected end", "ran out of input")
    ):
        kind = "torch zip archive" if zip_file else "torch legacy pickle"
        return NotACheckpointError(f"truncated {kind}: {text}", path, f"a truncated {kind}")
    if isinstance(e, MemoryError):
        return CheckpointError("out of memory while loading the checkpoint", path)
    return CheckpointError(f"cannot load the checkpoint: {text}", path)


def _summary(e: BaseException, limit: int = 300) -> str:
    """One line from an exception: its type and the first non-empty line of its message."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _weights_only_detail(e: BaseException) -> str:
    """torch's own reason inside its long 'Weights only load failed' message."""
    paragraphs = [p.strip() for p in str(e).split("\n\n") if p.strip()]
    useful = [
        p
        for p in paragraphs[1:]
        if not p.startswith(("Check the documentation", "Please file an issue"))
    ]
    text = " ".join(" ".join(useful).split()) or "weights-only loading failed"
    return text[:300]


# --- unsafe globals, found without running anything ----------------------------------------


def _unsafe_globals(file: Path, zip_file: bool) -> list[str]:
    """Globals the pickle(s) in `file` import that weights-only loading does not allow."""
    found: list[str] = []
    try:
        if zip_file:
            with zipfile.ZipFile(file) as zf:
                name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
                found = _pickle_globals(io.BytesIO(zf.read(name)), max_pickles=1)
        else:
            with open(file, "rb") as f:
                # magic number, protocol, sys_info, the object, the storage keys
                found = _pickle_globals(f, max_pickles=5)
    except Exception:
        found = []
    if zip_file and hasattr(torch.serialization, "get_unsafe_globals_in_checkpoint"):
        with contextlib.suppress(Exception):
            found += torch.serialization.get_unsafe_globals_in_checkpoint(file)
    allowed = _allowed_globals()
    return sorted({g for g in found if g not in allowed})


def _allowed_globals() -> set[str]:
    try:
        from torch import _weights_only_unpickler as wou

        allowed = set(wou._get_allowed_globals())
        allowed |= set(wou._get_user_allowed_globals())
        return allowed
    except Exception:  # private API: fall back to the obvious ones
        return {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "builtins.set"}


def _pickle_globals(f: IO[bytes], max_pickles: int) -> list[str]:
    """Disassemble up to `max_pickles` consecutive pickles and list the globals they import.

    Handles GLOBAL, INST and STACK_GLOBAL (whose module and name strings may come through the
    memo). Nothing is executed.
    """
    found: list[str] = []
    for _ in range(max_pickles):
        stack: list[Any] = []
        memo: dict[int, Any] = {}
        try:
            for op, arg, _pos in pickletools.genops(f):
                name = op.name
                if name in ("GLOBAL", "INST"):
                    module, _, attr = str(arg).partition(" ")
                    found.append(f"{module}.{attr}")
                    stack.append(None)
                elif name == "STACK_GLOBAL":
                    module, attr = (stack[-2], stack[-1]) if len(stack) >= 2 else (None, None)
                    found.append(f"{module}.{attr}" if module and attr else "<dynamic global>")
                    stack[-2:] = [None]
                elif name in ("MEMOIZE",):
                    memo[len(memo)] = stack[-1] if stack else None
                elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[int(arg)] = stack[-1] if stack else None
                elif name in ("GET", "BINGET", "LONG_BINGET"):
                    stack.append(memo.get(int(arg)))
                elif isinstance(arg, str):
                    stack.append(arg)
                elif op.stack_after:
                    stack.append(None)
                if name == "STOP":
                    break
        except Exception:
            break
    return found


# --- trusted unpickling ---------------------------------------------------------------------


class _Stub:
    """Stands in for a class or function the trusted pickle names but this process lacks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._stub_args = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = state[0]
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self._stub_state = state


class _LenientUnpickler(pickle.Unpickler):
    """Full unpickler (trust only) that replaces missing classes, e.g. `__main__.Config`."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return type(name, (_Stub,), {"__module__": module, "__qualname__": name})


_LENIENT_PICKLE = types.SimpleNamespace(
    __name__="posescope_lenient_pickle", Unpickler=_LenientUnpickler, load=pickle.load
)


# --- repacking an unpacked folder into a zip torch.load accepts -----------------------------

_Record = tuple[str, int, Callable[[], IO[bytes]]]  # name relative to the folder, size, opener


def _folder_records(folder: Path) -> Iterator[_Record]:
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            yield (
                f.relative_to(folder).as_posix(),
                f.stat().st_size,
                functools.partial(f.open, "rb"),
            )


def _tar_records(tf: tarfile.TarFile, root: str) -> Iterator[_Record]:
    for m in tf.getmembers():
        if m.isfile() and m.name.startswith(root):

            def opener(m: tarfile.TarInfo = m) -> IO[bytes]:
                f = tf.extractfile(m)
                assert f is not None
                return f

            yield m.name[len(root) :], m.size, opener


def _zip_records(zf: zipfile.ZipFile, root: str) -> Iterator[_Record]:
    for info in zf.infolist():
        if not info.is_dir() and info.filename.startswith(root):
            yield info.filename[len(root) :], info.file_size, lambda i=info: zf.open(i)


def _repack(shown: Path, out: Path, records: Iterator[_Record]) -> None:
    """Write the records as a STORED, 64-byte aligned zip under one top folder, as torch does."""
    try:
        seen: set[str] = set()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as zout:
            for name, size, opener in records:
                with opener() as src:
                    _write_aligned(zout, f"archive/{name}", src, size)
                seen.add(name)
            if "version" not in seen and ".data/version" not in seen:
                # A folder that lost its version record: torch needs one; 3 is what torch writes.
                _write_aligned(zout, "archive/version", io.BytesIO(b"3\n"), 2)
    except (OSError, tarfile.TarError, zipfile.BadZipFile, ValueError, EOFError) as e:
        raise CheckpointError(
            f"cannot read the unpacked checkpoint: {_summary(e)}", shown
        ) from None


def _write_aligned(zout: zipfile.ZipFile, name: str, src: IO[bytes], size: int) -> None:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = size
    zip64 = size * 1.05 > zipfile.ZIP64_LIMIT  # zipfile then appends a 20-byte zip64 field
    assert zout.fp is not None
    data_start = zout.fp.tell() + 30 + len(name.encode("utf-8")) + 4 + (20 if zip64 else 0)
    pad = -data_start % _ALIGN
    info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
    with zout.open(info, "w") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


# --- safetensors ----------------------------------------------------------------------------


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
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


# --- from the unpickled object to a flat state dict -----------------------------------------


def _extract(
    obj: Any, path: Path
) -> tuple[dict[str, torch.Tensor], str | None, str | None, dict[str, Any]]:
    """(state_dict, wrapper, prefix, meta) from whatever the file held."""
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
    # Own copies: drop the mmap of the file and any storage shared with what we leave behind.
    state_dict = {k: _own(v) for k, v in flat.items()}
    return state_dict, (chain[0] if chain else None), prefix, meta


def _as_mapping(obj: Any) -> Any:
    """A (possibly stubbed, trusted-only) nn.Module becomes its state dict."""
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, _Stub) and "_modules" in vars(obj):
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
    if isinstance(value, _Stub):
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
