"""The window: opens empty with a hint, fills the panel from a dropped checkpoint, survives
bad files, asks before trusting a pickle, and routes drops through `open_paths`."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.gui_helpers import banner_texts, wait_model

pytestmark = pytest.mark.gui


def test_window_opens_empty_with_a_drop_hint(window) -> None:
    assert window.isVisible()
    assert (window.width(), window.height()) == (1400, 900)
    assert window.video_view.hint_visible()
    assert "Drop a checkpoint" in window.video_view.hint.text()
    assert window.arch_panel.variant() is None
    assert not window.banner.isVisible()
    assert window.session.model is None


def test_dropped_checkpoint_fills_the_panel(qtbot, window, ckpt_files) -> None:
    wait_model(qtbot, window, [ckpt_files["xs"]])
    panel = window.arch_panel
    assert panel.variant() == "XS"
    assert panel.family() == "convnextpose"
    assert panel.badge is not None and panel.badge.text() == "XS"
    assert panel.title_label.text() == "ConvNeXtPose-XS"
    assert panel.fields["joints"].text().startswith("18")
    assert panel.fields["depth_dim"].text() == "32"
    assert panel.fields["output_size"].text() == "32 × 32"
    assert panel.fields["params"].text() == "3.53 M"
    assert panel.fields["format"].text() == "torch-zip"
    assert panel.fields["wrapper"].text() == "network"
    assert len(panel.upsample_boxes) == 3
    assert [b.isChecked() for b in panel.upsample_boxes] == [True, True, False]
    assert window.status.device_label.text() == "cpu · onnxruntime"  # the CPU default
    assert "onnxruntime, CPU provider" in window.status.device_label.toolTip()
    assert window.session.model is not None and window.session.model.ident.variant == "XS"
    # the model is ready for a source: the hint now asks for one
    assert "video" in window.video_view.hint.text()
    # recent files went to this test's own settings file
    assert str(Path(ckpt_files["xs"]).resolve()) in window.recent_files()


def test_name_that_lies_is_a_warning(qtbot, window, ckpt_files) -> None:
    wait_model(qtbot, window, [ckpt_files["xs_named_l"]])
    assert window.arch_panel.variant() == "XS"
    warnings = [lab.text() for lab in window.arch_panel.warning_labels]
    assert any("named L, tensors say XS" in w for w in warnings)
    assert any("named L, tensors say XS" in t for t in banner_texts(window, "warning"))


def test_bad_files_leave_the_app_usable(qtbot, window, ckpt_files, tmp_path) -> None:
    wait_model(qtbot, window, [ckpt_files["xs"]])
    model = window.session.model
    problems: list[str] = []
    window.sigProblem.connect(lambda level, text: problems.append(text))
    missing = tmp_path / "nowhere.pth"
    window.open_paths([ckpt_files["text"], ckpt_files["classifier"], missing])
    qtbot.waitUntil(lambda: len(problems) >= 3, timeout=20000)
    errors = banner_texts(window, "error")
    assert any("notes.pth" in e for e in errors)
    assert any("resnet_classifier.pth" in e and "classifier" in e for e in errors)
    assert any("nowhere.pth" in e for e in errors)
    assert window.banner.isVisible()
    # the previous model is kept, and shown
    assert window.session.model is model
    assert window.arch_panel.variant() == "XS"
    # and the app still works: another checkpoint loads
    wait_model(qtbot, window, [ckpt_files["xs_named_l"]])
    assert window.session.model is not model


def test_untrusted_pickle_asks_first_and_names_its_imports(
    qtbot, window, tmp_path, ckpt_files
) -> None:
    from tests.factory import write_malicious_pickle

    marker = tmp_path / "pwned"
    evil = write_malicious_pickle(tmp_path / "evil.pth", marker)
    problems: list[tuple[str, str]] = []
    window.sigProblem.connect(lambda level, text: problems.append((level, text)))
    window.open_paths([evil])
    qtbot.waitUntil(lambda: bool(problems), timeout=20000)
    level, text = problems[-1]
    assert level == "warning"
    assert "evil.pth" in text and "system" in text
    rows = [m for m in window.banner._messages if m.text == text]
    assert rows and [b.text() for b in rows[0].buttons] == ["Trust and open"]
    assert not marker.exists()  # nothing ran
    assert window.session.model is None


def test_drop_event_only_turns_urls_into_paths(qtbot, window, tmp_path, monkeypatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(window, "open_paths", lambda paths: seen.append(list(paths)))
    a, b = tmp_path / "a.pth", tmp_path / "clip.mp4"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(a)), QUrl.fromLocalFile(str(b))])
    event = QDropEvent(
        QPointF(200, 200),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)
    assert seen == [[str(a), str(b)]]


def test_upsampling_override_rebuilds_with_larger_heatmaps(qtbot, window, ckpt_files) -> None:
    wait_model(qtbot, window, [ckpt_files["xs"]])
    with qtbot.waitSignal(window.sigModelReady, timeout=30000):
        window.arch_panel.upsample_boxes[2].setChecked(True)
    assert window.session.model.ident.arch.upsample == (True, True, True)
    assert window.arch_panel.fields["output_size"].text() == "64 × 64"
    assert "upsampling overridden" in " ".join(
        lab.text() for lab in window.arch_panel.findChildren(type(window.arch_panel.badge))
    )


def test_rootnet_dropped_beside_a_pose_checkpoint_gives_root_depth(
    qtbot, window, ckpt_files, tmp_path
) -> None:
    from tests.factory import make_rootnet_sd, save_torch_zip

    rootnet = save_torch_zip({"network": make_rootnet_sd(50)}, tmp_path / "rootnet_r50.pth")
    wait_model(qtbot, window, [ckpt_files["xs"], rootnet], timeout=60000)
    assert window.session.model.rootnet is not None
    assert window.session.model.estimator.rootnet is not None
    assert window.arch_panel.variant() == "XS"  # the pose network fills the panel
    assert "RootNet (ResNet-50)" in window.arch_panel.fields["rootnet"].text()
    assert any("RootNet" in t for t in banner_texts(window, "success"))


def test_compile_setting_rebuilds_and_reports_a_failed_compile(
    qtbot, window, ckpt_files, monkeypatch
) -> None:
    import torch

    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", no_compiler)
    wait_model(qtbot, window, [ckpt_files["xs"]])
    with qtbot.waitSignal(window.sigModelReady, timeout=30000):
        window.settings_panel.compile.setChecked(True)
    assert window.session.model.settings.compile
    assert not window.session.model.estimator.model.compiled  # fell back, still running
    assert any("Could not compile" in t for t in banner_texts(window, "warning"))


def test_backend_setting_switches_the_engine_and_a_failed_export_falls_back(
    qtbot, window, ckpt_files, monkeypatch
) -> None:
    from posescope.core import network_export, onnx_cache

    wait_model(qtbot, window, [ckpt_files["xs"]])
    assert window.session.model.estimator.model.backend == "onnxruntime"
    combo = window.settings_panel.backend
    with qtbot.waitSignal(window.sigModelReady, timeout=30000):
        combo.setCurrentIndex(combo.findData("torch"))
    assert window.session.model.settings.backend == "torch"
    assert window.session.model.estimator.model.form == "onednn"
    assert window.status.device_label.text() == "cpu · oneDNN"
    assert "oneDNN program" in window.status.device_label.toolTip()

    def broken(*args, **kwargs):
        raise network_export.ExportError("ONNX export failed (simulated)")

    monkeypatch.setenv(onnx_cache.ENV, "off")  # not the export cached a moment ago
    monkeypatch.setattr(network_export, "to_onnx", broken)
    with qtbot.waitSignal(window.sigModelReady, timeout=30000):
        combo.setCurrentIndex(combo.findData("auto"))
    assert window.session.model.settings.backend == "auto"
    assert window.session.model.estimator.model.form == "onednn"  # still running, on torch
    assert any("onnxruntime form could not be built" in t for t in banner_texts(window, "warning"))


def test_a_device_that_is_not_there_is_refused_and_the_model_keeps_running(
    qtbot, window, ckpt_files, monkeypatch
) -> None:
    """Picking CUDA on a machine without it: a clear error, the running model stays, and the
    settings panel goes back to what runs. (Patched so the test means the same on a GPU.)"""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    wait_model(qtbot, window, [ckpt_files["xs"]])
    before = window.session.model
    assert window.settings_panel.device.currentData() == "auto"
    with qtbot.waitSignal(window.sigModelFailed, timeout=30000) as failed:
        window.settings_panel.device.setCurrentIndex(window.settings_panel.device.findData("cuda"))
    (text,) = failed.args
    assert text.startswith(f"Could not build {ckpt_files['xs'].name}: CUDA was asked for")
    assert "CUDA" in text and text.endswith("still using ConvNeXtPose-XS")
    assert text in banner_texts(window, "error")
    assert window.session.model is before and window.session.model.estimator.device == "cpu"
    assert window.settings_panel.device.currentData() == "auto"  # what runs
    # and it still runs: another setting rebuilds it fine
    with qtbot.waitSignal(window.sigModelReady, timeout=30000):
        window.settings_panel.flip.setChecked(True)
    assert window.session.model.settings.flip and window.session.model.settings.device == "auto"


def test_the_input_scale_read_from_the_file_is_shown_and_can_be_overridden(
    qtbot, window, tmp_path
) -> None:
    """Settings ▸ Model ▸ Input says what the file's statistics say; choosing another scale
    rebuilds with it (the panel says "chosen"); the next checkpoint is read afresh."""
    from tests import calibration, factory

    unit = factory.save_torch_zip(
        {"network": calibration.following_state_dict("XS", convention="0-1")}, tmp_path / "a.pth"
    )
    published = factory.save_torch_zip(
        {"network": factory.state_dict_for("XS")}, tmp_path / "b.pth"
    )
    wait_model(qtbot, window, [unit])
    combo = window.settings_panel.input_scale
    assert combo.currentData() == "auto"
    assert combo.itemText(0) == "As the file says (0..1, read)"
    assert "backbone.downsample_layers.0.1" in str(combo.itemData(0, Qt.ItemDataRole.ToolTipRole))
    panel = window.arch_panel
    assert panel.fields["input_scale"].text().startswith("pixels / 255 (0..1)")
    assert panel.fields["input_reason"].text().startswith("read from the stem's BatchNorm")
    assert window.session.model.estimator.input.scale == "0-1"
    with qtbot.waitSignal(window.sigModelReady, timeout=30000):
        combo.setCurrentIndex(combo.findData("0-255"))
    est = window.session.model.estimator
    assert (est.input.scale, est.input.how) == ("0-255", "chosen")
    assert est.model.pixel_scale == 1.0
    assert panel.fields["input_scale"].text().startswith("0..255 pixels")
    assert "the file says 0-1" in panel.fields["input_reason"].text()
    # another file: its own statistics again (a scale belongs to a file)
    wait_model(qtbot, window, [published])
    assert combo.currentData() == "auto"
    assert window.session.model.estimator.input.how == "read"
    assert window.session.model.estimator.input.scale == "0-255"
    assert combo.itemText(0) == "As the file says (0..255, read)"
