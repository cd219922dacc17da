"""The typed values the app's state model (`core.session`) holds and hands to the app.

Plain dataclasses, no Qt: settings, opened checkpoints, the built model, the open source, one
computed frame, and the requests the session makes (build a model, build a runner, compute a
frame). Engine types are named for the type checker only, so importing this module stays cheap
(no torch).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from posescope.core.families.input_convention import CHOICES as INPUT_SCALES
from posescope.core.types import Frame, FramePoses

if TYPE_CHECKING:
    from posescope.core.checkpoint import LoadedCheckpoint
    from posescope.core.families.descriptor import Identification
    from posescope.core.pipeline import Estimator, EstimatorConfig, PoseRunner
    from posescope.core.sources.base import Source
    from posescope.core.variants import JointSet

Box = tuple[float, float, float, float]  # x, y, w, h in image pixels

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
BACKENDS: tuple[str, ...] = ("auto", "torch", "onnxruntime")  # onnx_form.BACKENDS + auto
DETECTOR_NAMES: tuple[str, ...] = ("rtmdet", "yolox", "hog", "none")  # registry.NAMES
DEFAULT_DETECTOR = "rtmdet"  # weights.DEFAULT (not imported: this module stays cheap)
DETECT_EVERY = 4  # detection.commands.DETECT_EVERY (measured in benchmarks/detector.py)
FOCAL_RANGE = (100.0, 20000.0)


class SettingsError(ValueError):
    """A setting the session refuses (an unknown device, a focal length out of range)."""


@dataclass(frozen=True)
class ModelSettings:
    """What the estimator is built with (a change rebuilds it)."""

    device: str = "auto"
    fp16: bool = False
    flip: bool = False
    focal: float = 1500.0
    upsample: tuple[bool, ...] | None = None
    compile: bool = False
    backend: str = "auto"  # auto (the faster on the device, measured) | torch | onnxruntime
    # the pixel scale fed to the network: auto (what the file's statistics say) | 0-255 | 0-1
    input_scale: str = "auto"

    def validated(self) -> ModelSettings:
        """These settings, checked; raises SettingsError naming the bad one."""
        if self.device not in DEVICES:
            raise SettingsError(f"device {self.device!r}: expected one of {', '.join(DEVICES)}")
        if self.backend not in BACKENDS:
            raise SettingsError(f"backend {self.backend!r}: expected one of {', '.join(BACKENDS)}")
        if self.input_scale not in INPUT_SCALES:
            choices = ", ".join(INPUT_SCALES)
            raise SettingsError(f"input scale {self.input_scale!r}: expected one of {choices}")
        lo, hi = FOCAL_RANGE
        if not (math.isfinite(self.focal) and lo <= self.focal <= hi):
            raise SettingsError(f"focal length {self.focal}: expected {lo:g} to {hi:g} px")
        return replace(self, focal=float(self.focal), fp16=bool(self.fp16), flip=bool(self.flip))

    def config(self) -> EstimatorConfig:
        from posescope.core.pipeline import EstimatorConfig

        return EstimatorConfig(
            device=self.device,
            fp16=self.fp16,
            flip=self.flip,
            focal=(float(self.focal), float(self.focal)),
            upsample=self.upsample,
            compile=self.compile,
            backend=self.backend,
            input_scale=self.input_scale,
        )


@dataclass(frozen=True)
class RunnerSettings:
    """How people are found and poses smoothed (a change only rebuilds the runner)."""

    smoothing: bool = True
    strength: float = 0.5  # 0 (light) .. 1 (heavy)
    use_box: bool = False  # False: the people detector
    box: Box | None = None  # the drawn person box (kept while the detector is chosen)
    # The people detector: None is the default (RTMDet-nano, forgiving: no weights, a warning
    # and the whole frame); a name (rtmdet | yolox | hog | none) or a file is asked for.
    detector: str | None = None
    detector_model: str | None = None  # a local ONNX file of that detector (rtmdet | yolox)
    whole_frame: bool = True  # nobody found: the whole frame is the person box
    detect_every: int = DETECT_EVERY  # a detection round every N frames of videos and live
    # One-Euro parameters given as such (the CLI's --smooth-min-cutoff / --smooth-beta);
    # None: min_cutoff from `strength`, beta the engine's
    min_cutoff: float | None = None
    beta: float | None = None

    @property
    def detector_name(self) -> str:
        """The detector that is meant to run (the default's name when none is chosen)."""
        return self.detector or DEFAULT_DETECTOR

    @property
    def detector_explicit(self) -> bool:
        """Asked for by name or file: missing weights are an error, not a warning."""
        return self.detector is not None or self.detector_model is not None

    def runner_key(self) -> tuple[object, ...]:
        """What a runner is built from: a change rebuilds it."""
        people = (self.detector_name, self.detector_model, self.whole_frame, self.detect_every)
        smoothing = (self.smoothing, self.strength, self.min_cutoff, self.beta)
        return (*smoothing, self.tracker_box, *people)

    @property
    def tracker_box(self) -> Box | None:
        """The box the tracker uses; None means detect people."""
        return self.box if self.use_box else None

    def validated(self) -> RunnerSettings:
        if not (0.0 <= float(self.strength) <= 1.0):
            raise SettingsError(f"smoothing strength {self.strength}: expected 0 to 1")
        if self.detector is not None and self.detector not in DETECTOR_NAMES:
            names = ", ".join(DETECTOR_NAMES)
            raise SettingsError(f"detector {self.detector!r}: expected one of {names}")
        if self.detector_model is not None and self.detector_name not in ("rtmdet", "yolox"):
            raise SettingsError("a detector model file needs the rtmdet or yolox detector")
        return replace(self, box=check_box(self.box), strength=float(self.strength))

    def smoother_args(self) -> dict[str, float]:
        """One-Euro parameters: strength 0.5 is the engine default (min_cutoff 1.0 Hz);
        0 gives 10 Hz (light), 1 gives 0.1 Hz (heavy). beta stays the engine's. Parameters
        given as such (`min_cutoff`, `beta`) win."""
        s = min(1.0, max(0.0, float(self.strength)))
        args = {"min_cutoff": float(10.0 ** (1.0 - 2.0 * s))}
        if self.min_cutoff is not None:
            args["min_cutoff"] = float(self.min_cutoff)
        if self.beta is not None:
            args["beta"] = float(self.beta)
        return args


def check_box(box: object) -> Box | None:
    """`box` as four finite floats with a positive size, or SettingsError."""
    if box is None:
        return None
    try:
        values = tuple(float(v) for v in box)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise SettingsError(f"person box {box!r}: expected x, y, w, h") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise SettingsError(f"person box {box!r}: expected four finite numbers x, y, w, h")
    if values[2] <= 0 or values[3] <= 0:
        raise SettingsError(f"person box {box!r}: width and height must be positive")
    return values


@dataclass(frozen=True)
class DisplaySettings:
    """What the overlay draws (no rebuild)."""

    show_labels: bool = False
    show_boxes: bool = True


@dataclass
class Opened:
    """A checkpoint that opened and was identified."""

    path: str
    ckpt: LoadedCheckpoint
    ident: Identification


@dataclass
class OpenFailed:
    """A checkpoint that did not open; `error` is the engine's exception."""

    path: str
    error: Exception


@dataclass
class Model:
    """A built estimator and what it came from."""

    ckpt: LoadedCheckpoint
    base_ident: Identification  # as read from the file
    ident: Identification  # as run (upsample override applied)
    estimator: Estimator
    settings: ModelSettings
    rootnet: Opened | None = None
    b: Model | None = None  # A/B: the network compared with this one (core/session_compare)

    def opened(self) -> Opened:
        return Opened(str(self.ckpt.path), self.ckpt, self.base_ident)


@dataclass(frozen=True)
class SourceInfo:
    """What the window needs to know about an open source."""

    spec: str  # what was opened: a path, 'camera:N' or 'replay:PATH'
    name: str
    width: int
    height: int
    fps: float  # 30 when the source does not say
    frame_count: int  # 0 for live sources
    live: bool
    document: Mapping[str, object] = field(default_factory=dict)  # Source.info(), for exports

    @classmethod
    def of(cls, spec: str, source: Source) -> SourceInfo:
        live = bool(source.is_live) or not bool(source.seekable)
        return cls(
            spec=spec,
            name=str(source.name or short_name(spec)),
            width=int(source.width or 0),
            height=int(source.height or 0),
            fps=float(source.fps or 0) or 30.0,
            frame_count=0 if live else int(source.frame_count or 1),
            live=live,
            document=dict(source.info()),
        )

    @property
    def is_camera(self) -> bool:
        return self.spec.startswith("camera:")


def short_name(spec: str) -> str:
    """'camera 0', 'replay clip.mp4' or a file's name, for messages."""
    import os

    if spec.startswith(("camera:", "replay:")):
        kind, _, rest = spec.partition(":")
        return f"{kind} {os.path.basename(rest) or rest}"
    return os.path.basename(spec.rstrip("/")) or spec


@dataclass
class FrameResult:
    """One computed request: the frame shown and the poses of exactly that frame."""

    frame: Frame
    poses: FramePoses | None
    requested_index: int | None  # the index asked for (seekable sources), None for live frames
    latency_ms: float  # from request to result
    dropped: int = 0  # requests replaced by newer ones since the previous result
    generation: int = 0  # source generation the frame belongs to
    model_generation: int = 0  # runner generation that computed the poses
    error: str | None = None  # the model failed on this frame (the frame is still shown)
    analysed: bool = False  # the poses come from the analysis pass (else: computed on demand)


@dataclass(frozen=True)
class CheckpointChoice:
    """Which of several dropped checkpoints are used, and which were passed over."""

    pose: Opened | None
    rootnet: Opened | None
    passed_over: tuple[Opened, ...] = ()  # pose checkpoints dropped with a later one
    rootnets_dropped: int = 0
    compare: Opened | None = None  # B: two pose networks dropped together are compared


@dataclass(frozen=True)
class BuildRequest:
    """Build `opened` with `settings` (and the RootNet) for model generation `generation`."""

    generation: int
    opened: Opened
    ident: Identification  # as it will run (override applied): what the panel shows
    settings: ModelSettings
    rootnet: Opened | None
    runner: RunnerSettings
    notes: tuple[str, ...] = ()  # warnings to show (an override that does not fit)
    compare: Opened | None = None  # B, built beside A with the same settings (A/B)


@dataclass(frozen=True)
class RunnerRequest:
    """A fresh runner around the running estimator (generation: the model's)."""

    model_generation: int
    estimator: Estimator
    settings: RunnerSettings
    estimator_b: Estimator | None = None  # A/B: B runs on A's boxes (core/compare_runner)


@dataclass(frozen=True)
class RunnerInstalled:
    """The worker should compute with `runner` from now on (runner generation)."""

    runner: PoseRunner
    generation: int
    joint_set: JointSet | None


@dataclass(frozen=True)
class FrameRequest:
    """Compute frame `index` of source generation `generation` (`reset`: tracker too)."""

    index: int
    generation: int
    reset: bool = False
    poses: FramePoses | None = None  # analysed poses: decode the frame, compute nothing
    model_generation: int = 0  # the runner generation `poses` belong to


@dataclass(frozen=True)
class BuildFailed:
    """A build that failed; `still_using` names the model that keeps running."""

    opened: Opened
    error: Exception
    still_using: str | None
