"""Person detection with an ONNX detector on onnxruntime (RTMDet, YOLOX), our own reader of the
mmdeploy "end2end" contract (docs/detectors.md, rtmlib's readers):

- input `input` (1, 3, H, W) float32 BGR; the frame is letterboxed to the top-left corner
  (ratio = min(H / h, W / w), padding 114), then normalised per model (RTMDet: mean/std;
  YOLOX: raw 0-255);
- outputs either `dets` (1, N, 5) x1, y1, x2, y2, score in input pixels (NMS done) with
  `labels` (1, N), or the raw YOLOX head (1, A, 4 + 1 + C) decoded here over the stride 8 / 16 /
  32 grids (objectness x class score, then NMS).

Only class 0 (person) is kept, and our own score threshold is honoured on both forms.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posescope.core.detection.base import Detection, DetectorError, ImageDetector

log = logging.getLogger(__name__)

PAD_VALUE = 114
STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class Preprocess:
    """How a detector wants its input: (H, W) when the ONNX file does not say, and the
    per-channel (BGR) mean and std, or None for raw 0-255 values."""

    input_size: tuple[int, int]
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None


RTMDET = Preprocess((320, 320), (103.53, 116.28, 123.675), (57.375, 57.12, 58.395))
YOLOX = Preprocess((416, 416))


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """`image` scaled by ratio = min(H / h, W / w) into the top-left of an (H, W, 3) canvas
    of 114; returns (canvas, ratio). Frame pixels = input pixels / ratio."""
    in_h, in_w = size
    h, w = image.shape[:2]
    ratio = min(in_h / h, in_w / w)
    rw, rh = min(in_w, max(1, int(w * ratio))), min(in_h, max(1, int(h * ratio)))
    canvas = np.full((in_h, in_w, 3), PAD_VALUE, np.uint8)
    canvas[:rh, :rw] = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR)
    return canvas, ratio


def nms_xyxy(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy non-maximum suppression of (N, 4) x1, y1, x2, y2 boxes; indices kept, best first."""
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = iw * ih
        union = areas[i] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        order = rest[iou <= iou_threshold]
    return keep


def decode_yolox(raw: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Raw YOLOX head (A, 5 + C) -> (A, 4) x1, y1, x2, y2 boxes in input pixels and (A,)
    person scores (objectness x class 0)."""
    in_h, in_w = size
    grids, strides = [], []
    for s in STRIDES:
        gy, gx = np.mgrid[0 : in_h // s, 0 : in_w // s]
        grids.append(np.stack([gx.ravel(), gy.ravel()], axis=1))
        strides.append(np.full((gx.size, 1), s))
    grid = np.concatenate(grids).astype(np.float32)
    stride = np.concatenate(strides).astype(np.float32)
    if len(grid) != len(raw):
        raise DetectorError(
            f"raw YOLOX output has {len(raw)} anchors, a {in_w}x{in_h} input has {len(grid)}"
        )
    xy = (raw[:, :2] + grid) * stride
    wh = np.exp(np.minimum(raw[:, 2:4], 20.0)) * stride
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
    return boxes, raw[:, 4] * raw[:, 5]


def _providers(device: str) -> list[str]:
    """CUDA when onnxruntime-gpu is installed and a GPU is there (or asked for), else CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device != "cpu" and "CUDAExecutionProvider" in available:
        if device == "cuda":
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        try:
            import torch

            if torch.cuda.is_available():
                return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        except ImportError:  # pragma: no cover - torch is a dependency
            pass
    return ["CPUExecutionProvider"]


class OnnxDetector(ImageDetector):
    """A person detector read from an mmdeploy-style ONNX file (see the module docstring).

    `threads`: onnxruntime's intra-op threads (the pipeline's share of the cores), spinning
    off so that idle detector threads do not burn the cores the pose network needs.
    """

    def __init__(
        self,
        path: str | Path,
        preprocess: Preprocess,
        *,
        name: str = "onnx",
        min_score: float = 0.3,
        nms_iou: float = 0.45,
        threads: int = 1,
        device: str = "auto",
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise DetectorError("onnxruntime is not installed (pip install onnxruntime)") from exc
        self.path = Path(path)
        self.name = name
        self.min_score = float(min_score)
        self.nms_iou = float(nms_iou)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=opts, providers=_providers(device)
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            msg = f"{self.path}: not an ONNX detector onnxruntime can load: {first}"
            raise DetectorError(msg) from None
        self.provider = self.session.get_providers()[0]
        inp = self.session.get_inputs()[0]
        self._input_name = inp.name
        shape = list(inp.shape)
        if len(shape) != 4 or shape[1] not in (3, "3"):
            raise DetectorError(f"{self.path}: input {inp.name} is {shape}, not (1, 3, H, W)")
        fixed = [d if isinstance(d, int) and d > 0 else None for d in shape[2:]]
        self.input_size: tuple[int, int] = (
            (fixed[0], fixed[1]) if None not in fixed else preprocess.input_size  # type: ignore[assignment]
        )
        self._mean = (
            None if preprocess.mean is None else np.array(preprocess.mean, dtype=np.float32)
        )
        self._std = None if preprocess.std is None else np.array(preprocess.std, dtype=np.float32)
        self._outputs = [o.name for o in self.session.get_outputs()]

    def _input(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        canvas, ratio = letterbox(image, self.input_size)
        x = canvas.astype(np.float32)
        if self._mean is not None and self._std is not None:
            x = (x - self._mean) / self._std
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), ratio

    def raw_boxes(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes (N, 4) x1, y1, x2, y2 in frame pixels and their scores (N,), above
        `min_score`, after NMS, best first (unclipped)."""
        x, ratio = self._input(image)
        outs = self.session.run(self._outputs, {self._input_name: x})
        named = dict(zip(self._outputs, outs, strict=True))
        first = np.asarray(outs[0], np.float32)
        if "dets" in named or (first.ndim == 3 and first.shape[-1] == 5):
            dets = np.asarray(named.get("dets", first), np.float32).reshape(-1, 5)
            labels = named.get("labels")
            if labels is None and len(outs) > 1:
                labels = outs[1]
            keep = dets[:, 4] >= self.min_score
            if labels is not None:
                keep &= np.asarray(labels).reshape(-1)[: len(dets)] == 0
            boxes, scores = dets[keep, :4], dets[keep, 4]
            order = np.argsort(-scores, kind="stable")
            boxes, scores = boxes[order], scores[order]
        elif first.ndim == 3 and first.shape[-1] > 5:
            boxes, scores = decode_yolox(first[0], self.input_size)
            keep = scores >= self.min_score
            boxes, scores = boxes[keep], scores[keep]
            idx = nms_xyxy(boxes, scores, self.nms_iou)
            boxes, scores = boxes[idx], scores[idx]
        else:
            raise DetectorError(
                f"{self.path}: outputs {[np.shape(o) for o in outs]} are neither "
                "dets/labels nor a raw YOLOX head"
            )
        return boxes / ratio, scores

    def detect_bgr(self, image: np.ndarray) -> list[Detection]:
        """People in a BGR image: Detection((x, y, w, h), score), best first, clipped to it."""
        h, w = image.shape[:2]
        boxes, scores = self.raw_boxes(image)
        out = []
        for (x1, y1, x2, y2), s in zip(boxes.tolist(), scores.tolist(), strict=True):
            x1, x2 = min(max(x1, 0.0), w), min(max(x2, 0.0), w)
            y1, y2 = min(max(y1, 0.0), h), min(max(y2, 0.0), h)
            if x2 - x1 >= 2 and y2 - y1 >= 2:
                out.append(Detection((x1, y1, x2 - x1, y2 - y1), float(s)))
        return out
