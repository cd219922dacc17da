"""The A/B runner: the tracker runs once per frame, A and B estimate on the same boxes (so
their people carry the same track ids), B's poses are B's network run alone on those boxes,
and the analysis pass caches both."""

from __future__ import annotations

import numpy as np

from posescope.core.analysis import PoseCache, analyse, analysis_frames
from posescope.core.compare_runner import CompareRunner, PairedPoses, poses_b
from posescope.core.detection.base import Detection
from posescope.core.person import PersonTracker
from posescope.core.pipeline import Estimator, EstimatorConfig, PoseRunner
from posescope.core.pose_diff import pose_distances
from posescope.core.smoothing import PoseSmoother
from posescope.core.sources.probe import open_source
from tests import calibration, factory
from tests.media_files import POSE2SIM


class TwoPeople:
    """A detector double: the two people of the Pose2Sim clip, their boxes drifting a little
    each call."""

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image: np.ndarray) -> list[Detection]:
        self.calls += 1
        d = 3.0 * self.calls
        return [
            Detection((240.0 + d, 320.0, 320.0, 840.0), 0.9),
            Detection((0.0, 284.0 + d, 132.0, 484.0), 0.8),
        ]


def estimator(tmp_path, name: str, spelling: str = "modern") -> Estimator:
    """A network that follows the picture (its poses stay on the people the tracker follows)."""
    path = factory.save_torch_zip(
        factory.wrap(calibration.following_state_dict(name, spelling), "network"),
        tmp_path / f"{name}_{spelling}.pth",
    )
    return Estimator.from_path(path, EstimatorConfig(device="cpu"))


def test_b_runs_on_a_s_boxes_with_a_s_ids_and_equals_b_alone(tmp_path) -> None:
    est_a, est_b = estimator(tmp_path, "XS"), estimator(tmp_path, "S")
    detector = TwoPeople()
    # any overlap keeps a track (iou_match 0): these networks follow the picture but were never
    # trained, so a track that follows their poses can drift off its person; ids are not tested
    tracker = PersonTracker(detector, detect_every=2, iou_match=0.0)
    runner = CompareRunner(PoseRunner(est_a, tracker, None), est_b, None)
    source = open_source(str(POSE2SIM))
    try:
        seen = 0
        for index in range(4):
            frame = source.get(index)
            poses = runner.process(frame)
            b = poses_b(poses)
            assert isinstance(poses, PairedPoses) and b is not None
            assert [p.track_id for p in poses.people] == [1, 2]
            assert [p.track_id for p in b.people] == [1, 2]
            assert [p.bbox for p in b.people] == [p.bbox for p in poses.people]
            alone = est_b.estimate(frame, [(p.track_id, p.bbox) for p in poses.people])
            for pb, ref in zip(b.people, alone.people, strict=True):
                np.testing.assert_allclose(pb.keypoints_2d, ref.keypoints_2d, atol=1e-4)
                np.testing.assert_allclose(pb.keypoints_3d_mm, ref.keypoints_3d_mm, atol=1e-3)
            # the two networks differ: their poses do too
            d = pose_distances(poses, b)
            assert len(d) == 2 and all(x.mean_pixels > 0.1 for x in d)
            seen += 1
        assert seen == 4 and 1 <= detector.calls <= 4  # one tracker: at most once a frame
    finally:
        source.close()


def test_smoothing_b_keeps_its_own_state_and_reset_clears_it(tmp_path) -> None:
    est_a, est_b = estimator(tmp_path, "XS"), estimator(tmp_path, "XS", "list")
    box = (200.0, 400.0, 600.0, 1100.0)
    plain = CompareRunner(PoseRunner(est_a, PersonTracker.fixed(box)), est_b, None)
    smoothed = CompareRunner(
        PoseRunner(est_a, PersonTracker.fixed(box), PoseSmoother()), est_b, PoseSmoother()
    )
    source = open_source(str(POSE2SIM))
    try:
        frames = [source.get(i) for i in range(3)]
    finally:
        source.close()
    first = [smoothed.process(f) for f in frames]
    smoothed.reset()
    again = smoothed.process(frames[0])
    raw = [plain.process(f) for f in frames]
    b0, b2 = poses_b(first[0]), poses_b(first[2])
    assert b0 is not None and b2 is not None
    raw_b0, raw_b2 = poses_b(raw[0]), poses_b(raw[2])
    assert raw_b0 is not None and raw_b2 is not None
    # the first frame passes the filter unchanged; later ones are pulled towards the past
    np.testing.assert_allclose(b0.people[0].keypoints_2d, raw_b0.people[0].keypoints_2d)
    assert not np.allclose(b2.people[0].keypoints_2d, raw_b2.people[0].keypoints_2d)
    again_b = poses_b(again)
    assert again_b is not None
    np.testing.assert_allclose(again_b.people[0].keypoints_2d, raw_b0.people[0].keypoints_2d)


def test_the_analysis_pass_caches_a_and_b(tmp_path) -> None:
    est_a, est_b = estimator(tmp_path, "XS"), estimator(tmp_path, "XS", "list")
    runner = CompareRunner(
        PoseRunner(est_a, PersonTracker.fixed((200.0, 400.0, 600.0, 1100.0))), est_b
    )
    source = open_source(str(POSE2SIM))
    cache = PoseCache("k", 5)

    def five():
        for i, poses in enumerate(analysis_frames(source, runner)):
            yield poses
            if i == 4:
                return

    try:
        analyse(five(), cache)
    finally:
        source.close()
    assert cache.analysed == 5
    for i in range(5):
        poses = cache.get(i)
        b = poses_b(poses)
        assert poses is not None and b is not None and b.index == i
        assert [p.track_id for p in b.people] == [p.track_id for p in poses.people] == [1]
