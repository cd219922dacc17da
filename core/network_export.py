"""The network as a file to run elsewhere: ONNX (for onnxruntime) or a torch.export program.

What is exported is the network with its soft-argmax in the graph, BatchNorm folded, with a
dynamic batch: images in, (N, J, 3) heatmap coordinates out (x, y in heatmap pixels, z in
depth bins). Two input forms:

- `published`: (N, 3, H, W) float32 RGB, normalised as the published code does it: 0..255
  pixel values minus the ImageNet mean over its std (the input convention the file's own
  statistics tell, or the one chosen: `(pixel * pixel_scale - mean) / std` with pixel_scale
  1 for 0..255 and 1/255 for 0..1; the metadata says which);
- `uint8-bgr`: (N, H, W, 3) uint8 BGR crops, as cv2.warpAffine gives them and as PoseScope's
  engine takes them (the convention and normalisation are folded into the first convolution).

`fp16` casts the network to half precision; the input and the soft-argmax stay fp32.
Every file written is run against PoseScope's engine (fp32) on random crops at batch 1 and 2
before it is kept (`TOLERANCE` heatmap units, `TOLERANCE_FP16` for a half-precision file); a
file that fails the check is removed.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn

from posescope.core.families.descriptor import Identification
from posescope.core.families.input_convention import InputConvention, chosen
from posescope.core.families.network import PoseNetwork, soft_argmax_peak
from posescope.core.inference.fold import fuse, fuse_with_input
from posescope.core.inference.model import InferenceModel, bgr_to_input
from posescope.core.variants import IMAGENET_MEAN, IMAGENET_STD

INPUT_FORMS = ("published", "uint8-bgr")
# heatmap units: the largest difference to the engine a kept file may have. Sharp heatmaps (as
# trained networks have) amplify float rounding: measured up to 1.1e-3 on networks calibrated
# to follow the picture (tests/calibration.py); 5e-3 is 0.2 px of a 1000 px person at 32x32.
TOLERANCE = 5e-3
# fp16 keeps ~3 significant digits. On networks that follow the picture it moves most joints
# by ~1e-3 heatmap units (median) but a joint whose heatmap has two close peaks by up to
# 0.55-0.9 (measured against the fp32 engine on random and real crops): half-precision files
# are held to one heatmap unit at worst, which a wrong graph still exceeds
TOLERANCE_FP16 = 1.0
DEFAULT_OPSET = 18
CHECK_BATCHES = (1, 2)


class ExportError(RuntimeError):
    """The network could not be exported, or the file failed its check (then it was removed)."""


@dataclass(frozen=True)
class ExportResult:
    """One written file and how it compared with the engine."""

    path: Path
    kind: str  # "onnx" | "torch-export"
    input_form: str
    fp16: bool
    max_abs_diff: float  # heatmap units, over CHECK_BATCHES
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance


class ExportableNetwork(nn.Module):
    """Folded network + input conversion + soft-argmax, one traceable module.

    Returns the (N, J, 3) coordinates, and with `peaks=True` also the (N, J) heatmap peak
    probabilities (the engine's onnxruntime form uses those for the pose score).
    """

    def __init__(
        self,
        net: PoseNetwork,
        input_form: str = "published",
        fp16: bool = False,
        peaks=False,
        pixel_scale: float = 1.0,
    ):
        super().__init__()
        if input_form not in INPUT_FORMS:
            raise ValueError(f"input form must be one of {', '.join(INPUT_FORMS)}")
        self.uint8 = input_form == "uint8-bgr"
        self.pixel_scale = pixel_scale
        self.body = fuse_with_input(net, pixel_scale) if self.uint8 else fuse(net)
        self.dtype = torch.float16 if fp16 else torch.float32
        self.body = self.body.to(self.dtype).eval()
        self.joints, self.bins = net.arch.joint_num, net.arch.depth_dim
        self.peaks = peaks

    def forward(self, x: torch.Tensor):
        if self.uint8:
            x = x.permute(0, 3, 1, 2)
        coords, peaks = soft_argmax_peak(self.body(x.to(self.dtype)), self.joints, self.bins)
        return (coords, peaks) if self.peaks else coords


def example_input(
    arch, input_form: str, batch: int, seed: int = 0, pixel_scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 BGR crops and the same images in `input_form` (numpy)."""
    h, w = arch.input_size
    crops = np.random.default_rng(seed).integers(0, 256, (batch, h, w, 3), dtype=np.uint8)
    if input_form == "uint8-bgr":
        return crops, crops
    return crops, bgr_to_input(crops, pixel_scale).numpy()


def metadata(
    ident: Identification, input_form: str, fp16: bool, convention: InputConvention
) -> dict[str, str]:
    """What a user of the file needs to feed it and read its output (ONNX metadata_props)."""
    from posescope import __version__

    arch = ident.arch
    assert arch is not None
    js = ident.joint_set
    shape = "N,H,W,3 uint8 BGR" if input_form == "uint8-bgr" else "N,3,H,W float32 RGB"
    scale = "1" if convention.scale == "0-255" else "1/255"
    normalised = (
        "no: raw 0..255 BGR (the input convention is inside the graph)"
        if input_form == "uint8-bgr"
        else f"yes: (pixel * {scale} - mean) / std, pixel in 0..255, RGB"
    )
    return {
        "producer": f"posescope {__version__}",
        "family": ident.family,
        "variant": ident.variant or ident.title,
        "title": ident.title,
        "joint_set": js.name if js else "",
        "joint_names": json.dumps(list(js.joints) if js else []),
        "skeleton": json.dumps([list(b) for b in js.bones] if js else []),
        "flip_pairs": json.dumps([list(p) for p in js.flip_pairs] if js else []),
        "root_joint": str(js.root if js else 0),
        "depth_bins": str(arch.depth_dim),
        "input_size": json.dumps(list(arch.input_size)),
        "heatmap_size": json.dumps(list(arch.output_size)),
        "input": input_form,
        "input_layout": shape,
        "mean": json.dumps(list(IMAGENET_MEAN)),
        "std": json.dumps(list(IMAGENET_STD)),
        "input_scale": convention.scale,
        "pixel_scale": scale,
        "input_convention": convention.describe(),
        "normalised": normalised,
        "output": "coords (N,J,3): x,y in heatmap pixels, z in depth bins (soft-argmax)",
        "fp16": str(bool(fp16)).lower(),
    }


@contextlib.contextmanager
def _quiet():
    """torch's exporters print progress and log guard failures they recover from."""
    names = ("torch._guards", "torch.export", "torch.onnx", "torch._dynamo", "torch.fx")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _example(module: ExportableNetwork, arch) -> torch.Tensor:
    # batch 2: an example of batch 1 lets the tracer specialise the batch to 1
    form = "uint8-bgr" if module.uint8 else "published"
    _, x = example_input(arch, form, 2, pixel_scale=module.pixel_scale)
    return torch.from_numpy(np.asarray(x))


def to_torch_export(module: ExportableNetwork, arch) -> torch.export.ExportedProgram:
    """A torch.export program of the module, batch dynamic."""
    batch = torch.export.Dim.DYNAMIC
    with _quiet(), torch.no_grad():
        return torch.export.export(module, (_example(module, arch),), dynamic_shapes=({0: batch},))


def to_onnx(
    module: ExportableNetwork, arch, opset: int = DEFAULT_OPSET, meta: dict[str, str] | None = None
) -> bytes:
    """The module as an ONNX model (bytes), batch dynamic, through torch's torch.export-based
    exporter (the TorchScript-based one is deprecated)."""
    names = ["coords", "peaks"] if module.peaks else ["coords"]
    try:
        with _quiet(), torch.no_grad():
            program = torch.onnx.export(
                module,
                (_example(module, arch),),
                None,
                dynamo=True,
                input_names=["crops" if module.uint8 else "image"],
                output_names=names,
                dynamic_shapes=({0: torch.export.Dim.DYNAMIC},),
                opset_version=opset,
                verbose=False,
            )
    except Exception as exc:  # the exporter's errors are long; the first line says what
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ExportError(f"ONNX export failed ({type(exc).__name__}: {first})") from exc
    assert program is not None
    for key, value in (meta or {}).items():
        program.model.metadata_props[key] = value
    import onnx_ir

    return onnx_ir.to_proto(program.model).SerializeToString()


def run_onnx_file(path: Path, x: np.ndarray) -> np.ndarray:
    """The coordinates an ONNX file gives with onnxruntime on the CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def run_torch_export_file(path: Path, x: np.ndarray) -> np.ndarray:
    """The coordinates a saved torch.export program gives (loaded back from the file)."""
    with _quiet(), torch.no_grad():
        program = torch.export.load(str(path))
        return program.module()(torch.from_numpy(np.asarray(x))).numpy()


def check_file(
    path: Path,
    net: PoseNetwork,
    arch,
    input_form: str,
    run_file: Callable[[Path, np.ndarray], np.ndarray],
    pixel_scale: float = 1.0,
) -> float:
    """Largest |file - engine| in heatmap units over random crops at CHECK_BATCHES; the
    engine is PoseScope's torch form on the CPU, fp32 (independent of onnxruntime)."""
    worst = 0.0
    # the reference: the torch engine, not onnxruntime
    engine = InferenceModel(net, "cpu", backend="torch", pixel_scale=pixel_scale)
    for i, batch in enumerate(CHECK_BATCHES):
        crops, x = example_input(arch, input_form, batch, seed=100 + i, pixel_scale=pixel_scale)
        got = np.asarray(run_file(path, x), dtype=np.float64)
        want = engine(crops).cpu().numpy().astype(np.float64)
        if got.shape != want.shape:
            raise ExportError(f"the file gives shape {got.shape}, the engine {want.shape}")
        worst = max(worst, float(np.abs(got - want).max()))
    return worst


def _check_or_remove(
    written: ExportResult,
    net: PoseNetwork,
    run_file: Callable[[Path, np.ndarray], np.ndarray],
    *,
    cannot_run: str,
    pixel_scale: float,
) -> ExportResult:
    """Check a written file (`written`, its difference not measured yet: NaN) against the
    engine (`check_file`); keep it only if it runs and agrees within the tolerance, else
    remove it and raise ExportError (`cannot_run` words a file the runtime could not run)."""
    path = written.path
    try:
        diff = check_file(path, net, net.arch, written.input_form, run_file, pixel_scale)
    except Exception as exc:
        with contextlib.suppress(OSError):
            os.remove(path)
        if isinstance(exc, ExportError):
            raise
        raise ExportError(f"{cannot_run} ({type(exc).__name__}: {exc})") from exc
    result = replace(written, max_abs_diff=diff)
    if not result.passed:
        with contextlib.suppress(OSError):
            os.remove(path)
        raise ExportError(
            f"largest difference to the engine {result.max_abs_diff:.2e} heatmap units exceeds "
            f"{result.tolerance:g}; the file was removed"
        )
    return result


def _require_pose(ident: Identification) -> None:
    if not ident.is_pose or ident.arch is None:
        raise ExportError(f"not a pose network ({ident.title})")


def export_onnx(
    net: PoseNetwork,
    ident: Identification,
    out: str | Path,
    input_form: str = "published",
    fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    tolerance: float | None = None,
    input_scale: str = "auto",
) -> ExportResult:
    """Write `out` (ONNX with metadata), run it with onnxruntime against the engine, keep it
    only if it agrees within `tolerance` heatmap units (else remove it, ExportError).
    `input_scale`: "auto" (what the file's statistics tell, `ident.input`), "0-255" or "0-1"."""
    _require_pose(ident)
    arch = net.arch
    tolerance = tolerance if tolerance is not None else (TOLERANCE_FP16 if fp16 else TOLERANCE)
    convention = chosen(input_scale, ident.input)
    module = ExportableNetwork(net, input_form, fp16, pixel_scale=convention.pixel_scale)
    data = to_onnx(module, arch, opset, metadata(ident, input_form, fp16, convention))
    path = Path(out)
    path.write_bytes(data)
    return _check_or_remove(
        ExportResult(path, "onnx", input_form, fp16, float("nan"), tolerance),
        net,
        run_onnx_file,
        cannot_run="onnxruntime could not run the file",
        pixel_scale=convention.pixel_scale,
    )


def export_torch(
    net: PoseNetwork,
    ident: Identification,
    out: str | Path,
    input_form: str = "published",
    fp16: bool = False,
    tolerance: float | None = None,
    input_scale: str = "auto",
) -> ExportResult:
    """Write `out` (a torch.export program, .pt2), load it back, check it like export_onnx."""
    _require_pose(ident)
    arch = net.arch
    tolerance = tolerance if tolerance is not None else (TOLERANCE_FP16 if fp16 else TOLERANCE)
    convention = chosen(input_scale, ident.input)
    module = ExportableNetwork(net, input_form, fp16, pixel_scale=convention.pixel_scale)
    try:
        program = to_torch_export(module, arch)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ExportError(f"torch.export failed ({type(exc).__name__}: {first})") from exc
    path = Path(out)
    extra = {"posescope.json": json.dumps(metadata(ident, input_form, fp16, convention))}
    with _quiet():
        torch.export.save(program, str(path), extra_files=extra)
    return _check_or_remove(
        ExportResult(path, "torch-export", input_form, fp16, float("nan"), tolerance),
        net,
        run_torch_export_file,
        cannot_run="the program could not run",
        pixel_scale=convention.pixel_scale,
    )


def run_export(args) -> int:
    """`posescope export CKPT --onnx OUT / --torch-export OUT.pt2`: 0 written and checked."""
    import sys

    from posescope.core.checkpoint import CheckpointError, open_checkpoint
    from posescope.core.cli import _error_line
    from posescope.core.identify import identify_checkpoint
    from posescope.core.model import ModelLoadError, build_model, load_weights

    if not args.onnx and not args.torch_export:
        print("error: export: give --onnx OUT.onnx and/or --torch-export OUT.pt2", file=sys.stderr)
        return 1
    try:
        ckpt = open_checkpoint(args.checkpoint, trust=args.trust)
        ident = identify_checkpoint(ckpt)
        if not ident.is_pose or ident.arch is None:
            raise ValueError(f"{ident.title}: not a pose network (nothing to export)")
        net = cast(PoseNetwork, build_model(ident.arch))  # a pose family: RootNet has no export
        load_weights(net, ckpt.state_dict)
    except (CheckpointError, ModelLoadError, OSError, ValueError) as exc:
        print(_error_line(args.checkpoint, exc), file=sys.stderr)
        return 1
    jobs = [(args.onnx, "onnx"), (args.torch_export, "torch-export")]
    for out, kind in jobs:
        if not out:
            continue
        try:
            if kind == "onnx":
                r = export_onnx(
                    net, ident, out, args.input, args.fp16, args.opset,
                    input_scale=args.input_scale,
                )  # fmt: skip
            else:
                r = export_torch(
                    net, ident, out, args.input, args.fp16, input_scale=args.input_scale
                )
        except (ExportError, OSError) as exc:
            print(f"error: {out}: {exc}", file=sys.stderr)
            return 1
        precision = "fp16" if r.fp16 else "fp32"
        convention = chosen(args.input_scale, ident.input)
        print(
            f"wrote {r.path} ({kind}, {ident.title}, input {r.input_form}, {precision}, "
            f"input scale {convention.scale}: {convention.how}); "
            f"largest difference to the engine {r.max_abs_diff:.2e} heatmap units "
            f"(limit {r.tolerance:g})"
        )
    return 0
