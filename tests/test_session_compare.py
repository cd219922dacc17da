"""A/B in the session, without Qt: two pose networks dropped together are compared (a RootNet
beside them keeps its role), "Compare with…" makes B beside the running A, one checkpoint or
"Stop comparing" leaves comparison; the visibility toggles; the per-joint distances of the frame
on screen and their averages over the analysed frames; the diff asked for and stale answers
dropped."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from posescope.core.compare_runner import PairedPoses
from posescope.core.session import Session
from posescope.core.session_compare import Visibility
from posescope.core.session_types import FrameResult, Model, ModelSettings, Opened
from posescope.core.types import Frame, FramePoses, PersonPose
from tests.test_session import Recorder, opened, opened_video


def person(track_id: int, x: float, z: float = 5000.0) -> PersonPose:
    kp = np.stack([np.arange(18, dtype=float) + x, np.full(18, 10.0)], axis=1)
    k3 = np.stack([kp[:, 0], kp[:, 1], np.full(18, z)], axis=1)
    return PersonPose(track_id, (0.0, 0.0, 50.0, 80.0), kp, np.zeros(18), k3, z)


def paired(index: int, shift: float = 3.0) -> PairedPoses:
    """Two people; B is `shift` px to the right of A (track 1) and 2*shift (track 2), 4 mm
    further in depth."""
    a = [person(1, 0.0), person(2, 100.0)]
    b = [person(1, shift, 5004.0), person(2, 100.0 + 2 * shift, 5004.0)]
    return PairedPoses(index, index / 30.0, a, b=FramePoses(index, index / 30.0, b))


def model(o: Opened, b: Opened | None) -> Model:
    est = SimpleNamespace(joint_set=object(), device="cpu", name="A")
    est_b = SimpleNamespace(joint_set=object(), device="cpu", name="B")
    mb = Model(b.ckpt, b.ident, b.ident, est_b, ModelSettings()) if b else None  # type: ignore[arg-type]
    return Model(o.ckpt, o.ident, o.ident, est, ModelSettings(), b=mb)  # type: ignore[arg-type]


def compared(s: Session) -> tuple[Opened, Opened, Model]:
    xs, sm = opened("xs.pth"), opened("s.pth", variant="S")
    s.checkpoints_opened([xs, sm])
    m = model(xs, sm)
    assert s.model_built(s.model_generation, m)
    assert s.install_runner(s.model_generation, object())
    return xs, sm, m


def shown(s: Session, poses: FramePoses) -> None:
    frame = Frame(np.zeros((48, 64, 3), np.uint8), poses.index, poses.time)
    s.apply_result(
        FrameResult(
            frame, poses, poses.index, 1.0, generation=s.source_generation,
            model_generation=s.runner_generation,
        )
    )  # fmt: skip


def test_a_drop_of_two_pose_networks_compares_them_and_asks_for_their_diff() -> None:
    s = Session()
    rec = Recorder(s)
    diffs: list[tuple] = []
    s.compare.events.diff_requested.connect(lambda *args: diffs.append(args))
    xs, sm = opened("xs.pth"), opened("s.pth", variant="S")
    root = opened("r.pth", "rootnet", None)
    choice = s.checkpoints_opened([xs, root, sm])
    assert choice.pose is xs and choice.compare is sm and choice.passed_over == ()
    assert choice.rootnet is root  # the RootNet keeps its role: root depth for both
    (request,) = [args[0] for args in rec.of("build_requested")]
    assert request.opened is xs and request.compare is sm and request.rootnet is root
    assert s.compare.active and s.compare.a is xs and s.compare.b is sm
    assert s.compare.diff_pending
    assert [(a, b) for _key, a, b in diffs] == [(xs, sm)]
    # a RootNet dropped later rebuilds the pair beside it
    s.checkpoints_opened([opened("r2.pth", "rootnet", None)])
    again = rec.of("build_requested")[-1][0]
    assert again.opened is xs and again.compare is sm and again.rootnet.path == "r2.pth"


def test_one_checkpoint_or_stop_comparing_leaves_comparison() -> None:
    s = Session()
    rec = Recorder(s)
    compared(s)
    s.compare.stop()
    assert not s.compare.active and s.compare.a is None
    request = rec.of("build_requested")[-1][0]
    assert request.opened.path == "xs.pth" and request.compare is None  # A alone, rebuilt
    compared(s)
    m = opened("m.pth", variant="M")
    s.checkpoints_opened([m])
    assert not s.compare.active
    request = rec.of("build_requested")[-1][0]
    assert request.opened is m and request.compare is None


def test_compare_with_makes_the_new_checkpoint_b_beside_the_running_a() -> None:
    s = Session()
    rec = Recorder(s)
    xs = opened("xs.pth")
    s.checkpoints_opened([xs])
    assert not s.compare.active
    s.compare.compare_with(["s.pth"])
    assert rec.of("identify_requested")[-1] == (["s.pth"], False)
    sm = opened("s.pth", variant="S")
    s.checkpoints_opened([sm])
    assert s.compare.a is xs and s.compare.b is sm
    request = rec.of("build_requested")[-1][0]
    assert request.opened is xs and request.compare is sm
    # the next drop is a drop again: one checkpoint runs alone
    s.checkpoints_opened([opened("m.pth", variant="M")])
    assert not s.compare.active
    # a "Compare with…" whose reading crashed does not turn the next drop into B
    s.compare.compare_with(["broken.pth"])
    s.identify_crashed(["broken.pth"], RuntimeError("disk gone"))
    s.checkpoints_opened([opened("l.pth", variant="L")])
    assert not s.compare.active and s.base.path == "l.pth"


def test_the_runner_and_the_analysis_pass_get_b_with_a() -> None:
    s = Session()
    rec = Recorder(s)
    _xs, _sm, m = compared(s)
    s.set_runner_settings(smoothing=False)
    (runner_request,) = rec.of("runner_requested")[-1]
    assert runner_request.estimator is m.estimator and runner_request.estimator_b is m.b.estimator
    opened_video(s, frames=5)
    shown(s, paired(0))
    (analysis,) = rec.of("analysis_requested")[-1]
    assert analysis.estimator is m.estimator and analysis.estimator_b is m.b.estimator


def test_visibility_toggles_both_a_only_b_only() -> None:
    s = Session()
    seen: list[Visibility] = []
    s.compare.events.visibility_changed.connect(seen.append)
    compared(s)
    assert s.compare.show_a and s.compare.show_b
    s.compare.set_visibility("a")
    assert s.compare.show_a and not s.compare.show_b
    assert s.compare.cycle_visibility() == Visibility.B
    assert not s.compare.show_a and s.compare.show_b
    assert s.compare.cycle_visibility() == Visibility.BOTH
    assert seen[-3:] == [Visibility.A, Visibility.B, Visibility.BOTH]
    with pytest.raises(ValueError):
        s.compare.set_visibility("c")
    s.compare.set_visibility("a")
    s.compare.stop()
    assert not s.compare.show_b  # nothing to compare with


def test_distances_of_the_frame_on_screen_and_averaged_over_the_analysed_frames() -> None:
    s = Session()
    rec = Recorder(s)
    compared(s)
    opened_video(s, frames=6)
    shown(s, paired(0, shift=3.0))
    d1, d2 = s.compare.frame
    assert d1.track_id == 1 and np.allclose(d1.pixels, 3.0) and np.allclose(d2.pixels, 6.0)
    assert np.allclose(d1.mm, np.hypot(3.0, 4.0)) and np.allclose(d2.mm, np.hypot(6.0, 4.0))
    s.compare.set_visibility("b")  # what is drawn does not change what is measured
    assert [r.track_id for r in s.compare.rows()] == [1, 2]
    assert [r.track_id for r in s.compare.rows(selected=2)] == [2]
    # the pass: frames 0..3, B shifted by 1, 2, 3, 4 px
    (request,) = rec.of("analysis_requested")[-1]
    for i in range(4):
        request.cache.put(paired(i, shift=float(i + 1)))
    s.analysis_progressed(request.key, request.cache.progress())
    assert s.compare.averaged_frames == 4
    assert np.allclose(s.compare.averages[1].pixels, 2.5)  # mean of 1, 2, 3, 4
    assert np.allclose(s.compare.averages[2].pixels, 5.0)
    assert s.compare.overall.count == 8 and np.allclose(s.compare.overall.pixels, 3.75)
    request.cache.put(paired(4, shift=5.0))
    s.analysis_progressed(request.key, request.cache.progress())
    assert s.compare.averaged_frames == 5 and np.allclose(s.compare.averages[1].pixels, 3.0)
    # a setting that changes results: a new pass, the averages start again
    s.install_runner(s.model_generation, object())
    assert s.compare.averaged_frames == 0 and s.compare.averages == {}


def test_different_joint_sets_give_a_note_not_a_crash() -> None:
    s = Session()
    compared(s)
    opened_video(s, frames=3)
    poses = paired(0)
    assert poses.b is not None
    poses.b.people[0].keypoints_2d = np.zeros((21, 2))
    shown(s, poses)
    assert s.compare.frame == [] and "joints" in (s.compare.note or "")


def test_the_diff_answer_of_a_replaced_pair_is_dropped() -> None:
    s = Session()
    keys: list[int] = []
    s.compare.events.diff_requested.connect(lambda key, _a, _b: keys.append(key))
    compared(s)
    s.checkpoints_opened([opened("m.pth", variant="M"), opened("l.pth", variant="L")])
    old, new = keys
    assert not s.compare.diff_finished(old, "old diff")  # type: ignore[arg-type]
    assert s.compare.diff is None and s.compare.diff_pending
    assert s.compare.diff_finished(new, "new diff")  # type: ignore[arg-type]
    assert s.compare.diff == "new diff" and not s.compare.diff_pending
    assert not s.compare.diff_failed(old, RuntimeError("late"))


def test_a_pair_that_fails_to_build_shows_what_runs_again() -> None:
    s = Session()
    xs, sm, _m = compared(s)
    s.checkpoints_opened([opened("m.pth", variant="M"), opened("l.pth", variant="L")])
    request_gen = s.model_generation
    assert s.model_failed(request_gen, s.base, RuntimeError("no memory"))  # type: ignore[arg-type]
    assert s.compare.a.path == xs.path and s.compare.b.path == sm.path
