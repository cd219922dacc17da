"""The app's state model without Qt and with a fake clock: playback timing, pending seeks,
stale builds / runners / frames dropped, which checkpoint wins a multi-file drop, settings
validated, the person box held by the session."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from posescope.core.families.descriptor import Identification
from posescope.core.playback import PlaybackMode
from posescope.core.session import Session
from posescope.core.session_types import (
    FrameResult,
    Model,
    ModelSettings,
    Opened,
    OpenFailed,
    SettingsError,
    SourceInfo,
)
from posescope.core.types import Frame, FramePoses


class Recorder:
    """Every event of a session, as (name, args) in order."""

    def __init__(self, session: Session) -> None:
        self.events: list[tuple[str, tuple]] = []
        for name in session.events:
            getattr(session.events, name).connect(self._make(name), check_nargs=False)

    def _make(self, name: str):
        def record(*args) -> None:
            self.events.append((name, args))

        return record

    def of(self, name: str) -> list[tuple]:
        return [args for n, args in self.events if n == name]

    def requested_frames(self) -> list[int]:
        return [req.index for (req,) in self.of("frame_requested")]


def video(frames: int = 100, fps: float = 30.0, live: bool = False) -> SourceInfo:
    return SourceInfo(
        spec="clip.mp4",
        name="clip.mp4",
        width=640,
        height=480,
        fps=fps,
        frame_count=0 if live else frames,
        live=live,
    )


def result(session: Session, index: int, poses: bool = True, **kw) -> FrameResult:
    frame = Frame(np.zeros((480, 640, 3), np.uint8), index, index / 30.0)
    args = {
        "generation": session.source_generation,
        "model_generation": session.runner_generation,
    }
    args.update(kw)
    return FrameResult(
        frame=frame,
        poses=FramePoses(index, frame.time) if poses else None,
        requested_index=index,
        latency_ms=1.0,
        **args,
    )


def opened(path: str, family: str = "convnextpose", variant: str | None = "XS") -> Opened:
    ident = Identification(family=family, variant=variant)
    return Opened(path, SimpleNamespace(path=path), ident)  # type: ignore[arg-type]


def model_of(o: Opened, settings: ModelSettings | None = None) -> Model:
    estimator = SimpleNamespace(joint_set=None, device="cpu")
    return Model(o.ckpt, o.ident, o.ident, estimator, settings or ModelSettings())  # type: ignore[arg-type]


def opened_video(session: Session, **kw) -> None:
    session.source_opened(video(**kw))
    session.start_source()


# ------------------------------------------------------------------------------ playback


def test_playback_follows_the_clock_and_skips_frames_the_model_has_not_finished() -> None:
    s = Session()
    rec = Recorder(s)
    opened_video(s, frames=100, fps=30.0)
    s.apply_result(result(s, 0))
    s.play(now=0.0)
    assert s.playing and rec.of("playing_changed") == [(True,)]
    assert s.tick(0.1) == 3  # 0.1 s at 30 fps
    assert s.tick(0.2) is None  # frame 3 is still being computed: nothing asked, 6 skipped
    s.apply_result(result(s, 3))
    assert s.tick(0.2) == 6
    s.apply_result(result(s, 6))
    assert s.tick(0.2) is None  # nothing new due
    assert rec.requested_frames() == [0, 3, 6]


def test_speed_restarts_the_clock_from_the_frame_on_screen() -> None:
    s = Session()
    opened_video(s, frames=100, fps=10.0)
    s.apply_result(result(s, 0))
    s.play(now=0.0)
    assert s.tick(0.5) == 5
    s.apply_result(result(s, 5))
    s.set_speed(2.0, now=1.0)  # from frame 5 at t=1, at 20 frames per second
    assert s.tick(1.5) == 15
    assert s.playback.interval_ms() == 25
    with pytest.raises(ValueError):
        s.set_speed(0.0, now=2.0)


def test_playback_pauses_on_the_last_frame_and_restarts_from_the_first() -> None:
    s = Session()
    rec = Recorder(s)
    opened_video(s, frames=10, fps=30.0)
    s.apply_result(result(s, 0))
    s.play(now=0.0)
    assert s.tick(5.0) == 9  # clamped to the last frame
    assert s.playing  # the last frame is not on screen yet
    s.apply_result(result(s, 9))
    s.tick(5.1)
    assert not s.playing
    s.play(now=6.0)  # at the end: from the first frame again, tracker reset
    (last,) = rec.of("frame_requested")[-1]
    assert (last.index, last.reset) == (0, True) and s.playing


def test_every_frame_playback_shows_each_frame_and_waits_for_late_ones() -> None:
    s = Session()
    rec = Recorder(s)
    opened_video(s, frames=10, fps=10.0)
    s.apply_result(result(s, 0))
    s.set_playback_mode(PlaybackMode.EVERY_FRAME, now=0.0)
    s.play(now=0.0)
    assert s.tick(0.05) is None  # frame 1 is not due before 0.1 s
    assert s.tick(0.1) == 1
    s.apply_result(result(s, 1))
    assert s.tick(0.5) == 2  # late (4 was due): the next frame, not a skip
    s.apply_result(result(s, 2))
    assert s.tick(0.55) is None  # the clock waited: frame 3 is due at 0.6 s
    assert s.tick(0.6) == 3
    for i in range(3, 9):
        s.apply_result(result(s, i))
        assert s.tick(0.6 + 0.1 * (i - 2)) == i + 1  # on time from here on
    s.apply_result(result(s, 9))
    assert rec.requested_frames() == list(range(10))
    s.tick(1.3)
    assert not s.playing  # the last frame is on screen


def test_a_single_image_does_not_play_and_a_live_source_plays_at_once() -> None:
    s = Session()
    opened_video(s, frames=1)
    s.play(now=0.0)
    assert not s.playing
    opened_video(s, live=True)
    assert s.playing and s.live
    assert s.tick(1.0) is None  # the capture thread paces a live source, not the clock
    s.pause()
    s.play(now=2.0)
    assert s.playing


# ------------------------------------------------------------------------------ seeking


def test_a_seek_before_the_source_opens_waits_for_it() -> None:
    s = Session()
    rec = Recorder(s)
    s.seek_when_open(40)
    s.open_source("clip.mp4")
    assert rec.of("source_requested") == [("clip.mp4",)]
    assert rec.requested_frames() == []  # nothing open yet
    opened_video(s, frames=100)
    assert rec.requested_frames() == [40]
    opened_video(s, frames=100)  # used once
    assert rec.requested_frames() == [40, 0]
    s.open_source("short.mp4", start_frame=500)
    opened_video(s, frames=12)
    assert rec.requested_frames()[-1] == 11  # clamped to the last frame


def test_seek_and_step_clamp_pause_and_tell_the_timeline() -> None:
    s = Session()
    rec = Recorder(s)
    opened_video(s, frames=20)
    s.apply_result(result(s, 0))
    s.play(now=0.0)
    s.seek(50)
    assert not s.playing and s.requested == 19 and rec.of("seeked") == [(19,)]
    s.step(-1)
    s.step(-1)
    assert s.requested == 17
    s.seek(5, from_timeline=True)  # the slider is already there
    assert rec.of("seeked") == [(19,), (18,), (17,)]
    assert s.requested == 5


# ------------------------------------------------------------------------------ staleness


def test_results_of_a_source_that_is_gone_are_dropped() -> None:
    s = Session()
    opened_video(s, frames=100)
    old = result(s, 7)
    opened_video(s, frames=50)
    assert not s.apply_result(old)
    assert s.shown is None
    assert s.apply_result(result(s, 0))
    assert s.shown_index == 0


def test_a_build_or_runner_for_a_replaced_checkpoint_is_dropped() -> None:
    s = Session()
    rec = Recorder(s)
    a, b = opened("a.pth"), opened("b.pth")
    first = s.load(a)
    second = s.load(b)
    assert not s.model_built(first.generation, model_of(a))  # b was asked for since
    assert s.model is None
    assert s.model_built(second.generation, model_of(b))
    assert s.install_runner(second.generation, object())
    assert s.runner_generation == 1
    assert not s.install_runner(first.generation, object())
    assert s.runner_generation == 1
    assert [m.ckpt.path for (m,) in rec.of("model_changed")] == ["b.pth"]
    # a result computed by the old runner is shown, but is not "current"
    opened_video(s, frames=10)
    r = result(s, 0, model_generation=0)
    s.apply_result(r)
    assert not s.is_current(r) and s.is_current(result(s, 0))


def test_a_failed_build_keeps_the_running_model_and_shows_its_settings() -> None:
    s = Session()
    rec = Recorder(s)
    a = opened("a.pth")
    s.model_built(s.load(a).generation, model_of(a))
    s.set_model_settings(device="cuda")
    assert rec.of("rebuild_wanted") == [()]
    request = s.reload()
    assert request is not None and request.settings.device == "cuda"
    assert s.model_failed(request.generation, a, RuntimeError("CUDA was asked for"))
    assert s.model is not None and s.model_settings.device == "auto"  # what runs
    (failed,) = rec.of("build_failed")
    assert failed[0].still_using == s.model.ident.title
    assert not s.model_failed(request.generation - 1, a, RuntimeError("old"))


def test_a_frame_the_model_failed_on_is_reported_once_per_runner() -> None:
    s = Session()
    rec = Recorder(s)
    opened_video(s, frames=10)
    s.apply_result(result(s, 0, error="boom"))
    s.apply_result(result(s, 1, error="boom"))
    assert len(rec.of("frame_failed")) == 1


# ------------------------------------------------------------------------------ checkpoints


def test_the_last_pose_checkpoints_and_the_last_rootnet_of_a_drop_win() -> None:
    s = Session()
    rec = Recorder(s)
    xs, s_, m = opened("xs.pth"), opened("s.pth", variant="S"), opened("m.pth", variant="M")
    r1, r2 = opened("r1.pth", "rootnet", None), opened("r2.pth", "rootnet", None)
    bad = OpenFailed("notes.pth", ValueError("not a checkpoint"))
    choice = s.checkpoints_opened([xs, r1, bad, s_, m, r2])
    # more than two pose networks: the last two are compared (A, B), the others passed over
    assert choice.pose is s_ and choice.compare is m and choice.rootnet is r2
    assert choice.passed_over == (xs,) and choice.rootnets_dropped == 2
    (request,) = [args[0] for args in rec.of("build_requested")]
    assert request.opened is s_ and request.compare is m and request.rootnet is r2
    assert rec.of("open_failed") == [(bad, None)]


def test_a_rootnet_alone_rebuilds_the_pose_network_beside_it() -> None:
    s = Session()
    rec = Recorder(s)
    s.checkpoints_opened([opened("r.pth", "rootnet", None)])
    assert rec.of("build_requested") == [] and rec.of("checkpoint_restored") == [()]
    xs = opened("xs.pth")
    s.checkpoints_opened([xs])
    s.checkpoints_opened([opened("r2.pth", "rootnet", None)])
    builds = [args[0] for args in rec.of("build_requested")]
    assert [b.opened for b in builds] == [xs, xs]
    assert builds[-1].rootnet.path == "r2.pth"


def test_an_upsampling_override_applies_to_the_checkpoint_and_resets_with_a_new_one() -> None:
    s = Session()
    rec = Recorder(s)
    s.set_upsample([True, True, True])  # no checkpoint yet: remembered, nothing built
    assert s.model_settings.upsample == (True, True, True)
    assert rec.of("build_requested") == []
    s.checkpoints_opened([opened("xs.pth")])  # a new checkpoint starts as its file says
    (request,) = [args[0] for args in rec.of("build_requested")]
    assert request.settings.upsample is None


# ------------------------------------------------------------------------------ settings


def test_settings_are_validated() -> None:
    s = Session()
    with pytest.raises(SettingsError, match="device"):
        s.set_model_settings(device="tpu")
    with pytest.raises(SettingsError, match="focal"):
        s.set_model_settings(focal=-5.0)
    with pytest.raises(SettingsError, match="backend 'tensorrt'"):
        s.set_model_settings(backend="tensorrt")
    assert s.set_model_settings(backend="onnxruntime").config().backend == "onnxruntime"
    s.set_model_settings(backend="auto")
    with pytest.raises(SettingsError, match="strength"):
        s.set_runner_settings(strength=3.0)
    with pytest.raises(SettingsError, match="box"):
        s.set_box((0, 0, -1, 5))
    with pytest.raises(SettingsError, match="box"):
        s.set_box((0, 0, float("nan"), 5))
    assert s.model_settings == ModelSettings()


def test_model_settings_without_a_checkpoint_do_not_ask_for_a_build() -> None:
    s = Session()
    rec = Recorder(s)
    s.set_model_settings(flip=True)
    s.set_model_settings(flip=True)  # no change, no event
    assert rec.of("model_settings_changed") == [(s.model_settings,)]
    assert rec.of("rebuild_wanted") == []


def test_the_person_box_lives_in_the_session() -> None:
    s = Session()
    rec = Recorder(s)
    a = opened("a.pth")
    s.model_built(s.load(a).generation, model_of(a))
    opened_video(s, frames=10)
    s.set_box((10, 20, 30, 40))  # drawn while the detector is chosen: kept, no rebuild
    assert s.runner_settings.box == (10.0, 20.0, 30.0, 40.0)
    assert s.runner_settings.tracker_box is None
    assert rec.of("runner_requested") == []
    s.set_runner_settings(use_box=True)
    (req,) = [args[0] for args in rec.of("runner_requested")]
    assert req.settings.tracker_box == (10.0, 20.0, 30.0, 40.0)
    s.reset_box()  # over the middle of the frame
    assert s.runner_settings.box == (160.0, 48.0, 320.0, 384.0)
    assert len(rec.of("runner_requested")) == 2


def test_choosing_the_box_without_one_starts_from_the_middle_of_the_frame() -> None:
    s = Session()
    opened_video(s, frames=10)
    s.set_runner_settings(use_box=True)
    assert s.runner_settings.tracker_box == (160.0, 48.0, 320.0, 384.0)
    s2 = Session()
    s2.use_person_box([1, 2, 3, 4])
    assert s2.runner_settings.use_box and s2.runner_settings.box == (1.0, 2.0, 3.0, 4.0)


def test_a_new_runner_recomputes_the_frame_asked_for_not_an_older_one_on_screen() -> None:
    s = Session()
    rec = Recorder(s)
    a = opened("a.pth")
    request = s.load(a)
    s.model_built(request.generation, model_of(a))
    opened_video(s, frames=100)
    s.apply_result(result(s, 0))
    s.seek(31)  # frame 31 is being computed when the new runner arrives
    s.install_runner(request.generation, object())
    (last,) = rec.of("frame_requested")[-1]
    assert (last.index, last.reset) == (31, True)
