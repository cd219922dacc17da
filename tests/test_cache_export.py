"""Export from the analysis cache and live recording, without Qt: the destination is checked
before any work, the export waits for the pass and recomputes nothing, the overlay video is
decoded again with the cached poses drawn, progress says the time left, cancelling leaves no
half-written video, and a replay source is recorded to JSON / CSV / NPZ and an overlay."""

from __future__ import annotations

import json
import threading
import time

import cv2
import numpy as np
import pytest

from posescope.core.analysis import PoseCache
from posescope.core.cache_export import (
    ExportHeader,
    ExportPlan,
    check_destination,
    export_from_cache,
    time_left,
)
from posescope.core.export import ExportError
from posescope.core.recorder import LiveRecorder
from posescope.core.sources.live import ReplaySource
from posescope.core.sources.video import VideoSource
from posescope.core.types import FramePoses, PersonPose
from posescope.core.variants import H36M

J = H36M.num


def pose(index: int) -> FramePoses:
    kp = np.stack([np.arange(J) * 5.0 + index, np.arange(J) * 3.0 + 20], axis=1)
    person = PersonPose(
        track_id=1,
        bbox=(10.0, 10.0, 100.0, 200.0),
        keypoints_2d=kp,
        depth_rel_mm=np.zeros(J),
        keypoints_3d_mm=np.full((J, 3), float(index)),
        root_depth_mm=4000.0,
        score=0.5,
    )
    return FramePoses(index, index / 30.0, [person])


def header(size: tuple[int, int] = (64, 48)) -> ExportHeader:
    return ExportHeader(
        checkpoint={"title": "test"},
        source={"path": "clip.avi", "fps": 30.0},
        focal=1500.0,
        principal=(32.0, 24.0),
        joint_set=H36M,
        fps=30.0,
        size=size,
    )


@pytest.fixture
def clip(tmp_path):
    """A 10-frame 64x48 AVI whose frame k is filled with grey level 20 k."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for k in range(10):
        writer.write(np.full((48, 64, 3), 20 * k, np.uint8))
    writer.release()
    return path


def run(gen):
    """Drive a progress generator; (progress tuples, return value)."""
    steps = []
    while True:
        try:
            steps.append(next(gen))
        except StopIteration as stop:
            return steps, stop.value


def test_the_destination_is_checked_before_any_work(tmp_path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        check_destination(tmp_path / "missing" / "poses.json", (".json",))
    with pytest.raises(ExportError, match="must end in"):
        check_destination(tmp_path / "poses.txt", (".json", ".csv"))
    with pytest.raises(ExportError, match="is a folder"):
        (tmp_path / "x.json").mkdir()
        check_destination(tmp_path / "x.json", (".json",))
    cache = PoseCache("k", 10)  # never finishes: an export that waited would hang
    gen = export_from_cache(cache, header(), ExportPlan(str(tmp_path / "no" / "p.json")), bool)
    t0 = time.monotonic()
    with pytest.raises(ExportError):
        next(gen)
    assert time.monotonic() - t0 < 1.0


def test_the_export_waits_for_the_pass_and_writes_the_cached_poses(tmp_path, clip) -> None:
    cache = PoseCache("k", 10)

    def the_pass() -> None:
        for i in range(10):
            time.sleep(0.02)
            cache.put(pose(i))
        cache.finish()

    worker = threading.Thread(target=the_pass)
    worker.start()
    drawn: list[int] = []

    def draw(image, fp, joint_set):
        drawn.append(fp.index)
        out = image.copy()
        out[:4, :4] = 255
        return out

    plan = ExportPlan(str(tmp_path / "p.json"), str(tmp_path / "o.mp4"))
    steps, summary = run(
        export_from_cache(cache, header(), plan, bool, lambda: VideoSource(clip), draw)
    )
    worker.join()
    assert summary == {"frames": 10, "written": [plan.poses_path, plan.video_path]}
    assert any(text.startswith("Analysing: frame") for _, _, text in steps)
    assert any("Writing the video: frame 10 of 10" in text for _, _, text in steps)
    assert drawn == list(range(10))  # every frame decoded again, its cached poses drawn
    doc = json.loads((tmp_path / "p.json").read_text())
    assert [f["index"] for f in doc["frames"]] == list(range(10))
    assert doc["frames"][7]["people"][0]["keypoints_3d_mm"][0] == [7.0, 7.0, 7.0]
    cap = cv2.VideoCapture(plan.video_path)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 10
    ok, frame = cap.read()
    cap.release()
    assert ok and frame[0, 0].mean() > 200 and frame[40, 40].mean() < 30


def test_cancelling_leaves_no_half_written_video(tmp_path, clip) -> None:
    cache = PoseCache("k", 10)
    for i in range(10):
        cache.put(pose(i))
    cache.finish()
    plan = ExportPlan(None, str(tmp_path / "o.mp4"))
    calls = iter(range(1000))
    _steps, summary = run(
        export_from_cache(
            cache, header(), plan, lambda: next(calls) >= 4, lambda: VideoSource(clip)
        )
    )
    assert summary == {"cancelled": True}
    assert not (tmp_path / "o.mp4").exists()


def test_time_left_comes_from_the_rate_so_far() -> None:
    assert time_left(0, 100, 1.0) == ""
    assert time_left(10, 100, 2.0) == "about 18 s left"
    assert time_left(10, 1000, 10.0) == "about 16 min 30 s left"


@pytest.mark.parametrize("suffix", [".json", ".csv", ".npz"])
def test_a_replay_is_recorded_with_its_overlay(tmp_path, clip, suffix) -> None:
    plan = ExportPlan(str(tmp_path / f"rec{suffix}"), str(tmp_path / "rec.mp4"))
    recorder = LiveRecorder(plan, header())
    source = ReplaySource(clip, speed=4.0)
    indices = []
    while (frame := source.read()) is not None:
        assert recorder.add(frame, pose(frame.index))
        indices.append(frame.index)
    source.close()
    summary = recorder.stop()
    assert summary.frames == len(indices) >= 2 and summary.error is None
    assert summary.written == (plan.poses_path, plan.video_path)
    assert not recorder.add(frame=None, poses=None)  # type: ignore[arg-type]  # stopped
    if suffix == ".json":
        frames = json.loads((tmp_path / "rec.json").read_text())["frames"]
        assert [f["index"] for f in frames] == indices
    elif suffix == ".csv":
        rows = (tmp_path / "rec.csv").read_text().splitlines()
        assert len(rows) == 1 + len(indices) * J
    else:
        with np.load(tmp_path / "rec.npz") as z:
            assert z["frame_index"].tolist() == indices
    cap = cv2.VideoCapture(plan.video_path)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(indices)
    cap.release()
    assert recorder.stop().written == ()  # stops once


def test_a_recording_to_a_missing_folder_fails_before_it_starts(tmp_path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        LiveRecorder(ExportPlan(str(tmp_path / "no" / "rec.json")), header())
    with pytest.raises(ExportError, match="does not exist"):
        LiveRecorder(
            ExportPlan(str(tmp_path / "rec.json"), str(tmp_path / "no" / "rec.mp4")), header()
        )
