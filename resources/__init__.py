"""Static files of the desktop app: style sheet, icons. `path(name)` finds one."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def path(name: str) -> Path:
    """Absolute path of the resource `name` (e.g. "style.qss"); raises if it is missing."""
    p = _HERE / name
    if not p.exists():
        raise FileNotFoundError(f"no resource named {name!r} in {_HERE}")
    return p


def read_text(name: str) -> str:
    """The resource `name` as UTF-8 text."""
    return path(name).read_text(encoding="utf-8")
