"""`InferenceModel`: a loaded pose network in its fastest form for the device.

The forms: the oneDNN program (CPU ConvNeXtPose, core/inference/onednn.py), the folded network
traced for TorchScript's optimize_for_inference (other CPU networks), the folded network
(GPU, fp16), torch.compile (opt-in), onnxruntime (core/onnx_form.py).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch
from torch import nn

from posescope.core.families.descriptor import Architecture
from posescope.core.families.network import PoseNetwork, soft_argmax_peak
from posescope.core.inference.device import keep_freed_memory, resolve_device
from posescope.core.inference.fold import fuse_with_input
from posescope.core.inference.onednn import _onednn_form, _OneDNNConvNeXtPose
from posescope.core.variants import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)


def _optimize_cpu(folded: nn.Module, arch: Architecture) -> nn.Module:
    """The TorchScript form: the folded network traced and handed to optimize_for_inference."""
    h, w = arch.input_size
    example = torch.zeros(1, h, w, 3).permute(0, 3, 1, 2)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.optimize_for_inference(torch.jit.trace(folded.eval(), example))
    except Exception:  # an op the tracer or oneDNN cannot take: the eager folded form runs
        return folded


def bgr_to_input(crops: torch.Tensor | np.ndarray, pixel_scale: float = 1.0) -> torch.Tensor:
    """(N, H, W, 3) uint8 BGR crops -> (N, 3, H, W) float RGB, (pixel * pixel_scale - mean) /
    std: pixel_scale 1 is the published input (0..255 values, ImageNet mean/std), 1/255 the
    0..1 one (core/families/input_convention.py)."""
    t = torch.as_tensor(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().flip(1)
    t = t * pixel_scale
    mean = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    return (t - mean) / std


# Where fp16=True takes effect (CPU half convolutions are slower than fp32 ones).
_HALF_DEVICES: tuple[str, ...] = ("cuda", "mps")


class InferenceModel:
    """A loaded pose network in its fast form.

    Takes the crops as they come out of cv2.warpAffine, (N, H, W, 3) uint8 BGR: a permute of
    that is already channels-last NCHW, and the normalisation lives in the first conv, so no
    pre-processing pass over the pixels is needed. Returns (N, J, 3) heatmap coordinates.
    `pixel_scale` is the input convention the weights expect (1: the published 0..255 input,
    1/255: 0..1; core/families/input_convention.py), folded in with the ImageNet mean/std.

    On CPU, a ConvNeXtPose runs as `_OneDNNConvNeXtPose`: oneDNN convolutions with weights
    packed once, ReLU and residual adds fused into them, channels-last throughout, and the
    heatmap layer as one GEMM whose output the soft-argmax reads in place; TorchScript-compiled
    to cut per-call overhead. It is checked against the folded network when built. Where it
    cannot run (no oneDNN, a network without head layers, the check fails) and for 3DMPPE
    PoseNet, the folded network is traced and handed to `torch.jit.optimize_for_inference`;
    should tracing fail, the eager folded form runs. `form` names the one in use. fp16
    applies on GPU devices only (CPU half convolutions are slower).

    `backend="onnxruntime"` runs the network through onnxruntime instead (core/onnx_form.py);
    "auto" takes the backend measured faster on the device (`onnx_form.choose_backend`: on a
    CPU onnxruntime, unless `compile`), and the torch engine should that one fail to build
    (`backend_note` says why).

    `compile=True` hands the folded network to `torch.compile` (inductor, with freezing on
    CPU) instead; it compiles for ~20 s on first use, needs a C++ compiler on CPU and is no
    faster than the oneDNN form on the CPU benchmark (benchmarks/RESULTS.md). If compiling
    fails, the default form runs and `compile_error` says why.
    """

    def __init__(
        self,
        net: PoseNetwork,
        device: str = "auto",
        fp16: bool = False,
        optimize: bool = True,
        compile: bool = False,
        backend: str = "auto",
        pixel_scale: float = 1.0,
    ):
        self.arch = net.arch
        self.pixel_scale = float(pixel_scale)
        self.device = resolve_device(device)
        self.fp16 = bool(fp16) and self.device.type in _HALF_DEVICES
        self.dtype = torch.float16 if self.fp16 else torch.float32
        # Module.to takes memory_format at run time; torch's stubs leave it out of the overloads.
        folded = fuse_with_input(net, self.pixel_scale).to(  # type: ignore[call-overload]
            self.device, self.dtype, memory_format=torch.channels_last
        )
        self.net: nn.Module = folded
        self.optimized = False
        self.compiled = False
        self.compile_error: str | None = None
        if self.device.type == "cpu":
            keep_freed_memory()
        # the onnxruntime form (core/onnx_form.py) or this module's torch forms
        from posescope.core import onnx_form

        self.backend = onnx_form.choose_backend(self.device, backend, compile)
        self.backend_note: str | None = None  # why "auto" did not get its first choice
        self._ort: onnx_form.OnnxRuntimeForm | None = None
        if self.backend == "onnxruntime":
            try:
                self._ort = onnx_form.OnnxRuntimeForm(net, self.device, self.fp16, self.pixel_scale)
            except Exception as exc:  # asked for by name: the caller says why; auto: torch
                if backend != "auto":
                    raise
                self.backend = "torch"
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                self.backend_note = (
                    f"the onnxruntime form could not be built ({type(exc).__name__}: {first});"
                    " the torch engine runs"
                )
                log.warning("%s", self.backend_note)
            else:
                self.form = self._ort.name
                return
        if compile:
            self.compile_error = self._try_compile(folded)
            if self.compiled:
                self.form = "compiled"
                return
        if optimize and self.device.type == "cpu" and not self.fp16:
            fast = _onednn_form(folded, self.arch)
            self.net = fast if fast is not None else _optimize_cpu(folded, self.arch)
            self.optimized = self.net is not folded
        self.form = (
            "onednn"
            if isinstance(self.net, _OneDNNConvNeXtPose)
            else ("torchscript" if self.optimized else "folded")
        )

    def _try_compile(self, folded: nn.Module) -> str | None:
        """Compile now (first call), so that failures surface here and not mid-video."""
        if self.device.type == "cpu":
            # Freezing (constant weights: prepacked, folded into the graph). Set globally: as a
            # per-call `options` entry it was measured not to take effect (10% slower).
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True
        joints, bins = self.arch.joint_num, self.arch.depth_dim

        def forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            # one graph from the uint8 view to the coordinates: the dtype conversion and the
            # soft-argmax reductions fuse with the network's last ops
            return soft_argmax_peak(folded(x.to(self.dtype)), joints, bins)

        try:
            self._compiled_forward = torch.compile(forward)
            self.compiled = True
            self.warmup(batch=1, iters=1)
        except Exception as exc:  # no compiler, unsupported backend: the default form runs
            self.net, self.compiled = folded, False
            return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return None

    def _prepare(self, crops: torch.Tensor | np.ndarray, convert: bool = True) -> torch.Tensor:
        t = torch.as_tensor(crops)
        if self.device.type != "cpu":
            t = t.pin_memory() if torch.cuda.is_available() else t
            t = t.to(self.device, non_blocking=True)
        t = t.permute(0, 3, 1, 2)  # channels-last view of the crops, no copy
        return t.to(self.dtype) if convert else t

    @torch.inference_mode()
    def heatmaps(self, crops: torch.Tensor | np.ndarray) -> torch.Tensor:
        return self.net(self._prepare(crops))

    @torch.inference_mode()
    def __call__(self, crops: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(N, H, W, 3) uint8 BGR -> (N, J, 3) float32 on the model's device."""
        return self.coords_and_peaks(crops)[0]

    @torch.inference_mode()
    def coords_and_peaks(
        self, crops: torch.Tensor | np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, J, 3) coordinates and (N, J) heatmap peak probabilities (see soft_argmax_peak)."""
        if self._ort is not None:
            coords, peaks = self._ort(torch.as_tensor(crops).cpu())
            return torch.from_numpy(coords).to(self.device), torch.from_numpy(peaks).to(self.device)
        if self.compiled:
            return self._compiled_forward(self._prepare(crops, convert=False))
        return soft_argmax_peak(self.heatmaps(crops), self.arch.joint_num, self.arch.depth_dim)

    def warmup(self, batch: int = 1, iters: int = 2) -> None:
        h, w = self.arch.input_size
        x = np.zeros((batch, h, w, 3), np.uint8)
        for _ in range(iters):
            self(x)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
