"""Detector weights fetched from the app: the worker that downloads them (its own thread,
cancellable) and the small progress strip under the banner that shows `session.people`'s
download (never a modal dialog: the window stays usable)."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from posescope.core.session import Session
from posescope.core.session_people import Download
from posescope.gui.people_messages import DETECTOR_TITLES
from posescope.gui.threads import WorkerBase

PROGRESS_EVERY_S = 0.1  # progress signals at most this often (a 4 MB file is 64 chunks)


class DownloadWorker(WorkerBase):
    """`ensure_weights(name)` with progress by signal; `stop()` cancels (nothing is left in
    the cache). Returns the path of the file; a cancel is `errored(DownloadCancelled)`."""

    sigProgress = Signal(str, object, object)  # name, bytes so far, total bytes or None

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self._last = 0.0

    def work(self) -> str:
        from posescope.core.detection.weights import ensure_weights

        def progress(done: int, total: int | None) -> None:
            now = time.monotonic()
            if now - self._last >= PROGRESS_EVERY_S or (total and done >= total):
                self._last = now
                self.sigProgress.emit(self.name, done, total)

        return str(ensure_weights(self.name, progress=progress, cancel=self.aborted))


class DownloadBar(QFrame):
    """One line: what is downloaded, how far, and Cancel; hidden when nothing is."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DownloadBar")
        self.people = session.people
        lay = QHBoxLayout(self)
        lay.setContentsMargins(14, 4, 8, 4)
        lay.setSpacing(10)
        self.label = QLabel("")
        self.label.setObjectName("DownloadText")
        lay.addWidget(self.label)
        self.bar = QProgressBar()
        self.bar.setObjectName("DownloadProgress")
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(8)
        self.bar.setMinimumWidth(160)
        lay.addWidget(self.bar, 1)
        self.cancel = QPushButton("Cancel")
        self.cancel.setObjectName("BannerAction")
        self.cancel.setToolTip("Stop the download (nothing is kept)")
        self.cancel.clicked.connect(self.people.cancel_download)
        lay.addWidget(self.cancel)
        self._hide_timer = QTimer(self)
        self._hide_timer.setSingleShot(True)
        self._hide_timer.timeout.connect(self.hide)
        self.people.events.download_changed.connect(self.show_download)
        self.hide()

    def show_download(self, d: Download) -> None:
        title = DETECTOR_TITLES.get(d.name, d.name)
        mb = f"{d.done / 1e6:.1f}" + (f" / {d.total / 1e6:.1f} MB" if d.total else " MB")
        if d.state == "running":
            self._hide_timer.stop()
            self.label.setText(f"Downloading {title} weights…  {mb}")
            if d.fraction is None:
                self.bar.setRange(0, 0)  # busy: the size is not known
            else:
                self.bar.setRange(0, 1000)
                self.bar.setValue(round(d.fraction * 1000))
            self.cancel.setEnabled(True)
            self.show()
            return
        self.cancel.setEnabled(False)
        if d.state == "done":
            self.bar.setRange(0, 1000)
            self.bar.setValue(1000)
            self.label.setText(f"{title} weights downloaded ({mb})")
            self._hide_timer.start(4000)
            self.show()
        else:  # failed or cancelled: the banner says why
            self.hide()

    def text(self) -> str:
        return self.label.text()
