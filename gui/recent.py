"""File menu helpers: the recent files list (kept in QSettings) and the camera menu."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu, QWidget

from posescope.gui.controller import Controller
from posescope.gui.messages import describe_error

MAX_RECENT = 10


class RecentFiles:
    """The last files opened, newest first; `attach(menu)` keeps a menu listing them."""

    def __init__(self, qsettings: QSettings, open_paths: Callable[[Sequence[str]], None]) -> None:
        self.qsettings = qsettings
        self._open = open_paths
        self._menu: QMenu | None = None

    def files(self) -> list[str]:
        value = self.qsettings.value("recent", [])
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value] if isinstance(value, list | tuple) else []

    def add(self, path: str) -> None:
        path = os.path.abspath(path)
        items = [p for p in self.files() if p != path]
        items.insert(0, path)
        self.qsettings.setValue("recent", items[:MAX_RECENT])
        self._rebuild()

    def clear(self) -> None:
        self.qsettings.setValue("recent", [])
        self._rebuild()

    def last_dir(self) -> str:
        recent = self.files()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def attach(self, menu: QMenu) -> None:
        self._menu = menu
        self._rebuild()

    def _rebuild(self) -> None:
        menu = self._menu
        if menu is None:
            return
        menu.clear()
        items = self.files()
        for p in items:
            a = menu.addAction(os.path.basename(p.rstrip("/")) or p)
            a.setToolTip(p)
            a.setStatusTip(p)
            a.triggered.connect(partial(self._open, [p]))
        if not items:
            a = menu.addAction("No recent files")
            a.setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear", self.clear)


class CameraMenu(QMenu):
    """File ▸ Camera: lists the cameras (looked for in the task thread on first show)."""

    def __init__(
        self,
        controller: Controller,
        open_source: Callable[[str], None],
        show_message: Callable[[str, str], object],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Camera", parent)
        self._controller = controller
        self._open = open_source
        self._show_message = show_message
        self._cameras: list[tuple[str, str]] | None = None
        self.aboutToShow.connect(self._fill)
        controller.sigCameras.connect(self._found)
        controller.sigCamerasFailed.connect(self._failed)

    def _fill(self) -> None:
        self.clear()
        if self._cameras is None:
            a = self.addAction("Looking for cameras…")
            a.setEnabled(False)
            self._controller.find_cameras()
            self._cameras = []
            return
        for spec, label in self._cameras:
            self.addAction(label, partial(self._open, spec))
        if not self._cameras:
            a = self.addAction("No camera found")
            a.setEnabled(False)
        self.addSeparator()
        self.addAction("Search again", self._forget)

    def _forget(self) -> None:
        self._cameras = None

    def _found(self, cameras: list[tuple[str, str]]) -> None:
        self._cameras = list(cameras)
        if self.isVisible():
            self._fill()

    def _failed(self, exc: BaseException) -> None:
        self._cameras = []
        self._show_message(f"Could not list cameras: {describe_error(exc)}", "warning")
