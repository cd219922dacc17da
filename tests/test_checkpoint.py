"""core.checkpoint: every container, wrapper and prefix; hostile and broken files.

Memory: tests/test_checkpoint_memory.py; the reference networks: tests/test_reference.py.
"""

from __future__ import annotations

import ast
import json
import pickle
import random
import sys
import tarfile
import types
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from posescope.core.checkpoint import (
    FORMATS,
    CheckpointError,
    LoadedCheckpoint,
    NeedsTrustError,
    NotACheckpointError,
    open_checkpoint,
    sniff_format,
)
from tests import factory, reference
from tests.factory import assert_same

ROOT = Path(__file__).resolve().parents[1]
PREFIX_CASES = ("", "module.", "_orig_mod.", "model.", "module._orig_mod.")


@pytest.fixture(scope="module")
def tiny_sd() -> dict[str, torch.Tensor]:
    return factory.state_dict_for("tiny", seed=7)


# --------------------------------------------------------------------------------------------
# Containers x wrappers x prefixes


def _roundtrip_cases() -> list[tuple[str, str, str]]:
    """Every container with every wrapper and with every prefix; the full product for one."""
    cases: list[tuple[str, str, str]] = []
    for container in factory.CONTAINERS:
        wrappers = ("bare",) if container == "safetensors" else factory.WRAPPERS
        full = container == "torch-zip.pth"
        for wrapper in wrappers:
            for prefix in PREFIX_CASES:
                if full or prefix == "module." or wrapper == wrappers[-1]:
                    cases.append((container, wrapper, prefix))
    return cases


ROUNDTRIP_CASES = _roundtrip_cases()


@pytest.mark.parametrize(("container", "wrapper", "prefix"), ROUNDTRIP_CASES)
def test_roundtrip(
    container: str, wrapper: str, prefix: str, tiny_sd: dict[str, torch.Tensor], ckpt_dir: Path
) -> None:
    path = factory.save_as(
        factory.wrap(factory.add_prefix(tiny_sd, prefix), wrapper), container, ckpt_dir
    )
    expected_format = factory.CONTAINER_FORMAT[container]
    assert sniff_format(path) == expected_format
    ck = open_checkpoint(path)
    assert ck.format == expected_format
    assert ck.wrapper == (None if wrapper == "bare" else wrapper)
    assert ck.prefix == (prefix or None)
    assert ck.trusted is False
    assert ck.path == path
    assert_same(ck.state_dict, tiny_sd, ordered=container != "safetensors")
    assert ck.shapes() == {k: tuple(v.shape) for k, v in tiny_sd.items()}
    if wrapper in ("network", "state_dict", "model", "model_state_dict"):
        assert ck.meta["epoch"] == 12
    if wrapper == "network":
        assert ck.meta["other_keys"] == ["optimizer"]
    if wrapper == "state_dict":
        assert ck.meta["arch"] == "convnextpose" and ck.meta["best_mpjpe"] == 51.05
    if container == "folder":
        assert ck.file_size == sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    else:
        assert ck.file_size == path.stat().st_size


@pytest.mark.parametrize(
    ("name", "spelling", "container"),
    [
        ("XS", "legacy", "archive-folder.zip"),
        ("XS", "modern", "folder"),
        ("S", "list", "torch-legacy"),
        ("M", "modern", "torch-zip.pth.tar"),
        ("L", "legacy", "safetensors"),
    ],
)
def test_published_variants(name: str, spelling: str, container: str, ckpt_dir: Path) -> None:
    sd = factory.state_dict_for(name, spelling, seed=1)
    obj = (
        sd
        if container == "safetensors"
        else factory.wrap(factory.add_prefix(sd, "module."), "network", optimizer=False)
    )
    ck = open_checkpoint(factory.save_as(obj, container, ckpt_dir, f"snapshot_{name}"))
    assert ck.format == factory.CONTAINER_FORMAT[container]
    assert_same(ck.state_dict, sd, ordered=container != "safetensors")
    head_key = {
        "modern": "head.deconv_layers_1.dwconv.weight",
        "legacy": "head.deconv_layers_1.0.weight",
        "list": "head.deconv_layers.0.dwconv.weight",
    }[spelling]
    assert head_key in ck.state_dict
    assert (
        ck.state_dict["head.final_layer.weight"].shape[0] == 18 * factory.VARIANTS[name].depth_dim
    )
    assert ck.state_dict["backbone.norm.running_var"].min() > 0
    assert "backbone.norm.num_batches_tracked" in ck.state_dict


@pytest.mark.parametrize("spelling", reference.SPELLINGS)
def test_loaded_weights_reproduce_the_model(spelling: str, ckpt_dir: Path) -> None:
    """Weights through a container load strictly into a fresh reference model: same output."""
    model = factory.model_for("tiny", spelling, seed=5)
    path = factory.save_torch_zip(
        factory.wrap(factory.add_prefix(model.state_dict(), "module."), "network"),
        ckpt_dir / "t.pth",
    )
    fresh = reference.make_from_variant(factory.TINY, spelling)
    fresh.load_state_dict(open_checkpoint(path).state_dict, strict=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x), model(x))


def test_classifier_roundtrip(ckpt_dir: Path) -> None:
    sd = factory.make_classifier_sd()
    path = factory.save_torch_legacy(factory.wrap(sd, "state_dict"), ckpt_dir / "resnet18.pth")
    ck = open_checkpoint(path)
    assert ck.format == "torch-legacy" and ck.wrapper == "state_dict"
    assert_same(ck.state_dict, sd)
    assert ck.shapes()["fc.weight"] == (1000, 512)


def test_posenet_key_layout() -> None:
    shapes = {k: tuple(v.shape) for k, v in factory.make_posenet_sd(50, joint_num=21).items()}
    assert shapes["head.deconv_layers.0.weight"] == (2048, 256, 4, 4)
    assert shapes["head.deconv_layers.3.weight"] == (256, 256, 4, 4)
    assert shapes["head.deconv_layers.6.weight"] == (256, 256, 4, 4)
    assert shapes["head.deconv_layers.7.running_mean"] == (256,)
    assert shapes["head.final_layer.weight"] == (21 * 64, 256, 1, 1)
    assert shapes["backbone.layer2.0.downsample.0.weight"] == (512, 256, 1, 1)
    assert "head.deconv_layers.0.bias" not in shapes
    assert shapes["backbone.conv1.weight"] == (64, 3, 7, 7)
    assert shapes["backbone.layer1.0.conv1.weight"] == (64, 64, 1, 1)
    assert shapes["backbone.layer4.2.bn3.running_var"] == (2048,)
    assert shapes["head.final_layer.bias"] == (21 * 64,)
    assert not any(k.startswith(("backbone.fc", "fc.")) for k in shapes)
    root = {k: tuple(v.shape) for k, v in factory.make_rootnet_sd(50).items()}
    assert root["root.xy_layer.weight"] == (1, 256, 1, 1)
    assert root["root.depth_layer.weight"] == (1, 2048, 1, 1)
    assert root["root.deconv_layers.6.weight"] == (256, 256, 4, 4)
    assert {k.split(".")[0] for k in root} == {"backbone", "root"}


# --------------------------------------------------------------------------------------------
# More containers and wrappers


@pytest.mark.parametrize(
    ("kind", "outer"), [("tar", None), ("tar", "a/b"), ("zip", None), ("zip", "download")]
)
def test_archive_nesting(
    kind: str, outer: str | None, tiny_sd: dict[str, torch.Tensor], ckpt_dir: Path
) -> None:
    path = factory.save_archive_folder(tiny_sd, ckpt_dir / f"snapshot_83.{kind}", kind, outer=outer)
    ck = open_checkpoint(path)
    assert ck.format == "archive-folder"
    assert ck.meta["inner_folder"] == (f"{outer}/snapshot_83" if outer else "snapshot_83")
    assert_same(ck.state_dict, tiny_sd)


def test_gzipped_tar_archive(tiny_sd: dict[str, torch.Tensor], ckpt_dir: Path) -> None:
    folder = factory.save_folder(tiny_sd, ckpt_dir / "src" / "snapshot_9")
    path = ckpt_dir / "snapshot_9.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        tf.add(folder, arcname="snapshot_9")
    ck = open_checkpoint(path)
    assert ck.format == "archive-folder"
    assert_same(ck.state_dict, tiny_sd)


def test_folder_one_and_two_levels_down(tiny_sd: dict[str, torch.Tensor], ckpt_dir: Path) -> None:
    factory.save_folder(tiny_sd, ckpt_dir / "download" / "inner" / "snapshot_1")
    for top in (ckpt_dir / "download", ckpt_dir / "download" / "inner"):
        assert sniff_format(top) == "folder"
        ck = open_checkpoint(top)
        assert ck.format == "folder"
        assert_same(ck.state_dict, tiny_sd)


def test_folder_without_version_record(tiny_sd: dict[str, torch.Tensor], ckpt_dir: Path) -> None:
    folder = factory.save_folder(tiny_sd, ckpt_dir / "snap")
    (folder / "version").unlink()
    assert_same(open_checkpoint(folder).state_dict, tiny_sd)


def test_two_checkpoints_in_one_folder_or_archive(
    tiny_sd: dict[str, torch.Tensor], ckpt_dir: Path
) -> None:
    factory.save_folder(tiny_sd, ckpt_dir / "two" / "a")
    factory.save_folder(tiny_sd, ckpt_dir / "two" / "b")
    with pytest.raises(CheckpointError, match="2 checkpoint folders"):
        open_checkpoint(ckpt_dir / "two")
    path = ckpt_dir / "two.tar"
    with tarfile.open(path, "w") as tf:
        tf.add(ckpt_dir / "two", arcname="two")
    with pytest.raises(CheckpointError, match="2 checkpoint folders"):
        open_checkpoint(path)


def test_nested_and_unknown_wrappers(tiny_sd: dict[str, torch.Tensor], ckpt_dir: Path) -> None:
    nested = {
        "state_dict": {"model": factory.add_prefix(tiny_sd, "module.")},
        "epoch": torch.tensor(3),
    }
    ck = open_checkpoint(factory.save_torch_zip(nested, ckpt_dir / "nested.pth"))
    assert ck.wrapper == "state_dict" and ck.meta["wrapper_path"] == "state_dict.model"
    assert ck.prefix == "module." and ck.meta["epoch"] == 3
    assert_same(ck.state_dict, tiny_sd)

    other = {"net": tiny_sd, "optimizer": factory.optimizer_state(tiny_sd), "iter": 5}
    ck = open_checkpoint(factory.save_torch_zip(other, ckpt_dir / "net.pth"))
    assert ck.wrapper == "net" and ck.meta == {"iter": 5, "other_keys": ["optimizer"]}
    assert_same(ck.state_dict, tiny_sd)

    # a top-level tensor beside the wrapper does not make it a bare state dict
    beside = {
        "network": tiny_sd,
        "best_loss": torch.tensor(0.5),
        "optimizer": factory.optimizer_state(tiny_sd),
    }
    ck = open_checkpoint(factory.save_torch_zip(beside, ckpt_dir / "beside.pth"))
    assert ck.wrapper == "network" and ck.meta["best_loss"] == 0.5
    assert_same(ck.state_dict, tiny_sd)


def test_non_tensor_entries_are_dropped(tiny_sd: dict[str, torch.Tensor], ckpt_dir: Path) -> None:
    sd: dict[str, Any] = dict(tiny_sd)
    sd["_metadata_note"] = "hello"
    ck = open_checkpoint(factory.save_torch_zip(factory.wrap(sd, "model"), ckpt_dir / "m.pth"))
    assert_same(ck.state_dict, tiny_sd)
    assert ck.meta["non_tensor_keys"] == ["_metadata_note"]


def test_safetensors_dtypes(ckpt_dir: Path) -> None:
    g = torch.Generator().manual_seed(0)
    sd = {
        "f32": torch.randn(3, 4, generator=g),
        "f16": torch.randn(5, generator=g).half(),
        "bf16": torch.randn(2, 3, generator=g).bfloat16(),
        "f64": torch.randn(2, generator=g).double(),
        "i64": torch.arange(6).reshape(2, 3),
        "i32": torch.arange(4, dtype=torch.int32),
        "u8": torch.arange(7, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
    }
    from safetensors.torch import save_file

    path = ckpt_dir / "all.safetensors"
    save_file(sd, str(path), metadata={"format": "pt", "note": "x"})
    ck = open_checkpoint(path)
    assert ck.format == "safetensors" and ck.wrapper is None
    assert ck.meta["safetensors_metadata"] == {"format": "pt", "note": "x"}
    assert set(ck.state_dict) == set(sd)
    for k, v in sd.items():
        assert ck.state_dict[k].dtype == v.dtype and torch.equal(ck.state_dict[k], v), k


def test_trust_on_a_safe_file_is_not_marked_trusted(
    tiny_sd: dict[str, torch.Tensor], ckpt_dir: Path
) -> None:
    ck = open_checkpoint(factory.save_torch_zip(tiny_sd, ckpt_dir / "safe.pth"), trust=True)
    assert ck.trusted is False


def test_loaded_checkpoint_repr_is_short(tiny_sd: dict[str, torch.Tensor], ckpt_dir: Path) -> None:
    ck = open_checkpoint(factory.save_torch_zip(tiny_sd, ckpt_dir / "r.pth"))
    assert isinstance(ck, LoadedCheckpoint) and "tensor" not in repr(ck) and len(repr(ck)) < 500


# --------------------------------------------------------------------------------------------
# Hostile pickles


@pytest.mark.parametrize(
    ("legacy", "call", "protocol"),
    [
        (False, "system", 2),
        (True, "system", 2),
        (False, "open", 2),
        (True, "open", 2),
        (False, "system", 4),
    ],
    ids=["zip-system", "legacy-system", "zip-open", "legacy-open", "zip-system-stack-global"],
)
def test_malicious_pickle_is_refused_then_runs_only_with_trust(
    legacy: bool, call: str, protocol: int, tmp_path: Path
) -> None:
    marker = tmp_path / "PWNED"
    path = factory.write_malicious_pickle(
        tmp_path / "evil.pth", marker, legacy=legacy, call=call, protocol=protocol
    )
    assert sniff_format(path) == ("torch-legacy" if legacy else "torch-zip")
    with pytest.raises(NeedsTrustError) as info:
        open_checkpoint(path)
    err = info.value
    wanted = set(err.globals) & factory.malicious_globals(call)
    assert wanted, err.globals
    assert str(err).startswith("refusing to unpickle: the file wants to import")
    assert next(iter(wanted)) in str(err) and "--trust" in str(err)
    assert err.path == str(path)
    assert not marker.exists()

    ck = open_checkpoint(path, trust=True)
    assert marker.exists()  # yes: trusting runs the file's code
    assert ck.trusted is True and ck.wrapper == "network"
    assert_same(ck.state_dict, factory.state_dict_for(factory.TINY))


def test_malicious_archive_folder_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    evil = factory.write_malicious_pickle(tmp_path / "evil.pth", marker)
    obj_path = tmp_path / "evil.zip"
    # the same pickle, unpacked into a cloud-drive style zip
    with zipfile.ZipFile(evil) as src, zipfile.ZipFile(obj_path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr("download/snap/" + info.filename.split("/", 1)[1], src.read(info))
    with pytest.raises(NeedsTrustError) as info:
        open_checkpoint(obj_path)
    assert set(info.value.globals) & factory.malicious_globals("system")
    assert not marker.exists()


def test_missing_class_needs_trust_and_loads_with_a_stub(
    tiny_sd: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    mod = types.ModuleType("posescope_gone")

    class Config:
        def __init__(self) -> None:
            self.lr = 0.1

    Config.__module__ = "posescope_gone"
    Config.__qualname__ = "Config"
    mod.Config = Config  # type: ignore[attr-defined]
    sys.modules["posescope_gone"] = mod
    try:
        path = factory.save_torch_zip({"network": tiny_sd, "cfg": Config()}, tmp_path / "cfg.pth")
    finally:
        del sys.modules["posescope_gone"]
    with pytest.raises(NeedsTrustError) as info:
        open_checkpoint(path)
    assert info.value.globals == ["posescope_gone.Config"]
    ck = open_checkpoint(path, trust=True)
    assert ck.trusted and ck.meta["other_keys"] == ["cfg"]
    assert_same(ck.state_dict, tiny_sd)


def test_numpy_scalar_needs_trust(tiny_sd: dict[str, torch.Tensor], tmp_path: Path) -> None:
    path = factory.save_torch_zip(
        {"network": tiny_sd, "best": np.float64(1.5)}, tmp_path / "np.pth"
    )
    with pytest.raises(NeedsTrustError) as info:
        open_checkpoint(path)
    assert any(g.startswith("numpy") for g in info.value.globals)
    assert open_checkpoint(path, trust=True).meta["best"] == 1.5


def test_whole_pickled_module_needs_trust(tmp_path: Path) -> None:
    model = factory.model_for("tiny", seed=2)
    path = tmp_path / "whole.pth"
    torch.save({"model": model, "epoch": 4}, path)
    with pytest.raises(NeedsTrustError) as info:
        open_checkpoint(path)
    assert "tests.reference.ConvNeXtPose" in info.value.globals
    ck = open_checkpoint(path, trust=True)
    assert ck.wrapper == "model" and ck.meta == {"epoch": 4}
    assert_same(ck.state_dict, model.state_dict())


# --------------------------------------------------------------------------------------------
# Broken and foreign files

JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + bytes(200)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(100)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated_zip(d: Path) -> Path:
    full = factory.save_torch_zip(factory.state_dict_for("tiny"), d / "full.pth")
    data = full.read_bytes()
    return _write(d / "cut.pth", data[: len(data) // 2])


def _truncated_legacy(d: Path) -> Path:
    full = factory.save_torch_legacy(
        factory.wrap(factory.state_dict_for("tiny"), "network"), d / "full.pth"
    )
    return _write(d / "cut.pth", full.read_bytes()[:3000])


BAD_FILES = {
    "empty": (lambda d: _write(d / "e.pth", b""), "empty file"),
    "jpeg": (lambda d: _write(d / "photo.pth", JPEG), "a JPEG image"),
    "png": (lambda d: _write(d / "photo.pth.tar", PNG), "a PNG image"),
    "random": (lambda d: _write(d / "r.pth", random.Random(0).randbytes(4096)), "random bytes"),
    "text": (lambda d: _write(d / "t.pth", b"these are my notes about the L model\n" * 5), "text"),
    "json": (lambda d: _write(d / "j.pth", json.dumps({"epoch": 3}).encode()), "JSON text"),
    "html": (
        lambda d: _write(
            d / "h.pth", b"<!DOCTYPE html><html><body>Virus scan warning</body></html>"
        ),
        "HTML text",
    ),
    "git-lfs": (
        lambda d: _write(
            d / "l.pth", b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 3\n"
        ),
        "a Git LFS pointer",
    ),
    "plain-pickle": (
        lambda d: _write(d / "p.pth", pickle.dumps({"a": 1}, protocol=4)),
        "a Python pickle",
    ),
    "non-tensor-dict": (
        lambda d: factory.save_torch_zip({"a": 1, "b": "x"}, d / "n.pth"),
        "without tensors",
    ),
    "non-tensor-wrapper": (
        lambda d: factory.save_torch_legacy({"network": {"a": 1}, "epoch": 2}, d / "n.pth"),
        "without tensors",
    ),
    "list": (lambda d: factory.save_torch_zip([torch.ones(2)], d / "list.pth"), "holding a list"),
    "truncated-zip": (_truncated_zip, "a truncated torch zip"),
    "truncated-legacy": (_truncated_legacy, "a truncated torch legacy pickle"),
    "truncated-safetensors": (
        lambda d: _write(
            d / "s.safetensors",
            factory.save_safetensors(
                factory.state_dict_for("tiny"), d / "f.safetensors"
            ).read_bytes()[:5000],
        ),
        "a truncated safetensors file",
    ),
    "corrupt-safetensors": (
        lambda d: _write(d / "s.safetensors", _bad_safetensors()),
        "a corrupt safetensors file",
    ),
    "plain-zip": (
        lambda d: _zip(d / "docs.zip", {"readme.txt": b"hi"}),
        "a zip archive without a checkpoint",
    ),
    "plain-tar": (
        lambda d: _tar(d / "docs.tar", d / "readme.txt"),
        "a tar archive without a checkpoint",
    ),
    "empty-folder": (
        lambda d: (d / "folder").mkdir() or d / "folder",
        "a folder without a checkpoint",
    ),
    "torchscript": (lambda d: _torchscript(d / "ts.pt"), "a TorchScript model"),
}


def _bad_safetensors() -> bytes:
    header = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}).encode()
    return len(header).to_bytes(8, "little") + header + bytes(4)  # 4 bytes for 2 floats


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path, member: Path) -> Path:
    member.write_text("hello")
    with tarfile.open(path, "w") as tf:
        tf.add(member, arcname=member.name)
    return path


def _torchscript(path: Path) -> Path:
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    return path


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_not_a_checkpoint(case: str, ckpt_dir: Path) -> None:
    make, looks = BAD_FILES[case]
    path = make(ckpt_dir)
    with pytest.raises(NotACheckpointError) as info:
        open_checkpoint(path)
    err = info.value
    assert err.looks_like is not None and looks in err.looks_like, (err.looks_like, str(err))
    assert str(err) == err.reason and err.path == str(path)
    assert "Traceback" not in str(err) and len(str(err)) < 400
    if case in ("empty", "jpeg", "png", "random", "text", "json", "truncated-zip"):
        with pytest.raises(NotACheckpointError):
            sniff_format(path)
    if case == "jpeg":
        assert str(err) == "not a checkpoint: looks like a JPEG image"
    if case == "truncated-zip":
        assert str(err).startswith("truncated torch zip archive: ")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as info:
        open_checkpoint(tmp_path / "nope.pth")
    assert type(info.value) is CheckpointError and str(info.value) == "no such file"


def test_errors_pickle_roundtrip() -> None:
    for err in (
        CheckpointError("r", "p"),
        NotACheckpointError("r", "p", "text"),
        NeedsTrustError("r", "p", ["os.system"]),
    ):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and vars(back) == vars(err)


def test_formats_constant() -> None:
    assert FORMATS == ("torch-zip", "torch-legacy", "archive-folder", "folder", "safetensors")
    assert set(factory.CONTAINER_FORMAT.values()) == set(FORMATS)


def test_core_checkpoint_imports_no_gui() -> None:
    names: set[str] = set()
    for source in (ROOT / "core" / "checkpoint").glob("*.py"):
        tree = ast.parse(source.read_text())
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {n.split(".")[0] for n in names} & {"PySide6", "pyqtgraph", "OpenGL", "gui"}
