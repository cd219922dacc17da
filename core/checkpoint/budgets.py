"""The limits a checkpoint must stay within, checked before any work that they bound.

A container says how big its parts are before they are read (zip and tar headers, safetensors
headers, tensor shapes in the pickle). Every such size is checked here against what a pose
checkpoint can plausibly need, so that a small hostile file cannot make PoseScope inflate,
repack or allocate gigabytes: a zip bomb, a sparse file, 1500 views of one storage, a float
viewed as 10**12 elements are all refused by their declared sizes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from posescope.core.checkpoint.errors import BadTensorError, TooLargeError, UnsafePathError

MB = 1024 * 1024
GB = 1024 * MB
DEFAULT_MAX_SIZE = 4 * GB  # the largest published pose checkpoint is a few hundred MB
MAX_PICKLE = 64 * MB  # data.pkl: names and shapes only, a few hundred KB in practice
MAX_ENTRIES = 20_000  # members of an archive (a checkpoint has hundreds)
EXPANSION = 16  # what an archive may inflate to, as a multiple of its size on disk
FLOOR = 64 * MB  # ... but a small file may always inflate this far


@dataclass(frozen=True)
class Budget:
    """How much one checkpoint may make PoseScope read, inflate, write to temp or allocate."""

    max_size: int = DEFAULT_MAX_SIZE  # bytes in all (`--max-size`)
    max_pickle: int = MAX_PICKLE
    max_entries: int = MAX_ENTRIES
    expansion: int = EXPANSION

    def for_source(self, on_disk: int) -> int:
        """What a container of `on_disk` bytes may unpack to (or its tensors need)."""
        return min(self.max_size, max(FLOOR, self.expansion * on_disk))


def fmt_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def parse_size(text: str) -> int:
    """'512M', '4G', '1.5GB', '1000000' -> bytes. Raises ValueError saying what is allowed."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 1024, "M": MB, "G": GB, "T": 1024 * GB}.get(t[-1:], 1)
    number = t[:-1] if t[-1:] in "KMGT" and t else t
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"a size like 512M or 4G is needed, got {text!r}") from None
    if not value > 0 or value * scale > 2**62:
        raise ValueError(f"a size above 0 and below 4 EB is needed, got {text!r}")
    return int(value * scale)


def check_path(path: Path) -> os.stat_result:
    """Only regular files and folders are opened: a FIFO, device or socket is refused by
    `stat`, before anything reads it (a FIFO would wait forever, /dev/zero never end)."""
    st = path.stat()
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return st
    kind = (
        "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode)
        else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
        else "a socket" if stat.S_ISSOCK(st.st_mode)
        else "not a regular file"
    )  # fmt: skip
    raise UnsafePathError(f"not a regular file or folder: it is {kind}", path, kind)


def allocated(st: os.stat_result) -> int:
    """Bytes a file really takes on disk (a sparse file takes less than its size)."""
    blocks = getattr(st, "st_blocks", None)
    return st.st_size if blocks is None else min(st.st_size, blocks * 512)


def check_member(budget: Budget, path: Path, name: str, size: int, so_far: int, limit: int) -> int:
    """One archive member (or folder file) of `size` declared bytes; returns the new total."""
    if (name == "data.pkl" or name.endswith("/data.pkl")) and size > budget.max_pickle:
        raise TooLargeError(
            f"{name} declares {fmt_bytes(size)}; a checkpoint's pickle holds names and shapes "
            f"only (at most {fmt_bytes(budget.max_pickle)}): refusing to unpack it",
            path, name, size, budget.max_pickle,
        )  # fmt: skip
    total = so_far + size
    if total > limit:
        raise over_budget(
            f"{name} would make the unpacked checkpoint {fmt_bytes(total)}", path, name, total,
            limit,
        )  # fmt: skip
    return total


def over_budget(text: str, path: Path, what: str, needed: int, limit: int) -> TooLargeError:
    """`text`, then why that is refused: over the bytes this file may unpack to."""
    return TooLargeError(
        f"{text}, over the {fmt_bytes(limit)} allowed for this file (see --max-size)",
        path, what, needed, limit,
    )  # fmt: skip


def check_entries(budget: Budget, path: Path, n: int) -> None:
    if n > budget.max_entries:
        raise TooLargeError(
            f"the archive holds {n} entries; a checkpoint has at most {budget.max_entries}",
            path, "entries", n, budget.max_entries,
        )  # fmt: skip


def check_tensors(
    tensors: Mapping[str, torch.Tensor], budget: Budget, path: Path, source_bytes: int
) -> None:
    """Refuse meta tensors, views past the end of their storage and tensors whose copies
    would need more than the file can hold (stride-0 giants, many views of one storage)."""
    limit = budget.for_source(source_bytes)
    total = 0
    for name, t in tensors.items():
        if t.device.type == "meta":
            raise BadTensorError(
                f"tensor {name!r} is a meta tensor (a shape without data)", path, name
            )
        if t.layout != torch.strided:
            continue
        size = t.numel() * t.element_size()
        if t.numel():
            span = 1 + sum((n - 1) * abs(s) for n, s in zip(t.shape, t.stride(), strict=True))
            need = int((t.storage_offset() + span) * t.element_size())  # SymInt only when traced
            have = t.untyped_storage().nbytes()
            if need > have:
                raise BadTensorError(
                    f"tensor {name!r} views {fmt_bytes(need)} of a storage holding "
                    f"{fmt_bytes(have)}",
                    path, name,
                )  # fmt: skip
        if size > limit:
            text = f"tensor {name!r} {tuple(t.shape)} needs {fmt_bytes(size)}"
            raise over_budget(text, path, name, size, limit)
        total += size
        if total > limit:
            all_ = fmt_bytes(total)
            text = f"the tensors need {all_} in all (counting each view of shared bytes)"
            raise over_budget(text, path, "the tensors in all", total, limit)
