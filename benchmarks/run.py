"""Benchmark every published variant: model-only (engine vs plain eager, same run) and
end-to-end on the Pose2Sim video with a fixed box.

    python benchmarks/run.py [--device cpu|cuda] [--fp16] [--variants XS,S,M,L] [--out FILE]

Checkpoints are generated with random weights (speed does not depend on the values). Prints a
table and writes JSON (default benchmarks/results-<device>.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import main as _checkout  # noqa: E402, F401  (registers this checkout as `posescope`)
from posescope.core.bench import end_to_end, machine, model_only  # noqa: E402
from posescope.core.checkpoint import open_checkpoint  # noqa: E402
from posescope.core.identify import identify_checkpoint  # noqa: E402
from posescope.core.model import build_model, load_weights  # noqa: E402
from posescope.core.pipeline import Estimator, EstimatorConfig  # noqa: E402
from tests import factory  # noqa: E402
from tests.media_files import POSE2SIM as VIDEO  # noqa: E402

BOX = (240.0, 320.0, 320.0, 860.0)  # the athlete in the Pose2Sim video


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--fp16", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the engine's form")
    p.add_argument("--variants", default="XS,S,M,L")
    p.add_argument("--batches", default="1,2,4,8")
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--e2e", default="XS,M", help="variants to run end to end ('' for none)")
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--out")
    args = p.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    results = {"machine": machine(), "device": args.device, "fp16": args.fp16, "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants.split(","):
            path = factory.save_torch_zip(factory.state_dict_for(name), Path(tmp) / f"{name}.pth")
            ckpt = open_checkpoint(path)
            ident = identify_checkpoint(ckpt)
            cfg = EstimatorConfig(device=args.device, fp16=args.fp16, compile=args.compile)
            est = Estimator.from_checkpoint(ckpt, ident, cfg)
            net = build_model(ident.arch)
            load_weights(net, ckpt.state_dict)
            row = {"model_only": model_only(est, net, args.iters, batches)}
            if name in args.e2e.split(","):
                e2e = end_to_end(est, str(VIDEO), BOX, args.frames)
                e2e["video"] = str(VIDEO.relative_to(ROOT))  # the same file on every clone
                b1 = row["model_only"]["batches"]["1"]["engine"]["median_ms"]
                e2e["model_only_fps"] = 1e3 / b1
                e2e["ratio_to_model_only"] = e2e["fps"] / e2e["model_only_fps"]
                row["end_to_end"] = e2e
            results["variants"][name] = row
            print_row(name, row)
    tags = args.device + ("-fp16" if args.fp16 else "") + ("-compiled" if args.compile else "")
    out = Path(args.out or ROOT / "benchmarks" / f"results-{tags}.json")
    out.write_text(json.dumps(results, indent=2))
    print(f"machine: {results['machine']}\nwrote {out}")
    return 0


def print_row(name: str, row: dict) -> None:
    mo = row["model_only"]
    b1 = mo["batches"]["1"]
    best = mo["batches"][str(mo["best_batch"])]
    print(
        f"{name:>3}  batch 1: baseline {b1['baseline']['median_ms']:7.2f} ms, engine "
        f"{b1['engine']['median_ms']:7.2f} ms (p90 {b1['engine']['p90_ms']:7.2f}), ratio "
        f"{b1['ratio']:.2f} (paired {b1['paired_ratio']:.2f}), max diff {b1['max_abs_diff']:.1e}"
        f" | best batch {mo['best_batch']}: "
        f"{best['engine_images_per_s']:7.1f} img/s (baseline {best['baseline_images_per_s']:7.1f})"
    )
    if "end_to_end" in row:
        e = row["end_to_end"]
        stages = ", ".join(f"{k} {v:.1f}" for k, v in e["stages_median_ms"].items())
        print(
            f"     end-to-end {e['fps']:.1f} fps = {e['ratio_to_model_only']:.2f}x model-only "
            f"{e['model_only_fps']:.1f} fps (paired: {e['paired_ratio']:.2f}x of "
            f"{e['paired_model_only_fps']:.1f} fps; {e['in_flight']} in flight: "
            f"{e['paired_ratio_same_parallelism']:.2f}x of "
            f"{e['paired_in_flight_model_only_fps']:.1f} fps run so); stages ms: {stages}"
        )


if __name__ == "__main__":
    sys.exit(main())
