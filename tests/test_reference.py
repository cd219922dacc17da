"""tests/reference.py: the published networks, rewritten for the tests, behave as published."""

from __future__ import annotations

import pytest
import torch

from tests import factory, reference
from tests.factory import assert_same


@pytest.mark.parametrize("name", ["XS", "S", "M", "L"])
def test_reference_variant_forward(name: str) -> None:
    model = factory.randomized(reference.make_variant, name)
    depth_dim = factory.VARIANTS[name].depth_dim
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        hm = model.head(model.backbone(x))
        out = model(x)
    assert hm.shape == (2, 18 * depth_dim, 8, 8)  # 64 / 32 * 4: two x2 upsamplings
    assert out.shape == (2, 18, 3) and torch.isfinite(out).all()
    assert (out[..., :2] >= 0).all() and (out[..., :2] <= 7).all()
    assert (out[..., 2] >= 0).all() and (out[..., 2] <= depth_dim - 1).all()
    assert out.std() > 0.1  # not a flat soft-argmax


def test_reference_list_head_upsamples_every_layer() -> None:
    model = factory.randomized(reference.make_variant, "XS", "list")
    with torch.no_grad():
        hm = model.head(model.backbone(torch.randn(1, 3, 64, 64)))
    assert hm.shape == (1, 18 * 32, 16, 16)


def test_reference_soft_argmax_finds_a_peak() -> None:
    hm = torch.full((1, 2 * 4, 5, 6), -1e4)
    hm[0, 0 * 4 + 3, 2, 5] = 0.0  # joint 0 at z=3, y=2, x=5
    hm[0, 1 * 4 + 1, 4, 0] = 0.0  # joint 1 at z=1, y=4, x=0
    out = reference.soft_argmax(hm, joint_num=2, depth_dim=4)
    assert torch.allclose(out, torch.tensor([[[5.0, 2.0, 3.0], [0.0, 4.0, 1.0]]]))


@pytest.mark.parametrize("joint_num", [18, 21])
def test_reference_posenet_forward(joint_num: int) -> None:
    model = factory.randomized(reference.make_posenet, 50, joint_num)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, joint_num, 3) and torch.isfinite(out).all()
    assert (out[..., :2] >= 0).all() and (out[..., :2] <= 15).all()  # 64x64 -> 16x16 heatmaps


def test_reference_rootnet_forward() -> None:
    model = factory.randomized(reference.make_rootnet, 50)
    x = torch.randn(2, 3, 64, 64)
    k = torch.tensor([1000.0, 3000.0])
    with torch.no_grad():
        out = model(x, k)
        out2 = model(x, 2 * k)
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    assert ((out[:, :2] >= 0) & (out[:, :2] <= 15)).all()
    assert torch.allclose(out2[:, 2], 2 * out[:, 2])  # depth = gamma * k
    assert torch.equal(out2[:, :2], out[:, :2])


def test_randomize_is_seeded_and_sane() -> None:
    a = factory.state_dict_for("tiny", seed=3)
    b = factory.state_dict_for("tiny", seed=3)
    c = factory.state_dict_for("tiny", seed=4)
    assert_same(a, b)
    assert not torch.equal(a["head.final_layer.weight"], c["head.final_layer.weight"])
    for k, v in a.items():
        if k == "backbone.downsample_layers.0.1.running_var":  # the stem's: 0..255 inputs
            assert v.min() >= 0.5 * 255**2 and v.max() <= 1.5 * 255**2
        elif k.endswith("running_var"):
            assert v.min() >= 0.5 and v.max() <= 1.5
        if k.endswith("num_batches_tracked"):
            assert v.dtype == torch.int64 and v.item() > 0


def test_spellings_are_the_published_names() -> None:
    modern = factory.state_dict_for("XS", "modern")
    legacy = factory.state_dict_for("XS", "legacy")
    listed = factory.state_dict_for("XS", "list")
    assert {k for k in modern if k.startswith("head.deconv_layers_1.")} == {
        f"head.deconv_layers_1.{m}.{p}"
        for m, ps in (
            ("dwconv", ("weight", "bias")),
            ("pwconv", ("weight", "bias")),
            ("norm", ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")),
        )
        for p in ps
    }
    rename = {".dwconv.": ".0.", ".norm.": ".1.", ".pwconv.": ".2."}

    def to_legacy(k: str) -> str:
        for a, b in rename.items():
            if k.startswith("head.deconv_layers_"):
                k = k.replace(a, b)
        return k

    assert {to_legacy(k): tuple(v.shape) for k, v in modern.items()} == {
        k: tuple(v.shape) for k, v in legacy.items()
    }
    assert {
        k.replace("deconv_layers_1", "deconv_layers.0")
        .replace("deconv_layers_2", "deconv_layers.1")
        .replace("deconv_layers_3", "deconv_layers.2"): tuple(v.shape)
        for k, v in modern.items()
    } == {k: tuple(v.shape) for k, v in listed.items()}
    for name in ("XS", "S", "M", "L"):
        sd = factory.state_dict_for(name)
        params = sum(
            v.numel()
            for k, v in sd.items()
            if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
        )
        assert params / 1e6 == pytest.approx(factory.VARIANTS[name].params_m, abs=0.006)
