"""Checking what the user asks for before any work: argument values and output files.

Every check raises UsageError with the option, the value and what is allowed, so that the
CLI prints one `error: <what>: <why>` line before the first frame is computed (not after the
last). Output files are written atomically (a temporary file beside them, then a rename), so
an existing file is never left truncated and a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from posescope.core.escape import show_path

POSE_SUFFIXES = (".json", ".csv", ".npz")
VIDEO_SUFFIXES = (".mp4",)
MAX_RENDER_SIDE = 8192  # what mp4v (MPEG-4 part 2) encoders accept
MAX_RENDER_PIXELS = 8192 * 4320


class UsageError(ValueError):
    """An argument value that cannot work: `what` (the option or file) and `why`."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")
        self.what, self.why = what, why


def parse_number(text: str, what: str, *, low: float | None = None, positive: bool = False,
                 integer: bool = False) -> float:  # fmt: skip
    """A finite number (an integer if asked), at least `low`, above 0 if `positive`."""
    try:
        value = float(int(text)) if integer else float(text)
    except (TypeError, ValueError):
        kind = "a whole number" if integer else "a number"
        raise UsageError(what, f"{kind} is needed, got {show_path(text)!r}") from None
    if not math.isfinite(value):
        raise UsageError(what, f"a finite number is needed, got {show_path(text)!r}")
    if positive and value <= 0:
        raise UsageError(what, f"a number above 0 is needed, got {show_path(text)}")
    if low is not None and value < low:
        raise UsageError(what, f"a number of at least {low:g} is needed, got {show_path(text)}")
    return value


def parse_numbers(text: str, n: int, what: str, *, positive: bool = False) -> tuple[float, ...]:
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != n:
        raise UsageError(what, f"{n} numbers separated by commas are needed, got {len(parts)}")
    return tuple(parse_number(p, what, positive=positive) for p in parts)


def parse_focal(text: str) -> tuple[float, float]:
    """F or FX,FY in pixels, each finite and above 0."""
    vals = parse_numbers(text, 2 if "," in text else 1, "--focal", positive=True)
    return (vals[0], vals[-1])


def parse_box(text: str, what: str = "--bbox") -> tuple[float, float, float, float]:
    """X,Y,W,H: finite, W and H above 0."""
    x, y, w, h = parse_numbers(text, 4, what)
    if w <= 0 or h <= 0:
        raise UsageError(what, f"width and height must be above 0, got {w:g}x{h:g}")
    return (x, y, w, h)


def parse_frames(text: str | None) -> tuple[int, int | None]:
    """START:END (either may be left out): whole numbers, 0 <= START < END."""
    if not text:
        return 0, None
    start_text, sep, end_text = text.partition(":")
    if not sep:
        raise UsageError("--frames", f"START:END is needed (e.g. 0:100 or 50:), got {text!r}")
    start = int(parse_number(start_text or "0", "--frames", integer=True, low=0))
    end = int(parse_number(end_text, "--frames", integer=True, low=0)) if end_text else None
    if end is not None and end <= start:
        raise UsageError("--frames", f"END must be after START, got {text!r}")
    return start, end


def check_smoothing(min_cutoff: float, beta: float) -> None:
    """One-Euro parameters: min cutoff finite above 0, beta finite and at least 0."""
    parse_number(str(min_cutoff), "--smooth-min-cutoff", positive=True)
    parse_number(str(beta), "--smooth-beta", low=0)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(
    path: str | os.PathLike[str], what: str, suffixes: Sequence[str],
    inputs: Sequence[str | os.PathLike[str]] = (),
) -> Path:  # fmt: skip
    """An output file that can be written: a known extension, an existing writable folder,
    not a folder itself, and none of `inputs` (the video being read, the checkpoint, nor a
    file inside a checkpoint folder)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in suffixes:
        got = f"{suffix!r}" if suffix else "no extension"
        raise UsageError(what, f"the name must end in {', '.join(suffixes)} (got {got})")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(what, f"the folder {show_path(parent)} does not exist")
    if p.is_dir():
        raise UsageError(what, f"{show_path(p)} is a folder")
    if not os.access(parent, os.W_OK):
        raise UsageError(what, f"the folder {show_path(parent)} is not writable")
    for source in inputs:
        s = Path(source)
        in_checkpoint = (s / "data.pkl").is_file() or any(s.glob("*/data.pkl"))
        if _same_file(p, s) or p.resolve() == s.resolve() or (in_checkpoint and _inside(s, p)):
            raise UsageError(what, f"would overwrite an input ({show_path(s)})")
    return p


def _inside(folder: Path, p: Path) -> bool:
    """`p` lies in the checkpoint folder `folder` (writing there would change the checkpoint)."""
    try:
        return folder.is_dir() and p.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def check_render_size(width: int, height: int) -> None:
    """The frame size an mp4v encoder accepts."""
    if width <= 0 or height <= 0:
        raise UsageError("--render", f"frames of {width}x{height} cannot be encoded")
    if max(width, height) > MAX_RENDER_SIDE or width * height > MAX_RENDER_PIXELS:
        raise UsageError(
            "--render",
            f"frames of {width}x{height} are too large for an mp4v video "
            f"(at most {MAX_RENDER_SIDE} pixels a side and {MAX_RENDER_PIXELS // 10**6} MP)",
        )


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Write `path` through a temporary file in its folder, renamed over it at the end; on
    any error (or Ctrl-C) the temporary file is removed and `path` is left as it was."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent or ".")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_path(path: str | os.PathLike[str]) -> contextlib.AbstractContextManager[Path]:
    """Like atomic_file, for writers that want a path: yields a temporary path with the same
    extension (writers choose the format by it), renamed over `path` on success."""
    return _atomic_path(Path(path))


@contextlib.contextmanager
def _atomic_path(p: Path) -> Iterator[Path]:
    fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f".part{p.suffix}", dir=p.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
