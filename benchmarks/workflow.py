"""The video workflow's costs: the analysis pass, then showing and exporting from its cache.

    python benchmarks/workflow.py [--frames 100] [--variant XS] [--out FILE]

On the Pose2Sim video (1080x1920) with a random-weight ConvNeXtPose and the HOG detector:
the pass (every frame through one runner, in order), then, per frame, what a scrub costs when
the frame is analysed (decode only) against computing it (decode + runner.process), and an
export from the cache (JSON; JSON + overlay video) against the pass it no longer repeats.
Calls of the two scrub kinds are interleaved so that load on the machine affects both alike.
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import main as _checkout  # noqa: E402, F401  (registers this checkout as `posescope`)
from posescope.core.analysis import PoseCache, analysis_frames  # noqa: E402
from posescope.core.bench import machine  # noqa: E402
from posescope.core.cache_export import ExportHeader, ExportPlan, export_from_cache  # noqa: E402
from posescope.core.checkpoint import open_checkpoint  # noqa: E402
from posescope.core.identify import identify_checkpoint  # noqa: E402
from posescope.core.person import PeopleDetector, PersonTracker  # noqa: E402
from posescope.core.pipeline import Estimator, EstimatorConfig, PoseRunner  # noqa: E402
from posescope.core.smoothing import PoseSmoother  # noqa: E402
from posescope.core.sources.video import VideoSource  # noqa: E402
from tests import factory  # noqa: E402
from tests.media_files import POSE2SIM  # noqa: E402


def runner_for(estimator: Estimator) -> PoseRunner:
    return PoseRunner(estimator, PersonTracker(detector=PeopleDetector()), PoseSmoother())


def drain(gen) -> dict:
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--variant", default="XS")
    ap.add_argument("--scrubs", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "workflow-cpu.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="posescope-bench-"))
    ckpt_path = tmp / "model.pth"
    factory.save_torch_zip(factory.wrap(factory.state_dict_for(args.variant), "network"), ckpt_path)
    ckpt = open_checkpoint(ckpt_path)
    ident = identify_checkpoint(ckpt)
    estimator = Estimator.from_checkpoint(ckpt, ident, EstimatorConfig())
    source = VideoSource(POSE2SIM)
    frames = min(args.frames, source.frame_count or args.frames)

    cache = PoseCache("bench", frames)
    t0 = time.perf_counter()
    gen = analysis_frames(source, runner_for(estimator))
    for poses in gen:
        cache.put(poses)
        if cache.analysed >= frames:
            break
    gen.close()
    cache.finish()
    pass_s = time.perf_counter() - t0

    # scrubbing: an analysed frame (decode only) vs computing it, interleaved
    runner = runner_for(estimator)
    cached_ms, computed_ms = [], []
    step = max(1, frames // args.scrubs)
    for index in list(range(0, frames, step))[: args.scrubs]:
        t = time.perf_counter()
        source.get(index)
        cache.get(index)
        cached_ms.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        frame = source.get(index)
        runner.reset()
        runner.process(frame)
        computed_ms.append((time.perf_counter() - t) * 1e3)

    header = ExportHeader(
        ident.to_dict(), {"path": str(POSE2SIM)}, estimator.config.focal, (540.0, 960.0),
        estimator.joint_set, source.fps, (source.width, source.height),
    )  # fmt: skip
    t = time.perf_counter()
    drain(export_from_cache(cache, header, ExportPlan(str(tmp / "p.json")), bool))
    json_s = time.perf_counter() - t
    t = time.perf_counter()
    plan = ExportPlan(str(tmp / "p2.json"), str(tmp / "o.mp4"))
    drain(export_from_cache(cache, header, plan, bool, lambda: VideoSource(POSE2SIM)))
    video_s = time.perf_counter() - t
    source.close()

    rows = [
        ("analysis pass (once, in the background)", f"{pass_s:.1f} s", f"{frames} frames"),
        ("scrub to an analysed frame", f"{statistics.median(cached_ms):.1f} ms", "median"),
        ("scrub computing the frame", f"{statistics.median(computed_ms):.1f} ms", "median"),
        ("export JSON from the cache", f"{json_s:.2f} s", f"{json_s / pass_s:.3f}x the pass"),
        ("export JSON + overlay from the cache", f"{video_s:.1f} s", f"{video_s / pass_s:.2f}x"),
    ]
    print(f"{args.variant}, Pose2Sim 1080x1920, HOG detector; machine shared with other jobs")
    for name, value, note in rows:
        print(f"  {name:<42} {value:>10}   {note}")
    result = {
        "variant": args.variant,
        "frames": frames,
        "machine": machine(),
        "pass_s": pass_s,
        "scrub_cached_ms": cached_ms,
        "scrub_computed_ms": computed_ms,
        "export_json_s": json_s,
        "export_json_video_s": video_s,
    }
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
