"""posescope inspect / run / bench (the `gui` command lives in main.py: core never imports gui)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from posescope.core.checkpoint import CheckpointError, NeedsTrustError, open_checkpoint
from posescope.core.identify import Identification, identify_checkpoint

log = logging.getLogger("posescope")

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of our output went away (`| head`)


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
    if not log.isEnabledFor(logging.INFO):
        return
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
    from posescope.core import export
    from posescope.core.drawing import draw_frame
    from posescope.core.person import PeopleDetector, PersonTracker
    from posescope.core.pipeline import Estimator, EstimatorConfig, PoseRunner, prefetch
    from posescope.core.smoothing import PoseSmoother
    from posescope.core.sources import SourceError, open_source

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
        backend=args.backend,
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
    interrupted = False
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
        interrupted = True
        print(file=sys.stderr)
        log.warning("interrupted after %d frames; writing what was computed", len(frames))
    finally:
        if writer is not None:
            writer.close()
        source.close()
    why = getattr(source, "end_reason", None)  # a live source: why it stopped (unplugged...)
    if why:
        print(file=sys.stderr)
        log.warning("%s ended: %s", source.name, why)
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
    log.info(
        "%d frames, %d poses, %.1f fps on %s%s",
        len(frames), people, fps, est.device, f" -> {args.out}" if args.out else "",
    )  # fmt: skip
    if not args.out:
        json.dump(doc, sys.stdout)
        print()
    return EXIT_INTERRUPTED if interrupted else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from posescope.core.bench import run_bench

    try:
        return run_bench(args)
    except (CheckpointError, ValueError, RuntimeError, OSError) as exc:
        print(_error_line(args.checkpoint, exc), file=sys.stderr)
        return 1


def cmd_diff(args: argparse.Namespace) -> int:
    from posescope.core.diff import run_diff

    return run_diff(args)


def cmd_export(args: argparse.Namespace) -> int:
    from posescope.core.network_export import run_export

    return run_export(args)


# Kept short: every option's help fits one line of an 80-column terminal (tested).
COMPILE_HELP = "torch.compile (~20 s; on CPU slower than default)"


def _report_compile(est) -> None:
    if est.model.compile_error:
        log.warning("could not compile (%s); running uncompiled", est.model.compile_error)


def version() -> str:
    """The installed version (package metadata), or the checkout's when not installed."""
    from posescope import __version__

    return __version__


class _LevelFormatter(logging.Formatter):
    """`error: ...` / `warning: ...` / plain info, as the rest of the CLI prints."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {msg}"
        if record.levelno <= logging.DEBUG:
            return f"debug: {record.name}: {msg}"
        return msg


def configure_logging(verbose: int = 0, quiet: int = 0) -> int:
    """Map -v / -q to a logging level for everything under `posescope` (diagnostics go to
    stderr through logging; results go to stdout). Default INFO (progress and summaries);
    -q warnings only, -qq errors only; -v debug. Returns the level."""
    level = min(max(logging.INFO - 10 * (verbose - quiet), logging.DEBUG), logging.ERROR)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LevelFormatter())
    logger = logging.getLogger("posescope")  # every module's logger is a child of this one
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    return level


def verbosity_parent(top: bool) -> argparse.ArgumentParser:
    """-v / -q, accepted before or after the subcommand."""
    p = argparse.ArgumentParser(add_help=False)
    default = 0 if top else argparse.SUPPRESS
    g = p.add_mutually_exclusive_group()
    g.add_argument("-v", "--verbose", action="count", default=default, help="more diagnostics")
    g.add_argument(
        "-q", "--quiet", action="count", default=default, help="warnings only (-qq: errors)"
    )
    return p


def help_formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(prog, max_help_position=26)


TRUST_HELP = "allow full unpickling (runs code from the file!)"
BACKEND = {"default": "auto", "choices": ["auto", "torch", "onnxruntime"], "metavar": "B",
           "help": "torch or onnxruntime (default: the faster here)"}  # fmt: skip
DEVICE = {"default": "auto", "choices": ["auto", "cpu", "cuda", "mps"], "metavar": "DEVICE",
          "help": "auto, cpu, cuda or mps (default: auto)"}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="posescope",
        description="Identify, rebuild and run 3D human pose checkpoints from their tensors.",
        epilog="With no command (or a file as the first argument) the desktop app starts.",
        parents=[verbosity_parent(top=True)],
        formatter_class=help_formatter,
    )
    p.add_argument("-V", "--version", action="version", version=f"posescope {version()}",
                   help="print the version and exit")  # fmt: skip
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    common = {"parents": [verbosity_parent(top=False)], "formatter_class": help_formatter}

    i = sub.add_parser("inspect", help="say what network each file is, and why", **common)
    i.add_argument("files", nargs="+", metavar="FILE", help="checkpoint files or folders")
    i.add_argument("--json", action="store_true", help="print JSON (an object, or a list)")
    i.add_argument("--trust", action="store_true", help=TRUST_HELP)
    i.set_defaults(func=cmd_inspect)

    r = sub.add_parser("run", help="poses for an image, video, folder or camera:N", **common)
    r.add_argument("checkpoint", help="the pose checkpoint")
    r.add_argument("input", help="image, video, folder, camera:N or replay:VIDEO")
    r.add_argument("--bbox", metavar="X,Y,W,H", help="fixed person box (default: detect)")
    r.add_argument("--root-depth", type=float, metavar="MM", help="fixed root depth in mm")
    r.add_argument("--rootnet", metavar="CKPT", help="a RootNet checkpoint for root depth")
    r.add_argument("--focal", default="1500", metavar="F[,FY]", help="focal length in px")
    r.add_argument("--device", **DEVICE)
    r.add_argument("--fp16", action="store_true", help="half precision (GPU only)")
    r.add_argument("--flip", action="store_true", help="flip test (average with the mirror)")
    r.add_argument("--compile", action="store_true", help=COMPILE_HELP)
    r.add_argument("--backend", **BACKEND)
    r.add_argument("--smooth", action="store_true", help="One-Euro temporal smoothing")
    r.add_argument("--smooth-min-cutoff", type=float, default=1.0, metavar="HZ",
                   help="One-Euro min cutoff (lower: smoother)")  # fmt: skip
    r.add_argument("--smooth-beta", type=float, default=0.05, metavar="B",
                   help="One-Euro speed factor (higher: less lag)")  # fmt: skip
    r.add_argument("--frames", metavar="START:END", help="frame range (default: all)")
    r.add_argument("--out", metavar="FILE", help=".json, .csv or .npz (default: JSON on stdout)")
    r.add_argument("--render", metavar="VIDEO", help="overlay video to write (mp4)")
    r.add_argument("--trust", action="store_true", help=TRUST_HELP)
    r.set_defaults(func=cmd_run)

    b = sub.add_parser("bench", help="how fast, stage by stage", **common)
    b.add_argument("checkpoint", help="the pose checkpoint")
    b.add_argument("--device", **DEVICE)
    b.add_argument("--fp16", action="store_true", help="half precision (GPU only)")
    b.add_argument("--compile", action="store_true", help=COMPILE_HELP)
    b.add_argument("--backend", **BACKEND)
    b.add_argument("--input", metavar="VIDEO", help="video for the end-to-end run")
    b.add_argument("--bbox", metavar="X,Y,W,H", help="fixed box for the end-to-end run")
    b.add_argument("--frames", type=int, default=100, metavar="N", help="end-to-end frames")
    b.add_argument("--iters", type=int, default=30, metavar="N", help="timed iterations each")
    b.add_argument("--batches", default="1,2,4,8", metavar="B,...", help="batch sizes to time")
    b.add_argument("--json", dest="json_out", metavar="OUT", help="write results as JSON here")
    b.add_argument("--trust", action="store_true", help=TRUST_HELP)
    b.set_defaults(func=cmd_bench)

    d = sub.add_parser("diff", help="same network? same weights? (0 same, 1 not)", **common)
    d.add_argument("a", metavar="A", help="a checkpoint")
    d.add_argument("b", metavar="B", help="the checkpoint to compare it with")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.add_argument("--trust", action="store_true", help=TRUST_HELP)
    d.set_defaults(func=cmd_diff)

    e = sub.add_parser("export", help="the network as ONNX or a torch.export program", **common)
    e.add_argument("checkpoint", help="the pose checkpoint")
    e.add_argument("--onnx", metavar="OUT", help="write ONNX here (checked with onnxruntime)")
    e.add_argument("--torch-export", metavar="OUT", help="write a torch.export program (.pt2)")
    e.add_argument("--opset", type=int, default=18, metavar="N", help="ONNX opset (default 18)")
    e.add_argument("--input", default="published", choices=["published", "uint8-bgr"],
                   metavar="FORM",
                   help="published: N,3,H,W normalised; uint8-bgr: N,H,W,3")  # fmt: skip
    e.add_argument("--fp16", action="store_true", help="half-precision network")
    e.add_argument("--trust", action="store_true", help=TRUST_HELP)
    e.set_defaults(func=cmd_export)

    return p


def execute(parser: argparse.ArgumentParser, argv: Sequence[str]) -> int:
    """Parse, set up logging, run the command; the conventions every command shares:
    Ctrl-C exits 130 (a command that can keep partial results, like `run`, writes them first),
    and output into a closed pipe (`posescope inspect ... | head -1`) ends quietly."""
    args = parser.parse_args(argv)
    configure_logging(args.verbose, args.quiet)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        code = int(func(args) or 0)
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        print(file=sys.stderr)
        log.warning("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """The engine's commands only (no GUI); `main.py` adds `gui` on top."""
    return execute(build_parser(), list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
