"""The engine's two inference forms side by side with the eager baseline, in one run.

    python benchmarks/backends.py [--device cpu] [--variants XS,M,L] [--iters 40] [--threads N]
                                  [--out FILE]

For each variant at batch 1: the plain eager forward (the published code path), the torch
engine (on a CPU its oneDNN program) and the onnxruntime form, their calls interleaved
(eager, torch, onnxruntime, eager, ...) so that load on the machine falls on all three. Prints
a table of ratios to eager and writes JSON (default benchmarks/results-backends-<device>.json).
Checkpoints are generated with random weights (speed does not depend on the values).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import main as _checkout  # noqa: E402, F401  (registers this checkout as `posescope`)
from posescope.core.bench import machine, model_only  # noqa: E402
from posescope.core.checkpoint import open_checkpoint  # noqa: E402
from posescope.core.identify import identify_checkpoint  # noqa: E402
from posescope.core.inference.model import InferenceModel  # noqa: E402
from posescope.core.model import build_model, load_weights  # noqa: E402
from posescope.core.pipeline import Estimator, EstimatorConfig  # noqa: E402
from tests import factory  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--variants", default="XS,M,L")
    p.add_argument("--iters", type=int, default=40)
    p.add_argument("--threads", type=int, help="intra-op threads (default: torch's)")
    p.add_argument("--out")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # the onnxruntime form takes the same count
    results: dict = {"machine": machine(), "device": args.device, "batch": 1, "variants": {}}
    print(f"{'':>3} {'eager':>9} {'torch':>9} {'onnxrt':>9} {'torch/eager':>12} "
          f"{'ort/eager':>10} {'ort/torch':>10}  (paired ratios; medians in ms)")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants.split(","):
            path = factory.save_torch_zip(factory.state_dict_for(name), Path(tmp) / f"{name}.pth")
            ckpt = open_checkpoint(path)
            ident = identify_checkpoint(ckpt)
            cfg = EstimatorConfig(device=args.device, backend="torch")
            est = Estimator.from_checkpoint(ckpt, ident, cfg)
            net = build_model(ident.arch)
            load_weights(net, ckpt.state_dict)
            ort = InferenceModel(net, args.device, backend="onnxruntime")
            mo = model_only(est, net, args.iters, [1], {"onnxruntime": ort})
            mo["onnxruntime_form"] = ort.form
            row = mo["batches"]["1"]
            row["onnxruntime_over_torch"] = (
                row["onnxruntime"]["median_ms"] / row["engine"]["median_ms"]
            )
            results["variants"][name] = mo
            print(
                f"{name:>3} {row['baseline']['median_ms']:9.2f} {row['engine']['median_ms']:9.2f} "
                f"{row['onnxruntime']['median_ms']:9.2f} {row['paired_ratio']:12.2f} "
                f"{row['onnxruntime_paired_ratio']:10.2f} {row['onnxruntime_over_torch']:10.2f}"
                f"   engine form {mo['form']}, diffs {row['max_abs_diff']:.1e} / "
                f"{row['onnxruntime_max_abs_diff']:.1e}"
            )
    out = Path(args.out or ROOT / "benchmarks" / f"results-backends-{args.device}.json")
    out.write_text(json.dumps(results, indent=2))
    print(f"machine: {results['machine']}\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
