"""People finding in the app's state, without Qt: which detector is wanted and which runs,
getting its weights, the person box's undo history, and whether a frame shows anybody.

`Session.people` is one `People`. Like the session it only holds state and emits events
(psygnal): the controller builds detectors and runs downloads in workers and reports back
through `detector_ready`, `detector_failed`, `download_progress`, `download_finished` and
`download_failed`; the views show `status`, `download` and `history`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from psygnal import Signal, SignalGroup

from posescope.core.session_types import Box, FrameResult, RunnerSettings

if TYPE_CHECKING:
    from posescope.core.session import Session

CNN_DETECTORS = ("rtmdet", "yolox")  # the ones with weights to download


@dataclass(frozen=True)
class DetectorStatus:
    """What finds people now. `wanted`: the detector the settings ask for; `running`: the one
    that runs ('rtmdet' | 'yolox' | 'hog'), 'box' for a drawn box, None when nobody is
    detected (the whole frame, or no one); `problem`: why `wanted` does not run (the engine's
    exception: WeightsMissingError, DetectorError, ValueError); `explicit`: it was asked for
    by name or file (a problem is an error, not a warning)."""

    wanted: str
    running: str | None
    problem: Exception | None = None
    explicit: bool = False

    @property
    def missing_weights(self) -> str | None:
        """The CNN detector whose weights are missing (a download can fix it), or None."""
        from posescope.core.detection.base import WeightsMissingError

        if isinstance(self.problem, WeightsMissingError) and self.wanted in CNN_DETECTORS:
            return self.wanted
        return None


@dataclass(frozen=True)
class Download:
    """A weights download: `state` is 'running' | 'done' | 'failed' | 'cancelled';
    `use_when_done`: switch to this detector when it arrives (it was asked for by name)."""

    name: str
    done: int = 0
    total: int | None = None
    state: str = "running"
    error: Exception | None = None
    use_when_done: bool = False

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total else None


class PeopleEvents(SignalGroup):
    detector_status = Signal(object)  # DetectorStatus (after every runner build)
    detector_refused = Signal(object)  # DetectorStatus: asked for, not there; old runner kept
    download_requested = Signal(str)  # name: the controller starts the download worker
    download_cancel_requested = Signal()
    download_changed = Signal(object)  # Download: started, progress, finished, failed
    history_changed = Signal(bool, bool)  # can undo, can redo (person box edits)


@dataclass(frozen=True)
class BoxState:
    """The person box part of the runner settings (what Undo restores)."""

    box: Box | None
    use_box: bool

    @classmethod
    def of(cls, settings: RunnerSettings) -> BoxState:
        return cls(settings.box, settings.use_box)


class BoxHistory:
    """Undo / redo of person box edits (drawn, moved, switched on or off): it watches the
    session's runner settings and records each change of the box or of its use."""

    LIMIT = 100

    def __init__(self, session: Session, events: PeopleEvents) -> None:
        self._session = session
        self._events = events
        self._current = BoxState.of(session.runner_settings)
        self._undo: list[BoxState] = []
        self._redo: list[BoxState] = []
        self._applying = False
        session.events.runner_settings_changed.connect(self._changed)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        """Go back to the box before the last edit; False when there is none."""
        if not self._undo:
            return False
        self._redo.append(self._current)
        self._apply(self._undo.pop())
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(self._current)
        self._apply(self._redo.pop())
        return True

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._emit()

    def _apply(self, state: BoxState) -> None:
        self._applying = True
        try:
            self._session.set_runner_settings(box=state.box, use_box=state.use_box)
        finally:
            self._applying = False
        self._current = BoxState.of(self._session.runner_settings)
        self._emit()

    def _changed(self, settings: RunnerSettings) -> None:
        state = BoxState.of(settings)
        if state == self._current:
            return
        if not self._applying:
            self._undo.append(self._current)
            del self._undo[: -self.LIMIT]
            self._redo.clear()
        self._current = state
        self._emit()

    def _emit(self) -> None:
        self._events.history_changed.emit(self.can_undo, self.can_redo)


class People:
    """The session's people finding: detector status, weights download, box history."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.events = PeopleEvents()
        settings = session.runner_settings
        self.status = DetectorStatus(settings.detector_name, None, None, False)
        self.download: Download | None = None
        self.history = BoxHistory(session, self.events)
        self._running: RunnerSettings | None = None  # the settings of the runner that runs

    # ------------------------------------------------------------ detector (controller)

    def detector_ready(
        self, settings: RunnerSettings, running: str | None, problem: Exception | None
    ) -> DetectorStatus:
        """A runner was built with `settings`: `running` finds people (see DetectorStatus),
        `problem` says why the wanted detector does not (None: it runs)."""
        self._running = settings
        self.status = DetectorStatus(
            settings.detector_name, running, problem, settings.detector_explicit
        )
        self.events.detector_status.emit(self.status)
        return self.status

    def detector_failed(self, settings: RunnerSettings, problem: Exception) -> DetectorStatus:
        """A detector asked for by name could not be made: the runner that runs is kept and
        the settings go back to its detector (without a rebuild)."""
        refused = DetectorStatus(settings.detector_name, None, problem, True)
        session = self.session
        if self._running is not None:
            back = self._running
            current = session.runner_settings
            restored = replace(
                current,
                detector=back.detector,
                detector_model=back.detector_model,
                whole_frame=back.whole_frame,
            )
            if restored != current:
                session.runner_settings = restored
                session.events.runner_settings_changed.emit(restored)
        self.events.detector_refused.emit(refused)
        return refused

    def choose_detector(self, name: str | None, model: str | None = None) -> RunnerSettings:
        """Ask for a detector by name (None: the default) and optionally a local ONNX file;
        the runner is rebuilt (or refused and kept, see `detector_failed`)."""
        return self.session.set_runner_settings(detector=name, detector_model=model)

    # ------------------------------------------------------------ weights download

    @property
    def downloading(self) -> bool:
        return self.download is not None and self.download.state == "running"

    def request_download(self, name: str, use_when_done: bool = False) -> bool:
        """Fetch the named detector's weights in a worker; False when one is running."""
        if name not in CNN_DETECTORS:
            raise ValueError(f"no weights to download for detector {name!r}")
        if self.downloading:
            return False
        self.download = Download(name, use_when_done=use_when_done)
        self.events.download_changed.emit(self.download)
        self.events.download_requested.emit(name)
        return True

    def cancel_download(self) -> None:
        if self.downloading:
            self.events.download_cancel_requested.emit()

    def download_progress(self, name: str, done: int, total: int | None) -> None:
        d = self.download
        if d is None or d.name != name or d.state != "running":
            return
        self.download = replace(d, done=int(done), total=total if total else None)
        self.events.download_changed.emit(self.download)

    def download_finished(self, name: str) -> None:
        """The weights are in the cache: use them (rebuild the runner, or switch to them)."""
        d = self.download
        if d is None or d.name != name:
            return
        self.download = replace(d, state="done", done=d.total or d.done)
        self.events.download_changed.emit(self.download)
        settings = self.session.runner_settings
        if d.use_when_done and settings.detector_name != name:
            self.choose_detector(name)
        elif settings.detector_name == name and settings.tracker_box is None:
            self.session.rebuild_runner()

    def download_failed(self, name: str, error: Exception, cancelled: bool = False) -> None:
        d = self.download
        if d is None or d.name != name:
            return
        self.download = replace(d, state="cancelled" if cancelled else "failed", error=error)
        self.events.download_changed.emit(self.download)


def people_state(result: FrameResult | None, settings: RunnerSettings) -> str:
    """What a shown frame says about people: 'unknown' (no poses: no model yet, or it
    failed), 'nobody' (nobody found, no box), 'whole_frame' (nobody found: the pose is on the
    whole frame), 'found'."""
    if result is None or result.poses is None:
        return "unknown"
    people = result.poses.people
    if not people:
        return "nobody"
    if settings.tracker_box is None and len(people) == 1:
        h, w = result.frame.image.shape[:2]
        p = people[0]
        whole = all(
            math.isclose(float(a), float(b), abs_tol=0.5)
            for a, b in zip(p.bbox, (0.0, 0.0, w, h), strict=True)
        )
        if whole and not math.isfinite(p.det_score):
            return "whole_frame"
    return "found"
