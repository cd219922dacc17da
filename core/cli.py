"""posescope inspect / run / bench (the `gui` command lives in main.py: core never imports gui)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from core.checkpoint import CheckpointError, NeedsTrustError, open_checkpoint
from core.identify import Identification, identify_checkpoint


def _fmt_size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n}"


def format_identification(ident: Identification) -> str:
    """A readable block for one file."""
    d = ident.to_dict()
    a = ident.arch
    lines = [f"{Path(d['path']).name}: {ident.title}  (confidence {ident.confidence:.2f})"]
    wrapper = f"wrapper '{d['wrapper']}'" if d["wrapper"] else "bare state dict"
    prefix = f", prefix '{d['key_prefix']}' stripped" if d["key_prefix"] else ""
    lines.append(f"  file       {d['format']}, {_fmt_size(d['file_size'])}, {wrapper}{prefix}")
    if a is not None:
        if a.backbone_type == "convnext-bn":
            stages = "  ".join(f"{n}x{w}" for n, w in zip(a.depths, a.dims, strict=True))
            lines.append(f"  backbone   ConvNeXt-BN, stages (blocks x width): {stages}")
        else:
            lines.append(
                f"  backbone   ResNet-{a.resnet_depth}, blocks {'-'.join(map(str, a.depths))}"
            )
        layers = "  ".join(
            f"{h.out_channels}/{h.kernel}x{h.kernel}/{'up' if h.upsample else '--'}"
            for h in a.head_layers
        )
        lines.append(f"  head       {a.head_style}: {layers}")
        if ident.family != "rootnet":
            js = ident.joint_set.name if ident.joint_set else "?"
            oh, ow = a.output_size
            lines.append(
                f"  output     {a.joint_num} joints ({js}) x {a.depth_dim} depth bins, "
                f"heatmaps {oh}x{ow} for a {a.input_size[0]}x{a.input_size[1]} input"
            )
    lines.append(f"  size       {ident.params / 1e6:.2f} M params, {ident.gflops:.2f} GFLOPs")
    for e in ident.evidence:
        lines.append(f"  evidence   {e}")
    for w in ident.warnings:
        lines.append(f"  WARNING    {w}")
    return "\n".join(lines)


def _load(path: str, trust: bool):
    ckpt = open_checkpoint(path, trust=trust)
    return ckpt, identify_checkpoint(ckpt)


def _error_line(path: str, exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    if isinstance(exc, NeedsTrustError):
        reason += " (needs --trust)" if "--trust" not in reason else ""
    return f"error: {path}: {reason}"


def cmd_inspect(args: argparse.Namespace) -> int:
    results, failed = [], 0
    for path in args.files:
        try:
            _, ident = _load(path, args.trust)
        except (CheckpointError, OSError, ValueError) as exc:
            print(_error_line(path, exc), file=sys.stderr)
            failed += 1
            continue
        results.append(ident)
        if not args.json:
            print(format_identification(ident))
            print()
    if args.json:
        docs = [r.to_dict() for r in results]
        print(json.dumps(docs[0] if len(args.files) == 1 and docs else docs, indent=2))
    return 1 if failed else 0


def _parse_floats(text: str, n: int, what: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise SystemExit(
            f"error: {what} must be numbers separated by commas, got '{text}'"
        ) from None
    if len(vals) != n:
        raise SystemExit(f"error: {what} needs {n} values, got {len(vals)}")
    return vals


def _parse_range(text: str | None) -> tuple[int, int | None]:
    if not text:
        return 0, None
    start, _, end = text.partition(":")
    try:
        return int(start or 0), (int(end) if end else None)
    except ValueError:
        raise SystemExit(f"error: --frames takes START:END, got '{text}'") from None


def _progress(done: int, total: int | None, t0: float) -> None:
    if not sys.stderr.isatty() and done % 25 and done != total:
        return
    rate = done / max(time.perf_counter() - t0, 1e-9)
    if total:
        bar = "#" * int(30 * done / total)
        msg = f"\r[{bar:<30}] {done}/{total} frames, {rate:.1f} fps"
    else:
        msg = f"\r{done} frames, {rate:.1f} fps"
    print(msg, end="" if done != total else "\n", file=sys.stderr, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    from core import export
    from core.drawing import draw_frame
    from core.person import PeopleDetector, PersonTracker
    from core.pipeline import Estimator, EstimatorConfig, PoseRunner, prefetch
    from core.smoothing import PoseSmoother
    from core.sources import SourceError, open_source

    focal = (
        _parse_floats(args.focal, 2, "--focal") if "," in args.focal else (float(args.focal),) * 2
    )
    config = EstimatorConfig(
        device=args.device,
        fp16=args.fp16,
        flip=args.flip,
        focal=(focal[0], focal[1]),
        root_depth_mm=args.root_depth,
        compile=args.compile,
    )
    try:
        est = Estimator.from_path(args.checkpoint, config, trust=args.trust, rootnet=args.rootnet)
    except (CheckpointError, ValueError, RuntimeError, OSError) as exc:
        print(_error_line(args.checkpoint, exc), file=sys.stderr)
        return 1
    _report_compile(est)
    try:
        # one FFmpeg thread when the network shares the CPU (see open_source)
        source = open_source(args.input, decode_threads=1 if est.model.device.type == "cpu" else 0)
    except SourceError as exc:
        print(f"error: {args.input}: {exc}", file=sys.stderr)
        return 1
    if args.bbox:
        tracker = PersonTracker.fixed(_parse_floats(args.bbox, 4, "--bbox"))
    else:
        tracker = PersonTracker(PeopleDetector())
    smoother = PoseSmoother(args.smooth_min_cutoff, args.smooth_beta) if args.smooth else None
    runner = PoseRunner(est, tracker, smoother)
    start, end = _parse_range(args.frames)
    total = source.frame_count
    if total is not None:
        end = total if end is None else min(end, total)
    n_todo = (end - start) if end is not None else None
    writer = None
    frames = []
    t0 = time.perf_counter()
    try:
        if args.render:
            writer = export.OverlayVideoWriter(
                args.render, source.fps or 30.0, (source.width, source.height)
            )
        items = prefetch(source, start, end, prepare=runner.prepare)
        for frame, _, fp in runner.stream(items, runner.default_in_flight()):
            frames.append(fp)
            if writer is not None:
                writer.write(draw_frame(frame.image, fp, est.joint_set))
            _progress(len(frames), n_todo, t0)
    except SourceError as exc:
        print(f"\nerror: {args.input}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; writing what was done", file=sys.stderr)
    finally:
        if writer is not None:
            writer.close()
        source.close()
    why = getattr(source, "end_reason", None)  # a live source: why it stopped (unplugged...)
    if why:
        print(f"\n{source.name} ended: {why}", file=sys.stderr)
    principal = config.principal or (source.width / 2.0, source.height / 2.0)
    doc = export.run_document(
        est.ident.to_dict(), source.info(), config.focal, principal, est.joint_set, frames
    )
    if args.out:
        try:
            export.write_poses(args.out, doc)
        except (ValueError, OSError) as exc:
            print(f"error: {args.out}: {exc}", file=sys.stderr)
            return 1
    people = sum(len(f.people) for f in frames)
    fps = len(frames) / max(time.perf_counter() - t0, 1e-9)
    print(
        f"{len(frames)} frames, {people} poses, {fps:.1f} fps on {est.device}"
        + (f" -> {args.out}" if args.out else ""),
        file=sys.stderr,
    )
    if not args.out:
        json.dump(doc, sys.stdout)
        print()
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from core.bench import run_bench

    try:
        return run_bench(args)
    except (CheckpointError, ValueError, RuntimeError, OSError) as exc:
        print(_error_line(args.checkpoint, exc), file=sys.stderr)
        return 1


COMPILE_HELP = (
    "torch.compile the network (~20 s to compile, a C++ compiler on CPU; there the default"
    " oneDNN form is faster: benchmarks/RESULTS.md)"
)


def _report_compile(est) -> None:
    if est.model.compile_error:
        print(
            f"note: could not compile ({est.model.compile_error}); running uncompiled",
            file=sys.stderr,
        )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="posescope",
        description="Identify, rebuild and run 3D human pose checkpoints from their tensors.",
    )
    sub = p.add_subparsers(dest="command")

    i = sub.add_parser("inspect", help="say what network each checkpoint is, and why")
    i.add_argument("files", nargs="+")
    i.add_argument("--json", action="store_true", help="one JSON object per file")
    i.add_argument("--trust", action="store_true", help="allow full unpickling (runs code!)")
    i.set_defaults(func=cmd_inspect)

    r = sub.add_parser("run", help="poses for an image, video, folder or camera:N")
    r.add_argument("checkpoint")
    r.add_argument("input", help="image, video, folder, camera:N or replay:VIDEO")
    r.add_argument("--bbox", help="fixed person box x,y,w,h (default: detect and track)")
    r.add_argument("--root-depth", type=float, help="fixed root depth in mm")
    r.add_argument("--rootnet", help="a RootNet checkpoint for absolute root depth")
    r.add_argument("--focal", default="1500", help="focal length in px: F or FX,FY")
    r.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    r.add_argument("--fp16", action="store_true", help="half precision (GPU only)")
    r.add_argument("--flip", action="store_true", help="flip test")
    r.add_argument("--compile", action="store_true", help=COMPILE_HELP)
    r.add_argument("--smooth", action="store_true", help="One-Euro temporal smoothing")
    r.add_argument("--smooth-min-cutoff", type=float, default=1.0)
    r.add_argument("--smooth-beta", type=float, default=0.05)
    r.add_argument("--frames", help="START:END frame range")
    r.add_argument("--out", help="poses.json | poses.csv | poses.npz (default: JSON to stdout)")
    r.add_argument("--render", help="overlay video to write (mp4)")
    r.add_argument("--trust", action="store_true", help="allow full unpickling (runs code!)")
    r.set_defaults(func=cmd_run)

    b = sub.add_parser("bench", help="how fast, stage by stage")
    b.add_argument("checkpoint")
    b.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    b.add_argument("--fp16", action="store_true")
    b.add_argument("--compile", action="store_true", help=COMPILE_HELP)
    b.add_argument("--input", help="video for the end-to-end run")
    b.add_argument("--bbox", help="fixed box x,y,w,h for the end-to-end run (default: detect)")
    b.add_argument("--frames", type=int, default=100, help="frames for the end-to-end run")
    b.add_argument("--iters", type=int, default=30, help="timed iterations per measurement")
    b.add_argument("--batches", default="1,2,4,8", help="batch sizes for throughput")
    b.add_argument("--json", dest="json_out", help="write results as JSON here")
    b.add_argument("--trust", action="store_true")
    b.set_defaults(func=cmd_bench)

    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The engine's commands only (no GUI); `main.py` adds `gui` on top."""
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
