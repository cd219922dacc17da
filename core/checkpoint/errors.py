"""The errors of checkpoint opening: each says what went wrong in one line (`reason`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

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


def summary(e: BaseException, limit: int = 300) -> str:
    """One line from an exception: its type and the first non-empty line of its message."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TooLargeError(CheckpointError):
    """What the container declares (or its tensors need) is over a budget (see budgets.py).

    `what` names the part (a member, a tensor, "the tensors in all"), `needed` and `limit` are
    bytes (or entries, for `what` == "entries")."""

    def __init__(
        self, reason: str, path: str | os.PathLike[str] = "", what: str = "", needed: int = 0,
        limit: int = 0,
    ) -> None:  # fmt: skip
        super().__init__(reason, path)
        self.what, self.needed, self.limit = what, needed, limit

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.reason, self.path, self.what, self.needed, self.limit))


class BadTensorError(CheckpointError):
    """A tensor (`tensor`, its key in the file) that cannot be real weights: a meta tensor, or a
    view of more bytes than its storage holds."""

    def __init__(self, reason: str, path: str | os.PathLike[str] = "", tensor: str = "") -> None:
        super().__init__(reason, path)
        self.tensor = tensor

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.reason, self.path, self.tensor))


class UnsafePathError(CheckpointError):
    """Not a regular file or folder (a FIFO, a device, a socket), or a link that leaves the
    checkpoint; `kind` says which."""

    def __init__(self, reason: str, path: str | os.PathLike[str] = "", kind: str = "") -> None:
        super().__init__(reason, path)
        self.kind = kind

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.reason, self.path, self.kind))


class UnreadablePickleError(CheckpointError):
    """Weights-only loading refused a pickle that names no unsafe import (so --trust would not
    be the answer): e.g. an opcode or a construct the safe unpickler does not support."""
