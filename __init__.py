"""PoseScope: identify, rebuild and run 3D human pose checkpoints from their tensors alone.

Installed, this folder is the `posescope` package: `posescope.core` (the engine, no Qt),
`posescope.gui` (the desktop app), `posescope.resources` (style sheet, icons) and
`posescope.main` (the command line).
"""

from __future__ import annotations

import re as _re
from importlib import metadata as _metadata
from pathlib import Path as _Path


def _checkout_version() -> str:
    """A checkout that was never installed: the version its pyproject.toml declares."""
    try:
        text = (_Path(__file__).resolve().parent / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return "0+unknown"
    found = _re.search(r'^version = "([^"]+)"', text, _re.MULTILINE)
    return found.group(1) if found else "0+unknown"


try:
    __version__ = _metadata.version("posescope")
except _metadata.PackageNotFoundError:
    __version__ = _checkout_version()
