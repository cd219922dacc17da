"""The overlay labels detector confidence and pose score apart, with a legend."""

from __future__ import annotations

import math

import numpy as np

from posescope.core.drawing import LEGEND, draw_frame, person_label
from posescope.core.types import FramePoses, PersonPose
from posescope.core.variants import H36M


def _person(det: float, pose: float) -> PersonPose:
    k = np.stack([np.linspace(200, 300, H36M.num), np.linspace(100, 300, H36M.num)], axis=1)
    return PersonPose(2, (180.0, 80.0, 140.0, 300.0), k, np.zeros(H36M.num),
                      np.zeros((H36M.num, 3)), 3000.0, score=pose, det_score=det)  # fmt: skip


def test_labels_name_each_score() -> None:
    assert person_label(_person(0.871, 0.412)) == "id 2  det 0.87  pose 0.41"
    assert person_label(_person(math.nan, 0.412)) == "id 2  pose 0.41"  # given / whole frame
    assert person_label(_person(math.nan, math.nan)) == "id 2"


def test_legend_drawn_only_with_scores() -> None:
    blank = np.zeros((480, 640, 3), np.uint8)
    corner = (slice(440, 480), slice(0, 400))  # the legend's place, far from the person
    with_scores = draw_frame(blank, FramePoses(0, 0.0, [_person(0.9, 0.4)]), H36M)
    assert with_scores[corner].any()
    no_scores = draw_frame(blank, FramePoses(0, 0.0, [_person(math.nan, math.nan)]), H36M)
    assert not no_scores[corner].any()
    off = draw_frame(blank, FramePoses(0, 0.0, [_person(0.9, 0.4)]), H36M, legend=False)
    assert not off[corner].any()
    assert len(LEGEND) == 2 and "det" in LEGEND[0] and "pose" in LEGEND[1]
