"""posescope export: ONNX and torch.export files agree with the independent reference network,
carry their metadata, take a dynamic batch, and are refused (removed) when the check fails."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from posescope import main
from posescope.core import network_export as ne
from posescope.core.identify import identify
from posescope.core.model import build_model, load_weights
from tests import calibration, factory
from tests.test_model import crops, published_input, real_crops


def rebuilt(sd):
    ident = identify({k: tuple(v.shape) for k, v in sd.items()})
    net = build_model(ident.arch)
    load_weights(net, sd)
    return ident, net


def feed(form: str, c: np.ndarray) -> np.ndarray:
    """The file's input for crops `c`, made here (the test's own normalisation)."""
    return c if form == "uint8-bgr" else published_input(c).numpy()


def onnx_coords(path: Path, x: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in s.get_outputs()] == ["coords"]
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def check_against_reference(ref, run_file, path: Path, form: str) -> None:
    """The file against the reference network (which follows the picture) on real crops."""
    for batch in (1, 3):
        c = real_crops(batch)
        with torch.no_grad():
            want = ref(published_input(c)).numpy()
        got = run_file(path, feed(form, c))
        assert got.shape == want.shape == (batch, want.shape[1], 3)
        if batch > 1:
            assert want[..., 0].std() > 2.0  # the joints follow the picture
        assert np.abs(got - want).max() <= ne.TOLERANCE, (form, batch)


@pytest.mark.parametrize("name", ["XS", "S", "M", "L"])
def test_onnx_of_every_variant_matches_the_reference(name: str, tmp_path: Path) -> None:
    ref = calibration.following_model(name)
    ident, net = rebuilt(calibration.following_state_dict(name))
    for form in ne.INPUT_FORMS:
        out = tmp_path / f"{name}-{form}.onnx"
        result = ne.export_onnx(net, ident, out, form)
        assert result.passed and result.max_abs_diff <= ne.TOLERANCE
        check_against_reference(ref, onnx_coords, out, form)
        meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        assert meta["variant"] == name
        assert json.loads(meta["joint_names"])[0] == "Pelvis"
        assert len(json.loads(meta["joint_names"])) == 18
        assert [0, 7] in json.loads(meta["skeleton"])
        assert int(meta["depth_bins"]) == ident.arch.depth_dim
        assert json.loads(meta["input_size"]) == [256, 256]
        assert json.loads(meta["mean"]) == pytest.approx([0.485, 0.456, 0.406])
        assert json.loads(meta["std"]) == pytest.approx([0.229, 0.224, 0.225])
        assert meta["input"] == form
        shape = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
        assert not shape[0].HasField("dim_value")  # the batch is dynamic
        assert [d.dim_value for d in shape[1:]] == (
            [256, 256, 3] if form == "uint8-bgr" else [3, 256, 256]
        )


def test_torch_export_matches_the_reference(tmp_path: Path) -> None:
    ref = calibration.following_model("XS", "legacy")
    ident, net = rebuilt(calibration.following_state_dict("XS", "legacy"))
    for form in ne.INPUT_FORMS:
        out = tmp_path / f"xs-{form}.pt2"
        result = ne.export_torch(net, ident, out, form)
        assert result.kind == "torch-export" and result.passed
        check_against_reference(ref, ne.run_torch_export_file, out, form)
        program = torch.export.load(str(out))
        assert isinstance(program, torch.export.ExportedProgram)  # not TorchScript


def test_posenet_exports_match_the_reference(tmp_path: Path) -> None:
    ref = calibration.following_posenet(50)
    ident, net = rebuilt(calibration.state_of(ref))
    for form in ne.INPUT_FORMS:
        out = tmp_path / f"posenet-{form}.onnx"
        ne.export_onnx(net, ident, out, form)
        check_against_reference(ref, onnx_coords, out, form)
    out = tmp_path / "posenet.pt2"
    ne.export_torch(net, ident, out, "uint8-bgr")
    check_against_reference(ref, ne.run_torch_export_file, out, "uint8-bgr")


def test_fp16_export_is_held_to_its_own_tolerance(tmp_path: Path) -> None:
    ref = calibration.following_model("XS")
    ident, net = rebuilt(calibration.following_state_dict("XS"))
    out = tmp_path / "xs16.onnx"
    result = ne.export_onnx(net, ident, out, "uint8-bgr", fp16=True)
    assert result.tolerance == ne.TOLERANCE_FP16 and 0 < result.max_abs_diff <= ne.TOLERANCE_FP16
    model = onnx.load(str(out))
    half = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert half  # the weights are half precision
    c = real_crops(2)
    with torch.no_grad():
        want = ref(published_input(c)).numpy()
    got = onnx_coords(out, c)
    assert got.dtype == np.float32 and np.abs(got - want).max() <= ne.TOLERANCE_FP16
    assert np.median(np.abs(got - want)) <= 0.02  # most joints barely move


@pytest.fixture(scope="module")
def xs_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("export")
    sd = factory.add_prefix(factory.state_dict_for("XS", seed=7), "module.")
    return factory.save_torch_zip(factory.wrap(sd, "network"), d / "ConvNeXtPose_XS.tar")


def test_cli_export_writes_both_files(xs_file: Path, tmp_path: Path, capsys) -> None:
    onnx_out, pt2_out = tmp_path / "xs.onnx", tmp_path / "xs.pt2"
    code = main.main(
        ["export", str(xs_file), "--onnx", str(onnx_out), "--torch-export", str(pt2_out),
         "--input", "uint8-bgr", "--opset", "18"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert onnx_out.is_file() and pt2_out.is_file()
    assert out.count("largest difference to the engine") == 2
    assert "input uint8-bgr" in out
    assert onnx.load(str(onnx_out)).opset_import[0].version == 18
    # the file runs as documented: uint8 BGR crops in, heatmap coordinates out
    c = crops(3)
    assert onnx_coords(onnx_out, c).shape == (3, 18, 3)


def test_cli_export_refuses_and_removes_a_file_that_fails_the_check(
    xs_file: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Simulate a runtime that computes something else: the file must not be kept."""
    real = ne.run_onnx_file

    def off_by_a_bit(path, x):
        return real(path, x) + 2 * ne.TOLERANCE

    monkeypatch.setattr(ne, "run_onnx_file", off_by_a_bit)
    out = tmp_path / "bad.onnx"
    assert main.main(["export", str(xs_file), "--onnx", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {out}: largest difference")
    assert f"exceeds {ne.TOLERANCE:g}" in err[0] and "removed" in err[0]
    assert not out.exists()


def test_cli_export_errors(xs_file: Path, tmp_path: Path, capsys) -> None:
    assert main.main(["export", str(xs_file)]) == 1
    assert capsys.readouterr().err.startswith("error: export: give --onnx")
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    assert main.main(["export", str(text), "--onnx", str(tmp_path / "x.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {text}: ")
    rootnet = factory.save_torch_zip(factory.make_rootnet_sd(50), tmp_path / "root.pth")
    assert main.main(["export", str(rootnet), "--onnx", str(tmp_path / "r.onnx")]) == 1
    assert "not a pose network" in capsys.readouterr().err
    assert not (tmp_path / "r.onnx").exists()
