"""How far apart two networks' poses are: per joint, in image pixels and in mm.

For A/B comparisons: two pose networks run on the same frames with the same boxes, so the
people of their `FramePoses` carry the same track ids. `pose_distances` pairs them by id and
gives each joint's distance; `DistanceAverage` averages them over the frames analysed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from posescope.core.types import FramePoses


@dataclass(frozen=True)
class JointDistances:
    """One person's per-joint distances between A and B in one frame.

    pixels: (J,) Euclidean distance of the 2D keypoints in image pixels;
    mm: (J,) Euclidean distance of the 3D keypoints in camera space, mm.
    """

    track_id: int
    pixels: np.ndarray
    mm: np.ndarray

    @property
    def mean_pixels(self) -> float:
        return float(self.pixels.mean())

    @property
    def mean_mm(self) -> float:
        return float(self.mm.mean())


def pose_distances(a: FramePoses, b: FramePoses) -> list[JointDistances]:
    """Distances for each person present in both (paired by track id, in A's order).

    Raises ValueError when the two networks' joint counts differ (no joint-by-joint pairing).
    """
    by_id = {p.track_id: p for p in b.people}
    out = []
    for pa in a.people:
        pb = by_id.get(pa.track_id)
        if pb is None:
            continue
        if pa.keypoints_2d.shape != pb.keypoints_2d.shape:
            raise ValueError(
                f"A has {len(pa.keypoints_2d)} joints, B {len(pb.keypoints_2d)}: "
                "no joint-by-joint distance"
            )
        px = np.linalg.norm(pa.keypoints_2d - pb.keypoints_2d, axis=1)
        mm = np.linalg.norm(pa.keypoints_3d_mm - pb.keypoints_3d_mm, axis=1)
        out.append(JointDistances(pa.track_id, px, mm))
    return out


@dataclass
class DistanceAverage:
    """Running per-joint means over the frames (and people) added so far."""

    count: int = 0
    _px: np.ndarray | None = field(default=None, repr=False)
    _mm: np.ndarray | None = field(default=None, repr=False)

    def add(self, distances: list[JointDistances]) -> None:
        for d in distances:
            if self._px is None or self._mm is None:
                self._px, self._mm = np.zeros_like(d.pixels), np.zeros_like(d.mm)
            self._px += d.pixels
            self._mm += d.mm
            self.count += 1

    @property
    def pixels(self) -> np.ndarray:
        """(J,) mean distance per joint in pixels (empty before anything was added)."""
        return self._px / self.count if self._px is not None else np.zeros(0)

    @property
    def mm(self) -> np.ndarray:
        return self._mm / self.count if self._mm is not None else np.zeros(0)

    def reset(self) -> None:
        self.count, self._px, self._mm = 0, None, None
