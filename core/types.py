"""Plain data passed between the engine's stages (and to the GUI).

Array shapes use letters: J joints, N people.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Frame:
    """One decoded image. `image` is (H, W, 3) uint8 BGR, as OpenCV gives it."""

    image: np.ndarray
    index: int
    time: float  # seconds from the start of the source (wall clock for live sources)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass
class PersonPose:
    """One person's pose in one frame.

    keypoints_2d: (J, 2) image pixels; depth_rel_mm: (J,) depth relative to the root joint;
    keypoints_3d_mm: (J, 3) camera space in mm; bbox: (x, y, w, h) the box the pose came from.
    """

    track_id: int
    bbox: tuple[float, float, float, float]
    keypoints_2d: np.ndarray
    depth_rel_mm: np.ndarray
    keypoints_3d_mm: np.ndarray
    root_depth_mm: float
    root: int = 0
    # Mean over joints of the probability of the joint's most likely heatmap pixel (0..1):
    # high when the heatmaps are sharp, near 1 / (H * W) when they are flat.
    score: float = float("nan")
    # The person detector's confidence (0..1) when it last found this person (the box may
    # since follow the pose); nan for a given box or the whole-frame fallback.
    det_score: float = float("nan")
    joint_scores: np.ndarray | None = None  # (J,) each joint's heatmap peak (0..1), when known

    @property
    def root_relative_mm(self) -> np.ndarray:
        """(J, 3) camera-space mm with the root joint at the origin."""
        return self.keypoints_3d_mm - self.keypoints_3d_mm[self.root]


@dataclass
class FramePoses:
    """Everything estimated for one frame, with per-stage timings in milliseconds."""

    index: int
    time: float
    people: list[PersonPose] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
