"""Frames + boxes -> 2D and 3D poses, with the published demo's conventions.

Stages (each timed): crop (box sanitising, square x1.25 box, affine warp to the input size),
model (fast inference form, batch of every person in the frame), decode (soft-argmax
coordinates -> image pixels by the inverse affine, depth bins -> mm, pixels -> camera mm).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import cv2
import numpy as np
import torch

from posescope.core.checkpoint import LoadedCheckpoint, open_checkpoint
from posescope.core.families.descriptor import Identification
from posescope.core.families.input_convention import InputConvention, chosen
from posescope.core.families.network import PoseNetwork
from posescope.core.families.rootnet import RootNetwork
from posescope.core.identify import identify_checkpoint
from posescope.core.inference.device import resolve_device
from posescope.core.inference.model import InferenceModel, bgr_to_input
from posescope.core.model import build_model, load_weights
from posescope.core.types import Frame, FramePoses, PersonPose
from posescope.core.variants import BBOX_3D_MM, BOX_SCALE, DEFAULT_FOCAL

if TYPE_CHECKING:
    from posescope.core.person import PersonTracker
    from posescope.core.smoothing import PoseSmoother
    from posescope.core.sources.base import Source
    from posescope.core.variants import JointSet

Box = tuple[float, float, float, float]


# ----------------------------------------------------------------------------- geometry


def process_bbox(
    box: Sequence[float], width: int, height: int, aspect: float = 1.0
) -> np.ndarray | None:
    """The published box treatment: clip to the image, grow to the input's aspect ratio
    around the centre, enlarge by 1.25. Returns (x, y, w, h) or None for an empty box."""
    x, y, w, h = (float(v) for v in box)
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1.0))
    if not (w * h > 0 and x2 >= x1 and y2 >= y1):
        return None
    w, h = x2 - x1, y2 - y1
    cx, cy = x1 + w / 2.0, y1 + h / 2.0
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    w, h = w * BOX_SCALE, h * BOX_SCALE
    if w <= 0 or h <= 0:
        return None
    return np.array([cx - w / 2.0, cy - h / 2.0, w, h])


def crop_transform(box: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """2x3 affine mapping the box centre to the patch centre, centre + (0, h/2) to the middle
    of the bottom edge and centre + (w/2, 0) to the middle of the right edge (as published)."""
    cx, cy = box[0] + box[2] / 2.0, box[1] + box[3] / 2.0
    src = np.array([[cx, cy], [cx, cy + box[3] / 2.0], [cx + box[2] / 2.0, cy]], np.float32)
    dst = np.array(
        [[out_w / 2.0, out_h / 2.0], [out_w / 2.0, out_h], [out_w, out_h / 2.0]], np.float32
    )
    return cv2.getAffineTransform(src, dst)


def root_depth_prior(box: np.ndarray, focal: Sequence[float]) -> float:
    """k = sqrt(2000 * 2000 * fx * fy / area) of the processed box, in mm."""
    area = float(box[2] * box[3])
    return math.sqrt(BBOX_3D_MM * BBOX_3D_MM * focal[0] * focal[1] / area)


def pixel_to_camera(
    uvz: np.ndarray, focal: Sequence[float], principal: Sequence[float]
) -> np.ndarray:
    """(..., 3) u, v px and Z mm -> X, Y, Z mm in camera space."""
    out = np.empty_like(uvz)
    out[..., 0] = (uvz[..., 0] - principal[0]) / focal[0] * uvz[..., 2]
    out[..., 1] = (uvz[..., 1] - principal[1]) / focal[1] * uvz[..., 2]
    out[..., 2] = uvz[..., 2]
    return out


# ----------------------------------------------------------------------------- estimator


@dataclass
class EstimatorConfig:
    """How to run: device, precision, flip test, camera, root depth, head overrides."""

    device: str = "auto"
    fp16: bool = False
    flip: bool = False
    focal: tuple[float, float] = (DEFAULT_FOCAL, DEFAULT_FOCAL)
    principal: tuple[float, float] | None = None  # default: the image centre
    root_depth_mm: float | None = None  # fixed root depth; else RootNet; else the box prior
    upsample: tuple[bool, ...] | None = None  # override the head's upsampling convention
    input_size: tuple[int, int] | None = None  # override the input (h, w)
    compile: bool = False  # torch.compile (inductor); ~20 s to compile; on CPU slower than default
    backend: str = "auto"  # torch | onnxruntime | auto (the faster on the device, measured)
    # the pixel scale the weights expect: auto (read from the file: core/families/
    # input_convention.py) | 0-255 (the published input) | 0-1 (pixels / 255)
    input_scale: str = "auto"


@dataclass
class Crops:
    """Pre-processed people of one frame: the network input and how to map back."""

    patches: np.ndarray  # (N, H, W, 3) uint8 BGR
    transforms: np.ndarray  # (N, 2, 3) image -> patch
    boxes: np.ndarray  # (N, 4) processed boxes (square, x1.25)
    ids: list[int] = field(default_factory=list)
    given: list[Box] = field(default_factory=list)


class RootDepthModel:
    """A loaded 3DMPPE RootNet: crops -> absolute root depth in mm."""

    def __init__(self, ckpt: LoadedCheckpoint, ident: Identification, device: torch.device):
        assert ident.arch is not None and ident.family == "rootnet"
        net = build_model(ident.arch)
        load_weights(net, ckpt.state_dict)
        self.ident = ident
        self.device = device
        self.net: RootNetwork = net.to(device)  # type: ignore[assignment]
        # its own file's convention (the RootNet release crops and normalises as PoseNet)
        self.input = chosen("auto", ident.input)

    @torch.inference_mode()
    def __call__(
        self, patches: np.ndarray, boxes: np.ndarray, focal: Sequence[float]
    ) -> np.ndarray:
        k = np.array([root_depth_prior(b, focal) for b in boxes], np.float32)
        x = bgr_to_input(patches, self.input.pixel_scale).to(self.device)
        out = self.net(x, torch.from_numpy(k).to(self.device))
        return out[:, 2].cpu().numpy().astype(np.float64)


class Estimator:
    """One pose network, ready to run on frames with given person boxes."""

    def __init__(
        self,
        model: InferenceModel,
        ident: Identification,
        config: EstimatorConfig,
        input_convention: InputConvention | None = None,
    ):
        self.model = model
        self.ident = ident
        self.config = config
        # the input the network is fed (what the file says, or the user's choice)
        self.input = input_convention or chosen(config.input_scale, ident.input)
        self.arch = model.arch
        joint_set = ident.joint_set
        assert joint_set is not None
        self.joint_set: JointSet = joint_set
        self.rootnet: RootDepthModel | None = None
        flips = np.arange(self.arch.joint_num)
        for a, b in self.joint_set.flip_pairs:
            flips[a], flips[b] = b, a
        self._flip_perm = flips

    # -- construction

    @classmethod
    def from_checkpoint(
        cls, ckpt: LoadedCheckpoint, ident: Identification, config: EstimatorConfig | None = None
    ) -> Estimator:
        """Build the network the tensors describe, load it strictly, put it in fast form."""
        config = config or EstimatorConfig()
        if ident.family == "rootnet":
            raise ValueError(
                "this is a RootNet checkpoint (root depth only); load a pose checkpoint and "
                "use this one beside it for root depth"
            )
        if not ident.is_pose or ident.arch is None:
            raise ValueError(f"{ident.path or 'checkpoint'}: not a pose network")
        arch = ident.arch
        if config.upsample is not None:
            arch = arch.with_upsample(config.upsample)
        if config.input_size is not None:
            arch = arch.with_input_size(config.input_size)
        if arch != ident.arch:
            ident = ident.with_arch(arch)
        net = build_model(arch)
        load_weights(net, ckpt.state_dict)
        assert isinstance(net, PoseNetwork)
        convention = chosen(config.input_scale, ident.input)
        model = InferenceModel(
            net,
            config.device,
            config.fp16,
            compile=config.compile,
            backend=config.backend,
            pixel_scale=convention.pixel_scale,
        )
        return cls(model, ident, config, convention)

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        config: EstimatorConfig | None = None,
        trust: bool = False,
        rootnet: str | Path | None = None,
        max_size: int | None = None,
    ) -> Estimator:
        ckpt = open_checkpoint(path, trust=trust, max_size=max_size)
        est = cls.from_checkpoint(ckpt, identify_checkpoint(ckpt), config)
        if rootnet is not None:
            rckpt = open_checkpoint(rootnet, trust=trust, max_size=max_size)
            est.set_rootnet(rckpt, identify_checkpoint(rckpt))
        return est

    @property
    def device(self) -> str:
        return str(self.model.device)

    def set_rootnet(self, ckpt: LoadedCheckpoint, ident: Identification) -> None:
        if ident.family != "rootnet":
            raise ValueError(f"{ckpt.path}: not a RootNet checkpoint ({ident.title})")
        self.rootnet = RootDepthModel(ckpt, ident, self.model.device)

    def clear_rootnet(self) -> None:
        self.rootnet = None

    # -- stages

    def crop(self, frame: Frame, boxes: Sequence[tuple[int, Box]]) -> Crops:
        h, w = self.arch.input_size
        patches, transforms, processed, ids, given = [], [], [], [], []
        for track_id, box in boxes:
            pb = process_bbox(box, frame.width, frame.height, aspect=w / h)
            if pb is None:
                continue
            t = crop_transform(pb, w, h)
            patches.append(cv2.warpAffine(frame.image, t, (w, h), flags=cv2.INTER_LINEAR))
            transforms.append(t)
            processed.append(pb)
            ids.append(track_id)
            given.append(cast(Box, tuple(float(v) for v in box)))
        if not patches:
            return Crops(np.zeros((0, h, w, 3), np.uint8), np.zeros((0, 2, 3)), np.zeros((0, 4)))
        return Crops(np.stack(patches), np.stack(transforms), np.stack(processed), ids, given)

    def infer(self, patches: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 BGR -> (N, J, 3) heatmap coordinates, flip-averaged if asked."""
        return self.infer_with_peaks(patches)[0]

    def infer_with_peaks(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates (N, J, 3) and heatmap peak probabilities (N, J), flip-averaged if asked."""
        if not self.config.flip:
            coords, peaks = self.model.coords_and_peaks(patches)
            return coords.cpu().numpy(), peaks.cpu().numpy()
        both = np.concatenate([patches, patches[:, :, ::-1]], axis=0)
        coords, peaks = self.model.coords_and_peaks(np.ascontiguousarray(both))
        out, pk = coords.cpu().numpy(), peaks.cpu().numpy()
        n = len(patches)
        plain, flipped = out[:n], out[n:][:, self._flip_perm]
        flipped[..., 0] = self.arch.output_size[1] - 1 - flipped[..., 0]
        return (plain + flipped) / 2.0, (pk[:n] + pk[n:][:, self._flip_perm]) / 2.0

    def decode(
        self, coords: np.ndarray, crops: Crops, frame: Frame, peaks: np.ndarray | None = None
    ) -> list[PersonPose]:
        """Heatmap coordinates -> image pixels, root-relative and camera-space mm."""
        cfg = self.config
        in_h, in_w = self.arch.input_size
        out_h, out_w = self.arch.output_size
        principal = cfg.principal or (frame.width / 2.0, frame.height / 2.0)
        if cfg.root_depth_mm is not None:
            roots = np.full(len(coords), float(cfg.root_depth_mm))
        elif self.rootnet is not None:
            roots = self.rootnet(crops.patches, crops.boxes, cfg.focal)
        else:
            roots = np.array([root_depth_prior(b, cfg.focal) for b in crops.boxes])
        people = []
        for i, c in enumerate(coords):
            uv = np.stack([c[:, 0] / out_w * in_w, c[:, 1] / out_h * in_h], axis=1)
            inv = cv2.invertAffineTransform(crops.transforms[i])
            uv = uv @ inv[:, :2].T + inv[:, 2]
            z_rel = (c[:, 2] / self.arch.depth_dim * 2.0 - 1.0) * (BBOX_3D_MM / 2.0)
            uvz = np.concatenate([uv, (z_rel + roots[i])[:, None]], axis=1)
            people.append(
                PersonPose(
                    track_id=crops.ids[i],
                    bbox=crops.given[i],
                    keypoints_2d=uv,
                    depth_rel_mm=z_rel,
                    keypoints_3d_mm=pixel_to_camera(uvz, cfg.focal, principal),
                    root_depth_mm=float(roots[i]),
                    root=self.joint_set.root if self.joint_set else 0,
                    score=float(peaks[i].mean()) if peaks is not None else float("nan"),
                    joint_scores=np.asarray(peaks[i], dtype=float) if peaks is not None else None,
                )
            )
        return people

    def estimate(
        self, frame: Frame, boxes: Sequence[tuple[int, Box]], crops: Crops | None = None
    ) -> FramePoses:
        """Poses of the given people in one frame (one network batch); `crops` when they were
        made already (off the critical path, see PoseRunner.prepare)."""
        t0 = time.perf_counter()
        if crops is None:
            crops = self.crop(frame, boxes)
        t1 = time.perf_counter()
        people: list[PersonPose] = []
        if len(crops.patches):
            coords, peaks = self.infer_with_peaks(crops.patches)
        t2 = time.perf_counter()
        if len(crops.patches):
            people = self.decode(coords, crops, frame, peaks)
        t3 = time.perf_counter()
        return FramePoses(
            frame.index,
            frame.time,
            people,
            {"crop": (t1 - t0) * 1e3, "model": (t2 - t1) * 1e3, "decode": (t3 - t2) * 1e3},
        )


# ----------------------------------------------------------------------------- runner


def prefetch(
    source: Source,
    start: int = 0,
    end: int | None = None,
    depth: int = 3,
    prepare: Callable[[Frame], Any] | None = None,
) -> Generator[tuple[Frame, float, Any], None, None]:
    """Frames [start, end) of a source, decoded in a background thread while the caller runs
    the model (OpenCV releases the GIL while decoding and warping).

    Yields (frame, decode ms, prepare(frame) or None): `prepare` runs in the same background
    thread, e.g. `PoseRunner.prepare`, which crops when the boxes are known in advance.
    Errors of the source are re-raised in the caller; stopping early stops the thread.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            t = time.perf_counter()
            try:
                frame = source.get(start) if source.seekable else source.read()
            except Exception as exc:
                # A folder whose first image is corrupt: skipped like the later ones are.
                if not getattr(source, "skips_bad_frames", False):
                    raise
                logging.getLogger("posescope").warning("skipping %s", exc)
                frame = source.read()
            while frame is not None and (end is None or frame.index < end):
                if frame.index >= start:  # a non-seekable source reads up to `start`
                    ms = (time.perf_counter() - t) * 1e3
                    ready = prepare(frame) if prepare is not None else None
                    if not put((frame, ms, ready)):
                        return
                t = time.perf_counter()
                frame = source.read()
            put(done)
        except BaseException as exc:  # handed to the consumer
            put(exc)

    thread = threading.Thread(target=work, name="posescope-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=2.0)


@contextmanager
def inference_threads(n: int) -> Iterator[ThreadPoolExecutor]:
    """A pool of `n` threads for network calls, each with an equal share of torch's intra-op
    threads; on exit, pending calls are cancelled and torch's thread count is restored."""
    threads = torch.get_num_threads()
    pool = ThreadPoolExecutor(
        n,
        thread_name_prefix="posescope-infer",
        initializer=torch.set_num_threads,
        initargs=(max(1, threads // n),),
    )
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(threads)


class PoseRunner:
    """Per-frame driver: where the people are (tracker) -> estimator -> smoothing."""

    def __init__(
        self,
        estimator: Estimator,
        tracker: PersonTracker,
        smoother: PoseSmoother | None = None,
    ):
        self.estimator = estimator
        self.tracker = tracker
        self.smoother = smoother

    def prepare(self, frame: Frame) -> Crops | None:
        """The crops of a frame whose boxes are known before its poses (a fixed box), made
        wherever this is called (prefetch's decode thread); None when tracking decides."""
        if not self.tracker.is_fixed:
            return None
        return self.estimator.crop(frame, [(t.id, t.bbox) for t in self.tracker.tracks])

    def process(self, frame: Frame, prepared: Crops | None = None) -> FramePoses:
        """Poses of one frame; `prepared` are its crops from `prepare`, if made already."""
        t0 = time.perf_counter()
        tracks = self.tracker.boxes(frame)
        t1 = time.perf_counter()
        fp = self.estimator.estimate(frame, [(t.id, t.bbox) for t in tracks], prepared)
        scores = {t.id: t.score for t in tracks}
        fp.people = [replace(p, det_score=scores.get(p.track_id, math.nan)) for p in fp.people]
        return self._finish(frame, fp, t0, (t1 - t0) * 1e3)

    def _finish(self, frame: Frame, fp: FramePoses, t0: float, detect_ms: float) -> FramePoses:
        self.tracker.update(frame, [(p.track_id, p.keypoints_2d) for p in fp.people])
        t2 = time.perf_counter()
        if self.smoother is not None:
            fp = self.smoother.smooth(fp)
        t3 = time.perf_counter()
        timings = {"detect": detect_ms, **fp.timings_ms, "smooth": (t3 - t2) * 1e3}
        timings["total"] = (t3 - t0) * 1e3
        return replace(fp, timings_ms=timings)

    def default_in_flight(self) -> int:
        """How many frames `stream` runs at once: 2 on a CPU with a fixed box (and at least
        two intra-op threads to share), else 1 (always 1 for the onnxruntime backend)."""
        cpu = self.estimator.model.device.type == "cpu"
        if getattr(self.estimator.model, "backend", "torch") != "torch":
            return 1  # onnxruntime runs its own thread pool per call
        return 2 if cpu and self.tracker.is_fixed and torch.get_num_threads() >= 2 else 1

    def stream(
        self, items: Iterable[tuple[Frame, float, Crops | None]], in_flight: int = 1
    ) -> Generator[tuple[Frame, float, FramePoses], None, None]:
        """(frame, decode ms, poses) for each (frame, decode ms, prepared) of `prefetch`, in
        order.

        With `in_flight` > 1 and a fixed box (the next frame's boxes need not wait for this
        frame's poses), that many frames go through the network at once, each in its own
        thread with an equal share of torch's intra-op threads. On a CPU this is what lets
        the decoding thread overlap: a network split over both cores waits at every layer
        for the slower core, so a decoder taking one core's time stalls both; independent
        frames only slow the one that shares its core (benchmarks/RESULTS.md). Tracking,
        smoothing and the order of results stay sequential; the per-frame "model" time is
        then one frame's latency on its share of the cores.
        """
        if in_flight <= 1 or not self.tracker.is_fixed:
            for frame, ms, prepared in items:
                yield frame, ms, self.process(frame, prepared)
            return
        boxes = [(t.id, t.bbox) for t in self.tracker.tracks]
        pending: deque[tuple[Frame, float, float, Future]] = deque()

        def finish() -> tuple[Frame, float, FramePoses]:
            frame, ms, t0, job = pending.popleft()
            return frame, ms, self._finish(frame, job.result(), t0, 0.0)

        with inference_threads(in_flight) as pool:
            for frame, ms, prepared in items:
                job = pool.submit(self.estimator.estimate, frame, boxes, prepared)
                pending.append((frame, ms, time.perf_counter(), job))
                if len(pending) >= in_flight:
                    yield finish()
            while pending:
                yield finish()

    def reset(self) -> None:
        """Forget motion state (after a seek): the next frame is detected afresh."""
        self.tracker.reset()
        if self.smoother is not None:
            self.smoother.reset()

    def close(self) -> None:
        """End the threads this runner's tracker holds (a background detector)."""
        close = getattr(self.tracker, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> PoseRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "Crops",
    "Estimator",
    "EstimatorConfig",
    "PoseRunner",
    "RootDepthModel",
    "crop_transform",
    "inference_threads",
    "pixel_to_camera",
    "prefetch",
    "process_bbox",
    "resolve_device",
    "root_depth_prior",
]
