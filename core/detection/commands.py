"""The command line's side of person detection: `--detector` / `--detector-model` /
`--no-whole-frame` / `--detect-every` for `run` and `bench`, the runner settings they make,
and the `posescope models` command (list the detectors, download them ahead)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

from posescope.core.detection import registry, weights
from posescope.core.detection.base import Detector, DetectorError, WeightsMissingError
from posescope.core.session_types import DETECT_EVERY, RunnerSettings

log = logging.getLogger("posescope")

# Detection rounds every DETECT_EVERY frames in video and live runs (in their own thread):
# measured in benchmarks/detector.py; whenever a track is lost or nobody is tracked a round is
# asked too. (Defined beside RunnerSettings, whose default it is.)


def add_detector_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detector", choices=registry.NAMES, metavar="NAME",
                   help="rtmdet (default), yolox, hog or none")  # fmt: skip
    p.add_argument("--detector-model", metavar="FILE", help="a local ONNX file of that detector")
    p.add_argument("--no-whole-frame", action="store_true",
                   help="no person box when nobody is found")  # fmt: skip
    p.add_argument("--detect-every", type=int, default=DETECT_EVERY, metavar="N",
                   help=f"detect every N frames (default {DETECT_EVERY})")  # fmt: skip


class ProgressBar:
    """A download progress bar on stderr (a line every 25% when stderr is not a terminal)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._shown = -1
        self._t0 = time.perf_counter()

    def __call__(self, done: int, total: int | None) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        mb = done / 1e6
        if total:
            frac = done / total
            step = int(frac * 4)
            if not sys.stderr.isatty() and step == self._shown and done != total:
                return
            self._shown = step
            bar = "#" * int(30 * frac)
            msg = f"\r{self.label} [{bar:<30}] {mb:.1f}/{total / 1e6:.1f} MB"
        else:
            msg = f"\r{self.label} {mb:.1f} MB"
        end = "\n" if total and done == total else ""
        print(msg, end=end, file=sys.stderr, flush=True)


def detector_from_args(args: argparse.Namespace) -> tuple[Detector | None, int]:
    """The detector `run` / `bench` asked for; (None, 0) when none is asked for or the default
    has no weights (one warning line: the run goes on with the whole frame); (None, 1) after
    one `error:` line when a named detector cannot be had."""
    name = getattr(args, "detector", None)
    model = getattr(args, "detector_model", None)
    label = f"downloading {name or weights.DEFAULT} detector"
    kw: dict[str, Any] = {"progress": ProgressBar(label)}
    if name is None and model is None:
        found = registry.open_default(**kw)
        if found.problem is not None:
            hint = (
                registry.missing_weights_hint(found.problem)
                if isinstance(found.problem, WeightsMissingError)
                else str(found.problem)
            )
            log.warning("%s; going on with the whole frame as the person box", hint)
        return found.detector, 0
    try:
        return registry.create_detector(name or weights.DEFAULT, model, **kw), 0
    except WeightsMissingError as exc:
        print(f"error: --detector {name}: {registry.missing_weights_hint(exc)}", file=sys.stderr)
    except (DetectorError, ValueError) as exc:
        print(f"error: --detector {name or weights.DEFAULT}: {exc}", file=sys.stderr)
    return None, 1


def runner_settings_from_args(args: argparse.Namespace) -> RunnerSettings:
    """The runner settings of `run` / `bench` (core/runner_setup.py builds the runner): a fixed
    box (--bbox), else the detector every --detect-every frames with the whole-frame fallback
    unless --no-whole-frame; One-Euro smoothing with --smooth-min-cutoff / --smooth-beta."""
    from posescope.core.outputs import parse_box

    bbox = getattr(args, "bbox", None)
    return RunnerSettings(
        smoothing=bool(getattr(args, "smooth", False)),
        min_cutoff=getattr(args, "smooth_min_cutoff", None),
        beta=getattr(args, "smooth_beta", None),
        use_box=bool(bbox),
        box=parse_box(bbox) if bbox else None,
        detector=getattr(args, "detector", None),
        detector_model=getattr(args, "detector_model", None),
        whole_frame=not getattr(args, "no_whole_frame", False),
        detect_every=max(1, int(getattr(args, "detect_every", DETECT_EVERY))),
    )


def cmd_models(args: argparse.Namespace) -> int:
    """`posescope models`: each detector, whether its weights are here, and where.
    `posescope models download [NAME]`: fetch them now (all CNN detectors without NAME)."""
    if getattr(args, "action", None) == "download":
        names = [args.name] if args.name else list(weights.CATALOGUE)
        failed = 0
        for name in names:
            meta = weights.info(name)
            try:
                path = weights.ensure_weights(name, progress=ProgressBar(f"{name}"))
            except WeightsMissingError as exc:
                print(f"error: {name}: {registry.missing_weights_hint(exc)}", file=sys.stderr)
                failed += 1
                continue
            except DetectorError as exc:
                print(f"error: {name}: {exc}; nothing was kept", file=sys.stderr)
                failed += 1
                continue
            print(f"{name}: {path} ({meta.short})")
        return 1 if failed else 0
    print(f"cache: {weights.cache_dir()}")
    for name in registry.NAMES:
        if name in weights.CATALOGUE:
            meta = weights.info(name)
            path = weights.cached_path(name)
            state = "missing"
            if path.is_file():
                state = "present" if weights.verify(name, path) else "present, SHA-256 differs"
            default = " (default)" if name == weights.DEFAULT else ""
            print(f"{name:<7} {state:<8} {meta.title}{default}")
            if state.endswith("differs"):
                print("        (refused: not the published file; use --detector-model FILE)")
            print(f"        {path}")
            if not path.is_file():
                for i, url in enumerate(meta.urls):
                    print(f"        {'or  ' if i else 'from'} {url}")
        elif name == "hog":
            print(f"{name:<7} {'built in':<8} OpenCV HOG people detector (slow; only on request)")
        else:
            print(f"{name:<7} {'-':<8} no detector: the whole frame, or a box you give")
    return 0


def add_models_parser(sub, **common) -> None:
    m = sub.add_parser("models", help="person detectors: which are here, download them", **common)
    msub = m.add_subparsers(dest="action", metavar="ACTION")
    d = msub.add_parser("download", help="download detector weights now", **common)
    d.add_argument("name", nargs="?", choices=list(weights.CATALOGUE), metavar="NAME",
                   help="rtmdet or yolox (default: both)")  # fmt: skip
    m.set_defaults(func=cmd_models)
    d.set_defaults(func=cmd_models)
