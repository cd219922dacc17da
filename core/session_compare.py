"""A/B: two pose checkpoints compared in one session, without Qt.

`session.compare` (a `Comparison`) holds which checkpoint is A and which is B, what the views
show (both, A only, B only), the per-joint distances between A's and B's poses on the frame
on screen and averaged over the frames the analysis pass has reached, and the `diff` of the
two files. Views subscribe to its events; the controller runs the diff (`diff_requested`) in
a worker and hands it back (`diff_finished` / `diff_failed`).

How A and B get built and run is the session's usual flow: two pose networks dropped together
(`Session.choose_checkpoints`) or `compare_with` make a `BuildRequest` with `compare` = B; the
controller builds both, and one runner (core/compare_runner.py) runs the tracker once and both
networks on the same boxes, so the frames on screen and the analysis cache carry both poses.
Any setting change rebuilds (or re-runs) both, and the averages start again with the new pass.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from psygnal import Signal, SignalGroup

from posescope.core.compare_runner import poses_b
from posescope.core.pose_diff import DistanceAverage, JointDistances, pose_distances
from posescope.core.session_types import CheckpointChoice, FrameResult, Opened

if TYPE_CHECKING:
    from posescope.core.analysis import AnalysisProgress
    from posescope.core.diff import CheckpointDiff
    from posescope.core.session import Session
    from posescope.core.session_types import BuildFailed


class Visibility(str, enum.Enum):
    """Which skeletons the 2D and 3D views draw while comparing."""

    BOTH = "both"
    A = "a"
    B = "b"


VISIBILITY_ORDER = (Visibility.BOTH, Visibility.A, Visibility.B)


@dataclass(frozen=True)
class DistanceRow:
    """One person's A-B distances: on the frame on screen (None: not in it) and averaged
    over the analysed frames (None: not seen there yet)."""

    track_id: int
    frame: JointDistances | None
    average: DistanceAverage | None


class CompareEvents(SignalGroup):
    pair_changed = Signal(object, object)  # A, B (Opened); (None, None): not comparing
    visibility_changed = Signal(object)  # Visibility
    distances_changed = Signal()  # the frame's distances or the averages changed
    diff_requested = Signal(int, object, object)  # key, A, B: compare the files in a worker
    diff_changed = Signal()  # diff / diff_error / diff_pending changed


class Comparison:
    """The A/B state of a `Session` (`session.compare`)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.events = CompareEvents()
        self.a: Opened | None = None
        self.b: Opened | None = None
        self.visibility = Visibility.BOTH
        self.frame: list[JointDistances] = []  # the frame on screen, per person
        self.frame_index: int | None = None
        self.note: str | None = None  # why no distance can be given (joint sets differ)
        self.averages: dict[int, DistanceAverage] = {}  # per track id, over analysed frames
        self.overall = DistanceAverage()  # every person of every analysed frame
        self.averaged_frames = 0
        self._avg_key: object = None
        self.diff: CheckpointDiff | None = None
        self.diff_error: Exception | None = None
        self.diff_pending = False
        self._diff_key = 0
        self._with_pending = False
        ev = session.events
        ev.frame_shown.connect(self._frame_shown)
        ev.analysis_progressed.connect(self._analysis_progressed)
        ev.build_failed.connect(self._build_failed)
        ev.identify_failed.connect(self._identify_failed)

    # ---------------------------------------------------------------- state

    @property
    def active(self) -> bool:
        """Two networks are being compared."""
        return self.b is not None

    @property
    def show_a(self) -> bool:
        return self.visibility != Visibility.B

    @property
    def show_b(self) -> bool:
        return self.active and self.visibility != Visibility.A

    def rows(self, selected: int | None = None) -> list[DistanceRow]:
        """The people to read out: the selected one when it is on screen, else each person
        of the frame on screen (then anyone averaged but not on screen)."""
        on_screen = {d.track_id: d for d in self.frame}
        ids = list(on_screen) + [t for t in self.averages if t not in on_screen]
        if selected is not None and selected in on_screen:
            ids = [selected]
        return [DistanceRow(t, on_screen.get(t), self.averages.get(t)) for t in ids]

    # ---------------------------------------------------------------- requests (the user)

    def compare_with(self, paths: Sequence[str], trust: bool = False) -> None:
        """File ▸ Compare with…: the pose network in `paths` becomes B beside the running A."""
        self._with_pending = True
        self._session.open_checkpoints(paths, trust)

    def stop(self) -> None:
        """Leave comparison: A runs alone again (rebuilt without B)."""
        if not self.active:
            return
        self.set_pair(None, None)
        self._session.reload()

    def set_visibility(self, visibility: Visibility | str) -> None:
        value = Visibility(visibility)
        if value != self.visibility:
            self.visibility = value
            self.events.visibility_changed.emit(value)

    def cycle_visibility(self) -> Visibility:
        """Both -> A only -> B only -> both."""
        i = VISIBILITY_ORDER.index(self.visibility)
        self.set_visibility(VISIBILITY_ORDER[(i + 1) % len(VISIBILITY_ORDER)])
        return self.visibility

    # ---------------------------------------------------------------- hooks (session.py)

    def resolve(self, choice: CheckpointChoice) -> CheckpointChoice:
        """After "Compare with…", one pose network opened becomes B and what runs stays A."""
        pending, self._with_pending = self._with_pending, False
        base = self._session.base
        if pending and choice.pose is not None and choice.compare is None and base is not None:
            return CheckpointChoice(
                base, choice.rootnet, choice.passed_over, choice.rootnets_dropped, choice.pose
            )
        return choice

    def set_pair(self, a: Opened | None, b: Opened | None) -> None:
        """A and B from now on (b None: not comparing); asks for the files' diff."""
        if b is None:
            a = None
        if _path(a) == _path(self.a) and _path(b) == _path(self.b):
            self.a, self.b = a, b
            return
        was = self.active
        self.a, self.b = a, b
        self._reset_distances()
        self.diff, self.diff_error = None, None
        self._diff_key += 1
        self.diff_pending = b is not None
        if b is not None and not was:
            self.visibility = Visibility.BOTH
            self.events.visibility_changed.emit(self.visibility)
        self.events.pair_changed.emit(a, b)
        self.events.diff_changed.emit()
        self.events.distances_changed.emit()
        if a is not None and b is not None:
            self.events.diff_requested.emit(self._diff_key, a, b)

    # ---------------------------------------------------------------- answers (controller)

    def diff_finished(self, key: int, diff: CheckpointDiff) -> bool:
        """The diff of the pair `key` (False and ignored when the pair changed since)."""
        if key != self._diff_key:
            return False
        self.diff, self.diff_error, self.diff_pending = diff, None, False
        self.events.diff_changed.emit()
        return True

    def diff_failed(self, key: int, error: Exception) -> bool:
        if key != self._diff_key:
            return False
        self.diff, self.diff_error, self.diff_pending = None, error, False
        self.events.diff_changed.emit()
        return True

    # ---------------------------------------------------------------- distances

    def _reset_distances(self) -> None:
        self.frame, self.frame_index, self.note = [], None, None
        self.averages, self.overall, self.averaged_frames = {}, DistanceAverage(), 0
        self._avg_key = None

    def _distances(self, poses: object) -> list[JointDistances] | None:
        b = poses_b(poses)  # type: ignore[arg-type]
        if b is None:
            return None
        try:
            return pose_distances(poses, b)  # type: ignore[arg-type]
        except ValueError as exc:  # joint sets differ: no joint-by-joint distance
            self.note = str(exc)
            return None

    def _frame_shown(self, result: FrameResult) -> None:
        if not self.active:
            return
        distances = self._distances(result.poses)
        self.frame = distances or []
        self.frame_index = result.frame.index if distances is not None else None
        self.events.distances_changed.emit()

    def _analysis_progressed(self, _progress: AnalysisProgress) -> None:
        """Add the frames the pass reached since the last call to the averages."""
        if not self.active:
            return
        session = self._session
        cache, key = session.analysis, session.analysis_key
        if key != self._avg_key:
            self.averages, self.overall, self.averaged_frames = {}, DistanceAverage(), 0
            self._avg_key = key
        if cache is None:
            self.events.distances_changed.emit()
            return
        done = cache.analysed
        added = False
        for index in range(self.averaged_frames, done):
            distances = self._distances(cache.get(index))
            for d in distances or []:
                self.averages.setdefault(d.track_id, DistanceAverage()).add([d])
            self.overall.add(distances or [])
            added = True
        self.averaged_frames = max(self.averaged_frames, done)
        if added:
            self.events.distances_changed.emit()

    def _identify_failed(self, _paths: object, _error: object) -> None:
        self._with_pending = False  # "Compare with…" ends with the files it asked for

    def _build_failed(self, _failed: BuildFailed) -> None:
        """The pair did not build: what runs (and what it compares with) is shown again."""
        model = self._session.model
        if model is None:
            self.set_pair(None, None)
        elif model.b is not None:
            self.set_pair(model.opened(), model.b.opened())
        else:
            self.set_pair(None, None)


def _path(opened: Opened | None) -> str | None:
    return opened.path if opened is not None else None


__all__ = ["VISIBILITY_ORDER", "CompareEvents", "Comparison", "DistanceRow", "Visibility"]
