"""Make random-weight checkpoints in every layout and container met in the wild (tests only).

State dicts come from the reference networks in tests/reference.py, so their keys and shapes
are the published ones. Nothing here is committed: files are written at test time.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from posescope.core.variants import VARIANTS, Variant
from tests import reference

StateDict = dict[str, torch.Tensor]

# A made-up, very small ConvNeXtPose with the published key layout: for big cross products.
TINY = Variant("tiny", (1, 1, 1, 1), (8, 16, 24, 32), (16, 16, 16), 8, params_m=0.0)

WRAPPERS = ("network", "state_dict", "model", "model_state_dict", "bare")
PREFIXES = ("module.", "_orig_mod.", "model.")


# --------------------------------------------------------------------------------------------
# State dicts


def _variant(name: str | Variant) -> Variant:
    if isinstance(name, Variant):
        return name
    if name.lower() == "tiny":
        return TINY
    return VARIANTS[name]


def randomized(make: Callable[..., nn.Module], *args: Any, seed: int = 0) -> nn.Module:
    """`make(*args)` with random weights (`reference.randomize_`), in eval mode.

    Built on the meta device and then filled, which skips torch's default init (slow on a
    ResNet-152).
    """
    with torch.device("meta"):
        model = make(*args)
    model.to_empty(device="cpu")
    return reference.randomize_(model, seed).eval()


def state_dict_for(
    name_or_model: str | Variant | nn.Module, spelling: str = "modern", seed: int = 0
) -> StateDict:
    """Random-weight state dict of a variant ("XS", "S", "M", "L", "tiny", a Variant, or a model).

    spelling: "modern" (`head.deconv_layers_1.dwconv.weight`), "legacy"
    (`head.deconv_layers_1.0.weight`) or "list" (`head.deconv_layers.0.dwconv.weight`); ignored
    for a model, whose own names are used. BN buffers (running stats, num_batches_tracked) are in.
    """
    if isinstance(name_or_model, nn.Module):
        model = reference.randomize_(name_or_model, seed)
    else:
        model = randomized(
            reference.make_from_variant, _variant(name_or_model), spelling, seed=seed
        )
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def model_for(name: str | Variant, spelling: str = "modern", seed: int = 0) -> nn.Module:
    """The reference model of a variant with the same random weights as `state_dict_for`."""
    return randomized(reference.make_from_variant, _variant(name), spelling, seed=seed)


def make_classifier_sd(seed: int = 0) -> StateDict:
    """A torchvision ResNet-18 classifier (conv1.*, layer1.0.conv1.*, fc.weight): not a pose net."""
    return _sd(randomized(reference.ResNetClassifier, 18, 1000, seed=seed))


def make_posenet_sd(depth: int = 50, joint_num: int = 18, seed: int = 0) -> StateDict:
    """3DMPPE PoseNet: backbone.conv1.weight, backbone.layer1.0.conv1.weight, head.deconv_layers.0.weight, ..."""  # noqa: E501
    return _sd(randomized(reference.make_posenet, depth, joint_num, seed=seed))


def make_rootnet_sd(depth: int = 50, seed: int = 0) -> StateDict:
    """3DMPPE RootNet: backbone.*, root.deconv_layers.*, root.xy_layer.*, root.depth_layer.*."""
    return _sd(randomized(reference.make_rootnet, depth, seed=seed))


def _sd(model: nn.Module) -> StateDict:
    return {k: v.detach() for k, v in model.state_dict().items()}


def add_prefix(sd: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Every key prefixed, e.g. "module." (DataParallel), "_orig_mod." (torch.compile)."""
    return {prefix + k: v for k, v in sd.items()}


def optimizer_state(sd: Mapping[str, torch.Tensor], scale: int = 1) -> dict[str, Any]:
    """An Adam `optimizer.state_dict()` for the float tensors of `sd`.

    `scale` > 1 makes each moment tensor `scale` times larger than its parameter (to make a big
    optimizer state cheaply).
    """
    params = [v for v in sd.values() if v.is_floating_point() and v.dim() > 0]
    state = {
        i: {
            "step": torch.tensor(1234.0),
            "exp_avg": torch.randn(p.numel() * scale) * 1e-3,
            "exp_avg_sq": torch.rand(p.numel() * scale) * 1e-6,
        }
        for i, p in enumerate(params)
    }
    group = {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "amsgrad": False,
        "params": list(range(len(params))),
    }
    return {"state": state, "param_groups": [group]}


def big_optimizer_state(nbytes: int) -> dict[str, Any]:
    """An optimizer state dict of about `nbytes` of float32 moments (a few large tensors)."""
    n = nbytes // 4 // 4
    state = {
        i: {"step": torch.tensor(10.0), "exp_avg": torch.zeros(n), "exp_avg_sq": torch.ones(n)}
        for i in range(2)
    }
    return {"state": state, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]}


def wrap(sd: Mapping[str, torch.Tensor], how: str, optimizer: bool = True) -> Any:
    """Put a state dict in the dict a training script saves: see WRAPPERS."""
    sd = dict(sd)
    if how == "bare":
        return sd
    if how == "network":  # 3DMPPE / ConvNeXtPose training scripts
        out: dict[str, Any] = {"epoch": 12, "network": sd}
        if optimizer:
            out["optimizer"] = optimizer_state(sd)
        return out
    if how == "state_dict":
        return {"state_dict": sd, "epoch": 12, "arch": "convnextpose", "best_mpjpe": 51.05}
    if how == "model":
        return {"model": sd, "epoch": 12}
    if how == "model_state_dict":
        out = {"model_state_dict": sd, "epoch": 12}
        if optimizer:
            out["optimizer_state_dict"] = optimizer_state(sd)
        return out
    raise ValueError(f"unknown wrapper {how!r}")


# --------------------------------------------------------------------------------------------
# Containers


def save_torch_zip(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Plain `torch.save` (a zip archive whatever the extension)."""
    path = Path(path)
    torch.save(obj, path)
    return path


def save_torch_legacy(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Old non-zip `torch.save` pickle."""
    path = Path(path)
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    return path


def _base_name(path: Path) -> str:
    name = path.name
    for suffix in (".tar.gz", ".tgz", ".pth.tar", ".tar", ".zip", ".pth", ".pt"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def save_folder(obj: Any, folder: str | os.PathLike[str]) -> Path:
    """The unpacked zip checkpoint itself: `folder/data.pkl`, `folder/data/0`, `folder/version`."""
    folder = Path(folder)
    with tempfile.TemporaryDirectory() as tmp:
        zpath = Path(tmp) / "ckpt.pth"
        torch.save(obj, zpath)
        with zipfile.ZipFile(zpath) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                rel = info.filename.split("/", 1)[1]  # drop torch's own top folder
                target = folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    return folder


_AUTO = "auto"


def save_archive_folder(
    obj: Any,
    path: str | os.PathLike[str],
    kind: str = "tar",
    folder_name: str | None = None,
    outer: str | None = _AUTO,
) -> Path:
    """A real tar (or DEFLATE zip) of an unpacked checkpoint folder, as a cloud drive gives.

    Members are `[outer/]folder_name/data.pkl`, `.../data/0`, `.../version`, ...; folder_name
    defaults to the file's name without extensions; outer defaults to "download" for zip and to
    none for tar.
    """
    path = Path(path)
    folder_name = folder_name or _base_name(path)
    if outer == _AUTO:
        outer = "download" if kind == "zip" else None
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        top = staging / outer if outer else staging
        save_folder(obj, top / folder_name)
        arc_root = outer or folder_name
        if kind == "tar":
            with tarfile.open(path, "w") as tf:
                tf.add(staging / arc_root, arcname=arc_root)
        elif kind == "zip":
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                for f in sorted((staging / arc_root).rglob("*")):
                    zf.write(f, f.relative_to(staging).as_posix())
        else:
            raise ValueError(f"kind must be tar or zip, not {kind!r}")
    return path


def save_safetensors(sd: Mapping[str, torch.Tensor], path: str | os.PathLike[str]) -> Path:
    """A safetensors file written by the reference `safetensors` package."""
    from safetensors.torch import save_file

    path = Path(path)
    save_file({k: v.detach().contiguous().clone() for k, v in sd.items()}, str(path))
    return path


# path suffix for each container name used in tests
CONTAINERS: dict[str, str] = {
    "torch-zip.pth": ".pth",
    "torch-zip.pth.tar": ".pth.tar",
    "torch-zip.tar": ".tar",
    "torch-legacy": ".pth",
    "archive-folder.tar": ".tar",
    "archive-folder.zip": ".zip",
    "folder": "",
    "safetensors": ".safetensors",
}

# the format label open_checkpoint must report for each
CONTAINER_FORMAT: dict[str, str] = {
    name: name.split(".")[0] if name != "safetensors" else "safetensors" for name in CONTAINERS
}


def save_as(
    obj: Any, container: str, directory: str | os.PathLike[str], name: str = "ckpt"
) -> Path:
    """Save `obj` in a container named as in CONTAINERS, under `directory`."""
    path = Path(directory) / (name + CONTAINERS[container])
    if container.startswith("torch-zip"):
        return save_torch_zip(obj, path)
    if container == "torch-legacy":
        return save_torch_legacy(obj, path)
    if container == "archive-folder.tar":
        return save_archive_folder(obj, path, "tar")
    if container == "archive-folder.zip":
        return save_archive_folder(obj, path, "zip")
    if container == "folder":
        return save_folder(obj, path)
    if container == "safetensors":
        return save_safetensors(obj, path)
    raise ValueError(f"unknown container {container!r}")


# --------------------------------------------------------------------------------------------
# Hostile files


class _Payload:
    """Unpickling this calls `func(*args)`: os.system or builtins.open in the tests."""

    def __init__(self, func: Any, args: tuple[Any, ...]) -> None:
        self.func = func
        self.args = args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (self.func, self.args)


def write_malicious_pickle(
    path: str | os.PathLike[str],
    marker_path: str | os.PathLike[str],
    legacy: bool = False,
    call: str = "system",
    protocol: int = 2,
) -> Path:
    """A checkpoint (real weights beside) whose unpickling creates `marker_path`.

    call="system" uses os.system("touch ...") (pickled as posix.system on Linux), call="open"
    uses builtins.open(marker, "w"). legacy=True writes the old non-zip format; protocol 4+
    makes the pickle name its globals with STACK_GLOBAL.
    """
    path = Path(path)
    if call == "system":
        payload = _Payload(os.system, (f"touch {shlex.quote(str(marker_path))}",))
    elif call == "open":
        payload = _Payload(open, (str(marker_path), "w"))
    else:
        raise ValueError(f"call must be system or open, not {call!r}")
    obj = {"epoch": 1, "network": state_dict_for(TINY), "hook": payload}
    torch.save(obj, path, pickle_protocol=protocol, _use_new_zipfile_serialization=not legacy)
    return path


def malicious_globals(call: str = "system") -> set[str]:
    """The names a NeedsTrustError may give for the payload of `write_malicious_pickle`."""
    if call == "system":
        return {f"{os.system.__module__}.system", "os.system", "posix.system", "nt.system"}
    return {"builtins.open", "io.open", "_io.open"}


def assert_same(
    got: dict[str, torch.Tensor], want: dict[str, torch.Tensor], ordered: bool = True
) -> None:
    """Same keys (in the same order unless `ordered` is False), dtypes, shapes and values."""
    assert (list(got) if ordered else set(got)) == (list(want) if ordered else set(want))
    for k, v in want.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
        assert torch.equal(got[k], v), k
