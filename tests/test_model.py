"""core.model: the rebuilt network computes what the published network computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posescope.core.identify import identify
from posescope.core.inference.model import InferenceModel, bgr_to_input
from posescope.core.model import ModelLoadError, build_model, load_weights
from tests import calibration, factory, published, reference


def crops(n: int = 2, size: int = 256, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def real_crops(n: int = 4) -> np.ndarray:
    """uint8 BGR crops of people from the test videos (as the engine takes them)."""
    return np.stack([p[:, :, ::-1].astype(np.uint8) for p in calibration.patches()[: 2 * n : 2]])


def published_input(c: np.ndarray, convention: str = "0-255") -> torch.Tensor:
    """The published input of uint8 BGR crops (tests/published.py: float32 RGB, ToTensor,
    Normalize), written independently of core."""
    return torch.stack(
        [published.network_input(x[:, :, ::-1].astype(np.float32), convention) for x in c]
    )


def rebuilt(sd):
    ident = identify({k: tuple(v.shape) for k, v in sd.items()})
    net = build_model(ident.arch)
    load_weights(net, sd)
    return ident, net


@pytest.mark.parametrize(
    "name,spelling",
    [("XS", "modern"), ("XS", "legacy"), ("XS", "list"), ("S", "modern"), ("M", "list"),
     ("L", "legacy")],
)  # fmt: skip
def test_parity_with_reference(name: str, spelling: str) -> None:
    """The rebuilt network and its fast form against the reference, on networks that follow
    the picture (calibrated on real crops), fed real crops."""
    ref = calibration.following_model(name, spelling)
    ident, net = rebuilt(calibration.following_state_dict(name, spelling))
    c = real_crops()
    with torch.no_grad():
        want = ref(published_input(c))
        plain = net(published_input(c))
    model = InferenceModel(net, "cpu", backend="torch")
    assert model.form == "onednn"  # the fused oneDNN program, not a fallback
    fast = model(c)
    assert want.shape == (4, 18, 3)
    assert want[..., 0].std() > 2.0  # the joints follow the picture
    assert (plain - want).abs().max() <= 1e-3  # the rebuilt network: the same computation
    assert (fast - want).abs().max() <= 5e-3  # folded BN/normalisation: float reassociation
    h, w = ident.arch.output_size
    assert float(want[..., 0].max()) <= w - 1 and float(want[..., 1].max()) <= h - 1


def test_posenet_parity() -> None:
    ref = calibration.following_posenet(50)
    ident, net = rebuilt(calibration.state_of(ref))
    c = real_crops(2)
    with torch.no_grad():
        want = ref(published_input(c))
        plain = net(published_input(c))
    assert ident.arch.output_size == (64, 64)
    assert want[..., 0].std() > 2.0
    assert (plain - want).abs().max() <= 1e-3
    for backend in ("torch", "onnxruntime"):
        fast = InferenceModel(net, "cpu", backend=backend)(c)
        assert (fast - want).abs().max() <= 5e-3, backend


def test_rootnet_parity() -> None:
    ref = calibration.following_rootnet(50, convention="0-1")
    _, net = rebuilt(calibration.state_of(ref))
    x = published_input(real_crops(2), "0-1")
    k = torch.tensor([4000.0, 6000.0])
    with torch.no_grad():
        want = ref(x, k)
        got = net(x, k)
    assert got.shape == (2, 3)
    assert (got - want).abs().max() <= 1e-3 * float(want[:, 2].abs().max() + 1)


@pytest.mark.parametrize("convention,pixel_scale", [("0-255", 1.0), ("0-1", 1 / 255)])
def test_bgr_to_input_matches_the_published_input(convention, pixel_scale) -> None:
    c = real_crops(3)
    assert torch.allclose(bgr_to_input(c, pixel_scale), published_input(c, convention), atol=1e-4)


def test_missing_tensor_is_named() -> None:
    sd = factory.state_dict_for("XS")
    ident = identify({k: tuple(v.shape) for k, v in sd.items()})
    del sd["backbone.stages.2.3.pwconv1.weight"]
    with pytest.raises(ModelLoadError, match=r"backbone\.stages\.2\.3\.pwconv1\.weight"):
        load_weights(build_model(ident.arch), sd)


def test_shape_conflict_names_tensor_and_both_shapes() -> None:
    sd = factory.state_dict_for("XS")
    ident = identify({k: tuple(v.shape) for k, v in sd.items()})
    sd["backbone.downsample_layers.0.0.weight"] = torch.zeros(96, 3, 4, 4)
    with pytest.raises(ModelLoadError) as err:
        load_weights(build_model(ident.arch), sd)
    msg = str(err.value)
    assert "backbone.downsample_layers.0.0.weight" in msg
    assert "(96, 3, 4, 4)" in msg and "(40, 3, 4, 4)" in msg


def test_leftover_tensor_is_refused() -> None:
    sd = factory.state_dict_for("XS")
    ident = identify({k: tuple(v.shape) for k, v in sd.items()})
    sd["head.extra.weight"] = torch.zeros(3)
    with pytest.raises(ModelLoadError, match="unexpected"):
        load_weights(build_model(ident.arch), sd)


def test_old_files_without_num_batches_tracked_load() -> None:
    sd = {k: v for k, v in factory.state_dict_for("XS").items() if "num_batches_tracked" not in k}
    _, net = rebuilt(sd)
    assert net(torch.zeros(1, 3, 256, 256)).shape == (1, 18, 3)


def test_upsample_override_changes_the_network() -> None:
    sd = factory.state_dict_for("XS", "list", seed=4)
    ident = identify({k: tuple(v.shape) for k, v in sd.items()})
    arch = ident.arch.with_upsample((True, True, False))  # the modern convention on a list file
    net = build_model(arch)
    load_weights(net, sd)
    # same weights under the modern spelling's convention: equals the modern reference model
    ref = reference.make_variant("XS", "modern")
    ref.load_state_dict(factory.state_dict_for("XS", "modern", seed=4))
    ref.eval()
    x = published_input(real_crops(1))
    with torch.no_grad():
        assert (net(x) - ref(x)).abs().max() <= 1e-4
        assert float(net(x)[..., 0].max()) < 32


def test_input_size_override() -> None:
    sd = factory.state_dict_for("XS")
    ident = identify({k: tuple(v.shape) for k, v in sd.items()})
    net = build_model(ident.arch.with_input_size((320, 192)))
    load_weights(net, sd)
    fast = InferenceModel(net, "cpu", backend="torch")
    out = fast(crops(1, 320)[:, :, :192])
    assert out.shape == (1, 18, 3)
    assert fast.heatmaps(crops(1, 320)[:, :, :192]).shape[-2:] == (40, 24)


def test_unavailable_device_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    net = build_model(
        identify({k: tuple(v.shape) for k, v in factory.state_dict_for("XS").items()}).arch
    )
    with pytest.raises(RuntimeError, match="CUDA"):
        InferenceModel(net, "cuda")


def test_compiled_form_matches_the_reference() -> None:
    """torch.compile (inductor, freezing): the opt-in fastest CPU form; same numbers."""
    ref = calibration.following_model("XS")
    _, net = rebuilt(calibration.following_state_dict("XS"))
    model = InferenceModel(net, "cpu", compile=True)
    assert model.compiled, model.compile_error
    c = real_crops(2)
    with torch.no_grad():
        want = ref(published_input(c))
    assert (model(c) - want).abs().max() <= 5e-3
    assert (model(c[:1]) - want[:1]).abs().max() <= 5e-3  # another batch size recompiles


def test_compile_failure_falls_back_to_the_default_form(monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", broken)
    _, net = rebuilt(factory.state_dict_for("XS"))
    model = InferenceModel(net, "cpu", compile=True)
    assert not model.compiled and model.optimized
    assert "no C++ compiler" in model.compile_error
    assert model(crops(1)).shape == (1, 18, 3)


def test_onednn_form_with_three_upsamplings_and_any_batch() -> None:
    """64x64 heatmaps (the ones channel goes through the last upsampling too), batch 1 and 3."""
    sd = calibration.following_state_dict("M", "list")  # every head layer upsamples
    ident, net = rebuilt(sd)
    assert ident.arch.upsample == (True, True, True)
    model = InferenceModel(net, "cpu", backend="torch")
    assert model.form == "onednn"
    for n in (1, 3):
        c = real_crops(n)
        with torch.no_grad():
            want = net(published_input(c))
        got = model(c)
        assert float(want[..., 0].max()) > 31  # really on the 64x64 grid
        assert (got - want).abs().max() <= 5e-3
        assert model.heatmaps(c).shape == (n, 18 * 64, 64, 64)


def test_network_without_head_layers_runs_in_the_traced_form() -> None:
    """A custom network whose heatmap conv sits on the backbone: no head to carry the bias."""
    import dataclasses

    sd = factory.state_dict_for("XS")
    arch = dataclasses.replace(identify({k: tuple(v.shape) for k, v in sd.items()}).arch)
    arch = dataclasses.replace(arch, head_layers=())
    net = factory.randomized(build_model, arch, seed=2)
    model = InferenceModel(net, "cpu", backend="torch")
    assert model.form == "torchscript"
    c = real_crops(1)
    with torch.no_grad():
        want = net(published_input(c))
    assert (model(c) - want).abs().max() <= 1e-3


def test_onednn_unavailable_or_wrong_falls_back_to_the_traced_form(monkeypatch) -> None:
    import posescope.core.inference.onednn as core_model

    _, net = rebuilt(calibration.following_state_dict("XS"))
    c = real_crops(2)
    with torch.no_grad():
        want = net(published_input(c))
    monkeypatch.setattr(core_model, "_ONEDNN_AVAILABLE", False)
    model = InferenceModel(net, "cpu", backend="torch")
    assert model.form == "torchscript"
    assert (model(c) - want).abs().max() <= 5e-3

    # the build-time check catches a oneDNN form that computes something else
    monkeypatch.setattr(core_model, "_ONEDNN_AVAILABLE", True)
    real = core_model._OneDNNConvNeXtPose.forward
    monkeypatch.setattr(
        core_model._OneDNNConvNeXtPose, "forward", lambda self, x: real(self, x) * 1.01
    )
    model = InferenceModel(net, "cpu", backend="torch")
    assert model.form == "torchscript"
    assert (model(c) - want).abs().max() <= 5e-3


def test_keep_freed_memory_stops_page_faulting_activations_back_in() -> None:
    """Minor page faults per pass (plain network + engine), in clean subprocesses: thousands
    by default (glibc maps large activations fresh and trims freed ones), next to none when
    freed memory is kept (what InferenceModel sets up on CPU)."""
    import subprocess
    import sys
    from pathlib import Path

    code = """
import resource, sys, numpy as np
import posescope.core.inference.model as cm
from posescope.core.identify import identify
from posescope.core.model import build_model, load_weights
from tests import factory
if sys.argv[1] == "default":
    cm.keep_freed_memory = lambda: False
sd = factory.state_dict_for("XS")
net = build_model(identify({k: tuple(v.shape) for k, v in sd.items()}).arch)
load_weights(net, sd)
model = cm.InferenceModel(net, "cpu", backend="torch")
c = np.zeros((1, 256, 256, 3), np.uint8)
x = cm.bgr_to_input(c)
for _ in range(3):
    model(c), net(x)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    model(c), net(x)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""
    root = Path(__file__).resolve().parents[1]
    faults = {}
    for mode in ("default", "keep"):
        out = subprocess.run(
            [sys.executable, "-c", code, mode], capture_output=True, text=True, check=True, cwd=root
        )
        faults[mode] = float(out.stdout.split()[-1])
    assert faults["default"] > 500, faults
    assert faults["keep"] < 0.1 * faults["default"], faults


@pytest.mark.parametrize("kind", ["convnext", "posenet"])
def test_fast_forms_leave_the_given_network_as_it_was(kind: str) -> None:
    """The folded form is built from a copy: moving or casting it (what a GPU/fp16 engine
    does) must not move or cast the caller's network, e.g. an eager baseline beside it."""
    from posescope.core.inference.fold import fuse_with_input

    if kind == "convnext":
        _, net = rebuilt(factory.state_dict_for("XS", seed=2))
    else:
        ref = reference.randomize_(reference.make_posenet(50), seed=2).eval()
        _, net = rebuilt({k: v.clone() for k, v in ref.state_dict().items()})
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fuse_with_input(net, 1.0).half()
    InferenceModel(net, "cpu", backend="torch")
    after = net.state_dict()
    assert {k: v.dtype for k, v in after.items()} == {k: v.dtype for k, v in before.items()}
    assert all(torch.equal(after[k], v) for k, v in before.items())
    with torch.no_grad():
        assert net(published_input(crops(1))).shape == (1, 18, 3)


def test_half_precision_form_as_a_gpu_runs_it(monkeypatch) -> None:
    """fp16 applies on CUDA/MPS only; let it apply on this CPU to run that code path: the
    folded channels-last network in half, uint8 crops cast on the device, the soft-argmax
    in fp32. Also: fp16 on a CPU (the default) stays fp32 in the oneDNN form."""
    import posescope.core.inference.model as core_model

    _, net = rebuilt(calibration.following_state_dict("XS"))
    c = real_crops(2)
    with torch.no_grad():
        want = net(published_input(c))
    assert (
        InferenceModel(net, "cpu", fp16=True, backend="torch").form == "onednn"
    )  # ignored on a CPU

    monkeypatch.setattr(core_model, "_HALF_DEVICES", ("cuda", "mps", "cpu"))
    model = InferenceModel(net, "cpu", fp16=True, backend="torch")
    assert model.fp16 and model.form == "folded"  # what runs on a GPU: no CPU-only form
    assert {p.dtype for p in model.net.parameters()} == {torch.float16}
    coords, peaks = model.coords_and_peaks(c)
    assert coords.dtype == peaks.dtype == torch.float32
    err = (coords - want).abs()
    # half precision: close to fp32 (random weights, 32x32x32 grid), but not bit-equal
    assert float(err.max()) < 0.5 and float(err.mean()) < 0.1
    assert float(err.max()) > 0.0
