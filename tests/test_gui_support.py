"""The GUI tests' shared fixtures and helpers live in tests/gui_helpers.py (tests/conftest.py
provides the fixtures to every test). This module re-exports them for test files that still
import them from here, and checks the thread registry between tests."""

from __future__ import annotations

import pytest

from tests.gui_helpers import (  # noqa: F401 (re-exported fixtures and helpers)
    VIDEO,
    banner_texts,
    ckpt_files,
    isolated_settings,
    loaded,
    no_thread_leak,
    qsettings,
    read_frames,
    short_video,
    wait_model,
    wait_shown,
    window,
)

pytestmark = pytest.mark.gui


def test_thread_registry_is_empty_between_tests() -> None:
    from posescope.gui import workers

    assert workers.running_threads() == []
