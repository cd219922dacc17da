"""Shared pytest fixtures. Helpers live in tests/factory.py; keep this file small."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `pytest` run without `python -m`: make core/ and tests/ importable
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def ckpt_dir(tmp_path: Path) -> Path:
    """An empty folder for the checkpoints one test writes."""
    d = tmp_path / "ckpts"
    d.mkdir()
    return d
