"""posescope diff: the same weights in any container, prefix or head spelling are identical;
a changed tensor is named; different variants and families are told apart. And the per-joint
distance between two networks' poses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from posescope import main
from posescope.core.diff import CheckpointDiff, diff_paths
from posescope.core.pose_diff import DistanceAverage, pose_distances
from posescope.core.types import FramePoses, PersonPose
from posescope.core.variants import Variant
from tests import factory

MINI = Variant("mini", (1, 1, 2, 1), (16, 32, 48, 64), (32, 32, 32), 32, params_m=0.0)


def run(*args: object) -> int:
    return main.main([str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The same random weights in four containers and spellings, and some other files."""
    d = tmp_path_factory.mktemp("diff")
    sd = factory.state_dict_for(MINI, seed=1)
    legacy = factory.state_dict_for(MINI, "legacy", seed=1)
    no_counters = {k: v for k, v in legacy.items() if not k.endswith("num_batches_tracked")}
    changed = {k: v.clone() for k, v in sd.items()}
    changed["backbone.stages.2.1.pwconv1.weight"] *= 1.5
    return {
        "zip": factory.save_torch_zip(
            factory.wrap(factory.add_prefix(sd, "module."), "network"), d / "snapshot_83.pth"
        ),
        "safetensors": factory.save_safetensors(no_counters, d / "ConvNeXtPose_L (1).safetensors"),
        "legacy_pickle": factory.save_torch_legacy(
            factory.wrap(factory.add_prefix(legacy, "_orig_mod."), "state_dict"), d / "old.pth"
        ),
        "folder_tar": factory.save_archive_folder(
            factory.wrap(sd, "model"), d / "ConvNeXtPose_L.tar"
        ),
        "changed": factory.save_torch_zip(changed, d / "changed.pth"),
        "other_seed": factory.save_torch_zip(factory.state_dict_for(MINI, seed=2), d / "b.pth"),
        "xs": factory.save_torch_zip(factory.state_dict_for("XS", seed=1), d / "xs.pth"),
        "s": factory.save_torch_zip(factory.state_dict_for("S", seed=1), d / "s.pth"),
        "m": factory.save_torch_zip(factory.state_dict_for("M", seed=1), d / "m.pth"),
        "posenet": factory.save_torch_zip(factory.make_posenet_sd(50, seed=1), d / "posenet.pth"),
    }


@pytest.mark.parametrize("other", ["safetensors", "legacy_pickle", "folder_tar"])
def test_same_weights_across_containers_prefixes_and_spellings(files, other) -> None:
    d = diff_paths(files["zip"], files[other])
    assert d.identical and d.same_architecture
    assert d.differing == 0 and d.max_abs_diff == 0.0 and d.largest_change is None
    assert d.tensors == sum(1 for k in factory.state_dict_for(MINI) if "num_batches" not in k)
    assert d.exit_code == 0


def test_one_changed_tensor_is_named(files) -> None:
    d = diff_paths(files["zip"], files["changed"])
    assert d.same_architecture and not d.identical
    assert d.differing == 1
    assert d.largest_change is not None
    assert d.largest_change.tensor == "backbone.stages.2.1.pwconv1.weight"
    assert d.largest_change.relative == pytest.approx(0.5, rel=1e-6)
    sd = factory.state_dict_for(MINI, seed=1)
    want = float(sd["backbone.stages.2.1.pwconv1.weight"].abs().max()) * 0.5
    assert d.max_abs_diff == pytest.approx(want, rel=1e-6)


def test_the_canonical_name_of_a_changed_head_tensor(files, tmp_path) -> None:
    legacy = factory.state_dict_for(MINI, "legacy", seed=1)
    legacy["head.deconv_layers_2.2.weight"] = legacy["head.deconv_layers_2.2.weight"] + 1.0
    path = factory.save_safetensors(legacy, tmp_path / "l.safetensors")
    d = diff_paths(files["zip"], path)
    assert d.differing == 1 and d.largest_change.tensor == "head.layers.1.pwconv.weight"


def test_same_architecture_other_weights(files) -> None:
    d = diff_paths(files["zip"], files["other_seed"])
    assert d.same_architecture and not d.identical
    assert d.differing == d.tensors  # every tensor drawn afresh
    assert d.largest_change is not None and d.largest_change.relative > 0.1


def test_different_variants_name_the_fields(files) -> None:
    d = diff_paths(files["s"], files["m"])  # S and M differ only in depth bins
    assert not d.same_architecture and not d.identical
    assert d.architecture_differences == ["depth bins: 32 vs 64"]
    assert d.shape_changes == [
        "head.final_layer.bias: (576,) vs (1152,)",
        "head.final_layer.weight: (576, 256, 1, 1) vs (1152, 256, 1, 1)",
    ]
    d = diff_paths(files["xs"], files["m"])
    fields = {x.split(":")[0] for x in d.architecture_differences}
    assert fields == {"depths", "widths", "head channels", "depth bins"}


def test_different_families(files) -> None:
    d = diff_paths(files["xs"], files["posenet"])
    assert not d.same_architecture
    assert d.architecture_differences[0] == "family: convnextpose vs posenet"
    assert d.differing == d.tensors  # no tensor name in common
    assert d.only_in_a and d.only_in_b


def test_cli_json_and_exit_codes(files, capsys) -> None:
    assert run("diff", files["zip"], files["safetensors"], "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc) == [
        "same_architecture", "identical", "architecture_differences", "tensors", "differing",
        "max_abs_diff", "largest_change",
    ]  # fmt: skip
    assert doc["identical"] is True and doc["largest_change"] is None
    assert run("diff", files["zip"], files["changed"], "--json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["identical"] is False and doc["differing"] == 1
    assert doc["largest_change"]["tensor"] == "backbone.stages.2.1.pwconv1.weight"
    assert math.isclose(doc["largest_change"]["relative"], 0.5, rel_tol=1e-6)


def test_cli_summary(files, capsys) -> None:
    assert run("diff", files["zip"], files["folder_tar"]) == 0
    out = capsys.readouterr().out
    assert "identical: same architecture" in out
    assert run("diff", files["s"], files["m"]) == 1
    out = capsys.readouterr().out
    assert "ConvNeXtPose-S" in out and "ConvNeXtPose-M" in out
    assert "depth bins: 32 vs 64" in out


def test_cli_errors_exit_2_with_one_line(files, tmp_path, capsys) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert run("diff", files["zip"], notes) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {notes}: ")
    assert run("diff", tmp_path / "missing.pth", files["zip"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path / 'missing.pth'}: no such file"]
    marker = tmp_path / "ran"
    pickle = factory.write_malicious_pickle(tmp_path / "evil.pth", marker)
    assert run("diff", files["zip"], pickle) == 2
    assert "--trust" in capsys.readouterr().err
    assert not marker.exists()  # nothing from the file ran


def test_to_dict_of_a_constructed_diff() -> None:
    d = CheckpointDiff(True, True, [], 3, 0, 0.0, None)
    assert d.to_dict()["tensors"] == 3 and d.exit_code == 0


# ------------------------------------------------------------------------- pose distances


def person(track_id: int, uv: np.ndarray, xyz: np.ndarray) -> PersonPose:
    return PersonPose(track_id, (0, 0, 10, 10), uv, xyz[:, 2] - xyz[0, 2], xyz, 5000.0)


def test_pose_distances_per_joint_in_pixels_and_mm() -> None:
    rng = np.random.default_rng(0)
    uv_a, xyz_a = rng.normal(size=(18, 2)) * 100, rng.normal(size=(18, 3)) * 500
    shift_uv = np.zeros((18, 2))
    shift_uv[3] = (3.0, 4.0)  # 5 px on joint 3
    shift_xyz = np.zeros((18, 3))
    shift_xyz[5] = (0.0, 60.0, 80.0)  # 100 mm on joint 5
    a = FramePoses(0, 0.0, [person(1, uv_a, xyz_a), person(2, uv_a, xyz_a)])
    b = FramePoses(0, 0.0, [person(2, uv_a, xyz_a), person(1, uv_a + shift_uv, xyz_a + shift_xyz)])
    d = pose_distances(a, b)
    assert [x.track_id for x in d] == [1, 2]
    want_px = np.zeros(18)
    want_px[3] = 5.0
    want_mm = np.zeros(18)
    want_mm[5] = 100.0
    np.testing.assert_allclose(d[0].pixels, want_px, atol=1e-9)
    np.testing.assert_allclose(d[0].mm, want_mm, atol=1e-9)
    assert d[0].mean_pixels == pytest.approx(5.0 / 18)
    assert d[1].mean_mm == 0.0
    avg = DistanceAverage()
    avg.add(d)
    avg.add(pose_distances(b, b))
    assert avg.count == 4
    assert avg.pixels[3] == pytest.approx(5.0 / 4) and avg.mm[5] == pytest.approx(100.0 / 4)
    avg.reset()
    assert avg.count == 0 and avg.pixels.size == 0


def test_pose_distances_skip_unpaired_people_and_refuse_other_joint_sets() -> None:
    uv, xyz = np.zeros((18, 2)), np.zeros((18, 3))
    a = FramePoses(0, 0.0, [person(1, uv, xyz)])
    assert pose_distances(a, FramePoses(0, 0.0, [person(9, uv, xyz)])) == []
    with pytest.raises(ValueError, match="18 joints, B 21"):
        pose_distances(a, FramePoses(0, 0.0, [person(1, np.zeros((21, 2)), np.zeros((21, 3)))]))
