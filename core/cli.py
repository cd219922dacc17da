"""posescope inspect / run / bench (the `gui` command lives in main.py: core never imports gui)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from posescope.core.checkpoint import CheckpointError, NeedsTrustError, open_checkpoint
from posescope.core.checkpoint.budgets import DEFAULT_MAX_SIZE, fmt_bytes, parse_size
from posescope.core.cli_logging import configure_logging
from posescope.core.detection.commands import add_detector_arguments, add_models_parser
from posescope.core.escape import escape, show_path
from posescope.core.families.descriptor import Identification
from posescope.core.families.registry import REGISTRY
from posescope.core.identify import identify_checkpoint
from posescope.core.outputs import (
    POSE_SUFFIXES,
    VIDEO_SUFFIXES,
    UsageError,
    check_output,
    check_render_size,
    check_smoothing,
    parse_box,
    parse_focal,
    parse_frames,
)

log = logging.getLogger("posescope")

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of our output went away (`| head`)
EXIT_TERMINATED = 143  # 128 + SIGTERM (a `timeout`, a service manager)
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug of PoseScope; the traceback is in a log file


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that it stops like Ctrl-C: results so far are
    written and temporary files removed (a KeyboardInterrupt, so every handler of one sees it).
    """


def _fmt_size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]  # an int on entry, a float after the first step
    return f"{n}"


def format_identification(ident: Identification) -> str:
    """A readable block for one file."""
    d = ident.to_dict()
    a = ident.arch
    name = show_path(Path(d["path"]).name)
    lines = [f"{name}: {ident.title}  (confidence {ident.confidence:.2f})"]
    wrapper = f"wrapper '{escape(d['wrapper'])}'" if d["wrapper"] else "bare state dict"
    prefix = f", prefix '{escape(d['key_prefix'])}' stripped" if d["key_prefix"] else ""
    lines.append(f"  file       {d['format']}, {_fmt_size(d['file_size'])}, {wrapper}{prefix}")
    if a is not None:
        family = REGISTRY.get(ident.family)
        lines.append(f"  backbone   {family.backbone_summary(a) if family else a.backbone_type}")
        layers = "  ".join(
            f"{h.out_channels}/{h.kernel}x{h.kernel}/{'up' if h.upsample else '--'}"
            for h in a.head_layers
        )
        lines.append(f"  head       {a.head_style}: {layers}")
        if ident.is_pose:
            js = ident.joint_set.name if ident.joint_set else "?"
            oh, ow = a.output_size
            lines.append(
                f"  output     {a.joint_num} joints ({js}) x {a.depth_dim} depth bins, "
                f"heatmaps {oh}x{ow} for a {a.input_size[0]}x{a.input_size[1]} input"
            )
    lines.append(f"  size       {ident.params / 1e6:.2f} M params, {ident.gflops:.2f} GFLOPs")
    for e in ident.evidence:
        lines.append(f"  evidence   {escape(e)}")
    for w in ident.warnings:
        lines.append(f"  WARNING    {escape(w)}")
    return "\n".join(lines)


def _load(path: str, trust: bool, max_size: int | None = None):
    ckpt = open_checkpoint(path, trust=trust, max_size=max_size)
    return ckpt, identify_checkpoint(ckpt)


def _error_line(path: str, exc: BaseException) -> str:
    """`error: <what>: <why>` on one line, whatever the file or the exception holds."""
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    if isinstance(exc, NeedsTrustError):
        reason += " (needs --trust)" if "--trust" not in reason else ""
    if isinstance(exc, MemoryError):
        reason = "out of memory"
    if isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror
    return f"error: {show_path(path)}: {escape(reason)}"


def _usage(exc: UsageError) -> int:
    """A bad argument value: argparse's exit status."""
    print(f"error: {exc.what}: {escape(exc.why)}", file=sys.stderr)
    return 2


def _fail(what: str, exc: BaseException) -> int:
    print(_error_line(what, exc), file=sys.stderr)
    return 1


def cmd_inspect(args: argparse.Namespace) -> int:
    results, failed = [], 0
    for path in args.files:
        try:
            _, ident = _load(path, args.trust, args.max_size)
        except (CheckpointError, OSError, ValueError, MemoryError) as exc:
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


def _check_run_args(args: argparse.Namespace) -> tuple[tuple[float, float], int, int | None]:
    """Every value of `run` checked before anything is loaded (UsageError says what is
    allowed); --out and --render checked as destinations (never an input)."""
    focal = parse_focal(args.focal)
    if args.bbox:
        parse_box(args.bbox)
    if args.root_depth is not None and not (0 < args.root_depth < float("inf")):
        raise UsageError("--root-depth", f"a depth in mm above 0 is needed, got {args.root_depth}")
    check_smoothing(args.smooth_min_cutoff, args.smooth_beta)
    start, end = parse_frames(args.frames)
    inputs = [args.checkpoint, args.input] + ([args.rootnet] if args.rootnet else [])
    inputs = [i for i in inputs if not str(i).lower().startswith(("camera:", "replay:"))]
    if args.input.lower().startswith("replay:"):
        inputs.append(args.input.split(":", 1)[1])
    if args.out:
        check_output(args.out, "--out", POSE_SUFFIXES, inputs)
    if args.render:
        check_output(args.render, "--render", VIDEO_SUFFIXES, [*inputs, *filter(None, [args.out])])
    return focal, start, end


def _on_cpu(device: str) -> bool:
    """Whether `--device` means the CPU here (a device that is not there: the model's build
    says so, later)."""
    from posescope.core.inference.device import resolve_device

    try:
        return resolve_device(device).type == "cpu"
    except (RuntimeError, ValueError):
        return True


def cmd_run(args: argparse.Namespace) -> int:
    """Argument handling around the job every writer shares (core/pose_job.py): the runner
    stream feeds a PoseSink, which replaces --out every FLUSH_SECONDS and at the end, and
    --render when the run ends (Ctrl-C and SIGTERM keep what was computed)."""
    from posescope.core.detection.commands import detector_from_args, runner_settings_from_args
    from posescope.core.pipeline import Estimator, EstimatorConfig, prefetch
    from posescope.core.pose_job import (
        FLUSH_SECONDS,
        ExportPlan,
        PoseSink,
        run_header,
        write_frames,
    )
    from posescope.core.runner_setup import build_runner
    from posescope.core.sources.base import SourceError
    from posescope.core.sources.probe import open_source

    try:
        focal, start, end = _check_run_args(args)
    except UsageError as exc:
        return _usage(exc)
    config = EstimatorConfig(
        device=args.device,
        fp16=args.fp16,
        flip=args.flip,
        focal=focal,
        root_depth_mm=args.root_depth,
        compile=args.compile,
        backend=args.backend,
        input_scale=args.input_scale,
    )
    try:
        # the input first: a bad one is told before the network is built (seconds). One FFmpeg
        # thread when the network shares the CPU (see open_source).
        source = open_source(args.input, decode_threads=1 if _on_cpu(args.device) else 0)
    except (SourceError, OSError, ValueError, MemoryError) as exc:
        return _fail(args.input, exc)
    try:
        if args.render:
            check_render_size(source.width, source.height)
    except UsageError as exc:
        source.close()
        return _usage(exc)
    try:
        est = Estimator.from_path(
            args.checkpoint, config, trust=args.trust, rootnet=args.rootnet,
            max_size=args.max_size,
        )  # fmt: skip
    except (CheckpointError, ValueError, RuntimeError, OSError, MemoryError) as exc:
        source.close()
        return _fail(getattr(exc, "path", "") or args.checkpoint, exc)
    _report_compile(est)
    settings = runner_settings_from_args(args)
    detector = None
    if settings.tracker_box is None:
        detector, code = detector_from_args(args)
        if code:
            source.close()
            return code
    # the detector in its own thread for videos and live sources, in line for one image
    runner = build_runner(est, settings, detector, background=source.frame_count != 1)
    total = source.frame_count
    if total is not None:
        end = total if end is None else min(end, total)
    n_todo = (end - start) if end is not None else None
    try:
        header = run_header(est, source.info(), source.width, source.height, source.fps)
    except (ValueError, OSError) as exc:  # no joint set: not a pose network
        runner.close()
        source.close()
        return _fail(args.checkpoint, exc)
    stream = items = sink = None
    interrupted: KeyboardInterrupt | None = None
    failed: str | None = None
    t0 = time.perf_counter()
    try:
        sink = PoseSink(ExportPlan(args.out, args.render), header, flush_s=FLUSH_SECONDS)
        items = prefetch(source, start, end, prepare=runner.prepare)
        stream = runner.stream(items, runner.default_in_flight())
        frames = ((frame.image, fp) for frame, _, fp in stream)
        job = write_frames(frames, sink, n_todo, finish=False, keep_partial=True)
        for done, _, _ in job:
            _progress(done, n_todo, t0)
    except (SourceError, OSError, ValueError, MemoryError) as exc:
        failed = _error_line(args.render if sink is None else args.input, exc)
    except KeyboardInterrupt as exc:
        interrupted = exc
        print(file=sys.stderr)
        how = "terminated" if isinstance(exc, Terminated) else "interrupted"
        log.warning("%s after %d frames; writing what was computed", how, _frames(sink))
    finally:
        # Stop the decode thread before the source closes under it (a crash in FFmpeg).
        for gen in (stream, items):
            if gen is not None:
                gen.close()
        runner.close()  # ends the detection thread
        source.close()
    why = getattr(source, "end_reason", None)  # a live source: why it stopped (unplugged...)
    if why:
        print(file=sys.stderr)
        log.warning("%s ended: %s", source.name, why)
    if sink is not None:
        # what the source says now (a damaged video's frame count is corrected at its end)
        sink.header = dataclasses.replace(sink.header, source=source.info())
        try:
            sink.finish()  # the video so far replaces --render, the poses --out
        except (ValueError, OSError) as exc:
            return _fail(args.out or args.render, exc)
    if failed:
        print(f"\n{failed}", file=sys.stderr)
        return 1
    if sink is None:  # stopped before anything was written
        return EXIT_TERMINATED if isinstance(interrupted, Terminated) else EXIT_INTERRUPTED
    fps = sink.frames / max(time.perf_counter() - t0, 1e-9)
    log.info(
        "%d frames, %d poses, %.1f fps on %s%s",
        sink.frames, sink.people, fps, est.device, f" -> {args.out}" if args.out else "",
    )  # fmt: skip
    if not args.out:
        json.dump(sink.document(), sys.stdout)
        print()
    if interrupted:
        return EXIT_TERMINATED if isinstance(interrupted, Terminated) else EXIT_INTERRUPTED
    return 0


def _frames(sink: object) -> int:
    return int(getattr(sink, "frames", 0))


def cmd_bench(args: argparse.Namespace) -> int:
    from posescope.core.bench import run_bench

    try:
        if args.bbox:
            parse_box(args.bbox)
        if args.frames < 1 or args.iters < 1:
            raise UsageError("--frames/--iters", "whole numbers of at least 1 are needed")
        for b in args.batches.split(","):
            if not b.strip().isascii() or not b.strip().isdigit() or int(b) < 1:
                raise UsageError(
                    "--batches", f"whole numbers above 0 separated by commas, got {args.batches!r}"
                )
        if args.json_out:
            check_output(args.json_out, "--json", (".json",), [args.checkpoint])
    except UsageError as exc:
        return _usage(exc)
    try:
        return run_bench(args)
    except (CheckpointError, ValueError, RuntimeError, OSError, MemoryError) as exc:
        return _fail(getattr(exc, "path", "") or args.checkpoint, exc)


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
MAX_SIZE_HELP = f"most a checkpoint may unpack to (default {fmt_bytes(DEFAULT_MAX_SIZE)})"


def _size_arg(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# argparse keyword arguments, shared by several subcommands.
BACKEND: dict[str, Any] = {
    "default": "auto", "choices": ["auto", "torch", "onnxruntime"], "metavar": "B",
    "help": "torch or onnxruntime (default: the faster here)",
}  # fmt: skip
INPUT_SCALE: dict[str, Any] = {
    "default": "auto", "choices": ["auto", "0-255", "0-1"], "metavar": "S",
    "help": "0-255 (published), 0-1 (/255); default: the file's",
}  # fmt: skip
DEVICE: dict[str, Any] = {
    "default": "auto", "choices": ["auto", "cpu", "cuda", "mps"], "metavar": "DEVICE",
    "help": "auto, cpu, cuda or mps (default: auto)",
}  # fmt: skip


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one `error: <what>: <why>` line (exit 2), like every
    other error; the usage is one `--help` away (said on the line)."""

    def error(self, message: str) -> NoReturn:
        what, sep, why = message.partition(": ")
        what = what.removeprefix("argument ").split("/")[-1] if sep else self.prog
        why = why if sep else message
        self.exit(2, f"error: {escape(what)}: {escape(why)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="posescope",
        description="Identify, rebuild and run 3D human pose checkpoints from their tensors.",
        epilog="With no command (or a file as the first argument) the desktop app starts.",
        parents=[verbosity_parent(top=True)],
        formatter_class=help_formatter,
    )
    p.add_argument("-V", "--version", action="version", version=f"posescope {version()}",
                   help="print the version and exit")  # fmt: skip
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    common: dict[str, Any] = {
        "parents": [verbosity_parent(top=False)],
        "formatter_class": help_formatter,
    }

    i = sub.add_parser("inspect", help="say what network each file is, and why", **common)
    i.add_argument("files", nargs="+", metavar="FILE", help="checkpoint files or folders")
    i.add_argument("--json", action="store_true", help="print JSON (an object, or a list)")
    i.add_argument("--trust", action="store_true", help=TRUST_HELP)
    i.add_argument("--max-size", type=_size_arg, metavar="SIZE", help=MAX_SIZE_HELP)
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
    r.add_argument("--input-scale", **INPUT_SCALE)
    r.add_argument("--smooth", action="store_true", help="One-Euro temporal smoothing")
    r.add_argument("--smooth-min-cutoff", type=float, default=1.0, metavar="HZ",
                   help="One-Euro min cutoff (lower: smoother)")  # fmt: skip
    r.add_argument("--smooth-beta", type=float, default=0.05, metavar="B",
                   help="One-Euro speed factor (higher: less lag)")  # fmt: skip
    r.add_argument("--frames", metavar="START:END", help="frame range (default: all)")
    r.add_argument("--out", metavar="FILE", help=".json, .csv or .npz (default: JSON on stdout)")
    r.add_argument("--render", metavar="VIDEO", help="overlay video to write (mp4)")
    r.add_argument("--trust", action="store_true", help=TRUST_HELP)
    add_detector_arguments(r)
    r.add_argument("--max-size", type=_size_arg, metavar="SIZE", help=MAX_SIZE_HELP)
    r.set_defaults(func=cmd_run)

    b = sub.add_parser("bench", help="how fast, stage by stage", **common)
    b.add_argument("checkpoint", help="the pose checkpoint")
    b.add_argument("--device", **DEVICE)
    b.add_argument("--fp16", action="store_true", help="half precision (GPU only)")
    b.add_argument("--compile", action="store_true", help=COMPILE_HELP)
    b.add_argument("--backend", **BACKEND)
    b.add_argument("--input-scale", **INPUT_SCALE)
    b.add_argument("--input", metavar="VIDEO", help="video for the end-to-end run")
    b.add_argument("--bbox", metavar="X,Y,W,H", help="fixed box for the end-to-end run")
    b.add_argument("--frames", type=int, default=100, metavar="N", help="end-to-end frames")
    b.add_argument("--iters", type=int, default=30, metavar="N", help="timed iterations each")
    b.add_argument("--batches", default="1,2,4,8", metavar="B,...", help="batch sizes to time")
    b.add_argument("--json", dest="json_out", metavar="OUT", help="write results as JSON here")
    b.add_argument("--trust", action="store_true", help=TRUST_HELP)
    add_detector_arguments(b)
    b.add_argument("--max-size", type=_size_arg, metavar="SIZE", help=MAX_SIZE_HELP)
    b.set_defaults(func=cmd_bench)

    add_models_parser(sub, **common)
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
    e.add_argument("--input-scale", **INPUT_SCALE)
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
    old_term = _on_sigterm()
    try:
        code = int(func(args) or 0)
        sys.stdout.flush()
        return code
    except KeyboardInterrupt as exc:
        print(file=sys.stderr)
        log.warning("terminated" if isinstance(exc, Terminated) else "interrupted")
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: one line here, the traceback in a file
        log_path = _write_crash_log(exc)
        print(
            f"error: internal error ({type(exc).__name__}): please report it with the "
            f"traceback in {log_path}",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _on_sigterm() -> signal.Handlers | None:
    """SIGTERM stops a command like Ctrl-C (results kept, temp files removed); main thread
    only (signal handlers can only be set there)."""

    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    try:
        return signal.signal(signal.SIGTERM, handler)  # type: ignore[return-value]
    except ValueError:  # not the main thread (tests calling main() from a worker)
        return None


def _write_crash_log(exc: BaseException) -> str:
    """The traceback of an internal error, in a file the user can attach to a report."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        fd, path = tempfile.mkstemp(prefix="posescope-crash-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(f"posescope {version()}\n{' '.join(map(show_path, sys.argv))}\n\n{text}")
        return path
    except OSError:
        return "(no log file: the temp folder is not writable)"


def main(argv: Sequence[str] | None = None) -> int:
    """The engine's commands only (no GUI); `main.py` adds `gui` on top."""
    return execute(build_parser(), list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
