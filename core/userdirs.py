"""The platform's per-user cache folder for PoseScope: $XDG_CACHE_HOME (or ~/.cache) on Linux,
~/Library/Caches on macOS, %LOCALAPPDATA% on Windows, + posescope. Detector weights
(core/detection/weights.py) and the onnxruntime form's exports (core/onnx_cache.py) live in
folders of it."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def user_cache_dir() -> Path:
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "posescope"
