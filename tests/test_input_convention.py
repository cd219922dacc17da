"""The input convention: read from the file, used by every form, equal to the published code.

Every network here follows the picture (tests/calibration.py: BatchNorm calibrated on real
crops under the convention tested, final layer sharpened), so a wrong input scale moves the
joints by hundreds of pixels instead of the 0.005 px random weights give.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from posescope.core.checkpoint import open_checkpoint
from posescope.core.families import input_convention as ic
from posescope.core.families.registry import REGISTRY
from posescope.core.identify import identify_checkpoint
from posescope.core.pipeline import Estimator, EstimatorConfig
from posescope.core.types import Frame
from tests import calibration, factory, published, reference
from tests.media_files import POSE2SIM, SPORTS2D

# Held-out frames (not among the calibration crops) and the person in each.
HELD_OUT = ((POSE2SIM, 20, (170, 340, 480, 830)), (SPORTS2D, 30, (570, 65, 150, 392)))
PX, MM = 0.5, 2.0  # what "equal to the published pipeline" means (the bound)


def frame_of(video: Path, index: int) -> Frame:
    import cv2

    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, img = cap.read()
    cap.release()
    assert ok
    return Frame(img, index, 0.0)


def save(sd, path: Path) -> Path:
    return factory.save_torch_zip(factory.wrap(factory.add_prefix(sd, "module."), "network"), path)


def worst_against_published(est: Estimator, model, convention: str, flip: bool = False):
    """The largest 2D (px) and 3D (mm) distance between the engine's poses and the published
    pipeline's (published.published_pose) on the held-out frames."""
    px = mm = 0.0
    a = est.arch
    for video, index, box in HELD_OUT:
        frame = frame_of(video, index)
        (p,) = est.estimate(frame, [(1, box)]).people
        want_uvz, want_cam = published.published_pose(
            model, frame.image, box, a.depth_dim, a.output_size, 4000.0, convention, flip,
            est.joint_set.flip_pairs,
        )  # fmt: skip
        px = max(px, float(np.abs(p.keypoints_2d - want_uvz[:, :2]).max()))
        mm = max(mm, float(np.abs(p.keypoints_3d_mm - want_cam).max()))
    return px, mm


# ------------------------------------------------------------------ the natural-image model


def test_the_natural_crop_statistics_are_those_of_the_test_media() -> None:
    """RGB_COVARIANCE and SPATIAL_CORRELATION recomputed from crops of the test videos."""
    rgb = np.stack(calibration.patches()).astype(np.float64) / 255.0
    x = rgb - rgb.reshape(-1, 3).mean(0)
    cov = np.cov(rgb.reshape(-1, 3).T)
    assert np.abs(cov - np.array(ic.RGB_COVARIANCE)).max() < 0.01
    var = (x * x).mean()
    for d, want in enumerate(ic.SPATIAL_CORRELATION):
        rows = (x[:, :, : x.shape[2] - d] * x[:, :, d:]).mean()
        cols = (x[:, : x.shape[1] - d] * x[:, d:]).mean()
        assert (rows + cols) / 2 / var == pytest.approx(want, abs=0.02)


@pytest.mark.parametrize("kind", ["random", "zero-mean", "smooth"])
@pytest.mark.parametrize("k,stride,pad", [(4, 4, 0), (7, 2, 3)])
def test_the_first_conv_variance_is_predicted_within_a_factor_two(kind, k, stride, pad) -> None:
    """What `predicted_variance` says of a stem, against the stem run on real crops (0..1)."""
    g = torch.Generator().manual_seed(k)
    w = torch.randn(24, 3, k, k, generator=g) / (3 * k * k) ** 0.5
    if kind == "zero-mean":  # edge-like, as trained first layers are
        w = w - w.mean((1, 2, 3), keepdim=True)
    if kind == "smooth":
        w = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(w, (1,) * 4, "replicate"), 3, 1)
    out = torch.nn.functional.conv2d(calibration.batch("0-1"), w, stride=stride, padding=pad)
    measured = out.double().var((0, 2, 3)).numpy()
    assert np.abs(np.log10(measured / ic.predicted_variance(w.numpy()))).max() < 0.3


# ------------------------------------------------------------------ reading it from a file


@pytest.mark.parametrize("convention", ["0-255", "0-1"])
def test_the_convention_is_read_from_a_calibrated_convnextpose(tmp_path, convention) -> None:
    sd = calibration.following_state_dict("XS", convention=convention)
    ck = open_checkpoint(save(sd, tmp_path / "xs.pth"))
    ident = identify_checkpoint(ck)
    assert ident.input is not None
    assert (ident.input.scale, ident.input.how) == (convention, "read")
    assert "backbone.downsample_layers.0.1" in ident.input.reason
    assert any(e.startswith("input: ") and convention[-3:].replace("-", "..") in e
               for e in ident.evidence)  # fmt: skip
    assert ident.to_dict()["input"]["scale"] == convention


def test_the_convention_is_read_from_the_first_batchnorm_of_a_resnet() -> None:
    """PoseNet and RootNet (the 3DMPPE ResNet backbone): `backbone.bn1`, each convention."""
    for family, model, convention in (
        ("posenet", calibration.following_posenet(50, convention="0-255"), "0-255"),
        ("rootnet", calibration.following_rootnet(50, convention="0-1"), "0-1"),
    ):
        got = ic.read_input_convention(calibration.state_of(model), REGISTRY[family].stem)
        assert (got.scale, got.how) == (convention, "read") and "backbone.bn1" in got.reason


def test_untouched_or_missing_statistics_assume_the_published_convention() -> None:
    fresh = reference.make_variant("XS").state_dict()  # BatchNorm as initialised: 0 and 1
    got = ic.read_input_convention(fresh, REGISTRY["convnextpose"].stem)
    assert (got.scale, got.how) == ("0-255", "assumed") and "untouched" in got.reason
    no_stats = {k: v for k, v in fresh.items() if "running" not in k}
    got = ic.read_input_convention(no_stats, REGISTRY["convnextpose"].stem)
    assert (got.scale, got.how) == ("0-255", "assumed") and "no running statistics" in got.reason
    # statistics that fit neither convention (1000x the 0..1 variance): said, and assumed
    sd = calibration.following_state_dict("XS", convention="0-1")
    sd["backbone.downsample_layers.0.1.running_var"] *= 1000.0
    got = ic.read_input_convention(sd, REGISTRY["convnextpose"].stem)
    assert (got.scale, got.how) == ("0-255", "assumed") and "says neither" in got.reason
    assert got.decades == pytest.approx(3.0, abs=0.3)


def test_a_user_choice_overrides_the_file_and_says_so() -> None:
    read = ic.InputConvention("0-1", "read", "read from x")
    assert ic.chosen("auto", read) is read
    over = ic.chosen("0-255", read)
    assert (over.scale, over.how) == ("0-255", "chosen") and "the file says 0-1" in over.reason
    with pytest.raises(ValueError, match="input scale"):
        ic.chosen("255", read)


# ------------------------------------------------------------------ parity, every form


@pytest.mark.parametrize(
    "name,spelling,convention,backend",
    [
        ("XS", "modern", "0-255", "torch"),
        ("XS", "modern", "0-255", "onnxruntime"),
        ("XS", "modern", "0-1", "torch"),
        ("XS", "modern", "0-1", "onnxruntime"),
        ("S", "legacy", "0-255", "torch"),
        ("M", "list", "0-255", "onnxruntime"),
        ("L", "modern", "0-255", "torch"),
    ],
)
def test_poses_equal_the_published_pipeline_with_no_option(
    tmp_path, name, spelling, convention, backend
) -> None:
    """The engine reads the convention from the file and lands within 0.5 px and 2 mm of the
    published pipeline fed that convention, on held-out frames of real footage."""
    model = calibration.following_model(name, spelling, convention=convention)
    path = save(calibration.state_of(model), tmp_path / f"{name}.pth")
    config = EstimatorConfig(device="cpu", root_depth_mm=4000.0, backend=backend)
    est = Estimator.from_path(path, config)
    assert est.input.scale == convention and est.input.how == "read"
    px, mm = worst_against_published(est, model, convention)
    assert px < PX and mm < MM


def test_the_flip_test_equals_the_published_one(tmp_path) -> None:
    model = calibration.following_model("XS")
    path = save(calibration.state_of(model), tmp_path / "xs.pth")
    est = Estimator.from_path(path, EstimatorConfig(device="cpu", root_depth_mm=4000.0, flip=True))
    px, mm = worst_against_published(est, model, "0-255", flip=True)
    assert px < PX and mm < MM
    # and the flip test matters here: the plain pose is elsewhere
    plain = Estimator.from_path(path, EstimatorConfig(device="cpu", root_depth_mm=4000.0))
    px_plain, _ = worst_against_published(plain, model, "0-255", flip=True)
    assert px_plain > 5 * PX


def test_the_old_divided_by_255_input_fails_the_parity_check(tmp_path) -> None:
    """What PoseScope did before (pixels / 255) on a network trained on 0..255 pixels, as a
    user forcing the wrong scale gets it: hundreds of pixels off, on the held-out frames."""
    model = calibration.following_model("XS")
    path = save(calibration.state_of(model), tmp_path / "xs.pth")
    config = EstimatorConfig(device="cpu", root_depth_mm=4000.0, input_scale="0-1")
    est = Estimator.from_path(path, config)
    assert (est.input.scale, est.input.how) == ("0-1", "chosen")
    px, mm = worst_against_published(est, model, "0-255")
    assert px > 50 and mm > 100


def test_posenet_and_rootnet_equal_the_published_pipeline(tmp_path) -> None:
    """The ResNet family (its normalisation is not folded: the first conv pads) and RootNet,
    each with its own file's convention, against the published PoseNet and RootNet demos."""
    posenet = calibration.following_posenet(50, convention="0-255")
    rootnet = calibration.following_rootnet(50, convention="0-1")
    pose_path = save(calibration.state_of(posenet), tmp_path / "posenet.pth")
    root_path = save(calibration.state_of(rootnet), tmp_path / "rootnet.pth")
    est = Estimator.from_path(pose_path, EstimatorConfig(device="cpu"), rootnet=root_path)
    assert est.input.scale == "0-255" and est.rootnet is not None
    assert est.rootnet.input.scale == "0-1"
    a = est.arch
    for video, index, box in HELD_OUT:
        frame = frame_of(video, index)
        (p,) = est.estimate(frame, [(1, box)]).people
        root = published.published_root_depth(rootnet, frame.image, box, "0-1")
        assert p.root_depth_mm == pytest.approx(root, rel=1e-4)
        uvz, cam = published.published_pose(
            posenet, frame.image, box, a.depth_dim, a.output_size, root, "0-255"
        )
        assert np.abs(p.keypoints_2d - uvz[:, :2]).max() < PX
        assert np.abs(p.keypoints_3d_mm - cam).max() < MM


@pytest.mark.parametrize("form", ["published", "uint8-bgr"])
def test_an_exported_onnx_file_equals_the_published_pipeline(tmp_path, form) -> None:
    """`posescope export` of a 0..1 network: its metadata says so, and the file fed as the
    metadata says gives the published pipeline's heatmap coordinates."""
    import onnxruntime as ort

    from posescope.core.families.network import PoseNetwork
    from posescope.core.model import build_model, load_weights
    from posescope.core.network_export import export_onnx

    model = calibration.following_model("XS", convention="0-1")
    ck = open_checkpoint(save(calibration.state_of(model), tmp_path / "xs.pth"))
    ident = identify_checkpoint(ck)
    assert ident.arch is not None
    net = build_model(ident.arch)
    load_weights(net, ck.state_dict)
    assert isinstance(net, PoseNetwork)
    out = export_onnx(net, ident, tmp_path / "xs.onnx", form).path
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["input_scale"] == "0-1" and meta["pixel_scale"] == "1/255"
    frame = frame_of(*HELD_OUT[0][:2])
    bbox = published.process_bbox(np.array(HELD_OUT[0][2], float), frame.width, frame.height)
    patch, _ = published.generate_patch_image(frame.image, bbox)
    want = model(published.network_input(patch, "0-1")[None]).detach().numpy()
    if form == "published":  # fed as its metadata says: (pixel * 1/255 - mean) / std, RGB
        mean, std = np.array(json.loads(meta["mean"])), np.array(json.loads(meta["std"]))
        x = ((patch / 255.0 - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
    else:
        x = np.ascontiguousarray(patch[:, :, ::-1].astype(np.uint8))[None]
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    scale = 256 / ident.arch.output_size[1] * bbox[2] / 256  # heatmap units -> frame px
    assert np.abs(got - want)[..., :2].max() * scale < PX


def test_the_muco_joint_set_is_the_demos(tmp_path) -> None:
    """The 21-joint MuCo set as the published demo writes it (C demo/demo.py L46-49), and a
    21-joint network's flip test (its pairs) equal to the published one."""
    from posescope.core.variants import JOINT_SETS

    joints_name = (
        "Head_top",
        "Thorax",
        "R_Shoulder",
        "R_Elbow",
        "R_Wrist",
        "L_Shoulder",
        "L_Elbow",
        "L_Wrist",
        "R_Hip",
        "R_Knee",
        "R_Ankle",
        "L_Hip",
        "L_Knee",
        "L_Ankle",
        "Pelvis",
        "Spine",
        "Head",
        "R_Hand",
        "L_Hand",
        "R_Toe",
        "L_Toe",
    )
    flip_pairs = ((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (17, 18), (19, 20))
    skeleton = ((0, 16), (16, 1), (1, 15), (15, 14), (14, 8), (14, 11), (8, 9), (9, 10),
                (10, 19), (11, 12), (12, 13), (13, 20), (1, 2), (2, 3), (3, 4), (4, 17), (1, 5),
                (5, 6), (6, 7), (7, 18))  # fmt: skip
    muco = JOINT_SETS[21]
    assert tuple(muco.joints) == joints_name and muco.root == joints_name.index("Pelvis")
    assert tuple(map(tuple, muco.flip_pairs)) == flip_pairs
    assert tuple(map(tuple, muco.bones)) == skeleton
    model = calibration.following_model("XS:21")
    path = save(calibration.state_of(model), tmp_path / "xs21.pth")
    est = Estimator.from_path(path, EstimatorConfig(device="cpu", root_depth_mm=4000.0, flip=True))
    assert est.joint_set.name == muco.name
    px, mm = worst_against_published(est, model, "0-255", flip=True)
    assert px < PX and mm < MM


# ------------------------------------------------------------------ as a user gets them


def held_out_image(tmp_path: Path) -> tuple[Path, Frame, tuple[float, float, float, float]]:
    """The first held-out frame as a PNG (lossless), and its person box."""
    import cv2

    video, index, box = HELD_OUT[0]
    frame = frame_of(video, index)
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), frame.image)
    return path, frame, box


@pytest.mark.parametrize("convention", ["0-255", "0-1"])
def test_run_writes_the_published_poses_with_no_option(tmp_path, convention) -> None:
    """`posescope run` on a file trained either way, no option given: its JSON (rounded to
    0.01 px and 0.1 mm) is the published pipeline's pose, and says which input it fed."""
    from posescope import main

    model = calibration.following_model("XS", convention=convention)
    ckpt = save(calibration.state_of(model), tmp_path / "xs.pth")
    image, frame, box = held_out_image(tmp_path)
    out = tmp_path / "poses.json"
    args = ["run", str(ckpt), str(image), "--bbox", ",".join(map(str, box)), "--root-depth",
            "4000", "--device", "cpu", "--out", str(out), "-q"]  # fmt: skip
    assert main.main(args) == 0
    doc = json.loads(out.read_text())
    assert doc["checkpoint"]["input"]["scale"] == convention
    assert doc["checkpoint"]["input"]["how"] == "read"
    (person,) = doc["frames"][0]["people"]
    uvz, cam = published.published_pose(model, frame.image, box, 32, (32, 32), 4000.0, convention)
    assert np.abs(np.array(person["keypoints_2d"]) - uvz[:, :2]).max() < PX
    assert np.abs(np.array(person["keypoints_3d_mm"]) - cam).max() < MM
    # the user's choice is used, and recorded as chosen
    other = "0-1" if convention == "0-255" else "0-255"
    assert main.main([*args, "--input-scale", other]) == 0
    doc = json.loads(out.read_text())
    assert doc["checkpoint"]["input"]["scale"] == other
    assert doc["checkpoint"]["input"]["how"] == "chosen"
    (person,) = doc["frames"][0]["people"]
    assert np.abs(np.array(person["keypoints_2d"]) - uvz[:, :2]).max() > 50


@pytest.mark.gui
@pytest.mark.parametrize("convention", ["0-255", "0-1"])
def test_the_app_shows_the_published_poses_with_no_option(
    qtbot, window, tmp_path, convention
) -> None:
    """The app on a still image with a drawn person box: the pose on screen is the published
    pipeline's (root depth from the box prior, as the demo's k)."""
    import math

    from tests.gui_helpers import wait_model, wait_shown

    model = calibration.following_model("XS", convention=convention)
    ckpt = save(calibration.state_of(model), tmp_path / "xs.pth")
    image, frame, box = held_out_image(tmp_path)
    window.session.set_runner_settings(smoothing=False)
    window.use_person_box(box)
    wait_model(qtbot, window, [ckpt, image])
    wait_shown(qtbot, window, 0)
    (person,) = window.session.shown.poses.people
    pb = published.process_bbox(np.array(box, float), frame.width, frame.height)
    root = math.sqrt(2000 * 2000 * 1500 * 1500 / (pb[2] * pb[3]))
    uvz, cam = published.published_pose(model, frame.image, box, 32, (32, 32), root, convention)
    assert np.abs(person.keypoints_2d - uvz[:, :2]).max() < PX
    assert np.abs(person.keypoints_3d_mm - cam).max() < MM
    assert window.session.model.estimator.input.scale == convention
