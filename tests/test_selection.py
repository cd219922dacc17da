"""Looking closer without Qt: selection by click, the joints readout's numbers, root trails,
people side by side in root-relative 3D, and the session keeping it all per source."""

from __future__ import annotations

import numpy as np

from posescope.core.selection import (
    MAX_GAP_MM,
    MIN_GAP_MM,
    Selection,
    joint_rows,
    person_at,
    side_by_side_offsets,
)
from posescope.core.session import Session
from posescope.core.session_types import FrameResult, SourceInfo
from posescope.core.types import Frame, FramePoses, PersonPose
from posescope.core.variants import JointSet

JS = JointSet("tri", ("Pelvis", "L_Hip", "R_Hip"), ((0, 1), (0, 2)), ((1, 2),), 0)


def person(track: int, root=(0.0, 0.0, 3000.0), box=(0, 0, 100, 200), scores=None) -> PersonPose:
    rng = np.random.default_rng(track)
    kp3 = np.asarray(root, float) + rng.normal(0, 100, (3, 3))
    kp3[0] = root
    return PersonPose(
        track_id=track,
        bbox=box,
        keypoints_2d=rng.uniform(0, 500, (3, 2)),
        depth_rel_mm=kp3[:, 2] - kp3[0, 2],
        keypoints_3d_mm=kp3,
        root_depth_mm=float(root[2]),
        root=0,
        score=0.5,
        joint_scores=None if scores is None else np.asarray(scores, float),
    )


def test_joint_rows_are_the_persons_numbers() -> None:
    p = person(4, scores=[0.9, 0.2, 0.4])
    rows = joint_rows(p, JS)
    assert [r.name for r in rows] == ["Pelvis", "L_Hip", "R_Hip"]
    for j, r in enumerate(rows):
        assert (r.x_px, r.y_px) == tuple(p.keypoints_2d[j])
        assert (r.x_mm, r.y_mm, r.z_mm) == tuple(p.keypoints_3d_mm[j])
    assert [r.score for r in rows] == [0.9, 0.2, 0.4]
    # without per-joint scores (older results): the person's score; unknown joint set: numbered
    rows = joint_rows(person(5), None)
    assert [r.name for r in rows] == ["joint 0", "joint 1", "joint 2"]
    assert all(r.score == 0.5 for r in rows)


def test_a_click_selects_the_person_under_it() -> None:
    poses = FramePoses(0, 0.0, [person(1, box=(0, 0, 300, 300)), person(2, box=(100, 100, 50, 50))])
    assert person_at(poses, 120, 120) == 2  # inside both: the smaller box
    assert person_at(poses, 10, 10) == 1
    assert person_at(poses, 400, 400) is None
    sel = Selection()
    seen: list = []
    sel.events.selected.connect(seen.append)
    assert sel.select_at(poses, 120, 120) == 2
    assert sel.person(poses).track_id == 2
    sel.select_at(poses, 400, 400)  # a click on nobody clears
    assert sel.selected is None and seen == [2, None]


def test_trail_is_the_root_over_the_frames_seen_in_frame_order() -> None:
    sel = Selection()
    for i in (2, 0, 1, 2):  # out of order, frame 2 seen twice (the last wins)
        sel.record(FramePoses(i, i / 30, [person(7, root=(i * 100.0, 0.0, 3000.0 + i))]))
    trail = sel.trail(7)
    assert trail.shape == (3, 3)
    np.testing.assert_allclose(trail[:, 0], [0, 100, 200])
    np.testing.assert_allclose(trail[:, 2], [3000, 3001, 3002])
    assert sel.trail(99).shape == (0, 3)


def test_side_by_side_offsets_follow_camera_position_and_never_overlap() -> None:
    # three people at the same spot (as an untrained network gives): spread, centred
    same = np.tile([[50.0, 10.0, 4000.0]], (3, 1))
    off = side_by_side_offsets(same)
    xs = np.sort(off[:, 0])
    assert np.all(np.diff(xs) >= MIN_GAP_MM - 1e-9)
    assert abs(off[:, 0].mean()) < 1e-9
    assert np.all(off[:, 1:] == 0)  # the same floor height, one line
    # far apart: each stands where it is across the image, relative to the centre
    roots = np.array([[-1000.0, 0, 3000], [1000.0, 100, 5000]])
    off = side_by_side_offsets(roots)
    np.testing.assert_allclose(off, [[-1000, 0, 0], [1000, 0, 0]])
    # left-to-right order is kept when spreading
    close = np.array([[300.0, 0, 3000], [0.0, 0, 3000], [100.0, 0, 3000]])
    off = side_by_side_offsets(close)
    assert list(np.argsort(off[:, 0])) == [1, 2, 0]
    assert side_by_side_offsets(np.zeros((1, 3))).tolist() == [[0, 0, 0]]
    # far apart (or a depth guessed wrong): narrowed, so one view shows everybody
    off = side_by_side_offsets(np.array([[-13000.0, 0, 30000], [0.0, 0, 3000], [500, 0, 3000]]))
    assert list(np.argsort(off[:, 0])) == [0, 1, 2]
    np.testing.assert_allclose(np.diff(off[:, 0]), [MAX_GAP_MM, MIN_GAP_MM])


def _source(n: int = 10) -> SourceInfo:
    return SourceInfo("clip.mp4", "clip.mp4", 64, 48, 30.0, n, False)


def _result(session: Session, i: int, people) -> FrameResult:
    frame = Frame(i, i / 30, np.zeros((48, 64, 3), np.uint8))
    poses = FramePoses(i, i / 30, people)
    return FrameResult(frame, poses, i, 1.0, generation=session.source_generation)


def test_session_records_trails_and_a_new_source_forgets_them() -> None:
    s = Session()
    s.source_opened(_source())
    s.start_source()
    s.selection.select(3)
    s.apply_result(_result(s, 0, [person(3)]))
    s.apply_result(_result(s, 1, [person(3, root=(10.0, 0, 3000))]))
    assert s.selection.trail(3).shape == (2, 3)
    assert s.selection.person(s.shown.poses).track_id == 3
    s.source_opened(_source())
    assert s.selection.selected is None and s.selection.tracks() == []


def test_the_nearest_skeleton_on_screen_is_picked() -> None:
    from posescope.core.selection import nearest_skeleton

    a = np.array([[100.0, 100.0], [100.0, 200.0], [np.nan, np.nan]])  # one joint behind
    b = np.array([[300.0, 100.0], [300.0, 200.0], [300.0, 300.0]])
    people = [(4, a), (9, b)]
    assert nearest_skeleton(people, None, 104, 198, 30) == 4  # near a joint
    assert nearest_skeleton(people, None, 290, 110, 30) == 9
    # the middle of a bone counts with bones, not without
    assert nearest_skeleton(people, [(0, 1)], 110, 150, 30) == 4
    assert nearest_skeleton(people, None, 110, 150, 30) is None
    assert nearest_skeleton(people, [(0, 1)], 200, 150, 30) is None  # nobody near: nothing
    assert nearest_skeleton(people, [(1, 2)], 100, 250, 30) is None  # a bone to a hidden joint
    assert nearest_skeleton(people, None, 199, 100, 150) == 4  # both in reach: the nearer
    assert nearest_skeleton([(1, np.full((3, 2), np.nan))], None, 0, 0, 1e9) is None
