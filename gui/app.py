"""QApplication setup, the dark theme, and `run_gui` (what `posescope gui` calls).

`run_gui(checkpoint, media, frame, screenshot)` opens the window; with `screenshot` it waits
until that frame is shown with its pose, saves a grab of the whole window (3D view included)
and returns a non-zero exit code if anything failed (bad checkpoint, bad media, no pose).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication

from posescope import resources
from posescope.gui import colors

log = logging.getLogger(__name__)

# Where the last `grab_window` found the 3D view: (x, y, w, h) in image pixels (for checks).
LAST_GRAB: dict[str, tuple[int, int, int, int]] = {}

APP_NAME = "PoseScope"
ORGANIZATION = "PoseScope"


def ensure_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once, with the app's style)."""
    app = QApplication.instance()
    if app is None:
        QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
        app = QApplication(argv if argv is not None else [sys.argv[0]])
        app.setApplicationName(APP_NAME)
        app.setOrganizationName(ORGANIZATION)
        app.setApplicationDisplayName(APP_NAME)
    if not app.property("posescope_styled"):
        apply_style(app)  # type: ignore[arg-type]
        app.setProperty("posescope_styled", True)
    return app  # type: ignore[return-value]


def apply_style(app: QApplication) -> None:
    """Fusion + a dark palette + resources/style.qss; pyqtgraph defaults to match."""
    app.setStyle("Fusion")
    pal = QPalette()
    base, panel, text = QColor(colors.BACKGROUND), QColor(colors.PANEL), QColor(colors.TEXT)
    pal.setColor(QPalette.ColorRole.Window, base)
    pal.setColor(QPalette.ColorRole.WindowText, text)
    pal.setColor(QPalette.ColorRole.Base, QColor("#0e121b"))
    pal.setColor(QPalette.ColorRole.AlternateBase, panel)
    pal.setColor(QPalette.ColorRole.Text, text)
    pal.setColor(QPalette.ColorRole.Button, panel)
    pal.setColor(QPalette.ColorRole.ButtonText, text)
    pal.setColor(QPalette.ColorRole.Highlight, QColor(colors.ACCENT))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor("#0b0e15"))
    pal.setColor(QPalette.ColorRole.ToolTipBase, panel)
    pal.setColor(QPalette.ColorRole.ToolTipText, text)
    pal.setColor(QPalette.ColorRole.PlaceholderText, QColor(colors.TEXT_DIM))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#5d6781"))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#5d6781"))
    app.setPalette(pal)
    try:
        folder = resources.path("style.qss").parent.as_posix()
        app.setStyleSheet(resources.read_text("style.qss").replace("{RES}", folder))
        app.setWindowIcon(QIcon(str(resources.path("icon.svg"))))
    except FileNotFoundError:
        log.warning("style sheet or icon missing; using the plain style")
    pg.setConfigOptions(
        imageAxisOrder="row-major", antialias=True, background=colors.VIEW_BACKGROUND
    )


def make_window(settings: QSettings | None = None) -> Any:
    """A MainWindow at the default size (1400 x 900), not yet shown."""
    from posescope.gui.main_window import MainWindow

    window = MainWindow(settings=settings)
    window.resize(1400, 900)
    return window


def run_gui(
    checkpoint: str | os.PathLike[str] | None = None,
    media: str | os.PathLike[str] | None = None,
    frame: int | None = None,
    screenshot: str | os.PathLike[str] | None = None,
    box: tuple[float, float, float, float] | None = None,
    timeout_s: float = 180.0,
    settings: QSettings | None = None,
    detector: str | None = None,
    detector_model: str | os.PathLike[str] | None = None,
    input_scale: str = "auto",
) -> int:
    """Run the desktop app; returns the exit code.

    `box` (x, y, w, h) estimates in that person box instead of detecting people;
    `detector` (rtmdet | yolox | hog | none) and `detector_model` (a local ONNX file of it)
    choose how people are found (default: RTMDet-nano, the whole frame without weights);
    `input_scale` (auto | 0-255 | 0-1) overrides the pixel scale read from the checkpoint.
    With `screenshot`: open `checkpoint` and `media`, show frame `frame` (default 0) with its
    pose, save a PNG of the whole window, close, and return 0, or 1 when anything failed.
    Without it: open what was given (or nothing: the window shows a drop hint) and run until
    the window closes.
    """
    app = ensure_app()
    scratch = None
    if screenshot is not None and settings is None:
        # A screenshot run leaves the user's recent files and window layout as they were.
        scratch = tempfile.TemporaryDirectory(prefix="posescope-screenshot-")
        settings = QSettings(str(Path(scratch.name) / "settings.ini"), QSettings.Format.IniFormat)
    try:
        window = make_window(settings)
        if input_scale != "auto":
            window.session.set_model_settings(input_scale=input_scale)
        if detector is not None or detector_model is not None:
            from posescope.core.session_types import SettingsError

            model = str(Path(detector_model).expanduser()) if detector_model else None
            try:
                window.use_detector(detector, model)
            except SettingsError as exc:
                print(f"error: --detector: {exc}", file=sys.stderr)
                window.shutdown()
                window.deleteLater()
                return 2
        return _run_window(app, window, checkpoint, media, frame, screenshot, box, timeout_s)
    finally:
        if scratch is not None:
            scratch.cleanup()


def _run_window(
    app: QApplication,
    window: Any,
    checkpoint: str | os.PathLike[str] | None,
    media: str | os.PathLike[str] | None,
    frame: int | None,
    screenshot: str | os.PathLike[str] | None,
    box: tuple[float, float, float, float] | None,
    timeout_s: float,
) -> int:
    window.show()
    paths = [str(p) for p in (checkpoint, media) if p is not None]
    if box is not None:
        window.use_person_box(box)
    if frame is not None:
        window.seek_when_open(int(frame))
    if screenshot is None:
        if paths:
            window.open_paths(paths)
        code = app.exec()
        window.shutdown()
        return int(code)
    try:
        problems = _wait_for_pose(app, window, checkpoint, media, frame, paths, timeout_s)
        _settle(app, window)
        image = grab_window(window)
        out = Path(screenshot)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(out), "PNG"):
            problems.append(f"could not write {out}")
        elif not problems:
            problems.extend(_check_image(image, window))
    finally:
        window.shutdown()
        window.close()
        window.deleteLater()
        app.processEvents()
    for p in problems:
        print(f"posescope gui: {p}", file=sys.stderr)
    return 1 if problems else 0


def _wait_for_pose(
    app: QApplication,
    window: Any,
    checkpoint: Any,
    media: Any,
    frame: int | None,
    paths: list[str],
    timeout_s: float,
) -> list[str]:
    """Run the event loop until the wanted frame is shown with its pose, or a failure."""
    problems: list[str] = []
    state: dict[str, Any] = {"ready": checkpoint is None}
    loop = QEventLoop()

    def check(*_: Any) -> None:
        if problems:
            loop.quit()
            return
        shown = window.session.shown
        if media is not None:
            if shown is None:
                return
            if frame is not None and shown.frame.index != min(
                frame, window.session.frame_count - 1
            ):
                return
        if checkpoint is not None:
            if not state["ready"]:
                return
            if media is not None:
                if not window.session.is_current(shown):
                    return
                if not shown.poses.people:
                    problems.append(f"no pose found in frame {shown.frame.index}")
        loop.quit()

    def on_problem(level: str, text: str) -> None:
        if level == "error" or (level == "warning" and "trust" in text):
            problems.append(text)
        check()

    def on_ready(_ident: Any) -> None:
        state["ready"] = True
        check()

    window.sigProblem.connect(on_problem)
    window.sigModelReady.connect(on_ready)
    window.sigModelFailed.connect(lambda text: (problems.append(text), check()))
    window.sigFrameShown.connect(check)
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(
        lambda: (problems.append(f"timed out after {timeout_s:.0f} s"), loop.quit())
    )
    timer.start(int(timeout_s * 1000))
    if paths:
        window.open_paths(paths)
        QTimer.singleShot(0, check)
        loop.exec()
    timer.stop()
    if checkpoint is not None and not state["ready"] and not problems:
        problems.append("the checkpoint did not load")
    return problems


def _settle(app: QApplication, window: Any, ms: int = 250) -> None:
    """Let layouts, the GL view and the banner paint."""
    window.skeleton_view.gl.update()
    end = time.perf_counter() + ms / 1000.0
    while time.perf_counter() < end:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.01)


def grab_window(window: Any) -> QImage:
    """The whole window as an image, with the 3D view's rendered frame painted in.

    `QWidget.grab` renders a QOpenGLWidget's framebuffer too (Qt 6); the 3D view is drawn
    over again from `grabFramebuffer` only if its area came out black.
    """
    image = window.grab().toImage()
    gl = window.skeleton_view.gl
    top_left = gl.mapTo(window, gl.rect().topLeft())
    dpr = image.devicePixelRatio() or 1.0
    region = _region(image, top_left.x(), top_left.y(), gl.width(), gl.height(), dpr)
    LAST_GRAB["gl"] = (
        int(top_left.x() * dpr),
        int(top_left.y() * dpr),
        int(gl.width() * dpr),
        int(gl.height() * dpr),
    )
    if region.size and float(region.max()) == 0.0:
        fb = gl.grabFramebuffer()
        painter = QPainter(image)
        painter.drawImage(top_left, fb)
        painter.end()
    return image


def _region(image: QImage, x: int, y: int, w: int, h: int, dpr: float = 1.0) -> np.ndarray:
    """(h, w, 3) uint8 copy of a part of `image` (logical coordinates)."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    arr = _qimage_to_array(img)
    x0, y0 = int(x * dpr), int(y * dpr)
    return arr[y0 : y0 + int(h * dpr), x0 : x0 + int(w * dpr)].copy()


def _qimage_to_array(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    ptr = img.constBits()
    arr = np.frombuffer(ptr, dtype=np.uint8, count=img.sizeInBytes())
    arr = arr.reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3]
    return arr.reshape(img.height(), img.width(), 3).copy()


def image_stats(image: QImage | QPixmap) -> dict[str, float]:
    """Pixel standard deviation of the whole image (a blank grab has ~0)."""
    if isinstance(image, QPixmap):
        image = image.toImage()
    arr = _qimage_to_array(image)
    return {"std": float(arr.std()), "mean": float(arr.mean())}


def _check_image(image: QImage, window: Any) -> list[str]:
    problems = []
    if image_stats(image)["std"] < 5.0:
        problems.append("the screenshot is blank")
    gl = window.skeleton_view.gl
    tl = gl.mapTo(window, gl.rect().topLeft())
    region = _region(image, tl.x(), tl.y(), gl.width(), gl.height(), image.devicePixelRatio())
    if region.size == 0 or float(region.max()) < 40 or float(region.std()) < 2.0:
        problems.append("the 3D view did not render")
    return problems
