"""core/families: each family in one place, found through the registry.

A toy family defined here (not in the product) is registered for one test and goes through
identify / build_model / load_weights / InferenceModel without any other file knowing it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from posescope.core.families.base import Family, KeyCondition
from posescope.core.families.descriptor import Architecture, Identification
from posescope.core.families.network import PoseNetwork
from posescope.core.families.registry import REGISTRY, Registry, count_macs
from posescope.core.families.shapes import conv_macs, count_params, factorize_output, shape_of
from posescope.core.identify import identify
from posescope.core.inference.model import InferenceModel, bgr_to_input
from posescope.core.model import build_model, load_weights
from tests import factory

TOY_CHANNELS = 24
TOY_OUT = 18 * 32  # 18 joints x 32 depth bins


class _ToyBackbone(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.toy_stem = nn.Conv2d(3, width, 32, stride=32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.toy_stem(x))


class _ToyHead(nn.Module):
    def __init__(self, width: int, out: int):
        super().__init__()
        self.toy_out = nn.Conv2d(width, out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.toy_out(x)


class ToyPose(Family):
    """One 32x32/32 convolution and a 1x1 heatmap layer; older files spell it `head.out`."""

    name = "toypose"
    display = "ToyPose"
    detect = KeyCondition.has_all(
        "backbone.toy_stem.weight", KeyCondition.has_any("head.toy_out.weight", "head.out.weight")
    )

    def identify(self, shapes: dict[str, tuple[int, ...]]) -> Identification:
        stem = shape_of(shapes, "backbone.toy_stem.weight")
        out = shapes.get("head.toy_out.weight") or shape_of(shapes, "head.out.weight")
        joints, bins, notes = factorize_output(out[0])
        arch = Architecture(
            family=self.name,
            backbone_type="toy",
            depths=(1,),
            dims=(stem[0],),
            head_style="toy",
            head_layers=(),
            joint_num=joints,
            depth_dim=bins,
        )
        evidence = [f"toy stem {stem[0]} wide", *notes]
        return Identification(family=self.name, arch=arch, evidence=evidence, confidence=1.0)

    def count_macs(self, arch: Architecture) -> int:
        h, w = arch.input_size
        hw = (h // 32, w // 32)
        width, out = arch.dims[0], arch.joint_num * arch.depth_dim
        return conv_macs(hw, width, 3, 32) + conv_macs(hw, out, width, 1)

    def build(self, arch: Architecture) -> nn.Module:
        width = arch.dims[0]
        head = _ToyHead(width, arch.joint_num * arch.depth_dim)
        return PoseNetwork(arch, _ToyBackbone(width), head)

    def canonical_key(self, key: str) -> str:
        return key.replace("head.out.", "head.toy_out.")


def toy_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A toy checkpoint in the older spelling (`head.out.*`), random weights."""
    g = torch.Generator().manual_seed(seed)
    return {
        "backbone.toy_stem.weight": torch.randn(TOY_CHANNELS, 3, 32, 32, generator=g) * 0.01,
        "backbone.toy_stem.bias": torch.randn(TOY_CHANNELS, generator=g) * 0.1,
        "head.out.weight": torch.randn(TOY_OUT, TOY_CHANNELS, 1, 1, generator=g),
        "head.out.bias": torch.randn(TOY_OUT, generator=g),
    }


@pytest.fixture
def toy_registered() -> Iterator[ToyPose]:
    family = ToyPose()
    REGISTRY.add(family)
    try:
        yield family
    finally:
        REGISTRY.remove(family.name)


def test_a_family_added_in_one_place_is_identified_built_loaded_and_run(toy_registered) -> None:
    sd = toy_state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    ident = identify(shapes)
    assert ident.family == "toypose" and ident.title == "ToyPose" and ident.is_pose
    assert ident.arch is not None and (ident.arch.joint_num, ident.arch.depth_dim) == (18, 32)
    assert ident.joint_set is not None and len(ident.joint_set.joints) == 18
    assert ident.params == count_params(shapes)
    assert ident.gflops == round(toy_registered.count_macs(ident.arch) / 1e9, 3) > 0
    assert count_macs(ident.arch) == toy_registered.count_macs(ident.arch)
    assert "toy stem 24 wide" in ident.evidence

    net = build_model(ident.arch)
    assert isinstance(net, PoseNetwork) and isinstance(net.backbone, _ToyBackbone)
    load_weights(net, sd)  # the older spelling, mapped by the family's canonical_key
    assert torch.equal(net.state_dict()["head.toy_out.weight"], sd["head.out.weight"])

    crops = np.random.default_rng(0).integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    with torch.no_grad():
        want = net(bgr_to_input(crops))
    assert want.shape == (2, 18, 3)
    model = InferenceModel(net, "cpu", backend="torch")  # no folded form: its modules run
    assert model.form in ("torchscript", "folded")
    assert float((model(crops) - want).abs().max()) <= 1e-3


def test_an_unregistered_family_is_not_known() -> None:
    sd = toy_state_dict()
    ident = identify({k: tuple(v.shape) for k, v in sd.items()})
    assert ident.family == "unknown" and not ident.is_pose
    assert ident.title == "not a pose checkpoint"
    assert "toypose" not in REGISTRY


SAMPLES = {
    "convnextpose": lambda: factory.state_dict_for("XS"),
    "posenet": lambda: factory.make_posenet_sd(50),
    "rootnet": lambda: factory.make_rootnet_sd(50),
}


@pytest.mark.parametrize("name", [f.name for f in REGISTRY])
def test_every_registered_family_detects_builds_and_loads_its_own_files(name: str) -> None:
    """timm's habit: every test over every registered name (a new family needs a sample)."""
    assert name in SAMPLES, f"add a sample state dict for the family {name!r}"
    sd = SAMPLES[name]()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    family = REGISTRY[name]
    assert REGISTRY.detect(shapes) is family
    assert family.detect(shapes)
    ident = identify(shapes)
    assert ident.family == name and ident.arch is not None
    assert ident.gflops == round(family.count_macs(ident.arch) / 1e9, 3) > 0
    net = build_model(ident.arch)
    load_weights(net, sd)
    got = net.state_dict()
    for key, value in sd.items():
        assert torch.equal(got[family.canonical_key(key)], value)


def test_key_conditions_say_why_a_family_was_chosen() -> None:
    root = REGISTRY["rootnet"].detect
    assert root.describe() == "all of: root.xy_layer.weight, backbone.conv1.weight"
    assert REGISTRY["convnextpose"].detect.describe() == (
        "has backbone.downsample_layers.0.0.weight"
    )
    toy = ToyPose.detect
    assert toy.describe() == (
        "all of: backbone.toy_stem.weight, any of: head.toy_out.weight, head.out.weight"
    )
    assert toy({"backbone.toy_stem.weight": 1, "head.out.weight": 1})
    assert toy({"backbone.toy_stem.weight": 1, "head.toy_out.weight": 1})
    assert not toy({"backbone.toy_stem.weight": 1})
    assert not toy({"head.out.weight": 1, "head.toy_out.weight": 1})


def test_registry_order_duplicates_and_unknown_names() -> None:
    reg = Registry(REGISTRY)
    assert [f.name for f in reg] == ["convnextpose", "rootnet", "posenet"]
    with pytest.raises(ValueError, match="registered already"):
        reg.add(REGISTRY["posenet"])
    reg.add(ToyPose(), before="rootnet")
    assert [f.name for f in reg] == ["convnextpose", "toypose", "rootnet", "posenet"]
    assert "toypose" not in REGISTRY  # a copy: the product's registry is untouched
    with pytest.raises(KeyError, match="no model family named 'nope'"):
        reg["nope"]
    assert reg.get("nope") is None
