"""PoseScope entry point: `python main.py ...` == `posescope ...`.

`posescope` alone (or `posescope gui [CKPT] [MEDIA]`) opens the desktop app; `inspect`, `run`
and `bench` are the engine's commands from core.cli. The GUI is imported only when asked for,
so the command line works without a display.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence


def _checkout_as_package() -> None:
    """Make this checkout importable as `posescope` (`python main.py`, the tests, benchmarks).

    Installed, the repository root *is* the `posescope` package (pyproject's package-dir); run
    from a checkout, nothing is installed under that name, or another version is. Registering
    the root folder as the package keeps every import absolute (`posescope.core...`) and makes
    the checkout's own code the one that runs.
    """
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent
    current = sys.modules.get("posescope")
    if current is not None and Path(getattr(current, "__file__", "") or "").parent == root:
        return
    spec = importlib.util.spec_from_file_location(
        "posescope", root / "__init__.py", submodule_search_locations=[str(root)]
    )
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules["posescope"] = package
    spec.loader.exec_module(package)


if not __package__:  # imported or run as a top-level module from a checkout
    _checkout_as_package()

from posescope.core.cli import (  # noqa: E402
    INPUT_SCALE,
    build_parser,
    execute,
    help_formatter,
    verbosity_parent,
)
from posescope.core.detection.registry import NAMES as DETECTOR_NAMES  # noqa: E402


def cmd_gui(args: argparse.Namespace) -> int:
    from posescope.gui.app import run_gui

    box = None
    if args.box:
        try:
            box = tuple(float(v) for v in args.box.split(","))
        except ValueError:
            box = ()
        if len(box) != 4:
            print(f"error: --box takes x,y,w,h, got '{args.box}'", file=sys.stderr)
            return 2
    extra = _detector_options(run_gui, args)
    return run_gui(
        args.checkpoint, args.media, frame=args.frame, screenshot=args.screenshot, box=box,
        input_scale=args.input_scale, **extra,
    )  # fmt: skip


def _detector_options(run_gui, args: argparse.Namespace) -> dict:
    """--detector / --detector-model for the app, as the keywords `detector` and
    `detector_model`, passed only when given and when this app's run_gui takes them."""
    import inspect

    given = {
        k: v
        for k, v in (("detector", args.detector), ("detector_model", args.detector_model))
        if v is not None
    }
    accepted = inspect.signature(run_gui).parameters
    if given and not all(k in accepted for k in given):
        print("warning: this app takes no --detector yet; choose one in its Settings",
              file=sys.stderr)  # fmt: skip
        return {}
    return given


COMMANDS = ("inspect", "run", "bench", "models", "diff", "export", "gui")
# Flags that belong to `posescope` itself, not to the app: they never start the GUI.
_TOP_FLAGS = re.compile(r"-h|--help|-V|--version|-v+|-q+|--verbose|--quiet")


def parser() -> argparse.ArgumentParser:
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    g = sub.add_parser(
        "gui", help="the desktop app (the default command)",
        parents=[verbosity_parent(top=False)], formatter_class=help_formatter,
    )  # fmt: skip
    g.add_argument("checkpoint", nargs="?", help="a pose checkpoint to load")
    g.add_argument("media", nargs="?", help="a video, image, folder or camera:N")
    g.add_argument("--frame", type=int, help="frame to show first")
    g.add_argument("--box", metavar="X,Y,W,H", help="person box (default: detect people)")
    g.add_argument("--screenshot", metavar="PNG", help="save a PNG of the window and exit")
    g.add_argument("--detector", choices=DETECTOR_NAMES, metavar="NAME",
                   help="rtmdet (default), yolox, hog or none")  # fmt: skip
    g.add_argument("--detector-model", metavar="FILE", help="a local ONNX file of that detector")
    g.add_argument("--input-scale", **INPUT_SCALE)
    g.set_defaults(func=cmd_gui)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """`posescope [-v|-q] COMMAND ...`; with no command (or a file first) the app starts."""
    argv = list(sys.argv[1:] if argv is None else argv)
    i = 0
    while i < len(argv) and _TOP_FLAGS.fullmatch(argv[i]):
        i += 1
    asks_top_level = any(a in ("-h", "--help", "-V", "--version") for a in argv[:i])
    if not (i == len(argv) and asks_top_level) and (i == len(argv) or argv[i] not in COMMANDS):
        argv.insert(i, "gui")
    return execute(parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
