"""Detection in its own thread with the tracker (stable ids, every N frames, on a lost track,
every thread ended on close) and the whole-frame fallback on an empty frame and on a
webcam-like upper-body view of the shared media."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from posescope.core.detection.background import BackgroundDetector
from posescope.core.detection.base import Detection
from posescope.core.person import PersonTracker
from posescope.core.pipeline import PoseRunner
from posescope.core.types import Frame
from tests.test_person import pose_in
from tests.test_pipeline import BOX, estimator_for, read_frame

W, H = 640, 480


def frame(index: int) -> Frame:
    """A blank frame that carries its own index in its first pixel (for the detector double)."""
    img = np.zeros((H, W, 3), np.uint8)
    img[0, 0, 0], img[0, 0, 1] = index % 256, index // 256
    return Frame(img, index, index / 30)


def people_at(index: int) -> list[tuple[float, float, float, float]]:
    """Two people walking towards each other (never overlapping)."""
    return [(40.0 + 3 * index, 100.0, 120.0, 300.0), (460.0 - 3 * index, 110.0, 120.0, 290.0)]


class SlowDetector:
    """Finds `people_at(frame index)` after `delay_s`, like a real detector's latency;
    records which frames it ran on and in which thread."""

    name = "double"

    def __init__(self, delay_s: float = 0.02, fail: bool = False) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.frames: list[int] = []
        self.threads: set[str] = set()

    def detect(self, image: np.ndarray) -> list[Detection]:
        index = int(image[0, 0, 0]) + 256 * int(image[0, 0, 1])
        self.frames.append(index)
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("detector broke")
        return [Detection(b, 0.9 - 0.1 * i) for i, b in enumerate(people_at(index))]


def _detect_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "posescope-detect"]


def _follow(tracker: PersonTracker, frames: range, frame_s: float = 0.0) -> list[dict]:
    """Run the tracker with perfect poses of whoever its boxes hold (each frame taking
    `frame_s`, like a pose network); ids -> box per frame."""
    seen = []
    for i in frames:
        time.sleep(frame_s)
        f = frame(i)
        tracks = tracker.boxes(f)
        truth = people_at(i)
        poses = []
        for t in tracks:
            # the pose of the person this box is on (the nearest true box)
            cx = t.bbox[0] + t.bbox[2] / 2
            near = min(truth, key=lambda b: abs(b[0] + b[2] / 2 - cx))
            poses.append((t.id, pose_in(near)))
        tracker.update(f, poses)
        seen.append({t.id: t.bbox for t in tracks})
    return seen


def test_stable_ids_with_detection_in_its_own_thread() -> None:
    det = SlowDetector()
    bg = BackgroundDetector(det)
    tracker = PersonTracker(bg, detect_every=4)
    seen = _follow(tracker, range(40), frame_s=0.01)
    assert all(set(ids) == {1, 2} for ids in seen)
    for i, ids in enumerate(seen):  # id 1 stays on the one who started left, id 2 right
        for tid, person in ((1, 0), (2, 1)):
            centre = ids[tid][0] + ids[tid][2] / 2
            truth = [b[0] + b[2] / 2 for b in people_at(i)]
            assert abs(centre - truth[person]) < abs(centre - truth[1 - person]), (i, ids)
    assert det.threads == {"posescope-detect"}  # never in the caller's thread
    # every 4 frames at most (the thread also skips rounds asked while it is busy)
    assert 3 <= len(det.frames) <= 40 / 4 + 1
    # a new source: ids start at 1 again
    tracker.restart()
    assert {t.id for t in tracker.boxes(frame(0))} == {1, 2}
    tracker.close()
    assert not bg.alive and _detect_threads() == []


def test_lost_track_asks_for_a_detection() -> None:
    det = SlowDetector(delay_s=0.0)
    tracker = PersonTracker(BackgroundDetector(det), detect_every=1000)
    _follow(tracker, range(3))
    asked = len(det.frames)
    f = frame(3)
    tracks = tracker.boxes(f)
    collapsed = np.full((18, 2), 5.0)  # a pose that collapsed to a point: track lost
    tracker.update(f, [(tracks[0].id, collapsed), (tracks[1].id, pose_in(people_at(3)[1]))])
    tracker.boxes(frame(4))
    deadline = time.time() + 5
    while len(det.frames) == asked and time.time() < deadline:
        time.sleep(0.01)
    assert det.frames[-1] == 4  # a round on the frame after the loss, not after 1000 frames
    tracker.close()


def test_detector_errors_reach_the_caller_and_close_ends_the_thread() -> None:
    bg = BackgroundDetector(SlowDetector(delay_s=0.0, fail=True))
    tracker = PersonTracker(bg)
    with pytest.raises(RuntimeError, match="detector broke"):
        tracker.boxes(frame(0))
    tracker.close()
    assert not bg.alive


def test_discard_drops_results_from_before_a_seek() -> None:
    bg = BackgroundDetector(SlowDetector(delay_s=0.05))
    bg.submit(7, frame(7).image)
    bg.discard()
    assert bg.wait(2.0) is None
    bg.submit(8, frame(8).image)
    result = bg.wait(2.0)
    assert result is not None and result.index == 8 and len(result.detections) == 2
    bg.close()
    assert not bg.alive


def test_runner_close_ends_every_thread(tmp_path) -> None:
    est = estimator_for(tmp_path)
    with PoseRunner(est, PersonTracker(BackgroundDetector(SlowDetector()))) as runner:
        fp = runner.process(frame(0))
        assert {p.track_id for p in fp.people} == {1, 2}
        assert sorted(round(p.det_score, 2) for p in fp.people) == [0.8, 0.9]
        assert _detect_threads()
    assert _detect_threads() == []


# ---------------------------------------------------------------------------- whole frame


class Nobody:
    name = "nobody"

    def detect(self, image):
        return []


@pytest.mark.parametrize("detector", [None, Nobody(), "background"])
def test_whole_frame_on_an_empty_frame(tmp_path, detector) -> None:
    if detector == "background":
        detector = BackgroundDetector(Nobody())
    est = estimator_for(tmp_path)
    runner = PoseRunner(est, PersonTracker(detector, whole_frame=True))
    empty = Frame(np.zeros((H, W, 3), np.uint8), 0, 0.0)
    for i in range(3):
        fp = runner.process(Frame(empty.image, i, i / 30))
        assert len(fp.people) == 1
        person = fp.people[0]
        assert person.bbox == (0.0, 0.0, float(W), float(H)) and person.track_id == 1
        assert np.isnan(person.det_score)  # not a detector's box
    runner.close()
    off = PoseRunner(est, PersonTracker(Nobody(), whole_frame=False))
    assert off.process(empty).people == []


def test_whole_frame_on_a_webcam_like_view(tmp_path) -> None:
    """The athlete's head and torso filling a 640x480 frame (a person at a desk): with no
    detector weights there is still one pose, on the whole frame, inside it."""
    x, y = BOX[:2]
    crop = read_frame(0).image[int(y) - 40 : int(y) + 440, int(x) - 80 : int(x) + 560]
    view = cv2.resize(crop, (W, H), interpolation=cv2.INTER_AREA)
    est = estimator_for(tmp_path)
    for detector in (None, Nobody()):
        fp = PoseRunner(est, PersonTracker(detector, whole_frame=True)).process(Frame(view, 0, 0.0))
        assert len(fp.people) == 1 and fp.people[0].bbox == (0.0, 0.0, float(W), float(H))
        k = fp.people[0].keypoints_2d
        assert np.isfinite(k).all()
        # the pipeline squares and enlarges the box: the crop spans x -80..720, y -160..640
        assert (k[:, 0] > -81).all() and (k[:, 0] < 721).all()
    off = PersonTracker(None, whole_frame=False)
    assert PoseRunner(est, off).process(Frame(view, 0, 0.0)).people == []
