"""People detection on the Pose2Sim video, and id-stable tracking (real and synthetic)."""

from __future__ import annotations

import numpy as np
import pytest

from posescope.core.person import Box, PeopleDetector, PersonTracker, Track, iou, nms
from posescope.core.sources.video import VideoSource
from posescope.core.types import Frame
from tests.media_files import POSE2SIM

# The walking subject's box (x, y, w, h, full-resolution pixels), measured by hand: frames
# were drawn with a 100-pixel grid and the extremes of the body read off (cap top to soles,
# hand to hand or foot to hand). Independent of the detector; the woman standing at the left
# edge and the anatomical skeleton behind the subject are not "the person".
MANUAL_BOXES: dict[int, Box] = {
    0: (240, 320, 320, 840),
    25: (230, 400, 500, 750),
    50: (100, 390, 710, 780),  # lunge, one arm raised
    75: (370, 470, 480, 850),
    99: (430, 480, 640, 830),  # bent forward, one arm stretched out
}


def subject_box(index: int) -> Box:
    """The subject's box at any frame: linear between the hand-measured frames."""
    keys = sorted(MANUAL_BOXES)
    i = np.searchsorted(keys, index)
    if keys[min(i, len(keys) - 1)] == index:
        return MANUAL_BOXES[index]
    a, b = keys[i - 1], keys[i]
    w = (index - a) / (b - a)
    return tuple((1 - w) * np.array(MANUAL_BOXES[a]) + w * np.array(MANUAL_BOXES[b]))


def pose_in(box: Box, margin: float = 0.15, joints: int = 18) -> np.ndarray:
    """Synthetic keypoints spread in `box` so that their padded bounds are `box` again."""
    x, y, w, h = box
    iw, ih = w / (1 + 2 * margin), h / (1 + 2 * margin)
    x0, y0 = x + (w - iw) / 2, y + (h - ih) / 2
    rng = np.random.default_rng(joints)
    u = np.concatenate([[0.0, 1.0], rng.uniform(0, 1, joints - 2)])
    v = np.concatenate([[0.0, 1.0], rng.uniform(0, 1, joints - 2)])
    return np.stack([x0 + u * iw, y0 + v * ih], axis=1)


# --------------------------------------------------------------------------------------------
# Detector on the real video


@pytest.fixture(scope="module")
def detector() -> PeopleDetector:
    return PeopleDetector()


@pytest.mark.parametrize("index", [0, 50, 99])
def test_detector_finds_the_subject(detector: PeopleDetector, index: int) -> None:
    with VideoSource(POSE2SIM) as src:
        image = src.get(index).image
    dets = detector.detect(image)
    assert dets, "no detection at all"
    scores = [s for _, s in dets]
    assert scores == sorted(scores, reverse=True)
    assert all(detector.min_score <= s <= 1 for s in scores)
    for (x, y, w, h), _ in dets:  # full-image pixels, inside the image
        assert x >= 0 and y >= 0 and x + w <= 1080 + 1e-6 and y + h <= 1920 + 1e-6
    best = max(iou(box, MANUAL_BOXES[index]) for box, _ in dets)
    assert best >= 0.4, f"best overlap with the subject {best:.2f}"
    # NMS applied: no two boxes overlap much.
    for i, (a, _) in enumerate(dets):
        for b, _ in dets[i + 1 :]:
            assert iou(a, b) <= detector.nms_iou + 1e-9


def test_detector_on_odd_images(detector: PeopleDetector) -> None:
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert detector.detect(np.zeros((20, 30, 3), np.uint8)) == []  # smaller than the window
    assert detector.detect(np.zeros((300, 200), np.uint8)) == []  # grayscale
    with pytest.raises(ValueError):
        PeopleDetector(models=("yolo",))


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = [((0, 0, 100, 200), 0.5), ((5, 5, 100, 200), 0.9), ((300, 0, 100, 200), 0.7),
             ((20, 20, 40, 80), 0.6)]  # fmt: skip
    assert nms(boxes) == [((5, 5, 100, 200), 0.9), ((300, 0, 100, 200), 0.7)]


def test_tracker_keeps_the_subjects_id_over_the_video(detector: PeopleDetector) -> None:
    calls = []

    class CountingDetector:
        def detect(self, image: np.ndarray) -> list[tuple[Box, float]]:
            calls.append(1)
            return detector.detect(image)

    tracker = PersonTracker(CountingDetector())
    ids = []
    with VideoSource(POSE2SIM) as src:
        for frame in src:
            tracks = tracker.boxes(frame)
            truth = subject_box(frame.index)
            overlaps = [iou(t.bbox, truth) for t in tracks]
            assert overlaps and max(overlaps) >= 0.3, f"frame {frame.index}: subject not tracked"
            subject = tracks[int(np.argmax(overlaps))]
            ids.append(subject.id)
            # Poses: the subject's from the hand-measured box (as a network would follow him);
            # anyone else's keeps its box.
            poses = [(t.id, pose_in(truth if t is subject else t.bbox)) for t in tracks]
            tracker.update(frame, poses)
            assert len(tracks) <= tracker.max_people
            assert len({t.id for t in tracks}) == len(tracks)
    assert len(ids) == 100
    assert set(ids) == {ids[0]}, f"the subject's id changed: {sorted(set(ids))}"
    assert len(calls) == 7  # frames 0, 15, ..., 90


# --------------------------------------------------------------------------------------------
# Tracker logic with a scripted detector


class ScriptedDetector:
    """Returns whatever the test sets in `boxes`, counting calls."""

    def __init__(self) -> None:
        self.boxes: list[tuple[Box, float]] = []
        self.calls = 0

    def detect(self, image: np.ndarray) -> list[tuple[Box, float]]:
        self.calls += 1
        return list(self.boxes)


def _frame(i: int, w: int = 640, h: int = 480) -> Frame:
    return Frame(np.zeros((h, w, 3), np.uint8), i, i / 30)


def _two_people(t: int) -> tuple[Box, Box]:
    """Two people walking towards each other, closest (IoU ~0.14) at t = 30, then apart."""
    s = 150 * np.sin(np.pi * t / 60)
    return (100 + s, 150, 80, 200), (460 - s, 150, 80, 200)


@pytest.mark.parametrize("feed_poses", [True, False], ids=["poses", "detections-only"])
def test_two_people_keep_distinct_ids(feed_poses: bool) -> None:
    det = ScriptedDetector()
    tracker = PersonTracker(det, detect_every=5 if feed_poses else 1)
    rng = np.random.default_rng(1)
    for i in range(60):
        a, b = _two_people(i)
        jitter = rng.normal(0, 2, (2, 4))
        det.boxes = [(tuple(np.add(a, jitter[0])), 0.9), (tuple(np.add(b, jitter[1])), 0.8)]
        tracks = tracker.boxes(_frame(i))
        assert [t.id for t in tracks] == [1, 2], f"frame {i}"
        assert iou(tracks[0].bbox, a) > 0.5 and iou(tracks[1].bbox, b) > 0.5, f"frame {i}"
        if feed_poses:
            tracker.update(_frame(i), [(1, pose_in(a)), (2, pose_in(b))])
    assert det.calls == (12 if feed_poses else 60)


def test_lost_track_is_replaced_by_detection() -> None:
    det = ScriptedDetector()
    here: Box = (100, 100, 80, 200)
    det.boxes = [(here, 0.9)]
    tracker = PersonTracker(det, detect_every=100, max_misses=2)
    assert [t.id for t in tracker.boxes(_frame(0))] == [1]
    # The pose collapses to a point: the track is lost and the next frame re-detects.
    tracker.update(_frame(0), [(1, np.full((18, 2), 140.0))])
    calls = det.calls
    tracks = tracker.boxes(_frame(1))
    assert det.calls == calls + 1
    assert [(t.id, t.source, t.bbox) for t in tracks] == [(1, "detector", here)]
    tracker.update(_frame(1), [(1, pose_in(here))])
    assert tracker.boxes(_frame(2))[0].source == "pose"
    # The pose leaves the image; the detector now sees someone elsewhere: a new id.
    tracker.update(_frame(2), [(1, pose_in(here) + np.array([1000.0, 0.0]))])
    det.boxes = [((400, 100, 80, 200), 0.9)]
    tracks = tracker.boxes(_frame(3))
    assert [(t.id, t.source) for t in tracks] == [(2, "detector")]
    for i in range(4, 8):  # the lost track is dropped after max_misses + 1 rounds
        tracks = tracker.boxes(_frame(i))
        tracker.update(_frame(i), [(2, pose_in(tracks[0].bbox))])
    assert [t.id for t in tracker.tracks] == [2]


def test_unconfirmed_tracks_are_dropped_and_weak_detections_start_none() -> None:
    det = ScriptedDetector()
    tracker = PersonTracker(det, detect_every=1, max_misses=2, max_people=4, whole_frame=False)
    det.boxes = [((x, 50, 60, 150), 0.9 - 0.01 * k) for k, x in enumerate(range(0, 600, 100))]
    det.boxes.append(((10, 300, 60, 150), 0.4))  # below new_track_score
    tracks = tracker.boxes(_frame(0))
    assert [t.id for t in tracks] == [1, 2, 3, 4]  # max_people
    det.boxes = []
    for i in range(1, 3):
        assert len(tracker.boxes(_frame(i))) == 4  # missed, no pose: misses 1, 2
    assert tracker.boxes(_frame(3)) == []  # misses 3 > max_misses
    det.boxes = [((10, 300, 60, 150), 0.4)]
    assert tracker.boxes(_frame(4)) == []


def test_detection_schedule_and_reset() -> None:
    det = ScriptedDetector()
    det.boxes = [((100, 100, 80, 200), 0.9)]
    tracker = PersonTracker(det, detect_every=15)
    for i in range(31):
        tracks = tracker.boxes(_frame(i))
        tracker.update(_frame(i), [(t.id, pose_in(t.bbox)) for t in tracks])
    assert det.calls == 3  # frames 0, 15, 30
    tracker.reset()
    det.boxes = [((400, 100, 80, 200), 0.9)]
    tracks = tracker.boxes(_frame(100))
    assert det.calls == 4  # re-detected right after the reset
    assert 2 in [t.id for t in tracks]  # a new person gets a new id: the counter was kept
    assert all(t.velocity == (0.0, 0.0) for t in tracker.tracks)


def test_pose_boxes_follow_motion() -> None:
    det = ScriptedDetector()
    det.boxes = [((100, 100, 80, 200), 0.9)]
    tracker = PersonTracker(det, detect_every=1000)
    for i in range(20):
        tracks = tracker.boxes(_frame(i))
        truth = (100 + 10 * i, 100, 80, 200)
        if i > 3:  # predicted from the last poses, moved by the recent motion
            assert iou(tracks[0].bbox, truth) > 0.8
        tracker.update(_frame(i), [(1, pose_in(truth))])


def test_fixed_box() -> None:
    box = (10.0, 20.0, 100.0, 200.0)
    tracker = PersonTracker.fixed(box)
    for i in range(5):
        tracks = tracker.boxes(_frame(i))
        assert [(t.id, t.bbox, t.source) for t in tracks] == [(1, box, "given")]
        assert isinstance(tracks[0], Track)
        tracker.update(_frame(i), [(1, pose_in((300, 200, 50, 50)))])
        tracker.reset()
    assert tracker.boxes(_frame(9))[0].bbox == box
