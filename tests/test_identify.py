"""core.identify: the architecture read from names and shapes alone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from posescope.core.families.registry import count_macs
from posescope.core.families.shapes import factorize_output
from posescope.core.identify import describe_non_pose, identify, identify_checkpoint
from posescope.core.variants import VARIANTS, Variant
from tests import factory, reference


def shapes(sd) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


def meta_shapes(model_fn, *args) -> dict[str, tuple[int, ...]]:
    """Shapes of a big reference model without allocating its weights."""
    with torch.device("meta"):
        model = model_fn(*args)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", ["XS", "S", "M", "L"])
@pytest.mark.parametrize("spelling", ["modern", "legacy", "list"])
def test_every_variant_every_spelling(name: str, spelling: str) -> None:
    v = VARIANTS[name]
    ident = identify(meta_shapes(reference.make_variant, name, spelling))
    a = ident.arch
    assert ident.family == "convnextpose"
    assert ident.variant == name
    assert a.backbone_type == "convnext-bn"
    assert a.depths == v.depths and a.dims == v.dims
    assert a.head_style == spelling
    assert [h.out_channels for h in a.head_layers] == list(v.head_channels)
    assert [h.kernel for h in a.head_layers] == [3, 3, 3]
    assert (a.joint_num, a.depth_dim) == (18, v.depth_dim)
    assert ident.joint_set.name == "Human3.6M"
    if spelling == "list":
        assert a.upsample == (True, True, True) and a.output_size == (64, 64)
        assert 0.5 < ident.confidence < 1.0  # a community spelling: named, but less sure
    else:
        assert a.upsample == (True, True, False) and a.output_size == (32, 32)
        assert ident.confidence == 1.0
    assert abs(ident.params / 1e6 - v.params_m) < 0.006  # the published table, 2 decimals
    assert any(f"matches published {name}" in e for e in ident.evidence)


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "model.", "module._orig_mod."])
def test_prefixes_are_stripped(prefix: str) -> None:
    s = meta_shapes(reference.make_variant, "XS")
    ident = identify({prefix + k: v for k, v in s.items()})
    assert ident.variant == "XS"
    assert ident.key_prefix == prefix


def test_mislabelled_file_name_is_reported(tmp_path) -> None:
    path = factory.save_torch_zip(
        factory.wrap(factory.state_dict_for("XS"), "network"), tmp_path / "snapshot_L.tar"
    )
    from posescope.core.checkpoint import open_checkpoint

    ident = identify_checkpoint(open_checkpoint(path))
    assert ident.variant == "XS"
    assert "named L, tensors say XS" in ident.warnings
    assert ident.format == "torch-zip" and ident.wrapper == "network"
    assert ident.file_size == path.stat().st_size


def test_name_in_folder_counts_and_agreement_is_evidence() -> None:
    s = meta_shapes(reference.make_variant, "M")
    ident = identify(s, filename="/downloads/ConvNeXtPose_M/snapshot_68.pth")
    assert not ident.warnings
    assert any("file name agrees" in e for e in ident.evidence)


def test_21_joints_muco() -> None:
    v = Variant("x", (2, 2, 6, 2), (40, 80, 160, 320), (128, 128, 128), 64, joint_num=21)
    ident = identify(meta_shapes(reference.make_from_variant, v))
    assert (ident.arch.joint_num, ident.arch.depth_dim) == (21, 64)
    assert ident.joint_set.name == "MuCo-3DHP" and ident.joint_set.root == 14
    # XS backbone and head, but 64 bins: no published variant has that
    assert ident.variant == "custom" and ident.closest == "XS"


def test_retrained_xs_with_21_joints_is_still_xs_but_less_sure() -> None:
    v = Variant("x", (2, 2, 6, 2), (40, 80, 160, 320), (128, 128, 128), 32, joint_num=21)
    ident = identify(meta_shapes(reference.make_from_variant, v))
    assert ident.variant == "XS"
    assert ident.confidence < 1.0
    assert any("21 joints" in e for e in ident.evidence)


def test_custom_depth_list_is_custom_and_says_why() -> None:
    # "S with 27 blocks in stage 3", seen in the wild
    v = Variant("x", (3, 3, 27, 3), (48, 96, 192, 384), (256, 256, 256), 32)
    ident = identify(meta_shapes(reference.make_from_variant, v))
    assert ident.arch.depths == (3, 3, 27, 3)
    assert ident.variant == "custom" and ident.closest == "S"
    assert any("3-3-27-3" in e for e in ident.evidence)


def test_wide_backbone_claim_is_custom() -> None:
    v = Variant("x", (3, 3, 9, 3), (128, 256, 512, 1024), (256, 256, 256), 64)
    ident = identify(meta_shapes(reference.make_from_variant, v))
    assert ident.variant == "custom"
    assert ident.arch.dims == (128, 256, 512, 1024)


def test_legacy_512_head_is_l() -> None:
    ident = identify(meta_shapes(reference.make_variant, "L", "legacy"))
    assert ident.variant == "L" and ident.arch.head_style == "legacy"
    assert any("not M" in e for e in ident.evidence)


def test_custom_head_kernel_is_read() -> None:
    v = Variant("x", (2, 2, 6, 2), (40, 80, 160, 320), (128, 128, 128), 32, head_kernel=5)
    ident = identify(meta_shapes(reference.make_from_variant, v))
    assert [h.kernel for h in ident.arch.head_layers] == [5, 5, 5]
    assert ident.variant == "custom"


@pytest.mark.parametrize("depth", [50, 101, 152])
def test_posenet(depth: int) -> None:
    ident = identify(meta_shapes(reference.make_posenet, depth))
    assert ident.family == "posenet" and ident.variant is None
    a = ident.arch
    assert a.resnet_depth == depth and a.backbone_type == "resnet"
    assert a.head_style == "deconv" and a.upsample == (True, True, True)
    assert [h.out_channels for h in a.head_layers] == [256, 256, 256]
    assert a.output_size == (64, 64) and (a.joint_num, a.depth_dim) == (18, 64)
    assert "PoseNet" in ident.title


def test_posenet_21_joints() -> None:
    ident = identify(meta_shapes(reference.make_posenet, 50, 21))
    assert ident.arch.joint_num == 21 and ident.arch.depth_dim == 64


@pytest.mark.parametrize("depth", [50, 152])
def test_rootnet(depth: int) -> None:
    ident = identify(meta_shapes(reference.make_rootnet, depth))
    assert ident.family == "rootnet" and ident.arch.resnet_depth == depth
    assert "RootNet" in ident.title


def test_classifier_is_not_a_pose_checkpoint() -> None:
    ident = identify(shapes(factory.make_classifier_sd()))
    assert ident.family == "unknown"
    assert "image classifier" in ident.evidence[0] and "1000 classes" in ident.evidence[0]


def test_random_dict_is_not_a_pose_checkpoint() -> None:
    ident = identify({"foo.weight": (3, 4), "bar": (7,)})
    assert ident.family == "unknown" and ident.evidence[0].startswith("not a pose checkpoint")
    assert describe_non_pose({}) == "an empty state dict"


def test_backbone_without_head_is_refused() -> None:
    s = {
        k: v
        for k, v in meta_shapes(reference.make_variant, "XS").items()
        if k.startswith("backbone")
    }
    ident = identify(s)
    assert ident.family == "unknown" and "without a pose head" in ident.evidence[0]


def test_factorisation() -> None:
    assert factorize_output(1152)[:2] == (18, 64)
    assert factorize_output(576)[:2] == (18, 32)
    assert factorize_output(1344)[:2] == (21, 64)
    assert factorize_output(1088)[:2] == (17, 64)
    j, d, notes = factorize_output(20 * 64)  # no known joint set has 20 or 40 joints
    assert (j, d) == (20, 64) and any("ambiguous" in n for n in notes)
    with pytest.raises(Exception, match="depth-bins"):
        factorize_output(18 * 7)


def test_ambiguous_factorisation_becomes_a_warning() -> None:
    v = Variant("x", (2, 2, 6, 2), (40, 80, 160, 320), (128, 128, 128), 64, joint_num=20)
    ident = identify(meta_shapes(reference.make_from_variant, v))
    assert ident.arch.joint_num == 20 and any("ambiguous" in w for w in ident.warnings)
    assert ident.joint_set.num == 20


def _hooked_macs(model: nn.Module, size: int = 256) -> int:
    """MACs counted by running the model with hooks: independent of count_macs."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.ConvTranspose2d):
            x = inp[0]
            total += x.numel() // x.shape[0] * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
        else:
            total += (
                out.numel()
                // out.shape[0]
                * (m.in_channels // m.groups)
                * m.kernel_size[0]
                * m.kernel_size[1]
            )

    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    return total


@pytest.mark.parametrize("name,spelling", [("XS", "modern"), ("M", "list"), ("L", "legacy")])
def test_gflops_match_a_hooked_count(name: str, spelling: str) -> None:
    model = reference.make_variant(name, spelling)
    ident = identify(shapes(model.state_dict()))
    assert ident.gflops == pytest.approx(_hooked_macs(model) / 1e9, abs=1e-3)


def test_gflops_posenet_match_a_hooked_count() -> None:
    model = reference.make_posenet(50)
    ident = identify(shapes(model.state_dict()))
    assert ident.gflops == pytest.approx(_hooked_macs(model) / 1e9, rel=1e-3)


def test_published_gflops_are_for_64x64_heatmaps() -> None:
    """The paper's 2.82 (M) and 4.30 (L) GFLOPs fit three upsamplings, not the code's two."""
    for name, published in (("M", 2.82), ("L", 4.30)):
        arch = identify(meta_shapes(reference.make_variant, name)).arch
        assert count_macs(arch.with_upsample((True, True, True))) / 1e9 == pytest.approx(
            published, rel=0.02
        )
        assert count_macs(arch) / 1e9 < 0.7 * published


def test_overrides() -> None:
    ident = identify(meta_shapes(reference.make_variant, "XS"))
    a = ident.arch.with_upsample((True, True, True)).with_input_size((320, 320))
    assert a.output_size == (80, 80)
    assert ident.with_arch(a).gflops > ident.gflops
    with pytest.raises(ValueError):
        ident.arch.with_upsample((True,))
    with pytest.raises(ValueError):
        ident.arch.with_input_size((250, 256))


def test_to_dict_schema() -> None:
    d = identify(meta_shapes(reference.make_variant, "S")).to_dict()
    keys = "path format family variant confidence evidence warnings backbone head joint_num"
    keys += " joint_set depth_dim input_size output_size params gflops"
    for key in keys.split():
        assert key in d
    assert set(d["backbone"]) >= {"type", "depths", "dims", "resnet_depth"}
    assert set(d["head"]) >= {"style", "channels", "kernels", "upsample"}
    assert d["head"]["upsample"] == [True, True, False] and d["output_size"] == [32, 32]
