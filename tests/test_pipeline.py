"""core.pipeline: the published demo's conventions, end to end on a real frame."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from posescope.core.checkpoint import open_checkpoint
from posescope.core.families.network import soft_argmax, soft_argmax_peak, soft_argmax_published
from posescope.core.identify import identify_checkpoint
from posescope.core.pipeline import (
    Estimator,
    EstimatorConfig,
    PoseRunner,
    crop_transform,
    prefetch,
    process_bbox,
    root_depth_prior,
)
from posescope.core.types import Frame
from tests import calibration, factory, published, reference
from tests.media_files import POSE2SIM

BOX = (240.0, 320.0, 320.0, 860.0)  # the athlete in frame 0, measured by eye on the frame


def read_frame(index: int = 0) -> Frame:
    cap = cv2.VideoCapture(str(POSE2SIM))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, img = cap.read()
    cap.release()
    assert ok
    return Frame(img, index, index / 60.0)


# ------------------------------------------------------------------ tests


def estimator_for(tmp_path, name="XS", spelling="modern", seed=5, **cfg):
    path = factory.save_torch_zip(
        factory.wrap(factory.state_dict_for(name, spelling, seed=seed), "network"),
        tmp_path / "m.pth",
    )
    return Estimator.from_path(path, EstimatorConfig(device="cpu", **cfg))


@pytest.mark.parametrize("name,spelling", [("XS", "modern"), ("M", "list")])
def test_parity_with_published_demo_on_a_real_frame(tmp_path, name, spelling) -> None:
    """The whole pipeline against the published demo written out (tests/published.py), on a
    network that follows the picture (tests/calibration.py)."""
    frame = read_frame(0)
    path = factory.save_torch_zip(
        factory.wrap(calibration.following_state_dict(name, spelling), "network"),
        tmp_path / "m.pth",
    )
    est = Estimator.from_path(path, EstimatorConfig(device="cpu", root_depth_mm=4200.0))
    ref = calibration.following_model(name, spelling)
    a = est.arch
    want_uvz, want_cam = published.published_pose(
        ref, frame.image, BOX, a.depth_dim, a.output_size, 4200.0
    )
    fp = est.estimate(frame, [(7, BOX)])
    (p,) = fp.people
    assert p.track_id == 7 and p.bbox == BOX and fp.index == 0
    # 5e-3 heatmap units of the fast form, in pixels of this box (~1340 px over 32 or 64)
    assert np.abs(p.keypoints_2d - want_uvz[:, :2]).max() < 0.5
    assert np.abs(p.depth_rel_mm + 4200.0 - want_uvz[:, 2]).max() < 0.5
    assert np.abs(p.keypoints_3d_mm - want_cam).max() < 2.0
    assert p.root_depth_mm == 4200.0
    oh, ow = a.output_size
    assert 1.0 / (oh * ow) < p.score <= 1.0  # peaked heatmaps
    # the pose lies inside the processed (square, x1.25) box, not somewhere else in the image
    pb = published.process_bbox(BOX, frame.width, frame.height)
    assert (p.keypoints_2d >= pb[:2] - 1).all() and (p.keypoints_2d <= pb[:2] + pb[2:] + 1).all()


def test_process_bbox_matches_demo() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        box = rng.uniform([-100, -100, 1, 1], [1200, 2000, 900, 1500])
        got = process_bbox(box, 1080, 1920)
        want = published.process_bbox(box, 1080, 1920)
        assert (got is None) == (want is None)
        if got is not None:
            assert np.allclose(got, want)
    assert process_bbox((10, 10, 0, 50), 100, 100) is None
    assert process_bbox((200, 10, 30, 50), 100, 100) is None  # entirely outside


def test_crop_transform_maps_the_published_points() -> None:
    box = np.array([100.0, 50.0, 400.0, 400.0])
    t = crop_transform(box, 256, 256)
    pts = np.array([[300.0, 250.0, 1], [300.0, 450.0, 1], [500.0, 250.0, 1]])
    assert np.allclose(pts @ t.T, [[128, 128], [128, 256], [256, 128]], atol=1e-4)


def test_soft_argmax_round_trip() -> None:
    """Heatmaps peaked at known 3D points decode to those points."""
    j, d, h, w = 5, 16, 24, 20
    rng = np.random.default_rng(1)
    pts = rng.uniform([1, 1, 1], [w - 2, h - 2, d - 2], (2, j, 3))
    zz, yy, xx = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing="ij")
    logits = np.empty((2, j * d, h, w), np.float32)
    for n in range(2):
        for k in range(j):
            x, y, z = pts[n, k]
            dist2 = (xx - x) ** 2 + (yy - y) ** 2 + (zz - z) ** 2
            logits[n, k * d : (k + 1) * d] = -dist2 / (2 * 0.6**2)
    got = soft_argmax(torch.from_numpy(logits), j, d).numpy()
    assert np.abs(got - pts).max() < 1e-2
    # the engine's two-pass form, the published three-pass form (the plain network's) and
    # the test's own copy of the published code agree
    random = torch.from_numpy(rng.normal(0, 3, (2, j * d, h, w)).astype(np.float32))
    ours = soft_argmax(random, j, d)
    assert torch.allclose(ours, soft_argmax_published(random, j, d), atol=1e-5)
    assert torch.allclose(ours, reference.soft_argmax(random, j, d), atol=1e-5)


def test_heatmap_peak_score() -> None:
    """Flat heatmaps score 1 / (H * W); all mass on one pixel scores 1."""
    j, d, h, w = 3, 8, 16, 16
    flat = torch.zeros(1, j * d, h, w)
    coords, peak = soft_argmax_peak(flat, j, d)
    assert torch.allclose(peak, torch.full((1, j), 1.0 / (h * w)))
    assert torch.allclose(coords[0, :, :2], torch.tensor([(w - 1) / 2, (h - 1) / 2]))
    sharp = torch.full((1, j * d, h, w), -1e4)
    sharp[0, :, 5, 9] = 0.0  # every depth bin of pixel (x 9, y 5)
    coords, peak = soft_argmax_peak(sharp, j, d)
    assert torch.allclose(peak, torch.ones(1, j)) and torch.allclose(
        coords[0, :, 0], torch.tensor(9.0)
    )


def test_decoding_inverts_the_crop(tmp_path) -> None:
    """Image points pushed through the crop transform into heatmap units come back."""
    est = estimator_for(tmp_path)
    frame = read_frame(0)
    crops = est.crop(frame, [(1, BOX)])
    rng = np.random.default_rng(2)
    img_pts = rng.uniform([300, 400], [500, 1100], (18, 2))
    patch = np.c_[img_pts, np.ones(18)] @ crops.transforms[0].T
    oh, ow = est.arch.output_size
    coords = np.c_[
        patch[:, 0] * ow / 256, patch[:, 1] * oh / 256, np.full(18, est.arch.depth_dim / 2)
    ]
    (p,) = est.decode(coords[None], crops, frame)
    assert np.abs(p.keypoints_2d - img_pts).max() < 1e-6
    assert np.allclose(p.depth_rel_mm, 0.0)  # the middle depth bin is the root's depth


def test_root_depth_prior_and_camera_space(tmp_path) -> None:
    est = estimator_for(tmp_path)
    frame = read_frame(0)
    (p,) = est.estimate(frame, [(1, BOX)]).people
    pb = published.process_bbox(BOX, frame.width, frame.height)
    k = math.sqrt(2000 * 2000 * 1500 * 1500 / (pb[2] * pb[3]))
    assert p.root_depth_mm == pytest.approx(k)
    assert root_depth_prior(pb, (1500, 1500)) == pytest.approx(k)
    z = p.keypoints_3d_mm[:, 2]
    assert np.allclose(z, p.depth_rel_mm + k)
    assert np.allclose(p.keypoints_3d_mm[:, 0], (p.keypoints_2d[:, 0] - 540) / 1500 * z)
    assert np.allclose(p.root_relative_mm[p.root], 0.0)


def test_focal_and_principal_are_used(tmp_path) -> None:
    est = estimator_for(
        tmp_path, focal=(1000.0, 2000.0), principal=(10.0, 20.0), root_depth_mm=3000.0
    )
    (p,) = est.estimate(read_frame(0), [(1, BOX)]).people
    z = p.keypoints_3d_mm[:, 2]
    assert np.allclose(p.keypoints_3d_mm[:, 0], (p.keypoints_2d[:, 0] - 10) / 1000 * z)
    assert np.allclose(p.keypoints_3d_mm[:, 1], (p.keypoints_2d[:, 1] - 20) / 2000 * z)


def test_rootnet_beside_the_pose_checkpoint(tmp_path) -> None:
    est = estimator_for(tmp_path)
    ref = reference.randomize_(reference.make_rootnet(50), seed=9).eval()
    path = factory.save_torch_zip({"network": ref.state_dict()}, tmp_path / "rootnet.pth")
    ck = open_checkpoint(path)
    est.set_rootnet(ck, identify_checkpoint(ck))
    frame = read_frame(0)
    (p,) = est.estimate(frame, [(1, BOX)]).people
    want = published.published_root_depth(ref, frame.image, BOX)  # the RootNet demo
    assert p.root_depth_mm == pytest.approx(want, rel=1e-4)
    with pytest.raises(ValueError, match="RootNet"):
        est.set_rootnet(open_checkpoint(tmp_path / "m.pth"), est.ident)
    with pytest.raises(ValueError, match="RootNet"):
        Estimator.from_checkpoint(ck, identify_checkpoint(ck))


def test_flip_test_is_mirror_equivariant(tmp_path) -> None:
    """flip(I) through the flip-averaged net == the mirror (x and left/right swapped) of I's."""
    est = estimator_for(tmp_path, flip=True)
    crops = est.crop(read_frame(0), [(1, BOX)])
    a = est.infer(crops.patches)
    b = est.infer(np.ascontiguousarray(crops.patches[:, :, ::-1]))
    mirrored = a.copy()
    for i, j in est.joint_set.flip_pairs:
        mirrored[:, [i, j]] = mirrored[:, [j, i]]
    mirrored[..., 0] = est.arch.output_size[1] - 1 - mirrored[..., 0]
    assert np.abs(b - mirrored).max() < 1e-3
    plain = estimator_for(tmp_path, flip=False).infer(crops.patches)
    assert np.abs(plain - a).max() > 1e-2  # the flip test changes the answer


def test_half_precision_pipeline_as_a_gpu_runs_it(tmp_path, monkeypatch) -> None:
    """`--fp16` end to end (flip test on), with fp16 let on this CPU to run the GPU code path:
    the poses stay close to fp32's, in pixels and mm, and come back as float arrays."""
    import posescope.core.inference.model as core_model

    frame = read_frame(0)
    want = estimator_for(tmp_path, flip=True, root_depth_mm=4200.0).estimate(frame, [(1, BOX)])
    monkeypatch.setattr(core_model, "_HALF_DEVICES", ("cuda", "mps", "cpu"))
    est = estimator_for(tmp_path, flip=True, fp16=True, root_depth_mm=4200.0, backend="torch")
    assert est.model.fp16 and est.model.form == "folded"
    (p,) = est.estimate(frame, [(1, BOX)]).people
    (q,) = want.people
    assert p.keypoints_2d.dtype.kind == "f" and p.keypoints_3d_mm.shape == (18, 3)
    # ~1340 px of box over 32 heatmap units (~42 px a unit); 2000 mm over 32 depth bins.
    # Measured: 0.8 px, 1.5 mm, scores 2e-4 apart.
    assert 0 < np.abs(p.keypoints_2d - q.keypoints_2d).max() < 4.0
    assert np.abs(p.depth_rel_mm - q.depth_rel_mm).max() < 6.0
    assert abs(p.score - q.score) < 0.01


def test_several_people_go_through_as_one_batch(tmp_path, monkeypatch) -> None:
    est = estimator_for(tmp_path)
    seen = []
    real = est.model

    class Spy:
        def __getattr__(self, k):
            return getattr(real, k)

        def coords_and_peaks(self, x):
            seen.append(len(x))
            return real.coords_and_peaks(x)

    monkeypatch.setattr(est, "model", Spy())
    fp = est.estimate(
        read_frame(0), [(1, BOX), (2, (0.0, 280.0, 140.0, 480.0)), (3, (5000, 0, 10, 10))]
    )
    assert seen == [2]  # two valid boxes in one forward; the box outside the image is dropped
    assert [p.track_id for p in fp.people] == [1, 2]
    assert set(fp.timings_ms) == {"crop", "model", "decode"}


def test_posenet_runs(tmp_path) -> None:
    ref = calibration.following_posenet(50)
    path = factory.save_torch_zip(calibration.state_of(ref), tmp_path / "posenet.pth")
    est = Estimator.from_path(path, EstimatorConfig(device="cpu", root_depth_mm=5000.0))
    frame = read_frame(0)
    (p,) = est.estimate(frame, [(1, BOX)]).people
    want, _ = published.published_pose(ref, frame.image, BOX, 64, (64, 64), 5000.0)
    assert np.abs(p.keypoints_2d - want[:, :2]).max() < 0.5


def test_runner_with_fixed_box_and_prefetch(tmp_path) -> None:
    from posescope.core.person import PersonTracker
    from posescope.core.smoothing import PoseSmoother
    from posescope.core.sources.probe import open_source

    runner = PoseRunner(estimator_for(tmp_path), PersonTracker.fixed(BOX), PoseSmoother())
    with open_source(POSE2SIM) as src:
        out = [runner.process(f) for f, _, _ in prefetch(src, 10, 16)]
    assert [fp.index for fp in out] == list(range(10, 16))
    assert all(len(fp.people) == 1 for fp in out)
    assert {"detect", "crop", "model", "decode", "smooth", "total"} <= set(out[0].timings_ms)


def test_prefetch_hands_source_errors_to_the_caller() -> None:
    class Broken:
        seekable = False

        def read(self):
            raise OSError("camera unplugged")

    with pytest.raises(OSError, match="unplugged"):
        list(prefetch(Broken()))


def test_fixed_box_crops_are_made_off_the_critical_path(tmp_path) -> None:
    from posescope.core.person import PeopleDetector, PersonTracker
    from posescope.core.sources.probe import open_source

    est = estimator_for(tmp_path)
    fixed = PoseRunner(est, PersonTracker.fixed(BOX))
    frame = read_frame(3)
    crops = fixed.prepare(frame)
    assert crops is not None and crops.ids == [1]
    with_crops = fixed.process(frame, crops)
    without = fixed.process(frame)
    assert np.array_equal(with_crops.people[0].keypoints_2d, without.people[0].keypoints_2d)
    assert with_crops.timings_ms["crop"] < without.timings_ms["crop"]
    # the decode thread hands them over with the frames
    with open_source(POSE2SIM) as src:
        got = list(prefetch(src, 0, 3, prepare=fixed.prepare))
    assert [f.index for f, _, _ in got] == [0, 1, 2]
    assert all(c is not None and len(c.patches) == 1 for _, _, c in got)
    # tracking decides the boxes from the last pose: nothing to prepare
    assert PoseRunner(est, PersonTracker(PeopleDetector())).prepare(frame) is None


def test_prefetch_skips_to_start_on_a_non_seekable_source() -> None:
    class Camera:  # reads in order only
        seekable = False

        def __init__(self):
            self.i = 0

        def read(self):
            if self.i >= 6:
                return None
            self.i += 1
            return Frame(np.zeros((4, 4, 3), np.uint8), self.i - 1, 0.0)

    prepared: list[int] = []
    out = list(prefetch(Camera(), 3, None, prepare=lambda f: prepared.append(f.index) or f.index))
    assert [f.index for f, _, _ in out] == [3, 4, 5]
    assert [p for _, _, p in out] == [3, 4, 5]
    assert prepared == [3, 4, 5]  # frames before start are read past, not prepared


def test_stream_with_frames_in_flight_equals_one_at_a_time(tmp_path) -> None:
    """Two frames through the network at once (a fixed box on CPU): the same poses, smoothed
    in the same order, and torch's thread count restored afterwards."""
    from posescope.core.person import PeopleDetector, PersonTracker
    from posescope.core.smoothing import PoseSmoother
    from posescope.core.sources.probe import open_source

    est = estimator_for(tmp_path, backend="torch")  # onnxruntime: one frame in flight

    def run(in_flight: int) -> list:
        runner = PoseRunner(est, PersonTracker.fixed(BOX), PoseSmoother())
        with open_source(POSE2SIM, decode_threads=1) as src:
            items = prefetch(src, 5, 14, prepare=runner.prepare)
            return list(runner.stream(items, in_flight))

    threads = torch.get_num_threads()
    one, two = run(1), run(2)
    assert torch.get_num_threads() == threads
    assert [f.index for f, _, _ in two] == list(range(5, 14))
    assert [fp.index for _, _, fp in two] == list(range(5, 14))
    for (_, _, a), (_, _, b) in zip(one, two, strict=True):
        (pa,), (pb,) = a.people, b.people
        np.testing.assert_allclose(pa.keypoints_2d, pb.keypoints_2d, atol=1e-3)
        np.testing.assert_allclose(pa.keypoints_3d_mm, pb.keypoints_3d_mm, atol=1e-2)
    assert {"model", "smooth", "total"} <= set(two[0][2].timings_ms)
    # the default: 2 on a CPU with a fixed box; tracking needs each frame's poses first
    fixed = PoseRunner(est, PersonTracker.fixed(BOX))
    assert fixed.default_in_flight() == (2 if torch.get_num_threads() >= 2 else 1)
    assert PoseRunner(est, PersonTracker(PeopleDetector())).default_in_flight() == 1


def test_stream_hands_worker_errors_to_the_caller_and_stops_cleanly(tmp_path, monkeypatch) -> None:
    from posescope.core.person import PersonTracker

    est = estimator_for(tmp_path)
    runner = PoseRunner(est, PersonTracker.fixed(BOX))
    frames = [(read_frame(0), 0.0, None)] * 4
    calls = []
    real = est.estimate

    def flaky(frame, boxes, crops=None):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("out of memory")
        return real(frame, boxes, crops)

    monkeypatch.setattr(est, "estimate", flaky)
    threads = torch.get_num_threads()
    got = []
    with pytest.raises(RuntimeError, match="out of memory"):
        for item in runner.stream(iter(frames), 2):
            got.append(item)
    assert len(got) == 2 and torch.get_num_threads() == threads
    # a consumer that stops early: the pool is shut down, threads restored
    stream = runner.stream(iter([(read_frame(0), 0.0, None)] * 6), 2)
    next(stream)
    stream.close()
    assert torch.get_num_threads() == threads
