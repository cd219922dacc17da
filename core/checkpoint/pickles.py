"""torch.load weights-only, the globals a refused pickle wants, and trusted unpickling."""

from __future__ import annotations

import contextlib
import io
import pickle
import pickletools
import types
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

import torch

from posescope.core.checkpoint.budgets import Budget, fmt_bytes
from posescope.core.checkpoint.errors import (
    CheckpointError,
    NeedsTrustError,
    NotACheckpointError,
    TooLargeError,
    UnreadablePickleError,
    summary,
)

# --- torch.load -----------------------------------------------------------------------------


def torch_load(
    file: Path, shown: Path, trust: bool, zip_file: bool, budget: Budget | None = None
) -> tuple[Any, bool]:
    """torch.load weights-only (mmap for zip files); a full unpickle only if `trust`.

    Before loading, the pickle is disassembled (never run) to refuse one that would build a
    huge object from a few bytes (`bytearray(8 GiB)` is an allowed global).
    Returns (object, whether the full unpickle was needed).
    """
    _refuse_huge_allocations(file, shown, zip_file, budget or Budget())
    try:
        with warnings.catch_warnings(), _loadable(file) as source:
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            mmap = (zip_file and isinstance(source, Path)) or None
            obj = torch.load(source, map_location="cpu", weights_only=True, mmap=mmap)
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
            raise NeedsTrustError(
                reason + "; re-run with --trust only if you trust its source", shown, wanted
            )
        # Nothing beyond the safe set: --trust is not the answer, so do not suggest it.
        protocol = _pickle_protocol(file, zip_file)
        if protocol is not None and protocol >= 4:
            raise UnreadablePickleError(
                f"the weights were pickled with protocol {protocol}, which torch's weights-only "
                "loader cannot read (it stops at the first protocol-4 opcode); re-save them "
                "with torch.save's default protocol (2)",
                shown,
            )
        raise UnreadablePickleError(
            "weights-only loading cannot read this pickle, though it names no unsafe imports: "
            + _weights_only_detail(refusal),
            shown,
        )
    try:
        with _loadable(file) as source:
            obj = torch.load(
                source,
                map_location="cpu",
                weights_only=False,
                mmap=(zip_file and isinstance(source, Path)) or None,
                pickle_module=_LENIENT_PICKLE,
            )
    except Exception as e:
        raise CheckpointError(f"trusted unpickling failed: {summary(e)}", shown) from None
    return obj, True


def _load_error(e: BaseException, path: Path, zip_file: bool) -> CheckpointError:
    text = summary(e)
    low = text.lower()
    if isinstance(e, EOFError) or any(
        s in low for s in ("central directory", "truncat", "unexpected end", "ran out of input")
    ):
        kind = "torch zip archive" if zip_file else "torch legacy pickle"
        return NotACheckpointError(f"truncated {kind}: {text}", path, f"a truncated {kind}")
    if isinstance(e, MemoryError):
        return CheckpointError("out of memory while loading the checkpoint", path)
    return CheckpointError(f"cannot load the checkpoint: {text}", path)


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


@contextlib.contextmanager
def _loadable(file: Path) -> Iterator[Path | IO[bytes]]:
    """`file` itself, or an open file when its name is not valid UTF-8 (torch's C++ reader
    takes names as UTF-8 strings; Python's open takes any bytes). No mmap then."""
    try:
        str(file).encode("utf-8")
    except UnicodeEncodeError:
        with open(file, "rb") as f:
            yield f
        return
    yield file


def _pickle_protocol(file: Path, zip_file: bool) -> int | None:
    """The protocol the (object) pickle declares: its first PROTO opcode."""
    try:
        if zip_file:
            with zipfile.ZipFile(file) as zf:
                name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
                with zf.open(name) as f:
                    head = f.read(2)
        else:
            with open(file, "rb") as f:  # the magic number's pickle comes first: skip it
                for _ in pickletools.genops(f):
                    pass
                head = f.read(2)
    except Exception:
        return None
    return head[1] if len(head) == 2 and head[0] == 0x80 else None


def _refuse_huge_allocations(file: Path, shown: Path, zip_file: bool, budget: Budget) -> None:
    big: list[int] = []
    try:
        if zip_file:
            with zipfile.ZipFile(file) as zf:
                name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
                info = zf.getinfo(name)
                if info.file_size > budget.max_pickle:
                    return  # sniffing refuses these; a repacked folder was checked too
                found = _pickle_globals(io.BytesIO(zf.read(name)), 1, big)
        else:
            with open(file, "rb") as f:
                found = _pickle_globals(f, 5, big)
    except Exception:
        return  # torch.load will say what is wrong with it
    limit = budget.max_size
    if any(g.endswith(".bytearray") for g in found) and big and max(big) > limit:
        raise TooLargeError(
            f"the pickle builds a bytearray of {fmt_bytes(max(big))} from a "
            f"{fmt_bytes(file.stat().st_size)} file (the limit is {fmt_bytes(limit)})",
            shown, "bytearray", max(big), limit,
        )  # fmt: skip


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


def _pickle_globals(f: IO[bytes], max_pickles: int, big: list[int] | None = None) -> list[str]:
    """Disassemble up to `max_pickles` consecutive pickles and list the globals they import.

    Handles GLOBAL, INST and STACK_GLOBAL (whose module and name strings may come through the
    memo). Nothing is executed. Integers over 2**31 are added to `big` when given.
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
                    g_module, g_attr = (stack[-2], stack[-1]) if len(stack) >= 2 else (None, None)
                    found.append(
                        f"{g_module}.{g_attr}" if g_module and g_attr else "<dynamic global>"
                    )
                    stack[-2:] = [None]
                elif name in ("MEMOIZE",):
                    memo[len(memo)] = stack[-1] if stack else None
                elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[int(cast(int, arg))] = stack[-1] if stack else None
                elif name in ("GET", "BINGET", "LONG_BINGET"):
                    stack.append(memo.get(int(cast(int, arg))))
                elif isinstance(arg, str):
                    stack.append(arg)
                elif isinstance(arg, int) and big is not None and arg > 2**31:
                    big.append(arg)
                    stack.append(None)
                elif op.stack_after:
                    stack.append(None)
                if name == "STOP":
                    break
        except Exception:
            break
    return found


# --- trusted unpickling ---------------------------------------------------------------------


class Stub:
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
            return type(name, (Stub,), {"__module__": module, "__qualname__": name})


_LENIENT_PICKLE = types.SimpleNamespace(
    __name__="posescope_lenient_pickle", Unpickler=_LenientUnpickler, load=pickle.load
)
