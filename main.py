"""PoseScope entry point: `python main.py ...` == `posescope ...`.

`posescope` alone (or `posescope gui [CKPT] [MEDIA]`) opens the desktop app; `inspect`, `run`
and `bench` are the engine's commands from core.cli. The GUI is imported only when asked for,
so the command line works without a display.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core.cli import build_parser


def cmd_gui(args: argparse.Namespace) -> int:
    from gui.app import run_gui

    box = None
    if args.box:
        try:
            box = tuple(float(v) for v in args.box.split(","))
        except ValueError:
            box = ()
        if len(box) != 4:
            print(f"error: --box takes x,y,w,h, got '{args.box}'", file=sys.stderr)
            return 2
    return run_gui(
        args.checkpoint, args.media, frame=args.frame, screenshot=args.screenshot, box=box
    )


def parser() -> argparse.ArgumentParser:
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    g = sub.add_parser("gui", help="the desktop app (the default command)")
    g.add_argument("checkpoint", nargs="?", help="a pose checkpoint to load")
    g.add_argument("media", nargs="?", help="a video, image, folder or camera:N")
    g.add_argument("--frame", type=int, help="frame to show first")
    g.add_argument("--box", help="person box x,y,w,h to estimate in (default: detect people)")
    g.add_argument("--screenshot", help="render, save a PNG of the whole window and exit")
    g.set_defaults(func=cmd_gui)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"inspect", "run", "bench", "gui"}
    if not argv or (argv[0] not in commands and argv[0] not in ("-h", "--help")):
        argv = ["gui", *argv]
    args = parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
