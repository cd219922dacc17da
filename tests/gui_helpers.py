"""Fixtures and helpers shared by the GUI tests, once (tests/conftest.py makes the fixtures
available to every test; the test files import the helpers they call from here).

- `isolated_settings` (autouse, GUI tests): every QSettings path is redirected to tmp.
- `no_thread_leak` (autouse, GUI tests): fails a test that leaves a worker QThread running.
- `qsettings`: an isolated QSettings file.
- `window`: a shown MainWindow at the default size; closed (threads stopped) after the test.
- `loaded`: the window with the XS model on the Pose2Sim video, frame 0 shown.
- `ckpt_files`: session checkpoints written with tests/factory.py: XS, XS named "_L", a
  classifier, text; `short_video`: a 12-frame clip.
- helpers: `read_frames`, `damaged_video`, `wait_model`, `wait_shown`, `banner_texts`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QSettings

import posescope.gui  # noqa: F401 (sets up shared GL contexts before the QApplication exists)
from tests.media_files import POSE2SIM

VIDEO = POSE2SIM


@pytest.fixture(autouse=True)
def isolated_settings(request: pytest.FixtureRequest):
    """GUI tests: point every QSettings scope and format at a temporary folder."""
    if request.node.get_closest_marker("gui") is None:
        yield None
        return
    folder = request.getfixturevalue("tmp_path") / "qsettings"
    folder.mkdir(exist_ok=True)
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
            QSettings.setPath(fmt, scope, str(folder))
    yield folder


@pytest.fixture
def qsettings(tmp_path: Path) -> QSettings:
    """A QSettings file of this test's own."""
    return QSettings(str(tmp_path / "posescope-test.ini"), QSettings.Format.IniFormat)


@pytest.fixture(autouse=True)
def no_thread_leak(request: pytest.FixtureRequest):
    """GUI tests: fail any test that leaves one of the app's worker threads running."""
    if request.node.get_closest_marker("gui") is None:
        yield
        return
    from posescope.gui import workers

    yield
    left = workers.running_threads()
    if left:
        names = [t.objectName() for t in left]
        workers.stop_all(2.0)
        pytest.fail(f"worker threads left running after the test: {names}")


@pytest.fixture
def window(qtbot, qsettings):
    from posescope.gui.app import ensure_app, make_window

    ensure_app()
    w = make_window(qsettings)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


# ------------------------------------------------------------------ checkpoints and media


@pytest.fixture(scope="session")
def ckpt_files(tmp_path_factory) -> dict[str, Path]:
    """Generated checkpoints, written once per session."""
    import torch

    from tests.factory import save_torch_zip, state_dict_for

    d = tmp_path_factory.mktemp("gui_ckpts")
    xs = state_dict_for("XS")
    files = {
        "xs": save_torch_zip({"epoch": 3, "network": xs}, d / "snapshot_xs.pth.tar"),
        "xs_named_l": save_torch_zip({"network": xs}, d / "convnextpose_L.pth"),
        "classifier": d / "resnet_classifier.pth",
        "text": d / "notes.pth",
    }
    g = torch.Generator().manual_seed(0)
    save_torch_zip(
        {
            "conv1.weight": torch.randn(8, 3, 3, 3, generator=g),
            "bn1.weight": torch.ones(8),
            "fc.weight": torch.randn(10, 8, generator=g),
            "fc.bias": torch.zeros(10),
        },
        files["classifier"],
    )
    files["text"].write_text("these are my notes, not weights\n" * 20)
    return files


@pytest.fixture(scope="session")
def short_video(tmp_path_factory) -> Path:
    """A 12-frame 320x480 clip cut from the Pose2Sim video (for quick exports)."""
    out = tmp_path_factory.mktemp("gui_media") / "short.avi"
    frames = read_frames(VIDEO, 12)
    h, w = 480, 320
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
    for f in frames:
        writer.write(cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA))
    writer.release()
    return out


def read_frames(path: Path, count: int) -> list[np.ndarray]:
    """The first `count` frames of a video, decoded in order (the ground truth for seeks)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while len(frames) < count:
            ok, img = cap.read()
            if not ok:
                break
            frames.append(img)
    finally:
        cap.release()
    return frames


@pytest.fixture
def loaded(qtbot, window, ckpt_files):
    """The window with the XS model running on the Pose2Sim video, frame 0 shown."""
    wait_model(qtbot, window, [ckpt_files["xs"], VIDEO])
    wait_shown(qtbot, window, 0)
    return window


def damaged_video(path: Path, frames: int) -> Path:
    """A `frames`-frame 160x240 MJPG clip of noise, then cut in half mid-stream (about half
    its frames decode, the header still claims them all)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (160, 240))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (240, 160, 3), dtype=np.uint8))
    writer.release()
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    return path


def wait_model(qtbot, window, paths, timeout: int = 30000) -> None:
    """Drop `paths` (a checkpoint among them) and wait until the model runs."""
    with qtbot.waitSignal(window.sigModelReady, timeout=timeout):
        window.open_paths([str(p) for p in paths])


def wait_shown(qtbot, window, index: int, timeout: int = 30000, with_pose: bool = True) -> None:
    """Wait until frame `index` is on screen (with the current model's pose when asked)."""

    def shown() -> bool:
        r = window.session.shown
        if r is None or r.frame.index != index:
            return False
        if not with_pose:
            return True
        return r.poses is not None and r.model_generation == window.session.runner_generation

    qtbot.waitUntil(shown, timeout=timeout)


def banner_texts(window, level: str | None = None) -> list[str]:
    return [t for lv, t in window.banner.messages() if level is None or lv == level]
