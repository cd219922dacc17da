"""One-Euro filtering: less jitter, little lag, per-track state, resets."""

from __future__ import annotations

import numpy as np
import pytest

from posescope.core.smoothing import OneEuroFilter, PoseSmoother
from posescope.core.types import FramePoses, PersonPose

J = 18


def _rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def _person(tid: int, kp2d: np.ndarray, root_mm: float = 3000.0) -> PersonPose:
    """A pose whose 3D is consistent: Z = depth_rel + root, X/Y from a 1500 px focal."""
    depth_rel = np.linspace(-200, 200, len(kp2d))
    z = depth_rel + root_mm
    xyz = np.stack([(kp2d[:, 0] - 320) / 1500 * z, (kp2d[:, 1] - 240) / 1500 * z, z], axis=1)
    return PersonPose(tid, (0, 0, 100, 200), kp2d.copy(), depth_rel, xyz, root_mm)


def _walk(t: np.ndarray) -> np.ndarray:
    """(T, J, 2) joints of someone moving at up to ~630 px/s."""
    phase = np.arange(J)[None, :]
    x = 320 + 200 * np.sin(2 * np.pi * 0.5 * t[:, None] + phase)
    y = 240 + 100 * np.cos(2 * np.pi * 0.5 * t[:, None] + phase)
    return np.stack([x, y], axis=-1)


def test_first_sample_passes_through_and_time_going_back_resets() -> None:
    f = OneEuroFilter()
    x0 = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert np.array_equal(f(x0, 0.0), x0)
    out = f(x0 + 10, 1 / 30)
    assert np.all(out < x0 + 10) and np.all(out > x0)  # smoothed towards the past
    assert np.array_equal(f(x0 - 5, 0.5 / 30), x0 - 5)  # time went back: reset, passthrough
    assert np.array_equal(f(x0, 0.5 / 30), x0)  # same time again: reset too
    f.reset()
    assert np.array_equal(f(x0 * 7, 9.0), x0 * 7)
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0)


def test_jitter_is_reduced_on_a_noisy_slow_track() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(0, 4, 1 / 30)
    truth = np.stack([300 + 5 * t, 200 + 0 * t], axis=1)[:, None, :].repeat(J, 1)  # 5 px/s
    noisy = truth + rng.normal(0, 3, truth.shape)
    f = OneEuroFilter()  # the paper's defaults
    out = np.array([f(x, tt) for x, tt in zip(noisy, t, strict=True)])
    raw, filtered = _rms(noisy[30:], truth[30:]), _rms(out[30:], truth[30:])
    assert filtered < raw / 2.3, (raw, filtered)
    # The app's defaults (beta tuned for less lag) on the whole pose, 2D and 3D.
    smoother = PoseSmoother()
    got = [
        smoother.smooth(FramePoses(i, tt, [_person(1, x)])).people[0]
        for i, (x, tt) in enumerate(zip(noisy, t, strict=True))
    ]
    out2d = np.array([p.keypoints_2d for p in got])
    assert _rms(out2d[30:], truth[30:]) < raw / 1.8
    true3d = np.array([_person(1, x).keypoints_3d_mm for x in truth])
    noisy3d = np.array([_person(1, x).keypoints_3d_mm for x in noisy])
    out3d = np.array([p.keypoints_3d_mm for p in got])
    assert _rms(out3d[30:], true3d[30:]) < _rms(noisy3d[30:], true3d[30:]) / 1.8


@pytest.mark.parametrize("fps", [30, 60])
def test_a_clean_moving_track_lags_less_than_one_frame(fps: int) -> None:
    t = np.arange(0, 4, 1 / fps)
    truth = _walk(t)
    smoother = PoseSmoother()
    out = np.array(
        [
            smoother.smooth(FramePoses(i, tt, [_person(1, x)])).people[0].keypoints_2d
            for i, (x, tt) in enumerate(zip(truth, t, strict=True))
        ]
    )
    lag_error = _rms(out[fps:], truth[fps:])
    one_frame_late = _rms(truth[fps - 1 : -1], truth[fps:])
    assert lag_error < one_frame_late, (lag_error, one_frame_late)


def test_tracks_are_smoothed_independently_and_input_is_untouched() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(0, 2, 1 / 30)
    a = _walk(t)
    b = a[:, ::-1] + rng.normal(0, 20, a.shape)  # another, very jumpy person
    alone, together = PoseSmoother(), PoseSmoother()
    for i, tt in enumerate(t):
        pa, pb = _person(1, a[i]), _person(2, b[i], root_mm=5000.0)
        fp = FramePoses(i, tt, [pa, pb], {"model": 1.0})
        snapshot = (pa.keypoints_2d.copy(), pa.keypoints_3d_mm.copy(), pa.depth_rel_mm.copy())
        out = together.smooth(fp)
        ref = alone.smooth(FramePoses(i, tt, [_person(1, a[i])]))
        assert np.array_equal(out.people[0].keypoints_2d, ref.people[0].keypoints_2d)
        assert np.array_equal(out.people[0].keypoints_3d_mm, ref.people[0].keypoints_3d_mm)
        assert out.people[1].track_id == 2 and out.people[1] is not pb
        assert (out.index, out.time, out.timings_ms) == (i, tt, {"model": 1.0})
        # Input not modified; new objects out.
        assert np.array_equal(pa.keypoints_2d, snapshot[0])
        assert np.array_equal(pa.keypoints_3d_mm, snapshot[1])
        assert np.array_equal(pa.depth_rel_mm, snapshot[2])
        assert out is not fp and out.people[0] is not pa
        # Depth stays consistent with the 3D: Z = depth_rel + root depth.
        for p in out.people:
            assert np.allclose(p.keypoints_3d_mm[:, 2], p.depth_rel_mm + p.root_depth_mm)


def test_reset_forget_and_disabled() -> None:
    t = np.arange(0, 1, 1 / 30)
    track = _walk(t)
    s = PoseSmoother(forget_after=5)
    for i in range(10):
        s.smooth(FramePoses(i, t[i], [_person(1, track[i])]))
    jump = track[10] + 50
    assert not np.allclose(
        s.smooth(FramePoses(10, t[10], [_person(1, jump)])).people[0].keypoints_2d, jump
    )
    s.reset()
    out = s.smooth(FramePoses(11, t[11], [_person(1, track[11] + 80)]))
    assert np.array_equal(out.people[0].keypoints_2d, track[11] + 80)  # fresh: passthrough
    # A track unseen for more than forget_after frames starts afresh.
    for i in range(12, 19):
        s.smooth(FramePoses(i, t[i], [_person(2, track[i])]))
    out = s.smooth(FramePoses(19, t[19], [_person(1, track[19] - 70)]))
    assert np.array_equal(out.people[0].keypoints_2d, track[19] - 70)
    # Disabled: the very same object back.
    fp = FramePoses(0, 0.0, [_person(1, track[0])])
    assert PoseSmoother(enabled=False).smooth(fp) is fp


def test_missing_joints_pass_through_as_nan() -> None:
    f = OneEuroFilter()
    x = np.ones((3, 2))
    f(x, 0.0)
    y = x.copy()
    y[1] = np.nan
    out = f(y + 1, 0.1)
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()
    out = f(x + 2, 0.2)  # the joint comes back: it continues from its last known state
    assert np.isfinite(out).all() and np.all(out < x + 2)
