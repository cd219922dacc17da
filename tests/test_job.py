"""One job, several callers: `posescope run`, the app's export from the analysis cache and live
recording write through the same sink (core/pose_job.py), so the same poses give the same
files; and one builder (core/runner_setup.py) makes the runner for the CLI, bench and app."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest

from posescope.core.analysis import PoseCache, analysis_frames
from posescope.core.cache_export import export_from_cache
from posescope.core.cli import build_parser
from posescope.core.detection.background import BackgroundDetector
from posescope.core.detection.commands import runner_settings_from_args
from posescope.core.pipeline import Estimator, EstimatorConfig, PoseRunner
from posescope.core.pose_job import ExportPlan, PoseSink, run_header, write_frames
from posescope.core.recorder import LiveRecorder
from posescope.core.runner_setup import SeekingRunner, build_runner
from posescope.core.session_types import RunnerSettings
from posescope.core.sources.probe import open_source
from posescope.core.types import Frame
from tests import factory
from tests.test_cache_export import header, pose, run
from tests.test_cli import run as run_cli
from tests.test_pipeline import BOX, POSE2SIM


class _Detector:
    name = "double"

    def detect(self, image):
        return []


@pytest.fixture(scope="module")
def xs(tmp_path_factory):
    d = tmp_path_factory.mktemp("job")
    return factory.save_torch_zip(
        factory.wrap(factory.state_dict_for("XS", seed=3), "network"), d / "xs.pth"
    )


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_run_and_the_app_export_write_the_same_pose_file(xs, tmp_path, suffix) -> None:
    """The CLI's runner stream and the app's cache (the analysis pass over the same frames)
    go through the same job: byte-identical pose files."""
    by_cli = tmp_path / f"cli{suffix}"
    box = ",".join(f"{v:g}" for v in BOX)
    assert run_cli("run", xs, POSE2SIM, "--bbox", box, "--frames", "0:5", "--device", "cpu",
                   "--out", by_cli) == 0  # fmt: skip
    est = Estimator.from_path(xs, EstimatorConfig(device="cpu"))
    runner = build_runner(est, RunnerSettings(smoothing=False, use_box=True, box=BOX))
    source = open_source(str(POSE2SIM))
    cache = PoseCache("k", source.frame_count)
    with contextlib.closing(analysis_frames(source, runner)) as frames:
        for fp in frames:
            cache.put(fp)
            if cache.analysed == 5:
                break
    cache.finish()
    head = run_header(est, source.info(), source.width, source.height, source.fps)
    runner.close()
    source.close()
    by_app = tmp_path / f"app{suffix}"
    _steps, summary = run(export_from_cache(cache, head, ExportPlan(str(by_app)), bool))
    assert summary == {"frames": 5, "written": [str(by_app)]}
    assert by_app.read_bytes() == by_cli.read_bytes()


def test_a_recording_and_an_export_of_the_same_poses_are_the_same_file(tmp_path) -> None:
    rec = tmp_path / "rec.json"
    recorder = LiveRecorder(ExportPlan(str(rec)), header())
    assert isinstance(recorder.sink, PoseSink)  # the recorder writes through the job's sink
    for i in range(10):
        assert recorder.add(Frame(np.zeros((48, 64, 3), np.uint8), i, i / 30.0), pose(i))
    assert recorder.stop().written == (str(rec),)
    cache = PoseCache("k", 10)
    for i in range(10):
        cache.put(pose(i))
    cache.finish()
    exported = tmp_path / "exp.json"
    run(export_from_cache(cache, header(), ExportPlan(str(exported)), bool))
    assert rec.read_bytes() == exported.read_bytes()
    assert [f["index"] for f in json.loads(rec.read_text())["frames"]] == list(range(10))


def test_the_sink_flushes_atomically_while_it_runs_and_cancelling_leaves_nothing(
    tmp_path,
) -> None:
    now = [0.0]
    out = tmp_path / "p.json"
    plan = ExportPlan(str(out), str(tmp_path / "o.mp4"))
    sink = PoseSink(plan, header(), flush_s=10.0, clock=lambda: now[0])
    frames = [(np.full((48, 64, 3), 40, np.uint8), pose(i)) for i in range(6)]
    job = write_frames(iter(frames), sink, 6, clock=lambda: now[0])
    for done, total, text in job:
        assert total == 6 and text.startswith(f"Writing: frame {done} of 6")
        if done == 3:
            assert not out.exists()  # not yet 10 s
            now[0] = 11.0
        if done == 4:  # flushed after the 4th frame: a whole, valid document
            assert len(json.loads(out.read_text())["frames"]) == 4
            assert not (tmp_path / "o.mp4").exists()  # the video only when finished
            break
    job.close()  # closing early (an error, the window closing) discards: no temporary files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]

    cancelled = PoseSink(ExportPlan(str(tmp_path / "c.json"), str(tmp_path / "c.mp4")), header())
    calls = iter(range(100))
    _steps, summary = run(write_frames(iter(frames), cancelled, 6, lambda: next(calls) >= 2))
    assert summary == {"cancelled": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]


def test_an_interrupted_job_keeps_what_was_written(tmp_path) -> None:
    """Ctrl-C inside the job (the CLI): with keep_partial the caller finishes the sink."""
    plan = ExportPlan(str(tmp_path / "p.npz"), str(tmp_path / "o.mp4"))
    sink = PoseSink(plan, header())

    def items():
        for i in range(3):
            yield np.zeros((48, 64, 3), np.uint8), pose(i)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(write_frames(items(), sink, None, finish=False, keep_partial=True))
    assert sink.finish() == [plan.poses_path, plan.video_path]
    with np.load(plan.poses_path) as z:
        assert z["frame_index"].tolist() == [0, 1, 2]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["o.mp4", "p.npz"]  # no temporary file left


def test_the_runner_builder_for_each_caller(tmp_path) -> None:
    from tests.test_pipeline import estimator_for

    est = estimator_for(tmp_path)
    boxed = build_runner(est, RunnerSettings(use_box=True, box=BOX), _Detector())
    viewing = build_runner(est, RunnerSettings(), _Detector(), seeking=True)
    analysing = build_runner(est, RunnerSettings(), _Detector(), background=False)
    args = build_parser().parse_args(
        ["run", "c.pth", "v.mp4", "--smooth", "--smooth-min-cutoff", "0.3", "--smooth-beta",
         "0.2", "--detect-every", "7", "--no-whole-frame"]
    )  # fmt: skip
    cli = build_runner(est, runner_settings_from_args(args), _Detector())
    plain = build_runner(est, runner_settings_from_args(build_parser().parse_args(
        ["run", "c.pth", "v.mp4", "--bbox", "1,2,30,40"])))  # fmt: skip
    try:
        assert boxed.tracker.is_fixed and boxed.tracker.detector is None
        assert [t.bbox for t in boxed.tracker.tracks] == [BOX]
        assert type(viewing) is SeekingRunner
        assert isinstance(viewing.tracker.detector, BackgroundDetector)
        assert type(analysing) is PoseRunner and analysing.tracker.background is None
        assert isinstance(analysing.tracker.detector, _Detector)
        assert viewing.smoother is not None and viewing.smoother.min_cutoff == 1.0  # strength
        assert cli.tracker.detect_every == 7 and not cli.tracker.whole_frame
        assert isinstance(cli.tracker.detector, BackgroundDetector)
        assert cli.smoother is not None
        assert (cli.smoother.min_cutoff, cli.smoother.beta) == (0.3, 0.2)
        assert plain.smoother is None and plain.tracker.is_fixed  # no --smooth
        assert [t.bbox for t in plain.tracker.tracks] == [(1.0, 2.0, 30.0, 40.0)]
        light = build_runner(est, RunnerSettings(strength=0.0, use_box=True, box=BOX))
        assert light.smoother is not None and light.smoother.min_cutoff == pytest.approx(10.0)
    finally:
        for r in (boxed, viewing, analysing, cli, plain):
            r.close()


def test_a_seeking_runner_detects_the_first_frame_after_a_seek_in_line(tmp_path) -> None:
    from tests.test_pipeline import estimator_for

    calls = []

    class Counting(_Detector):
        def detect(self, image):
            calls.append(image.shape)
            return []

    est = estimator_for(tmp_path)
    runner = build_runner(est, RunnerSettings(), Counting(), seeking=True)
    try:
        runner.reset()
        runner.process(Frame(np.zeros((96, 64, 3), np.uint8), 0, 0.0))
        assert calls  # detected in the calling thread, before the poses
        assert isinstance(runner.tracker.detector, BackgroundDetector)  # thread again after
    finally:
        runner.close()
