"""Hostile files, built at test time (used by tests/test_hostile.py).

Bombs are made cheaply: a deflate stream of N MB of zeros is one flushed block of 1 MB of
zeros repeated (a full flush makes blocks independent) and an empty final block, so a 2 GB
bomb is a few MB and takes milliseconds to build. Checksums are left wrong where PoseScope
must refuse a file before it would ever read that far.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import torch

from tests import factory

MB = 1024 * 1024
_ZERO_BLOCK: bytes | None = None


def _zero_block() -> bytes:
    global _ZERO_BLOCK
    if _ZERO_BLOCK is None:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        _ZERO_BLOCK = c.compress(bytes(MB)) + c.flush(zlib.Z_FULL_FLUSH)
    return _ZERO_BLOCK


def deflate(prefix: bytes, zeros_mb: int, suffix: bytes = b"") -> bytes:
    """Raw deflate of prefix + zeros_mb MB of zeros + suffix (cheap at any size)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    c2 = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = c2.compress(suffix) + c2.flush(zlib.Z_FINISH) if suffix else b"\x03\x00"
    return head + _zero_block() * zeros_mb + tail


def raw_zip(path: Path, members: list[tuple[str, bytes, int, int]]) -> Path:
    """A zip written by hand: (name, data as stored, uncompressed size, method 0 or 8)."""
    out = io.BytesIO()
    central = b""
    for name, data, size, method in members:
        n = name.encode()
        offset = out.tell()
        crc = zlib.crc32(data) if method == 0 else 0
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc,
                              len(data), size, len(n), 0) + n + data)  # fmt: skip
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21,
                               crc, len(data), size, len(n), 0, 0, 0, 0, 0, offset) + n  # fmt: skip
    start = out.tell()
    out.write(central)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members),
                          len(central), start, 0))  # fmt: skip
    path.write_bytes(out.getvalue())
    return path


def _torch_zip_members(sd: dict[str, torch.Tensor]) -> dict[str, bytes]:
    buf = io.BytesIO()
    torch.save(sd, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        return {i.filename.split("/", 1)[1]: zf.read(i) for i in zf.infolist()}


def zip_bomb_pickle(d: Path) -> Path:
    """A deflated zip whose data.pkl inflates to 2 GB."""
    return raw_zip(d / "bomb.pth", [("archive/data.pkl", deflate(b"", 2048), 2048 * MB, 8)])


def zip_bomb_folder(d: Path) -> Path:
    """A deflated zip of a checkpoint folder whose data/0 inflates to 2 GB."""
    members = _torch_zip_members({"w": torch.zeros(4)})
    entries = [(f"ckpt/{k}", v, len(v), 0) for k, v in members.items() if k != "data/0"]
    entries.append(("ckpt/data/0", deflate(b"", 2048), 2048 * MB, 8))
    return raw_zip(d / "bomb.zip", entries)


def tar_gz_bomb(d: Path) -> Path:
    """A .tar.gz of a checkpoint folder whose data/0 holds 2 GB of zeros."""
    members = _torch_zip_members({"w": torch.zeros(4)})
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        for name, data in members.items():
            if name != "data/0":
                info = tarfile.TarInfo(f"ckpt/{name}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        big = tarfile.TarInfo("ckpt/data/0")
        big.size = 2048 * MB
        tf.addfile(big)  # the header only: the zeros follow in the deflate stream
    head = tar.getvalue()
    head = head.rstrip(b"\0")  # without the closing blocks (a header block ends in zeros)
    head += bytes(-len(head) % 512)
    body = deflate(head, 2048, bytes(1024))
    gz = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + body + struct.pack("<II", 0, 0)
    p = d / "bomb.tar.gz"
    p.write_bytes(gz)
    return p


def tar_declaring_12_gb(d: Path) -> Path:
    """A tar whose data/0 member declares 12 GB (what a GNU sparse member expands to)."""
    members = _torch_zip_members({"w": torch.zeros(4)})
    p = d / "sparse.tar"
    with tarfile.open(p, "w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in members.items():
            if name != "data/0":
                info = tarfile.TarInfo(f"ckpt/{name}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        big = tarfile.TarInfo("ckpt/data/0")
        big.size = 12 * 1024 * MB
        tf.addfile(big)
    return p


def sparse_folder(d: Path) -> Path:
    """A checkpoint folder whose data/0 is a 12 GB sparse file."""
    folder = factory.save_folder({"w": torch.zeros(4)}, d / "sparse_ckpt")
    with open(folder / "data" / "0", "r+b") as f:
        f.truncate(12 * 1024 * MB)
    return folder


def symlink_folder(d: Path) -> Path:
    """A checkpoint folder of XS whose data/0 is a link to /etc/passwd."""
    folder = factory.save_folder(factory.state_dict_for("XS"), d / "xs_ckpt")
    (folder / "data" / "0").unlink()
    os.symlink("/etc/passwd", folder / "data" / "0")
    return folder


def meta_wide(d: Path) -> Path:
    """XS's names with meta tensors 16 times wider (shapes without data)."""
    sd = factory.state_dict_for("XS")
    meta = {k: torch.empty([s * 16 if s > 3 else s for s in v.shape], device="meta")
            for k, v in sd.items()}  # fmt: skip
    return factory.save_torch_zip(meta, d / "meta.pth")


def stride0_legacy(d: Path) -> Path:
    """A legacy pickle: one float viewed as 10**12 elements with stride 0 (4 TB once copied)."""
    return factory.save_torch_legacy({"w": torch.ones(1).expand(10**12)}, d / "giant.pth")


def stride0_zip(d: Path) -> Path:
    return factory.save_torch_zip({"w": torch.ones(1).expand(1_500_000_000)}, d / "giant.pth")


def views_of_one_storage(d: Path) -> Path:
    base = torch.zeros(MB)  # 4 MB
    return factory.save_torch_zip({f"w{i}": base[i:] for i in range(1500)}, d / "views.pth")


class _Alloc:
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (bytearray, (8 << 30,))


def bytearray_bomb(d: Path) -> Path:
    """A 1 KB torch zip whose pickle builds an 8 GiB bytearray (an allowed global)."""
    data = pickle.dumps({"w": _Alloc()}, protocol=2)
    return raw_zip(d / "alloc.pth", [("archive/data.pkl", data, len(data), 0),
                                     ("archive/version", b"3\n", 2, 0)])  # fmt: skip


def many_entries(d: Path, n: int = 30_000) -> Path:
    p = d / "many.zip"
    with zipfile.ZipFile(p, "w") as zf:
        for i in range(n):
            zf.writestr(f"x/{i}", b"")
    return p


def safetensors_raw(d: Path, name: str, header: Any, data: bytes = bytes(16)) -> Path:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    p = d / f"{name}.safetensors"
    p.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return p


SAFETENSORS_HEADERS: dict[str, Any] = {
    "offsets-1e400": b'{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1e400]}}',
    "negative-shape": {"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}},
    "overflow-shape": {"a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 16]}},
    "dtype-list": {"a": {"dtype": ["F32"], "shape": [4], "data_offsets": [0, 16]}},
    "metadata-not-string": {"__metadata__": {"k": 3},
                            "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
    "overlapping": {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}},
}  # fmt: skip


def safetensors_views(d: Path) -> Path:
    """1500 tensors over the same 4 MB."""
    header = {f"w{i}": {"dtype": "F32", "shape": [MB], "data_offsets": [0, 4 * MB]}
              for i in range(1500)}  # fmt: skip
    return safetensors_raw(d, "views", header, bytes(4 * MB))


def injected_names(d: Path) -> Path:
    """A safetensors file whose tensor name forges a red `error:` line in a terminal."""
    from safetensors.torch import save_file

    p = d / "inject.safetensors"
    save_file({"x\n\x1b[31merror: your disk is failing\r\x1b[0m": torch.zeros(2)}, str(p))
    return p


def png_of(d: Path, width: int, height: int, name: str = "huge.png") -> Path:
    """A PNG header declaring width x height (grey), with a zero IDAT; a few MB at most."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = b"\x78\x01" + deflate(b"", 1) + b"\0\0\0\0"
    p = d / name
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                  + chunk(b"IEND", b""))  # fmt: skip
    return p


def raw_bytes(d: Path, data: bytes) -> Path:
    p = d / "bytes.pth"
    p.write_bytes(data)
    return p


def protocol4(d: Path) -> Path:
    """A valid XS checkpoint saved with pickle protocol 4 (weights-only loading cannot read)."""
    p = d / "xs_p4.pth"
    torch.save({"network": factory.state_dict_for("XS")}, p, pickle_protocol=4)
    return p


def zip_declaring_a_million(d: Path) -> Path:
    """A zip whose zip64 end record declares a million entries (parsing them took 57 s)."""
    p = raw_zip(d / "million.zip", [("a", b"x", 1, 0)])
    data = p.read_bytes()
    at = data.rfind(b"PK\x05\x06")
    cd_size, cd_start = struct.unpack("<II", data[at + 12 : at + 20])
    z64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, 10**6, 10**6, cd_size,
                      cd_start)  # fmt: skip
    locator = struct.pack("<IIQI", 0x07064B50, 0, at, 1)
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, cd_size, cd_start, 0)
    p.write_bytes(data[:at] + z64 + locator + eocd)
    return p
