"""Telling a checkpoint container by its bytes (never by its name)."""

from __future__ import annotations

import io
import os
import pickle
import stat
import struct
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posescope.core.checkpoint.budgets import (
    Budget,
    allocated,
    check_entries,
    check_member,
    check_path,
)
from posescope.core.checkpoint.errors import CheckpointError, NotACheckpointError, UnsafePathError

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_MAX_ARCHIVE_DEPTH = 4  # folders above data.pkl inside an archive
_SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024

# --------------------------------------------------------------------------------------------
# Sniffing


@dataclass
class Sniffed:
    format: str
    root: str = ""  # archive-folder: member prefix of the checkpoint folder ("a/b/")
    folder: Path | None = None  # folder: the folder holding data.pkl
    tar: bool = False  # archive-folder: tar (else zip)
    unpacked: int = 0  # bytes the container declares (what repacking it would write)
    on_disk: int = 0  # bytes it takes on disk (allocated: a sparse file counts what it holds)


def sniff_format(path: str | os.PathLike[str], budget: Budget | None = None) -> str:
    """The container format of `path` (one of FORMATS), judged by its bytes.

    Raises NotACheckpointError (with `looks_like`) for anything else, CheckpointError for a
    missing path, UnsafePathError for a FIFO/device/socket, TooLargeError past the budget.
    """
    return sniff(Path(path), budget or Budget()).format


def sniff(path: Path, budget: Budget) -> Sniffed:
    try:
        st = check_path(path)
    except FileNotFoundError:
        raise CheckpointError("no such file", path) from None
    except OSError as e:
        raise CheckpointError(f"cannot read the file: {e.strerror or e}", path) from None
    if stat.S_ISDIR(st.st_mode):
        folder = _find_checkpoint_folder(path)
        unpacked, on_disk = check_folder(folder, budget)
        return Sniffed("folder", folder=folder, unpacked=unpacked, on_disk=on_disk)
    size = st.st_size
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        raise CheckpointError(f"cannot read the file: {e.strerror or e}", path) from None
    if size == 0:
        raise NotACheckpointError("not a checkpoint: the file is empty", path, "empty file")
    if head.startswith(_ZIP_MAGICS):
        return _sized(_sniff_zip(path, head, budget, size), size)
    if _is_torch_legacy(head):
        return _sized(Sniffed("torch-legacy", unpacked=size), size)
    if _looks_like_safetensors(path, head, size):
        return _sized(Sniffed("safetensors", unpacked=size), size)
    if head[257:262] == b"ustar" or head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")):
        return _sized(_sniff_tar(path, head, budget, size), size)
    looks = _describe(head)
    raise NotACheckpointError(f"not a checkpoint: looks like {looks}", path, looks)


def _sized(s: Sniffed, on_disk: int) -> Sniffed:
    s.on_disk = on_disk
    return s


def _zip_entries(path: Path) -> int | None:
    """The entry count the zip's end record declares, read without parsing the directory."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        f.seek(max(0, end - 65536 - 22))
        tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    n = struct.unpack("<H", tail[at + 10 : at + 12])[0]
    z64 = tail.rfind(b"PK\x06\x06", 0, at)
    if n == 0xFFFF and z64 >= 0 and z64 + 56 <= len(tail):
        n = struct.unpack("<Q", tail[z64 + 32 : z64 + 40])[0]
    return n


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


def _sniff_zip(path: Path, head: bytes, budget: Budget, size: int) -> Sniffed:
    try:
        declared = _zip_entries(path)
        if declared is not None:
            check_entries(budget, path, declared)
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
    check_entries(budget, path, len(infos))
    limit, unpacked = budget.for_source(size), 0
    for i in infos:
        unpacked = check_member(budget, path, i.filename, i.file_size, unpacked, limit)
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
            return Sniffed("torch-zip", unpacked=unpacked)
    root = _single_root(path, names, "zip archive")
    if root is None:
        if names and all(n.endswith(".npy") for n in names):
            looks = "a NumPy .npz archive"
        else:
            looks = "a zip archive without a checkpoint inside"
        raise NotACheckpointError(f"not a checkpoint: {looks}", path, looks)
    return Sniffed("archive-folder", root=root, tar=False, unpacked=unpacked)


def _tar_members(path: Path, budget: Budget, size: int) -> tuple[list[tarfile.TarInfo], int]:
    """The members, read header by header: each declared size is checked before the reader
    moves past (inflates) its data, so a bomb is refused at its first header."""
    members: list[tarfile.TarInfo] = []
    limit, unpacked = budget.for_source(size), 0
    with tarfile.open(path, "r:*") as tf:
        for m in tf:
            members.append(m)
            check_entries(budget, path, len(members))
            if m.issym() or m.islnk():
                raise UnsafePathError(
                    f"the tar archive holds a link ({m.name} -> {m.linkname}): links are not "
                    "followed out of a checkpoint",
                    path, "link",
                )  # fmt: skip
            if m.isfile():
                unpacked = check_member(budget, path, m.name, m.size, unpacked, limit)
    return members, unpacked


def _sniff_tar(path: Path, head: bytes, budget: Budget, size: int) -> Sniffed:
    try:
        members, unpacked = _tar_members(path, budget, size)
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
    return Sniffed("archive-folder", root=root, tar=True, unpacked=unpacked)


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


def check_folder(folder: Path, budget: Budget) -> tuple[int, int]:
    """Every entry of a checkpoint folder is a regular file, a folder or a link that stays
    inside; the declared sizes fit the budget. Returns (declared bytes, allocated bytes)."""
    inside = folder.resolve()
    files: list[tuple[str, os.stat_result]] = []
    for entry in sorted(folder.rglob("*")):
        name = entry.relative_to(folder).as_posix()
        if entry.is_symlink():
            target = entry.resolve()
            if not target.is_relative_to(inside):
                raise UnsafePathError(
                    f"{name} is a link to {target}, outside the checkpoint folder", folder, "link"
                )
        st = check_path(entry)
        if stat.S_ISREG(st.st_mode):
            files.append((name, st))
        check_entries(budget, folder, len(files))
    on_disk = sum(allocated(st) for _, st in files)
    limit, unpacked = budget.for_source(on_disk), 0
    for name, st in files:
        unpacked = check_member(budget, folder, name, st.st_size, unpacked, limit)
    return unpacked, on_disk
