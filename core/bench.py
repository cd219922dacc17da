"""`posescope bench`: model-only and end-to-end timing, side by side with a baseline.

Model-only compares the engine's inference form with a plain fp32 eager forward of the same
network (the published code path: unfused BatchNorm, contiguous NCHW, normalised float input)
in the same process, on the same crops, and checks their outputs agree.
End-to-end runs a video through the whole pipeline with decoding overlapped.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from posescope.core.checkpoint import open_checkpoint
from posescope.core.families.network import PoseNetwork
from posescope.core.identify import identify_checkpoint
from posescope.core.inference.model import bgr_to_input
from posescope.core.model import build_model, load_weights
from posescope.core.pipeline import (
    Estimator,
    EstimatorConfig,
    PoseRunner,
    inference_threads,
    prefetch,
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(
    fns: list[Callable[[], object]], device: torch.device, iters: int, warmup: int = 3
) -> list[list[float]]:
    """Milliseconds of `iters` calls of each function, interleaved (a, b, a, b, ...) so that
    load on the machine drifts over all of them alike; `warmup` untimed calls first."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    _sync(device)
    out: list[list[float]] = [[] for _ in fns]
    for _ in range(iters):
        for fn, times in zip(fns, out, strict=True):
            t = time.perf_counter()
            fn()
            _sync(device)
            times.append((time.perf_counter() - t) * 1e3)
    return out


def _stats(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {
        "median_ms": statistics.median(s),
        "p90_ms": s[min(len(s) - 1, round(0.9 * (len(s) - 1)))],
        "min_ms": s[0],
    }


def machine() -> dict[str, object]:
    info: dict[str, object] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
    }
    try:
        import os

        info["cores"] = os.cpu_count()
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def model_only(
    est: Estimator,
    net: torch.nn.Module,
    iters: int,
    batches: list[int],
    others: dict[str, Callable[[np.ndarray], object]] | None = None,
) -> dict:
    """Engine form vs plain eager fp32 at batch 1, and throughput over batch sizes.

    `others`: further forms (name -> crops -> coordinates, e.g. the other backend), timed
    interleaved with the two; each gets `<name>`, `<name>_ratio`, `<name>_paired_ratio` and
    `<name>_max_abs_diff` in every batch's row."""
    others = others or {}
    dev = est.model.device
    h, w = est.arch.input_size
    rng = np.random.default_rng(0)
    result: dict = {
        "device": str(dev),
        "fp16": est.model.fp16,
        "form": est.model.form,
        "batches": {},
    }
    net = net.to(dev).eval()
    best = None
    for b in batches:
        crops = rng.integers(0, 256, (b, h, w, 3), dtype=np.uint8)
        x = bgr_to_input(crops, est.input.pixel_scale).to(dev)
        with torch.no_grad():
            ref = net(x)
            ours = est.model(crops).float()
        diff = float((ref - ours).abs().max())

        def base(x=x):
            with torch.no_grad():
                return net(x)

        extra = [functools.partial(f, crops) for f in others.values()]
        t_base, t_ours, *t_others = time_calls(
            [base, functools.partial(est.model, crops), *extra], dev, iters
        )
        row: dict[str, Any] = {
            "baseline": _stats(t_base),
            "engine": _stats(t_ours),
            "max_abs_diff": diff,
            "engine_images_per_s": 1e3 * b / statistics.median(t_ours),
            "baseline_images_per_s": 1e3 * b / statistics.median(t_base),
        }
        row["ratio"] = row["engine"]["median_ms"] / row["baseline"]["median_ms"]
        # each engine call over the baseline call just before it: robust to load drifting
        row["paired_ratio"] = statistics.median(o / b for o, b in zip(t_ours, t_base, strict=True))
        for (name, form), times in zip(others.items(), t_others, strict=True):
            got = torch.as_tensor(np.asarray(form(crops))).float().cpu()
            row[name] = _stats(times)
            row[f"{name}_ratio"] = row[name]["median_ms"] / row["baseline"]["median_ms"]
            row[f"{name}_paired_ratio"] = statistics.median(
                o / b for o, b in zip(times, t_base, strict=True)
            )
            row[f"{name}_max_abs_diff"] = float((ref.cpu() - got).abs().max())
        result["batches"][str(b)] = row
        if (
            best is None
            or row["engine_images_per_s"] > result["batches"][str(best)]["engine_images_per_s"]
        ):
            best = b
    result["best_batch"] = best
    return result


def other_backends(
    est: Estimator, net: torch.nn.Module, fp16: bool
) -> dict[str, Callable[[np.ndarray], object]]:
    """The engine's other backend on the same device, to time beside it ({} where it cannot
    be built here, e.g. onnxruntime not installed)."""
    from posescope.core import onnx_form
    from posescope.core.inference.model import InferenceModel

    other = "torch" if est.model.backend == "onnxruntime" else "onnxruntime"
    if other == "onnxruntime" and not onnx_form.available():
        return {}
    model = InferenceModel(
        cast(PoseNetwork, net),
        str(est.model.device),
        fp16,
        backend=other,
        pixel_scale=est.input.pixel_scale,
    )
    return {model.form: model}


def in_flight_fps(model, crop: np.ndarray, calls: int, in_flight: int) -> float:
    """Model-only frames per second with `in_flight` calls at once, each in its own thread
    with an equal share of the intra-op threads (how `PoseRunner.stream` runs frames)."""
    with inference_threads(in_flight) as pool:
        list(pool.map(lambda _: model(crop), range(in_flight)))  # threads up, warm
        t = time.perf_counter()
        list(pool.map(lambda _: model(crop), range(calls)))
        return calls / (time.perf_counter() - t)


def end_to_end(
    est: Estimator,
    video: str,
    bbox: tuple[float, float, float, float] | None,
    frames: int,
    block: int = 20,
    tracker=None,
    runner: PoseRunner | None = None,
) -> dict:
    """The whole pipeline on a video, as `posescope run` runs it: decoding (one FFmpeg thread
    on CPU) and fixed-box crops in a background thread, `PoseRunner.stream` with its default
    frames in flight (2 on a CPU with a fixed box). `runner`: one built as `run` builds it
    (core/runner_setup.py); else `tracker` (a benchmark's own), else the fixed box `bbox` or
    the whole frame; smoothed with the engine's defaults.

    Paired with model-only timing: blocks of `block` frames alternate with blocks of `block`
    model-only calls at batch 1 (the model-only fps of the table) and, when frames run in
    flight, `block` model-only calls run the same way; so all see the same load.
    `paired_ratio` is the median over blocks of e2e fps / batch-1 model-only fps,
    `paired_ratio_same_parallelism` the same against the in-flight model-only fps. While a
    model-only block runs, the decoder has filled its bounded queue and waits, so the first
    frames of each e2e block come ready: they are processed but not timed."""
    from posescope.core.runner_setup import build_runner
    from posescope.core.session_types import RunnerSettings
    from posescope.core.smoothing import PoseSmoother
    from posescope.core.sources.probe import open_source

    cpu = est.model.device.type == "cpu"
    source = open_source(video, decode_threads=1 if cpu else 0)
    if runner is None and tracker is not None:  # a benchmark's own tracker
        runner = PoseRunner(est, tracker, PoseSmoother())
    elif runner is None:  # no detector given: the fixed box, else the whole frame (never HOG)
        runner = build_runner(est, RunnerSettings(use_box=bbox is not None, box=bbox))
    tracker = runner.tracker
    in_flight = runner.default_in_flight()
    n_total = min(frames, source.frame_count or frames)
    depth = 3 + in_flight  # prefetch queue
    # untimed frames of a block: after a model-only block, those that came ready (the queue)
    # or were already running; in the first, those that started the stream's threads
    skip = in_flight
    # warm-up outside the timed loop (first frames allocate)
    warm = source.get(0) if source.seekable else source.read()
    if warm is not None:
        for _ in range(3):
            runner.process(warm)
    runner.reset()
    if hasattr(tracker, "detect_times_ms"):
        tracker.detect_times_ms.clear()  # the warm-up's detections are not timed
    h, w = est.arch.input_size
    crop = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
    stages: dict[str, list[float]] = {}
    e2e_ms: list[float] = []  # per timed frame
    pairs: list[tuple[float, float, float]] = []  # e2e, batch-1 and in-flight model-only fps
    base_threads = torch.get_num_threads()
    items = prefetch(source, 0, n_total, depth=depth, prepare=runner.prepare)
    results = runner.stream(items, in_flight)
    n = 0
    while True:
        block_ms = []
        t = time.perf_counter()
        for i, (_, decode_ms, fp) in enumerate(itertools.islice(results, block)):
            now = time.perf_counter()
            if i >= skip:
                block_ms.append((now - t) * 1e3)
            t = now
            stages.setdefault("video decode (overlapped)", []).append(decode_ms)
            for k, v in fp.timings_ms.items():
                stages.setdefault(k, []).append(v)
            n += 1
        if not block_ms:
            break
        e2e_ms += block_ms
        skip = depth + in_flight
        # the stream's threads sit idle meanwhile; torch's thread count is the caller's here
        threads = torch.get_num_threads()
        torch.set_num_threads(base_threads)
        model_ms = time_calls([lambda: est.model(crop)], est.model.device, block, warmup=0)[0]
        batch1 = 1e3 / statistics.median(model_ms)
        same = in_flight_fps(est.model, crop, block, in_flight) if in_flight > 1 else batch1
        torch.set_num_threads(threads)
        pairs.append((1e3 / statistics.mean(block_ms), batch1, same))
    results.close()
    runner.close()
    source.close()
    fps = 1e3 / statistics.mean(e2e_ms) if e2e_ms else 0.0
    det_ms = list(getattr(tracker, "detect_times_ms", []))
    detector = getattr(tracker, "detector", None)
    return {
        "detector": {
            "name": getattr(detector, "name", None) if detector is not None else None,
            "background": tracker.background is not None,
            "calls": len(det_ms),
            "ms_per_call": statistics.median(det_ms) if det_ms else 0.0,
            "ms_per_frame": sum(det_ms) / max(n, 1),
        },
        "video": str(video),
        "frames": n,
        "bbox": list(bbox) if bbox else None,
        "in_flight": in_flight,
        "decode_threads": 1 if cpu else 0,
        "fps": fps,
        "ms_per_frame": statistics.mean(e2e_ms) if e2e_ms else 0.0,
        "paired_model_only_fps": statistics.median(m for _, m, _ in pairs) if pairs else 0.0,
        "paired_ratio": statistics.median(e / m for e, m, _ in pairs) if pairs else 0.0,
        "paired_in_flight_model_only_fps": (
            statistics.median(s for *_, s in pairs) if pairs else 0.0
        ),
        "paired_ratio_same_parallelism": (
            statistics.median(e / s for e, _, s in pairs) if pairs else 0.0
        ),
        "stages_median_ms": {k: statistics.median(v) for k, v in stages.items()},
    }


def run_bench(args: argparse.Namespace) -> int:
    max_size = getattr(args, "max_size", None)
    ckpt = open_checkpoint(args.checkpoint, trust=args.trust, max_size=max_size)
    ident = identify_checkpoint(ckpt)
    backend = getattr(args, "backend", "auto")
    config = EstimatorConfig(
        device=args.device,
        fp16=args.fp16,
        compile=args.compile,
        backend=backend,
        input_scale=getattr(args, "input_scale", "auto"),
    )
    est = Estimator.from_checkpoint(ckpt, ident, config)
    if est.model.compile_error:
        print(f"note: could not compile ({est.model.compile_error})", file=sys.stderr)
    assert ident.arch is not None  # Estimator.from_checkpoint needs it too
    net = build_model(ident.arch)
    load_weights(net, ckpt.state_dict)
    batches = [int(b) for b in str(args.batches).split(",") if b]
    others = other_backends(est, net, args.fp16)
    result: dict[str, Any] = {
        "checkpoint": Path(args.checkpoint).name,
        "identified": ident.title,
        "machine": machine(),
        "model_only": model_only(est, net, args.iters, batches, others),
    }
    mo = result["model_only"]
    b1 = mo["batches"]["1"]
    cpu, threads = result["machine"]["cpu"], torch.get_num_threads()
    print(f"{ident.title} on {mo['device']} ({cpu}, {threads} threads), engine form {mo['form']}")
    print(f"{'batch':>5} {'baseline med':>13} {'engine med':>11} {'engine p90':>11} {'ratio':>6} "
          f"{'paired':>6} {'img/s':>7} {'max diff':>9}")  # fmt: skip
    for b, row in mo["batches"].items():
        print(
            f"{b:>5} {row['baseline']['median_ms']:>10.2f} ms "
            f"{row['engine']['median_ms']:>8.2f} ms "
            f"{row['engine']['p90_ms']:>8.2f} ms {row['ratio']:>6.2f} {row['paired_ratio']:>6.2f} "
            f"{row['engine_images_per_s']:>7.1f} {row['max_abs_diff']:>9.1e}"
        )
    for name in others:
        cells = "  ".join(
            f"batch {b}: {row[name]['median_ms']:.2f} ms, {row[f'{name}_ratio']:.2f}x "
            f"(paired {row[f'{name}_paired_ratio']:.2f}x), diff {row[f'{name}_max_abs_diff']:.1e}"
            for b, row in mo["batches"].items()
        )
        print(f"other form {name}: {cells}")
    print(f"best throughput at batch {mo['best_batch']}")
    if args.input:
        bbox: tuple[float, float, float, float] | None = None
        if args.bbox:
            bbox = cast(
                "tuple[float, float, float, float]", tuple(float(v) for v in args.bbox.split(","))
            )
        from dataclasses import replace

        from posescope.core.detection.commands import detector_from_args, runner_settings_from_args
        from posescope.core.runner_setup import build_runner

        detector = None
        if bbox is None:
            detector, code = detector_from_args(args)
            if code:
                return code
        # as `run` builds it (the detector in its own thread); always smoothed, engine defaults
        settings = replace(runner_settings_from_args(args), smoothing=True)
        runner = build_runner(est, settings, detector, background=True)
        e2e = end_to_end(est, args.input, bbox, args.frames, runner=runner)
        model_fps = 1e3 / b1["engine"]["median_ms"]
        e2e["model_only_fps"] = model_fps
        e2e["ratio_to_model_only"] = e2e["fps"] / model_fps
        result["end_to_end"] = e2e
        print(
            f"end-to-end: {e2e['frames']} frames of {Path(args.input).name}, {e2e['fps']:.1f} fps "
            f"({e2e['ratio_to_model_only']:.2f}x model-only {model_fps:.1f} fps; paired "
            f"{e2e['paired_ratio']:.2f}x; {e2e['in_flight']} frames in flight, paired "
            f"{e2e['paired_ratio_same_parallelism']:.2f}x of model-only run that way)"
        )
        for k, v in e2e["stages_median_ms"].items():
            print(f"  {k:<28} {v:8.2f} ms")
        det = e2e["detector"]
        if det["calls"]:
            where = "in its own thread" if det["background"] else "in line"
            print(
                f"  detector {det['name']} ({where}): {det['calls']} calls, "
                f"{det['ms_per_call']:.1f} ms per call, {det['ms_per_frame']:.1f} ms per frame"
            )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json_out}", file=sys.stderr)
    return 0
