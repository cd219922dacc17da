"""The session's analysis pass without Qt: it starts after the frame on screen, analysed frames
are answered from the cache, a stale pass's progress is dropped, a setting change restarts it,
and a damaged video's frame count is corrected when the pass ends early."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from posescope.core.analysis import PoseCache
from posescope.core.playback import PlaybackMode
from posescope.core.session import Session
from posescope.core.session_analysis import AnalysisRequest
from posescope.core.session_types import FrameRequest, FrameResult, Model, ModelSettings
from posescope.core.types import Frame, FramePoses, PersonPose
from tests.test_session import Recorder, opened, opened_video, video


def model_of(path: str = "a.pth") -> tuple[Session, Model]:
    s = Session()
    o = opened(path)
    request = s.load(o)
    estimator = SimpleNamespace(joint_set=object(), device="cpu")
    model = Model(o.ckpt, o.ident, o.ident, estimator, ModelSettings())  # type: ignore[arg-type]
    s.model_built(request.generation, model)
    s.install_runner(request.generation, object())
    return s, model


def poses(index: int, x: float = 0.0) -> FramePoses:
    person = PersonPose(
        track_id=1,
        bbox=(0.0, 0.0, 10.0, 10.0),
        keypoints_2d=np.full((18, 2), x + index),
        depth_rel_mm=np.zeros(18),
        keypoints_3d_mm=np.zeros((18, 3)),
        root_depth_mm=5000.0,
    )
    return FramePoses(index, index / 30.0, [person])


def answer(s: Session, request: FrameRequest, computed: FramePoses | None = None) -> FrameResult:
    """What the inference worker does: decode, and use the analysed poses or compute."""
    frame = Frame(np.zeros((48, 64, 3), np.uint8), request.index, request.index / 30.0)
    analysed = request.poses is not None
    result = FrameResult(
        frame=frame,
        poses=request.poses if analysed else (computed or poses(request.index, x=0.5)),
        requested_index=request.index,
        latency_ms=1.0,
        generation=request.generation,
        model_generation=request.model_generation if analysed else s.runner_generation,
        analysed=analysed,
    )
    s.apply_result(result)
    return result


def last_request(rec: Recorder) -> FrameRequest:
    return rec.of("frame_requested")[-1][0]


def run_pass(s: Session, request: AnalysisRequest, upto: int, finish: bool = False) -> None:
    cache = request.cache
    for i in range(cache.analysed, upto):
        cache.put(poses(i))
    if finish:
        cache.finish()
    s.analysis_progressed(request.key, cache.progress())


def started(s: Session, rec: Recorder, frames: int = 20) -> AnalysisRequest:
    opened_video(s, frames=frames)
    answer(s, last_request(rec))  # the frame on screen first
    (request,) = rec.of("analysis_requested")[-1]
    return request


def test_the_pass_starts_after_the_frame_on_screen_and_serves_analysed_frames() -> None:
    s, _ = model_of()
    rec = Recorder(s)
    opened_video(s, frames=20)
    assert not rec.of("analysis_requested")  # the frame on screen is computed first
    answer(s, last_request(rec))
    (request,) = rec.of("analysis_requested")[-1]
    assert request.key == (s.source_generation, s.runner_generation)
    assert request.synchronous and request.spec == "clip.mp4"
    assert request.cache.frame_count == 20
    run_pass(s, request, 10)
    assert s.analysis_progress.done == 10
    s.seek(5)
    req = last_request(rec)
    assert req.poses is request.cache.get(5)  # decode only: nothing computed
    shown = answer(s, req)
    assert shown.analysed
    s.seek(15)  # ahead of the pass: computed on demand, kept as a preview
    req = last_request(rec)
    assert req.poses is None
    answer(s, req)
    assert request.cache.preview(15) is not None
    assert not s.shown.analysed


def test_the_same_frame_shows_the_same_poses_by_scrubbing_stepping_and_playing() -> None:
    s, _ = model_of()
    rec = Recorder(s)
    request = started(s, rec)
    run_pass(s, request, 20, finish=True)
    seen: dict[str, FramePoses] = {}
    s.seek(12)
    seen["scrub"] = answer(s, last_request(rec)).poses
    s.seek(9)
    answer(s, last_request(rec))
    for _ in range(3):
        s.step(1)
        shown = answer(s, last_request(rec))
    seen["step"] = shown.poses
    s.seek(10)
    answer(s, last_request(rec))
    s.set_playback_mode(PlaybackMode.EVERY_FRAME, now=0.0)
    s.play(now=0.0)
    for k in (1, 2):
        assert s.tick(k / 30.0 + 1e-6) == 10 + k
        shown = answer(s, last_request(rec))
    seen["play"] = shown.poses
    assert seen["scrub"] is seen["step"] is seen["play"] is request.cache.get(12)


def test_a_preview_on_screen_is_replaced_when_the_pass_reaches_it() -> None:
    s, _ = model_of()
    rec = Recorder(s)
    request = started(s, rec)
    s.seek(8)
    answer(s, last_request(rec))
    assert not s.shown.analysed
    run_pass(s, request, 12)
    req = last_request(rec)
    assert (req.index, req.poses) == (8, request.cache.get(8))


def test_a_setting_change_restarts_the_pass_and_drops_the_old_ones_progress() -> None:
    s, _ = model_of()
    rec = Recorder(s)
    old = started(s, rec)
    run_pass(s, old, 5)
    s.seek(7)
    answer(s, last_request(rec))
    s.set_runner_settings(smoothing=not s.runner_settings.smoothing)  # asks for a runner
    ((runner_request,),) = rec.of("runner_requested")
    s.install_runner(runner_request.model_generation, object())
    assert rec.of("analysis_stopped")
    assert s.analysis is None and s.analysed_poses(3) is None  # the old cache is dropped
    req = last_request(rec)
    assert (req.index, req.reset, req.poses) == (7, True, None)  # the frame on screen first
    answer(s, req)
    (new,) = rec.of("analysis_requested")[-1]
    assert new.key != old.key and new.cache is not old.cache
    run_pass(s, old, 9)  # the old pass, still finishing a frame: dropped
    assert s.analysis_progress.done == 0
    assert not s.analysis_progressed(old.key, old.cache.progress())
    run_pass(s, new, 3)
    assert s.analysis_progress.done == 3


def test_a_new_source_stops_the_pass() -> None:
    s, _ = model_of()
    rec = Recorder(s)
    old = started(s, rec)
    s.source_opened(video(frames=5))
    assert rec.of("analysis_stopped")
    assert not s.analysis_progressed(old.key, old.cache.progress())


def test_a_live_source_has_no_pass() -> None:
    s, _ = model_of()
    rec = Recorder(s)
    s.source_opened(video(live=True))
    s.start_source()
    assert not rec.of("analysis_requested") and s.analysis is None


def test_a_damaged_video_gets_its_real_frame_count_and_the_user_is_told() -> None:
    s, _ = model_of()
    rec = Recorder(s)
    request = started(s, rec, frames=60)
    s.seek(59)  # the timeline believed the file
    answer(s, last_request(rec))
    run_pass(s, request, 31, finish=True)  # decoding ended at frame 31
    assert rec.of("frame_count_corrected") == [(60, 31)]
    assert s.frame_count == 31
    assert s.requested == 30  # moved onto the last frame that exists


def test_a_failed_pass_falls_back_to_computing_on_demand() -> None:
    s, _ = model_of()
    rec = Recorder(s)
    request = started(s, rec)
    assert s.analysis_failed(request.key, OSError("boom"))
    assert rec.of("analysis_error")
    s.seek(3)
    assert last_request(rec).poses is None


def test_the_cache_is_bounded_to_poses() -> None:
    cache = PoseCache(("k",), 10)
    for i in range(10):
        cache.put(poses(i))
    assert all(isinstance(f, FramePoses) for f in cache.frames())
    assert not any(isinstance(v, np.ndarray) and v.ndim == 3 for v in vars(cache).values())


def test_a_failed_pass_is_remembered_and_can_be_retried() -> None:
    s, _ = model_of()
    rec = Recorder(s)
    request = started(s, rec)
    assert not s.retry_analysis()  # nothing failed: nothing to retry
    run_pass(s, request, 4)
    error = OSError("disk read error")
    assert s.analysis_failed(request.key, error)
    assert s.analysis_failure is error and s.analysis is None
    assert not s.analysis_failed(request.key, OSError("again"))  # stale: already dropped
    assert s.retry_analysis()
    (again,) = rec.of("analysis_requested")[-1]
    assert again.key == request.key and again.cache is not request.cache
    assert again.cache.analysed == 0 and s.analysis is again.cache  # from frame 0, fresh
    assert s.analysis_failure is None and not s.retry_analysis()
    run_pass(s, again, 20, finish=True)
    assert s.analysis_progress.finished
    # a new source forgets an old failure
    s2, _ = model_of()
    rec2 = Recorder(s2)
    r2 = started(s2, rec2)
    s2.analysis_failed(r2.key, OSError("boom"))
    opened_video(s2, frames=10)
    assert s2.analysis_failure is None


def test_a_read_error_before_the_first_result_still_starts_the_pass() -> None:
    s, _ = model_of()
    rec = Recorder(s)
    opened_video(s, frames=60)
    s.seek(59)  # past the real end of a damaged file, before any frame was shown
    assert not rec.of("analysis_requested")
    assert s.source_failed(s.source_generation, "frame 59 could not be decoded")
    (request,) = rec.of("analysis_requested")[-1]  # the pass finds the real end itself
    run_pass(s, request, 31, finish=True)
    assert s.frame_count == 31 and s.requested == 30
