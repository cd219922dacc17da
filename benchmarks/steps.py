"""Each step of the inference form, measured against the plain eager forward in one run.

    python benchmarks/steps.py [--variants XS,M] [--iters 40] [--inductor] [--out FILE]

Steps: eager (the published code path: unfused BN, NCHW, normalised float input, the
published soft-argmax) -> soft-argmax with x and y from the 2D marginal (two passes over the
volume instead of three) -> BN and input normalisation folded (NCHW) -> + channels-last ->
+ TorchScript optimize_for_inference (the traced form: the engine's fallback) -> the oneDNN
program called from Python (weights packed once, ReLU and residual adds fused into the
convolutions, the heatmap layer as one GEMM with its bias inside) -> + the program
TorchScript-compiled (the engine) -> optionally torch.compile/inductor with freezing (needs a
C++ compiler, ~20 s).
Calls are interleaved so that load on the machine drifts over every step alike. Batch 1.
Every step runs with freed memory kept (`keep_freed_memory`, process-wide, set first).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import main as _checkout  # noqa: E402, F401  (registers this checkout as `posescope`)
from posescope.core.bench import machine, time_calls  # noqa: E402
from posescope.core.families.network import soft_argmax  # noqa: E402
from posescope.core.identify import identify  # noqa: E402
from posescope.core.inference.device import keep_freed_memory  # noqa: E402
from posescope.core.inference.fold import fuse_with_input  # noqa: E402
from posescope.core.inference.model import _optimize_cpu, bgr_to_input  # noqa: E402
from posescope.core.inference.onednn import _onednn_program, _OneDNNConvNeXtPose  # noqa: E402
from posescope.core.model import build_model, load_weights  # noqa: E402
from tests import factory  # noqa: E402


def steps_for(name: str, iters: int, inductor: bool) -> dict:
    keep_freed_memory()
    sd = factory.state_dict_for(name)
    arch = identify({k: tuple(v.shape) for k, v in sd.items()}).arch
    net = build_model(arch)
    load_weights(net, sd)
    j, d = arch.joint_num, arch.depth_dim
    crops = np.random.default_rng(0).integers(0, 256, (1, 256, 256, 3), dtype=np.uint8)
    x = bgr_to_input(crops)
    raw = torch.as_tensor(crops).permute(0, 3, 1, 2).float()  # channels-last view
    folded_nchw = fuse_with_input(net)
    folded_cl = fuse_with_input(net).to(memory_format=torch.channels_last)
    prepacked = _optimize_cpu(fuse_with_input(net).to(memory_format=torch.channels_last), arch)
    program = _OneDNNConvNeXtPose(folded_cl, arch.input_size)
    from_python = _OneDNNConvNeXtPose(folded_cl, arch.input_size)
    from_python._program = _onednn_program  # the same program, uncompiled
    steps = {
        "eager (baseline)": lambda: net(x),
        "soft-argmax from the 2D marginal": lambda: soft_argmax(net.heatmaps(x), j, d),
        "BN + normalisation folded": lambda: soft_argmax(folded_nchw(raw.contiguous()), j, d),
        "+ channels-last": lambda: soft_argmax(folded_cl(raw), j, d),
        "+ optimize_for_inference (traced)": lambda: soft_argmax(prepacked(raw), j, d),
        "oneDNN program, from Python": lambda: soft_argmax(from_python(raw), j, d),
        "+ TorchScript-compiled (engine)": lambda: soft_argmax(program(raw), j, d),
    }
    if inductor:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        compiled = torch.compile(lambda t: soft_argmax(folded_cl(t), j, d))
        steps["+ torch.compile inductor (freezing)"] = lambda: compiled(raw)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = net(x)
        diffs = {k: float((f() - want).abs().max()) for k, f in steps.items()}
        times = time_calls(list(steps.values()), torch.device("cpu"), iters)
    base = statistics.median(times[0])
    return {
        k: {
            "median_ms": statistics.median(t),
            "ratio": statistics.median(t) / base,
            "max_abs_diff": diffs[k],
        }
        for k, t in zip(steps, times, strict=True)
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="XS,M")
    p.add_argument("--iters", type=int, default=40)
    p.add_argument("--inductor", action="store_true")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "steps-cpu.json"))
    args = p.parse_args()
    result = {"machine": machine(), "variants": {}}
    for name in args.variants.split(","):
        rows = steps_for(name, args.iters, args.inductor)
        result["variants"][name] = rows
        print(f"{name}: batch 1, {torch.get_num_threads()} threads")
        for k, r in rows.items():
            ms, ratio, diff = r["median_ms"], r["ratio"], r["max_abs_diff"]
            print(f"  {k:<38} {ms:7.2f} ms  {ratio:5.2f}x  diff {diff:.1e}")
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
