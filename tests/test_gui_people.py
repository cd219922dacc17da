"""Finding people in the app: the CNN detector (an ONNX double made here) in its own thread,
the missing-weights banner and a download from the app (a local http.server), a detector
refused by name, readable scores, the box tool with Undo, "Nobody found" and its ways out,
and every thread ending on close."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import itertools
import random
import threading
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtGui import QKeySequence

from posescope.core.detection import weights
from tests.detector_doubles import frame_with_box, rtmdet_end2end
from tests.gui_helpers import banner_texts, wait_model, wait_shown

pytestmark = pytest.mark.gui
PERSON = (200, 100, 120, 260)  # where the double's "person" (a white box) is


@pytest.fixture(scope="module")
def double(tmp_path_factory) -> Path:
    return rtmdet_end2end(tmp_path_factory.mktemp("det") / "rtmdet_double.onnx")


@pytest.fixture(scope="module")
def person_image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("img") / "person.png"
    cv2.imwrite(str(path), frame_with_box(640, 480, PERSON))
    return path


@pytest.fixture
def cache(monkeypatch, tmp_path) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv(weights.ENV_CACHE, str(folder))
    return folder


def detect_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "posescope-detect" and t.is_alive()]


def buttons(window, text_part: str) -> dict[str, object]:
    """The action buttons of the banner row whose text holds `text_part`."""
    for msg in window.banner._messages:
        if text_part in msg.text:
            return {b.text(): b for b in msg.buttons}
    raise AssertionError(f"no banner row with {text_part!r}: {banner_texts(window)}")


class SlowServer:
    """Serves `body` at every path, in 16 KB chunks `delay` s apart (so progress is seen)."""

    def __init__(self, body: bytes, delay: float) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for i in range(0, len(body), 16384):
                        self.wfile.write(body[i : i + 16384])
                        time.sleep(delay)
                except OSError:  # the client cancelled
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_port}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def served_rtmdet(monkeypatch, double: Path, delay: float, padding: int) -> SlowServer:
    """A zip like OpenMMLab's (the double as end2end.onnx, and `padding` random bytes beside
    it), served slowly; the catalogue's RTMDet-nano pinned to the double's hash."""
    data = double.read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("rtmdet/model/end2end.onnx", data)
        z.writestr("rtmdet/model/padding.bin", random.Random(1).randbytes(padding))
    server = SlowServer(buf.getvalue(), delay)
    pinned = hashlib.sha256(data).hexdigest()
    entry = dataclasses.replace(weights.CATALOGUE["rtmdet"], sha256=pinned)
    monkeypatch.setitem(weights.CATALOGUE, "rtmdet", entry)
    monkeypatch.setenv(weights.ENV_URLS, server.base)
    return server


# ---------------------------------------------------------------- no weights, download


def test_no_weights_banner_then_the_whole_frame(qtbot, window, ckpt_files, cache, person_image):
    wait_model(qtbot, window, [ckpt_files["xs"]])
    window.open_source(str(person_image))
    wait_shown(qtbot, window, 0)
    (text,) = [t for t in banner_texts(window, "warning") if "weights" in t]
    assert str(cache / "rtmdet_nano_person_320.onnx") in text  # where the file goes
    assert "http://127.0.0.1:9/rtmdet_nano" in text  # from where (POSESCOPE_MODEL_URLS)
    assert "--detector-model FILE" in text and "whole frame" in text
    assert set(buttons(window, "weights")) == {"Download", "Choose file…"}
    # the app goes on: one pose on the whole frame, and the view says nobody was found
    (person,) = window.session.shown.poses.people
    assert tuple(person.bbox) == (0.0, 0.0, 640.0, 480.0)
    assert window.video_view.nobody.isVisible() and window.video_view.nobody.state == "whole_frame"
    assert window.session.people.status.running is None
    assert "no RTMDet-nano weights" in window.settings_panel.detector_form.status.text()


def test_download_from_the_app_shows_progress_and_never_blocks(
    qtbot, window, ckpt_files, cache, person_image, double, monkeypatch
):
    server = served_rtmdet(monkeypatch, double, delay=0.01, padding=768 * 1024)
    try:
        wait_model(qtbot, window, [ckpt_files["xs"]])
        window.open_source(str(person_image))
        wait_shown(qtbot, window, 0)
        ticks, progress = [], []
        timer = QTimer()
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.start(20)
        bar = window.people_tools.download_bar
        window.session.people.events.download_changed.connect(
            lambda d: progress.append((d.state, d.done, bar.isVisible(), bar.text()))
        )
        buttons(window, "weights")["Download"].click()
        qtbot.waitUntil(lambda: window.session.people.status.running == "rtmdet", timeout=30000)
        timer.stop()
        running = [p for p in progress if p[0] == "running"]
        assert len(running) >= 3 and all(visible for _, _, visible, _ in running)
        assert [d for _, d, _, _ in running] == sorted(d for _, d, _, _ in running)
        assert "Downloading RTMDet-nano weights" in running[-1][3] and " MB" in running[-1][3]
        assert progress[-1][0] == "done"
        # the event loop kept running: the 20 ms timer fired all along the download
        assert len(ticks) >= 10 and max(b - a for a, b in itertools.pairwise(ticks)) < 1.0
        assert (cache / "rtmdet_nano_person_320.onnx").read_bytes() == double.read_bytes()
        assert any("saved to" in t for t in banner_texts(window, "success"))
        assert not [t for t in banner_texts(window, "warning") if "weights" in t]
        # the detector runs now: the person's box and its scores, labelled
        wait_shown(qtbot, window, 0)
        qtbot.waitUntil(lambda: any("det 0.90" in t for t in window.video_view.id_texts()))
        (label,) = window.video_view.id_texts()
        assert "det 0.90 · pose " in label
        assert window.video_view.legend.isVisible() and "det:" in window.video_view.legend.text()
        assert not window.video_view.nobody.isVisible()
    finally:
        server.close()


def test_a_download_can_be_cancelled(qtbot, window, ckpt_files, cache, double, monkeypatch):
    server = served_rtmdet(monkeypatch, double, delay=0.05, padding=4 * 1024 * 1024)
    try:
        assert window.session.people.request_download("rtmdet")
        bar = window.people_tools.download_bar
        qtbot.waitUntil(lambda: (window.session.people.download.done or 0) > 0, timeout=10000)
        assert bar.isVisible()
        bar.cancel.click()
        qtbot.waitUntil(lambda: window.session.people.download.state == "cancelled", timeout=10000)
        assert not bar.isVisible()
        assert [p.name for p in cache.iterdir()] == [] if cache.exists() else True
        assert any("cancelled" in t for t in banner_texts(window, "info"))
    finally:
        server.close()


def test_a_detector_asked_for_by_name_without_weights_is_refused(
    qtbot, window, ckpt_files, cache, person_image
):
    wait_model(qtbot, window, [ckpt_files["xs"]])
    window.open_source(str(person_image))
    wait_shown(qtbot, window, 0)
    generation = window.session.runner_generation
    form = window.settings_panel.detector_form
    form.combo.setCurrentIndex(1)  # YOLOX-tiny
    qtbot.waitUntil(lambda: bool(banner_texts(window, "error")), timeout=20000)
    (text,) = banner_texts(window, "error")
    assert "YOLOX-tiny" in text and "--detector-model FILE" in text and "as before" in text
    assert set(buttons(window, "YOLOX")) == {"Download", "Choose file…"}
    assert window.session.runner_generation == generation  # the runner that ran is kept
    assert window.session.runner_settings.detector is None and form.combo.currentIndex() == 0


# ---------------------------------------------------------------- a local detector file


def test_a_local_detector_file_runs_in_its_own_thread_and_ends_on_close(
    qtbot, window, ckpt_files, double, person_image
):
    assert not detect_threads()
    window.use_detector("rtmdet", str(double))
    wait_model(qtbot, window, [ckpt_files["xs"]])
    window.open_source(str(person_image))
    wait_shown(qtbot, window, 0)
    assert window.session.people.status.running == "rtmdet"
    (person,) = window.session.shown.poses.people
    assert person.det_score == pytest.approx(0.9, abs=1e-3)
    assert tuple(round(v) for v in person.bbox) == PERSON
    assert len(detect_threads()) == 1
    # a new runner (another setting) ends the old one's detector thread
    generation = window.session.runner_generation
    window.session.set_runner_settings(smoothing=False)
    qtbot.waitUntil(lambda: window.session.runner_generation > generation, timeout=20000)
    window.session.refresh()
    wait_shown(qtbot, window, 0)
    qtbot.waitUntil(lambda: len(detect_threads()) == 1, timeout=5000)
    window.close()
    qtbot.waitUntil(lambda: not detect_threads(), timeout=5000)


# ---------------------------------------------------------------- nobody, box, undo


def test_nobody_found_offers_the_two_ways_out(qtbot, window, ckpt_files, person_image):
    window.session.set_runner_settings(detector="none", whole_frame=False)
    wait_model(qtbot, window, [ckpt_files["xs"]])
    window.open_source(str(person_image))
    wait_shown(qtbot, window, 0)
    assert window.session.shown.poses.people == []
    card = window.video_view.nobody
    assert card.isVisible() and card.title.text() == "Nobody found in this frame"
    # way out 1: choose a detector (Settings ▸ People, the list open)
    card.detector_button.click()
    form = window.settings_panel.detector_form
    assert window.settings_dock.isVisible() and form.combo.view().isVisible()
    form.combo.hidePopup()
    # way out 2: draw a box (the tool turns on, the pose is estimated in the box)
    card.draw_button.click()
    assert window.people_tools.draw_button.isChecked() and window.session.runner_settings.use_box
    qtbot.waitUntil(lambda: bool(window.session.shown.poses.people), timeout=20000)
    qtbot.waitUntil(lambda: not card.isVisible(), timeout=5000)


def test_draw_box_tool_and_undo(qtbot, window, ckpt_files, person_image):
    tools = window.people_tools
    assert tools.draw_button.isVisible() and tools.draw_button.toolTip().startswith(
        "Draw a person box"
    )
    assert tools.undo_action.shortcut() == QKeySequence("Ctrl+Z")
    assert not tools.undo_button.isEnabled()
    wait_model(qtbot, window, [ckpt_files["xs"]])
    window.open_source(str(person_image))
    wait_shown(qtbot, window, 0)
    tools.draw_button.click()  # the tool: a plain drag draws
    assert window.video_view.viewbox.draw_tool and window.session.runner_settings.use_box
    window.video_view.viewbox.sigBoxDrawn.emit((190.0, 90.0, 140.0, 280.0))  # a drag ends
    assert window.session.runner_settings.box == (190.0, 90.0, 140.0, 280.0)
    assert window.video_view.box() == (190.0, 90.0, 140.0, 280.0)
    assert tools.undo_button.isEnabled()
    tools.undo_action.trigger()  # Ctrl+Z
    assert window.session.runner_settings.box != (190.0, 90.0, 140.0, 280.0)
    assert window.video_view.box() == window.session.runner_settings.box
    tools.undo_action.trigger()
    tools.undo_action.trigger()
    assert not window.session.runner_settings.use_box and not tools.draw_button.isChecked()
    assert window.session.runner_settings.box is None and window.video_view.roi is None
    tools.redo_action.trigger()
    assert window.session.runner_settings.use_box and tools.draw_button.isChecked()


# ---------------------------------------------------------------- command line


def test_gui_takes_the_detector_flags(tmp_path, double, capsys):
    import inspect

    import main
    from posescope.gui.app import run_gui

    params = inspect.signature(run_gui).parameters
    assert "detector" in params and "detector_model" in params
    args = main.parser().parse_args(["gui", "--detector", "yolox", "--detector-model", "m.onnx"])
    assert main._detector_options(run_gui, args) == {
        "detector": "yolox",
        "detector_model": "m.onnx",
    }
    settings = tmp_path / "s.ini"
    from PySide6.QtCore import QSettings

    q = QSettings(str(settings), QSettings.Format.IniFormat)
    assert run_gui(detector="hog", detector_model=str(double), settings=q) == 2
    assert "error: --detector: a detector model file needs" in capsys.readouterr().err


def moving_box(i: int) -> tuple[int, int, int, int]:
    return (40 + 20 * i, 100, 120, 260)


@pytest.fixture(scope="module")
def moving_video(tmp_path_factory) -> Path:
    """24 frames, 640x480, the white "person" moving 20 px right per frame."""
    path = tmp_path_factory.mktemp("vid") / "moving.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for i in range(24):
        writer.write(frame_with_box(640, 480, moving_box(i)))
    writer.release()
    return path


def test_a_frame_looked_at_after_a_seek_shows_the_people_found_on_it(
    tmp_path, double, moving_video
):
    """A frame computed on demand after a seek (a preview ahead of the analysis pass, or a
    live look) is detected before its poses: the box is the one found on that frame, not one
    carried from another moment, and a far seek starts ids at 1."""
    from posescope.core.detection import registry
    from posescope.core.session_types import RunnerSettings
    from posescope.core.sources.probe import open_source
    from posescope.gui import engine
    from tests.test_pipeline import estimator_for

    detector = registry.create_detector("rtmdet", model_path=str(double), download=False)
    runner = engine.make_runner(estimator_for(tmp_path), RunnerSettings(), detector)
    try:
        with open_source(moving_video) as src:
            runner.process(src.get(0))
            for index in (18, 3, 12):  # far seeks, forwards and back
                runner.reset()  # what the inference worker does on a seek
                (person,) = runner.process(src.get(index)).people
                assert person.det_score == pytest.approx(0.9, abs=1e-3), index
                assert tuple(round(v) for v in person.bbox) == moving_box(index), index
                assert person.track_id == 1  # a fresh look: ids from 1
    finally:
        runner.close()


def test_a_seek_in_the_window_shows_the_analysed_poses(
    qtbot, window, ckpt_files, double, moving_video
):
    """With the CNN detector, a frame reached by a seek shows the analysis pass's poses for it
    (the same whichever way it is reached), found by the detector."""
    window.use_detector("rtmdet", str(double))
    wait_model(qtbot, window, [ckpt_files["xs"]])
    window.open_source(str(moving_video))
    wait_shown(qtbot, window, 0)
    qtbot.waitUntil(
        lambda: window.session.analysis is not None and window.session.analysis.finished,
        timeout=60000,
    )
    for index in (18, 3, 12):
        window.session.seek(index)
        wait_shown(qtbot, window, index)
        shown = window.session.shown.poses.people
        cached = window.session.analysed_poses(index).people
        assert [p.track_id for p in shown] == [p.track_id for p in cached]
        for a, b in zip(shown, cached, strict=True):
            np.testing.assert_array_equal(a.keypoints_2d, b.keypoints_2d)
        assert any(p.det_score == pytest.approx(0.9, abs=1e-3) for p in shown), index


def test_the_detector_choice_is_remembered(qsettings):
    from posescope.core.session import Session
    from posescope.core.session_types import RunnerSettings
    from posescope.gui.persist import load_settings, save_settings

    session = Session(runner_settings=RunnerSettings(detector="yolox", whole_frame=False))
    save_settings(qsettings, session)
    _, runner, _ = load_settings(qsettings)
    assert runner.detector == "yolox" and runner.whole_frame is False
    qsettings.setValue("settings/detector", "ssd")  # not a detector: the default
    assert load_settings(qsettings)[1].detector is None


def test_the_backend_choice_is_remembered(qsettings):
    from posescope.core.session import Session
    from posescope.core.session_types import ModelSettings
    from posescope.gui.persist import load_settings, save_settings

    save_settings(qsettings, Session(model_settings=ModelSettings(backend="torch")))
    assert load_settings(qsettings)[0].backend == "torch"
    qsettings.setValue("settings/backend", "tensorrt")  # not a backend: the defaults
    assert load_settings(qsettings)[0].backend == "auto"
