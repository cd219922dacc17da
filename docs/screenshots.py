"""Walk the window as a new user would and save what it looks like (PNG files).

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python docs/screenshots.py OUT
    ... docs/screenshots.py --docs docs/screenshot.png     (the README's picture)

At 1024x700, 1280x720 and 1920x1080: the empty window, a generated XS checkpoint on the
Pose2Sim video (frame 10, a person selected, the side view), the Sports2D video (camera space
from the top), a single image, a wall nobody is found on, a video cut mid-stream, and a live
replay. The checkpoint has random weights (tests/factory.py): the poses are crumpled.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PySide6.QtCore import QEventLoop, QSettings  # noqa: E402

import main  # noqa: E402, F401  (this checkout as the `posescope` package)
from posescope.gui.app import ensure_app, grab_window, make_window  # noqa: E402
from tests import factory  # noqa: E402
from tests.media_files import POSE2SIM, SPORTS2D  # noqa: E402

SIZES = ((1024, 700), (1280, 720), (1920, 1080))


class Walk:
    def __init__(self, work: Path) -> None:
        self.app = ensure_app()
        self.work = work
        self.ckpt = work / "xs.pth"
        factory.save_torch_zip(factory.wrap(factory.state_dict_for("XS"), "network"), self.ckpt)

    def pump(self, ms: int = 200) -> None:
        end = time.perf_counter() + ms / 1000
        while time.perf_counter() < end:
            self.app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            time.sleep(0.01)

    def wait(self, ready: Callable[[], bool], timeout_s: float = 180.0) -> None:
        end = time.perf_counter() + timeout_s
        while not ready():
            if time.perf_counter() > end:
                raise TimeoutError("the window did not get there in time")
            self.pump(50)

    def window(self, size: tuple[int, int], detector: str | None = None):
        settings = QSettings(str(self.work / f"{time.time()}.ini"), QSettings.Format.IniFormat)
        w = make_window(settings)
        if detector is not None:
            w.use_detector(detector)
        w.show()
        w.resize(*size)
        self.pump(300)
        return w

    def shown(self, w, index: int | None = None) -> bool:
        r = w.session.shown
        ok = r is not None and r.poses is not None and w.session.is_current(r)
        return ok and (index is None or r.frame.index == index)

    def open(self, w, media: Path | str, frame: int | None = None) -> None:
        w.open_paths([str(self.ckpt), str(media)])
        self.wait(lambda: self.shown(w))
        if frame is not None:
            w.session.seek(frame)
            self.wait(lambda: self.shown(w, frame))

    def save(self, w, path: Path) -> None:
        self.pump(300)
        w.skeleton_view.gl.update()
        self.pump(100)
        grab_window(w).save(str(path))
        print(path, flush=True)

    def close(self, w) -> None:
        w.shutdown()
        w.close()
        self.pump()


def walk(out: Path, sizes: tuple[tuple[int, int], ...] = SIZES) -> None:
    with tempfile.TemporaryDirectory(prefix="posescope-walk-") as tmp:
        work = Path(tmp)
        run = Walk(work)
        still, wall, cut = work / "still.png", work / "wall.png", work / "cut.avi"
        cv2.imwrite(str(still), _frame(SPORTS2D, 40))
        cv2.imwrite(str(wall), np.full((720, 480, 3), 235, np.uint8))
        _cut_video(SPORTS2D, cut, 60)
        for size in sizes:
            tag = f"{size[0]}x{size[1]}"
            w = run.window(size)
            run.save(w, out / f"{tag}_01_empty.png")
            run.open(w, POSE2SIM, 10)
            run.save(w, out / f"{tag}_02_pose2sim.png")
            w.session.selection.select(w.session.shown.poses.people[0].track_id)
            w.skeleton_view.set_view("side")
            w.joints_dock.raise_()
            run.save(w, out / f"{tag}_03_selected_side.png")
            run.close(w)
            w = run.window(size)
            run.open(w, SPORTS2D, 60)
            w.skeleton_view.set_space("camera")
            w.skeleton_view.set_view("top")
            run.save(w, out / f"{tag}_04_sports2d_camera_top.png")
            run.close(w)
            for name, media in (("05_single_image", still), ("06_damaged", cut)):
                w = run.window(size)
                run.open(w, media)
                run.wait(lambda w=w: w.session.analysis_progress.finished)
                run.save(w, out / f"{tag}_{name}.png")
                run.close(w)
            w = run.window(size, detector="hog")
            run.open(w, wall)
            run.save(w, out / f"{tag}_07_nobody.png")
            run.close(w)
            w = run.window(size)
            w.open_paths([str(run.ckpt)])
            run.wait(lambda w=w: w.session.model is not None)
            w.open_source(f"replay:{SPORTS2D}")  # a live source: the replay of a video
            run.wait(lambda w=w: w.session.live and run.shown(w))
            run.pump(1500)
            run.save(w, out / f"{tag}_08_live_replay.png")
            run.close(w)


def docs_picture(path: Path) -> None:
    """The README's picture: 1280x720, Sports2D frame 150, HOG, the person selected."""
    with tempfile.TemporaryDirectory(prefix="posescope-walk-") as tmp:
        run = Walk(Path(tmp))
        w = run.window((1280, 720), detector="hog")
        run.open(w, SPORTS2D, 150)
        people = w.session.shown.poses.people
        w.session.selection.select(max(people, key=lambda p: p.bbox[2] * p.bbox[3]).track_id)
        w.joints_dock.raise_()
        w.banner.clear()
        w.skeleton_view.fit()  # frame this pose (the view keeps the first frame's fit)
        run.save(w, path)
        run.close(w)


def _frame(video: Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise OSError(f"cannot read frame {index} of {video}")
    return frame


def _cut_video(video: Path, out: Path, frames: int) -> None:
    """A copy of the first `frames` frames, then cut in half mid-stream (a damaged file)."""
    cap = cv2.VideoCapture(str(video))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (442, 248))
    for _ in range(frames):
        ok, img = cap.read()
        if not ok:
            break
        writer.write(cv2.resize(img, (442, 248)))
    writer.release()
    cap.release()
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a folder (or, with --docs, a PNG file)")
    parser.add_argument("--docs", action="store_true", help="only the README's picture")
    parser.add_argument("--size", help="one size, WxH (default: all three)")
    args = parser.parse_args()
    if args.docs:
        docs_picture(args.out)
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        size = tuple(int(v) for v in args.size.split("x")) if args.size else None
        walk(args.out, (size,) if size else SIZES)  # type: ignore[arg-type]
