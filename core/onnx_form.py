"""The engine's second inference form: the network exported to ONNX in memory, run by
onnxruntime (`--backend onnxruntime`).

The model is the one `posescope export --input uint8-bgr` writes (folded BatchNorm,
normalisation in the first convolution, soft-argmax in the graph), with a second output, the
heatmap peaks, for the pose score. It takes the crops as the engine does, (N, H, W, 3) uint8
BGR, and uses onnxruntime's CUDA provider on a CUDA device where onnxruntime has one, its CPU
provider otherwise. Which backend is the default on which device is decided by measurement
(`DEFAULT_BACKEND`, benchmarks/RESULTS.md).
"""

from __future__ import annotations

import numpy as np
import torch

from posescope.core.families.network import PoseNetwork

BACKENDS = ("torch", "onnxruntime")
# Measured (benchmarks/backends.py, RESULTS.md ▸ Backends), on a quiet 2-core Xeon: onnxruntime
# takes 0.91-0.98x the torch engine's time per call at 2 threads and 0.79-0.81x at 1 thread
# (XS, M, L, batch 1), and 0.71x per frame end to end on a video (M, `posescope bench`): it is
# the CPU default. Its one-off export (2-4 s) is kept in a disk cache (core/onnx_cache.py).
# On a GPU not measured yet (and the PyPI onnxruntime has no CUDA provider): torch stays.
DEFAULT_BACKEND = {"cpu": "onnxruntime", "cuda": "torch", "mps": "torch"}


def default_backend(device: torch.device) -> str:
    return DEFAULT_BACKEND.get(device.type, "torch")


def choose_backend(device: torch.device, requested: str = "auto", compile: bool = False) -> str:
    """The backend a model is built with: the one asked for, or for "auto" the one measured
    faster on the device, unless that cannot be (onnxruntime not installed, or torch.compile
    asked for: a torch form)."""
    if requested != "auto":
        if requested not in BACKENDS:
            raise ValueError(f"backend must be auto, {' or '.join(BACKENDS)}")
        return requested
    if compile:
        return "torch"
    preferred = default_backend(device)
    if preferred == "onnxruntime" and not available():
        return "torch"
    return preferred


def available() -> bool:
    """Whether onnxruntime (and torch's ONNX exporter's needs) can be imported."""
    try:
        import onnx_ir  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


class OnnxRuntimeForm:
    """A pose network as an onnxruntime session: crops -> (coords, peaks) numpy arrays."""

    def __init__(
        self, net: PoseNetwork, device: torch.device, fp16: bool = False, pixel_scale: float = 1.0
    ):
        if not available():
            raise RuntimeError(
                "the onnxruntime backend needs the onnxruntime, onnx and onnxscript packages"
            )
        import onnxruntime as ort

        from posescope.core import onnx_cache
        from posescope.core.network_export import ExportableNetwork, to_onnx

        module = ExportableNetwork(net, "uint8-bgr", fp16=fp16, peaks=True, pixel_scale=pixel_scale)
        cuda = device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers()
        providers: list[str | tuple[str, dict[str, int]]] = ["CPUExecutionProvider"]
        if cuda:
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if device.type == "cpu":
            # the same cores torch would use, not onnxruntime's own guess; and no spinning
            # after a call: its idle threads would otherwise burn the cores the video decoder
            # (and, in the benchmark, the torch form timed next) needs
            options.intra_op_num_threads = torch.get_num_threads()
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        key = onnx_cache.model_key(
            net.state_dict(), ("uint8-bgr", fp16, "peaks", net.arch, f"pixels*{pixel_scale!r}")
        )
        session, self.from_cache = onnx_cache.cached_session(
            key,
            lambda: to_onnx(module, net.arch),
            lambda data: ort.InferenceSession(data, options, providers=providers),
        )
        self.session = session
        self.provider = self.session.get_providers()[0]
        self.input_name = self.session.get_inputs()[0].name

    @property
    def name(self) -> str:
        """'onnxruntime' on the CPU provider, 'onnxruntime-cuda' on the CUDA one."""
        return "onnxruntime-cuda" if self.provider.startswith("CUDA") else "onnxruntime"

    def __call__(self, crops: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(N, H, W, 3) uint8 BGR -> (N, J, 3) coordinates, (N, J) peaks (float32)."""
        x = crops.numpy() if isinstance(crops, torch.Tensor) else np.ascontiguousarray(crops)
        coords, peaks = self.session.run(None, {self.input_name: x})
        return coords, peaks
