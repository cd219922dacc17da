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
# Measured (benchmarks/backends.py, RESULTS.md): on the CPU the torch engine's oneDNN form is
# as fast or faster than onnxruntime at batch 1; on a GPU not measured yet, so torch stays.
DEFAULT_BACKEND = {"cpu": "torch", "cuda": "torch", "mps": "torch"}


def default_backend(device: torch.device) -> str:
    return DEFAULT_BACKEND.get(device.type, "torch")


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

    def __init__(self, net: PoseNetwork, device: torch.device, fp16: bool = False):
        if not available():
            raise RuntimeError(
                "the onnxruntime backend needs the onnxruntime, onnx and onnxscript packages"
            )
        import onnxruntime as ort

        from posescope.core.network_export import ExportableNetwork, to_onnx

        module = ExportableNetwork(net, "uint8-bgr", fp16=fp16, peaks=True)
        model = to_onnx(module, net.arch)
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
        self.session = ort.InferenceSession(model, options, providers=providers)
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
