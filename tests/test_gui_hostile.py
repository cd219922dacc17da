"""Hostile files dropped on the window: a one-line banner each, the previous model kept, and
names from a file shown escaped (never as markup or control characters) in the panel."""

from __future__ import annotations

import os
import shutil

import pytest

from tests import hostile
from tests.gui_helpers import wait_model

pytestmark = pytest.mark.gui


def test_hostile_files_dropped_keep_the_model(qtbot, window, ckpt_files, tmp_path) -> None:
    wait_model(qtbot, window, [ckpt_files["xs"]])
    model = window.session.model
    problems: list[str] = []
    window.sigProblem.connect(lambda level, text: problems.append(text))
    os.mkfifo(tmp_path / "pipe.pth")
    files = [
        hostile.zip_bomb_pickle(tmp_path),
        hostile.meta_wide(tmp_path),
        hostile.stride0_legacy(tmp_path),
        hostile.symlink_folder(tmp_path),
        hostile.views_of_one_storage(tmp_path),
        hostile.injected_names(tmp_path),
        tmp_path / "pipe.pth",
    ]
    for f in files:  # one at a time: a drop of several opens the checkpoints among them
        n = len(problems)
        window.open_paths([str(f)])
        qtbot.waitUntil(lambda n=n: len(problems) > n, timeout=30000)
    errors = problems  # the banner keeps the latest few; every one was signalled
    for f, why in zip(files, ["pickle", "meta tensor", "3.6 TB", "outside", "each view",
                              "\\x1b[31merror", "FIFO"], strict=True):  # fmt: skip
        assert any(f.name in e and why in e for e in errors), (f.name, why, errors)
    for text in problems + [m.label.text() for m in window.banner._messages]:
        assert "\x1b" not in text and "\n" not in text and "\r" not in text, text
    assert window.session.model is model and window.arch_panel.variant() == "XS"


def test_panel_shows_names_from_the_file_escaped(qtbot, window, ckpt_files, tmp_path) -> None:
    odd = tmp_path / "XS \x1b[2J<b>bold.pth"
    shutil.copy(ckpt_files["xs"], odd)
    wait_model(qtbot, window, [odd])
    shown = [lab.text() for lab in window.arch_panel.findChildren(type(window.arch_panel.badge))]
    assert any("XS \\x1b[2J<b>bold.pth" in t for t in shown), shown
    assert not any("\x1b" in t for t in shown)
