"""Shared pytest fixtures. Helpers live in tests/factory.py; keep this file small."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `pytest` run without `python -m`: make tests/ importable
    sys.path.insert(0, str(ROOT))

import main  # noqa: E402, F401  (registers this checkout as the `posescope` package)
from tests.media_files import MEDIA, VIDEOS  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def private_user_folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user's config and cache folders point into the test's temp folder for the whole
    session (QSettings and the model cache read them), so no test reads or writes real ones."""
    home = tmp_path_factory.mktemp("user")
    saved = {
        k: os.environ.get(k) for k in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "POSESCOPE_MODEL_URLS")
    }
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_CACHE_HOME"] = str(home / "cache")
    # detector weights are never fetched from the internet in tests: port 9 (discard) is shut
    os.environ["POSESCOPE_MODEL_URLS"] = "http://127.0.0.1:9/"
    yield home
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def media_dir() -> Path:
    """tests/media/, checked: the shipped videos are there (a clone without them fails loudly)."""
    missing = [p.name for p in VIDEOS if not p.is_file()]
    assert not missing, f"test media missing from {MEDIA}: {missing}"
    return MEDIA


@pytest.fixture
def ckpt_dir(tmp_path: Path) -> Path:
    """An empty folder for the checkpoints one test writes."""
    d = tmp_path / "ckpts"
    d.mkdir()
    return d
