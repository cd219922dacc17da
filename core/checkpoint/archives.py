"""Unpacked checkpoint folders, on disk or inside a tar/zip archive, repacked as torch does."""

from __future__ import annotations

import functools
import io
import shutil
import struct
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, cast

import torch

from posescope.core.checkpoint.budgets import Budget
from posescope.core.checkpoint.errors import CheckpointError, summary
from posescope.core.checkpoint.pickles import torch_load
from posescope.core.checkpoint.sniff import Sniffed
from posescope.core.checkpoint.unwrap import extract

_ALIGN = 64  # torch aligns zip records to 64 bytes so that mmap gives aligned tensors


def open_unpacked(
    p: Path, sniffed: Sniffed, trust: bool, meta: dict[str, Any], budget: Budget
) -> tuple[tuple[dict[str, torch.Tensor], str | None, str | None, dict[str, Any]], bool]:
    """An unpacked checkpoint folder (on disk or in an archive): repack it as torch does.

    The sizes were checked when it was sniffed (budgets.py), and every record is copied at
    most to its declared size, so the temporary file stays within the budget; it is removed
    on every way out (an error, Ctrl-C, SIGTERM through the CLI's handler)."""
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
        obj, trusted = torch_load(repacked, p, trust, zip_file=True, budget=budget)
        # Copy the weights out before the temporary file goes away.
        extracted = extract(obj, p, budget, max(sniffed.unpacked, sniffed.on_disk))
        del obj
    return extracted, trusted


# --- repacking an unpacked folder into a zip torch.load accepts -----------------------------

_Record = tuple[str, int, Callable[[], IO[bytes]]]  # name relative to the folder, size, opener


def _folder_records(folder: Path) -> Iterator[_Record]:
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            yield (
                f.relative_to(folder).as_posix(),
                f.stat().st_size,
                cast("Callable[[], IO[bytes]]", functools.partial(f.open, "rb")),
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

            def opener(i: zipfile.ZipInfo = info) -> IO[bytes]:
                return zf.open(i)

            yield info.filename[len(root) :], info.file_size, opener


def _repack(shown: Path, out: Path, records: Iterator[_Record]) -> None:
    """Write the records as a STORED, 64-byte aligned zip under one top folder, as torch does."""
    try:
        seen: set[str] = set()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as zout:
            for name, size, opener in records:
                with opener() as src:
                    bounded = cast(IO[bytes], _Bounded(src, size))  # a binary file object
                    _write_aligned(zout, f"archive/{name}", bounded, size)
                seen.add(name)
            if "version" not in seen and ".data/version" not in seen:
                # A folder that lost its version record: torch needs one; 3 is what torch writes.
                _write_aligned(zout, "archive/version", io.BytesIO(b"3\n"), 2)
    except (OSError, tarfile.TarError, zipfile.BadZipFile, ValueError, EOFError) as e:
        raise CheckpointError(f"cannot read the unpacked checkpoint: {summary(e)}", shown) from None


class _Bounded(io.RawIOBase):
    """Reads at most `size` bytes of `src`: a record never writes more than it declared."""

    def __init__(self, src: IO[bytes], size: int) -> None:
        self._src, self._left = src, size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        data = self._src.read(n) if n else b""
        self._left -= len(data)
        return data


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
