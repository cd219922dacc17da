"""core.analysis: a video analysed once, in order; any frame then shows the same poses."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from posescope.core import analysis
from posescope.core.analysis import PoseCache, analyse, analysis_frames
from posescope.core.person import PersonTracker
from posescope.core.pipeline import PoseRunner
from posescope.core.smoothing import PoseSmoother
from posescope.core.sources.probe import open_source
from posescope.core.types import FramePoses, PersonPose
from tests.media_files import POSE2SIM
from tests.test_pipeline import BOX, estimator_for


def _poses(index: int, x: float = 0.0) -> FramePoses:
    person = PersonPose(
        track_id=1,
        bbox=(0.0, 0.0, 10.0, 10.0),
        keypoints_2d=np.full((18, 2), x, np.float32),
        depth_rel_mm=np.zeros(18, np.float32),
        keypoints_3d_mm=np.zeros((18, 3), np.float32),
        root_depth_mm=5000.0,
    )
    return FramePoses(index, index / 30.0, [person])


def test_the_cache_takes_frames_in_order_and_reports_progress() -> None:
    cache = PoseCache(key=("XS", "cpu"), frame_count=4)
    assert cache.get(0) is None and cache.progress().fraction == 0.0
    cache.put(_poses(0))
    cache.put(_poses(1))
    assert cache.analysed == 2 and cache.get(1).index == 1 and cache.get(2) is None
    assert cache.progress().fraction == pytest.approx(0.5)
    with pytest.raises(ValueError, match="out of order"):
        cache.put(_poses(1))
    cache.put(_poses(3))  # frame 2 did not decode (a broken image of a folder): nobody there
    assert cache.get(2).people == [] and cache.analysed == 4
    assert [f.index for f in cache.frames()] == [0, 1, 2, 3]


def test_a_preview_ahead_of_the_pass_is_replaced_when_the_pass_gets_there() -> None:
    cache = PoseCache(key=1, frame_count=10)
    cache.put_preview(_poses(5, x=9.0))
    assert cache.get(5) is None and cache.preview(5).people[0].keypoints_2d[0, 0] == 9.0
    for i in range(6):
        cache.put(_poses(i, x=1.0))
    assert cache.preview(5) is None
    assert cache.get(5).people[0].keypoints_2d[0, 0] == 1.0
    cache.put_preview(_poses(2, x=7.0))  # behind the pass: the analysed result stays
    assert cache.preview(2) is None


def test_finishing_corrects_a_frame_count_the_source_could_not_deliver() -> None:
    cache = PoseCache(key=1, frame_count=60)
    analyse(iter([_poses(i) for i in range(31)]), cache)
    assert cache.finished and cache.frame_count == 31
    assert cache.progress().fraction == 1.0


def test_a_pass_stops_when_asked_and_is_not_finished() -> None:
    cache = PoseCache(key=1, frame_count=100)
    stop = threading.Event()
    seen: list[int] = []

    def on_progress(p) -> None:
        seen.append(p.done)
        if p.done == 3:
            stop.set()

    progress = analyse(iter([_poses(i) for i in range(100)]), cache, stop, on_progress)
    assert progress.done == 3 and not progress.finished and not cache.finished
    assert seen == [1, 2, 3]


def test_the_cache_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(analysis, "MAX_CACHED_FRAMES", 3)
    cache = PoseCache(key=1)
    for i in range(3):
        cache.put(_poses(i))
    with pytest.raises(ValueError, match="more than 3 frames"):
        cache.put(_poses(3))


def test_a_frame_shows_the_same_poses_whichever_way_it_was_reached(tmp_path) -> None:
    """Frame 12 from the pass equals frame 12 of a run in order from frame 0 (smoothing sees
    the frames in order), not what a fresh look at frame 12 alone gives."""
    est = estimator_for(tmp_path)

    def runner() -> PoseRunner:
        return PoseRunner(est, PersonTracker.fixed(BOX), PoseSmoother(min_cutoff=0.05, beta=0.0))

    cache = PoseCache(key="xs", frame_count=None)
    with open_source(POSE2SIM, decode_threads=1) as src:
        frames = analysis_frames(src, runner())
        for _ in range(13):
            cache.put(next(frames))
        frames.close()
        in_order = runner()
        for i in range(13):
            expected = in_order.process(src.get(i))
        fresh = runner().process(src.get(12))
    (got,), (want,), (alone,) = cache.get(12).people, expected.people, fresh.people
    np.testing.assert_allclose(got.keypoints_2d, want.keypoints_2d, atol=1e-3)
    assert np.abs(got.keypoints_2d - alone.keypoints_2d).max() > 0.5  # the path would matter


def test_a_damaged_video_is_analysed_to_its_last_decodable_frame(tmp_path) -> None:
    """An AVI cut in the middle: its header claims 60 frames, 27 or so decode."""
    path = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 120))
    for i in range(60):
        writer.write(np.full((120, 160, 3), 4 * i, np.uint8))
    writer.release()
    cut = tmp_path / "cut.avi"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])

    class Nobody:  # a runner that finds no one: this test is about the frame count
        def reset(self) -> None: ...

        def prepare(self, frame) -> None:
            return None

        def default_in_flight(self) -> int:
            return 1

        def stream(self, items, in_flight):
            for frame, ms, _ in items:
                yield frame, ms, FramePoses(frame.index, frame.time)

    with open_source(cut) as src:
        assert src.frame_count == 60
        cache = PoseCache(key=1, frame_count=src.frame_count)
        progress = analyse(analysis_frames(src, Nobody()), cache)
    assert progress.finished and 10 < cache.frame_count < 60
    assert cache.analysed == cache.frame_count
