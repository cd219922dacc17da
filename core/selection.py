"""Looking closer, without Qt: which person is selected, their joints as numbers, the root
joint's trail over the frames seen, and where people stand in a root-relative 3D view.

`Selection` lives on the `Session` (`session.selection`); views subscribe to its events and
send clicks to it, none holds the truth. The functions are pure, so the readout's numbers and
the 3D layout are tested on plain `FramePoses`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from psygnal import Signal, SignalGroup

from posescope.core.types import FramePoses, PersonPose
from posescope.core.variants import JointSet

TRAIL_MAX_FRAMES = 20_000  # per person: bounded memory on long videos
MIN_GAP_MM = 900.0  # people side by side in root-relative 3D stand at least this far apart
MAX_GAP_MM = 2500.0  # ... and at most this far (one view shows them all, whatever the depth)


@dataclass(frozen=True)
class JointRow:
    """One joint of one person: name, image pixels, camera-space mm, score (0..1)."""

    name: str
    x_px: float
    y_px: float
    x_mm: float
    y_mm: float
    z_mm: float
    score: float


def joint_rows(person: PersonPose, joint_set: JointSet | None) -> list[JointRow]:
    """The readout's rows: per joint, its name (or 'joint N'), 2D px, 3D camera mm, score.

    The score is the joint's own heatmap peak when the engine gave one (`joint_scores`),
    else the person's mean score."""
    kp2 = np.asarray(person.keypoints_2d, dtype=float)
    kp3 = np.asarray(person.keypoints_3d_mm, dtype=float)
    per_joint = getattr(person, "joint_scores", None)
    rows = []
    for j in range(kp2.shape[0]):
        if joint_set is not None and joint_set.num == kp2.shape[0]:
            name = joint_set.joints[j]
        else:
            name = f"joint {j}"
        score = float(per_joint[j]) if per_joint is not None else float(person.score)
        rows.append(
            JointRow(
                name,
                float(kp2[j, 0]),
                float(kp2[j, 1]),
                float(kp3[j, 0]),
                float(kp3[j, 1]),
                float(kp3[j, 2]),
                score,
            )
        )
    return rows


def root_mm(person: PersonPose) -> np.ndarray:
    """(3,) camera-space mm of the person's root joint."""
    return np.asarray(person.keypoints_3d_mm, dtype=float)[person.root].copy()


def side_by_side_offsets(
    roots_mm: np.ndarray, min_gap_mm: float = MIN_GAP_MM, max_gap_mm: float = MAX_GAP_MM
) -> np.ndarray:
    """(N, 3) camera-space mm offsets for N root-relative skeletons, side by side: each stands
    where its root is across the image (camera x, relative to the group's centre), on one line
    (no depth, the same floor height: root-relative is for comparing poses; camera space shows
    depth), and people closer than `min_gap_mm` are spread apart in their left-to-right order,
    so nobody is drawn on top of (or hidden behind) anybody else; gaps wider than `max_gap_mm`
    (people far apart, or a root depth guessed from a small box) are narrowed to it."""
    roots = np.asarray(roots_mm, dtype=float).reshape(-1, 3)
    n = roots.shape[0]
    out = np.zeros((n, 3))
    if n < 2:
        return out
    ok = np.all(np.isfinite(roots), axis=1)
    safe = np.where(ok[:, None], roots, 0.0)
    centre = safe[ok].mean(axis=0) if ok.any() else np.zeros(3)
    rel = np.where(ok[:, None], safe - centre, 0.0)
    order = np.lexsort((np.arange(n), rel[:, 0]))  # left to right, ties by list order
    gaps = np.clip(np.diff(rel[order, 0]), min_gap_mm, max_gap_mm)
    xs = rel[order[0], 0] + np.concatenate([[0.0], np.cumsum(gaps)])
    xs -= (xs.mean() - rel[:, 0].mean()) if n else 0.0  # spreading keeps the group centred
    out[order, 0] = xs
    return out


def person_at(poses: FramePoses | None, x: float, y: float) -> int | None:
    """The track id of the person whose box holds image point (x, y) (the smallest box when
    boxes overlap); None when nobody is there."""
    if poses is None:
        return None
    best: tuple[float, int] | None = None
    for p in poses.people:
        bx, by, bw, bh = (float(v) for v in p.bbox)
        if bx <= x <= bx + bw and by <= y <= by + bh:
            area = bw * bh
            if best is None or area < best[0]:
                best = (area, int(p.track_id))
    return None if best is None else best[1]


class SelectionEvents(SignalGroup):
    selected = Signal(object)  # track id, or None
    trail_toggled = Signal(bool)
    trail_changed = Signal()  # a root position was recorded or the trails cleared


class Selection:
    """The selected person (by track id), and each person's root over the frames seen."""

    def __init__(self) -> None:
        self.events = SelectionEvents()
        self.selected: int | None = None
        self.trail_enabled = False
        self._trails: dict[int, dict[int, np.ndarray]] = {}

    def select(self, track_id: int | None) -> None:
        value = None if track_id is None else int(track_id)
        if value != self.selected:
            self.selected = value
            self.events.selected.emit(value)

    def select_at(self, poses: FramePoses | None, x: float, y: float) -> int | None:
        """A click at image point (x, y): select who is there (nobody: clear)."""
        track = person_at(poses, x, y)
        self.select(track)
        return track

    def person(self, poses: FramePoses | None) -> PersonPose | None:
        """The selected person in `poses` (None when none is selected or they are not there)."""
        if poses is None or self.selected is None:
            return None
        return next((p for p in poses.people if p.track_id == self.selected), None)

    def set_trail(self, enabled: bool) -> None:
        if bool(enabled) != self.trail_enabled:
            self.trail_enabled = bool(enabled)
            self.events.trail_toggled.emit(self.trail_enabled)

    def record(self, poses: FramePoses) -> None:
        """Remember each person's root position in this frame (a frame seen again replaces)."""
        for p in poses.people:
            root = root_mm(p)
            if not np.all(np.isfinite(root)):
                continue
            trail = self._trails.setdefault(int(p.track_id), {})
            trail[int(poses.index)] = root
            if len(trail) > TRAIL_MAX_FRAMES:
                del trail[min(trail)]
        self.events.trail_changed.emit()

    def trail(self, track_id: int) -> np.ndarray:
        """(K, 3) camera-space mm of the person's root over the frames seen, in frame order."""
        trail = self._trails.get(int(track_id), {})
        if not trail:
            return np.zeros((0, 3))
        return np.stack([trail[i] for i in sorted(trail)])

    def tracks(self) -> list[int]:
        return sorted(self._trails)

    def clear(self) -> None:
        """A new source (or new results): forget the trails and the selection."""
        self._trails.clear()
        self.select(None)
        self.events.trail_changed.emit()


def nearest_skeleton(
    people: list[tuple[int, np.ndarray]],
    bones: list[tuple[int, int]] | tuple[tuple[int, int], ...] | None,
    x: float,
    y: float,
    max_px: float,
) -> int | None:
    """The track id of the skeleton nearest to screen point (x, y): `people` holds each drawn
    person's joints in screen pixels ((J, 2); NaN rows are joints behind the camera), the
    distance is to the nearest joint or bone; None when nobody is within `max_px`."""
    p = np.array([x, y], dtype=float)
    best: tuple[float, int] | None = None
    for track, pts in people:
        pts = np.asarray(pts, dtype=float).reshape(-1, 2)
        ok = np.all(np.isfinite(pts), axis=1)
        if not ok.any():
            continue
        d = float(np.min(np.hypot(*(pts[ok] - p).T)))
        for a, b in bones or ():
            if a < len(pts) and b < len(pts) and ok[a] and ok[b]:
                d = min(d, _segment_distance(p, pts[a], pts[b]))
        if d <= max_px and (best is None or d < best[0]):
            best = (d, int(track))
    return None if best is None else best[1]


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    length2 = float(ab @ ab)
    t = 0.0 if length2 == 0 else float(np.clip((p - a) @ ab / length2, 0.0, 1.0))
    return float(np.hypot(*(a + t * ab - p)))
