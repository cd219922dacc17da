"""The onnxruntime inference form: the same poses as the torch engine, through the model, the
pipeline, `run` and `bench`; the default on the CPU (measured faster), its export cached on
disk, the torch engine when it cannot be built."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from posescope import main
from posescope.core import onnx_cache, onnx_form
from posescope.core.inference.model import InferenceModel
from posescope.core.person import PersonTracker
from posescope.core.pipeline import PoseRunner
from tests import calibration, factory
from tests.test_model import crops, real_crops, rebuilt
from tests.test_pipeline import BOX, POSE2SIM, estimator_for, read_frame


@pytest.mark.parametrize("name,spelling", [("XS", "modern"), ("L", "legacy")])
def test_onnxruntime_form_matches_the_torch_engine(name: str, spelling: str) -> None:
    """On networks that follow the picture, fed real crops."""
    _, net = rebuilt(calibration.following_state_dict(name, spelling))
    torch_form = InferenceModel(net, "cpu", backend="torch")
    ort_form = InferenceModel(net, "cpu", backend="onnxruntime")
    assert torch_form.form == "onednn" and ort_form.form == "onnxruntime"
    assert ort_form.backend == "onnxruntime" and ort_form._ort.provider == "CPUExecutionProvider"
    for n in (1, 3):
        c = real_crops(n)
        want_c, want_p = torch_form.coords_and_peaks(c)
        got_c, got_p = ort_form.coords_and_peaks(c)
        assert got_c.shape == (n, 18, 3) and got_p.shape == (n, 18)
        assert got_c.dtype == torch.float32
        if n > 1:
            assert want_c[..., 0].std() > 2.0  # the joints follow the picture
        assert (got_c - want_c).abs().max() <= 5e-3
        assert (got_p - want_p).abs().max() <= 1e-3
    # a torch tensor of crops works as well as a numpy array
    assert (ort_form(torch.from_numpy(c)) - got_c).abs().max() == 0


def test_auto_takes_onnxruntime_on_the_cpu_and_torch_for_compile_and_gpus() -> None:
    _, net = rebuilt(factory.state_dict_for("XS", seed=1))
    cpu = torch.device("cpu")
    assert onnx_form.default_backend(cpu) == "onnxruntime"
    assert onnx_form.choose_backend(torch.device("cuda"), "auto") == "torch"
    assert onnx_form.choose_backend(cpu, "auto", compile=True) == "torch"
    assert onnx_form.choose_backend(cpu, "torch") == "torch"
    model = InferenceModel(net, "cpu")
    assert model.backend == "onnxruntime" and model.form == "onnxruntime"
    assert model.backend_note is None
    with pytest.raises(ValueError, match="backend must be"):
        InferenceModel(net, "cpu", backend="tensorrt")


def test_auto_without_onnxruntime_or_with_a_failing_export_runs_the_torch_engine(
    monkeypatch, caplog
) -> None:
    _, net = rebuilt(factory.state_dict_for("XS", seed=1))
    monkeypatch.setattr(onnx_form, "available", lambda: False)
    assert InferenceModel(net, "cpu").form == "onednn"
    monkeypatch.undo()

    from posescope.core import network_export

    def broken(*args, **kwargs):
        raise network_export.ExportError("ONNX export failed (simulated)")

    monkeypatch.setenv(onnx_cache.ENV, "off")  # not the export an earlier test cached
    monkeypatch.setattr(network_export, "to_onnx", broken)
    model = InferenceModel(net, "cpu")
    assert model.backend == "torch" and model.form == "onednn"
    assert "simulated" in model.backend_note and "torch engine runs" in model.backend_note
    assert "simulated" in caplog.text
    with pytest.raises(network_export.ExportError, match="simulated"):
        InferenceModel(net, "cpu", backend="onnxruntime")  # asked for by name: refused


def _count_exports(monkeypatch) -> list[int]:
    from posescope.core import network_export

    calls: list[int] = []
    real = network_export.to_onnx

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(network_export, "to_onnx", counting)
    return calls


def test_the_export_is_cached_per_weights_and_a_damaged_file_is_replaced(
    monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv(onnx_cache.ENV, str(tmp_path / "cache"))
    calls = _count_exports(monkeypatch)
    _, net = rebuilt(factory.state_dict_for("XS", seed=21))
    first = InferenceModel(net, "cpu", backend="onnxruntime")
    assert len(calls) == 1 and not first._ort.from_cache
    files = list((tmp_path / "cache").glob("*.onnx"))
    assert len(files) == 1
    second = InferenceModel(net, "cpu", backend="onnxruntime")
    assert len(calls) == 1 and second._ort.from_cache
    c = crops(2, seed=5)
    assert (first(c) - second(c)).abs().max() == 0
    # other weights (one value changed), or fp16 vs fp32 options: another key
    with torch.no_grad():
        net.head.final_layer.bias[0] += 1.0
    InferenceModel(net, "cpu", backend="onnxruntime")
    assert len(calls) == 2 and len(list((tmp_path / "cache").glob("*.onnx"))) == 2
    # a damaged file is dropped and exported again; the build still succeeds
    for f in (tmp_path / "cache").glob("*.onnx"):
        f.write_bytes(b"not an onnx model")
    again = InferenceModel(net, "cpu", backend="onnxruntime")
    assert len(calls) == 3 and not again._ort.from_cache
    assert (again(c) - InferenceModel(net, "cpu", backend="torch")(c)).abs().max() <= 1e-3


def test_the_cache_is_bounded_and_never_fails_a_build(monkeypatch, tmp_path) -> None:
    folder = tmp_path / "cache"
    monkeypatch.setenv(onnx_cache.ENV, str(folder))
    monkeypatch.setattr(onnx_cache, "MAX_FILES", 3)
    for i in range(5):
        assert onnx_cache.store(f"k{i}", bytes(10 + i)) is not None
    assert sorted(p.stem for p in folder.glob("*.onnx")) == ["k2", "k3", "k4"]
    assert onnx_cache.load("k3") == bytes(13) and onnx_cache.load("k0") is None
    monkeypatch.setattr(onnx_cache, "MAX_BYTES", 30)  # k3 (13) + k5 (15) fit, k4 goes
    onnx_cache.store("k5", bytes(15))
    assert sorted(p.stem for p in folder.glob("*.onnx")) == ["k3", "k5"]
    assert not list(folder.glob(".tmp-*"))  # no temporary file left
    # a folder that cannot be created: nothing stored, the session is still built
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv(onnx_cache.ENV, str(blocker / "cache"))
    assert onnx_cache.store("k", b"data") is None
    session, cached = onnx_cache.cached_session("k", lambda: b"model", lambda data: data)
    assert session == b"model" and not cached
    monkeypatch.setenv(onnx_cache.ENV, "off")
    assert onnx_cache.cache_dir() is None and onnx_cache.load("k3") is None


def test_pipeline_with_onnxruntime_gives_the_torch_poses(tmp_path) -> None:
    torch_est = estimator_for(tmp_path, "XS", seed=9)
    ort_est = estimator_for(tmp_path, "XS", seed=9, backend="onnxruntime")
    frame = read_frame(0)
    a = torch_est.estimate(frame, [(1, BOX)]).people[0]
    b = ort_est.estimate(frame, [(1, BOX)]).people[0]
    assert np.abs(a.keypoints_2d - b.keypoints_2d).max() < 0.05  # px (1e-3 heatmap units x 8+)
    assert np.abs(a.keypoints_3d_mm - b.keypoints_3d_mm).max() < 0.5
    assert a.score == pytest.approx(b.score, abs=1e-5)
    # onnxruntime runs its own thread pool per call: one frame in flight
    runner = PoseRunner(ort_est, PersonTracker.fixed(BOX))
    assert runner.default_in_flight() == 1
    flipped = estimator_for(tmp_path, "XS", seed=9, backend="onnxruntime", flip=True)
    patches = flipped.crop(frame, [(1, BOX)]).patches
    assert flipped.infer(patches).shape == (1, 18, 3)


@pytest.fixture(scope="module")
def xs(tmp_path_factory):
    d = tmp_path_factory.mktemp("ortcli")
    return factory.save_torch_zip(factory.state_dict_for("XS", seed=2), d / "xs.pth")


def test_cli_run_with_both_backends(xs, tmp_path) -> None:
    box = ",".join(str(v) for v in BOX)
    docs = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / f"{backend}.json"
        args = ["run", xs, POSE2SIM, "--bbox", box, "--frames", "0:3", "--backend", backend]
        assert main.main([str(a) for a in [*args, "--out", out]]) == 0
        docs[backend] = json.loads(out.read_text())
    a, b = (np.array([f["people"][0]["keypoints_2d"] for f in d["frames"]]) for d in docs.values())
    assert a.shape == (3, 18, 2) and np.abs(a - b).max() < 0.05


def test_cli_bench_compares_both_forms(xs, tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", xs, "--device", "cpu", "--iters", "2", "--batches", "1", "--json", out]
    assert main.main([str(a) for a in [*args, "--backend", "torch"]]) == 0
    text = capsys.readouterr().out
    assert "engine form onednn" in text and "other form onnxruntime" in text
    row = json.loads(out.read_text())["model_only"]["batches"]["1"]
    assert row["onnxruntime"]["median_ms"] > 0 and row["onnxruntime_ratio"] > 0
    assert row["onnxruntime_max_abs_diff"] < 1e-3 and row["max_abs_diff"] < 1e-3
    assert main.main([str(a) for a in args]) == 0  # the default on a CPU: onnxruntime
    text = capsys.readouterr().out
    assert "engine form onnxruntime" in text and "other form onednn" in text


def test_cuda_provider_is_asked_for_on_a_cuda_device_where_onnxruntime_has_it(
    monkeypatch,
) -> None:
    """No GPU here: onnxruntime is made to list the CUDA provider, and the session it is asked
    for is recorded (then built on the CPU provider, the one this onnxruntime has)."""
    import onnxruntime as ort

    asked: list = []
    real = ort.InferenceSession

    def session(model, options, providers):
        asked.append(providers)
        return real(model, options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(ort, "InferenceSession", session)
    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    _, net = rebuilt(factory.state_dict_for("XS", seed=1))
    onnx_form.OnnxRuntimeForm(net, torch.device("cuda", 1))
    assert asked[-1] == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    onnx_form.OnnxRuntimeForm(net, torch.device("cpu"))
    assert asked[-1] == ["CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    form = onnx_form.OnnxRuntimeForm(net, torch.device("cuda", 0))
    assert asked[-1] == ["CPUExecutionProvider"] and form.name == "onnxruntime"
