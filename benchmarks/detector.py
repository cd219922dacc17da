"""Person detection: accuracy against hand-labelled boxes, and speed end to end.

    python benchmarks/detector.py [--frames 100] [--json benchmarks/detector-cpu.json]

(a) Precision and recall (IoU >= 0.5) against benchmarks/person_boxes.json (boxes labelled by
    hand on frames of both shared videos) for HOG, for the fallback chain PoseScope runs when
    no CNN weights are here (the whole frame), and for RTMDet-nano / YOLOX-tiny when their
    weights are in the cache (they are not on the CI machine).
(b) Speed on pose2sim_cam01.mp4: the RTMDet-nano architecture with random weights
    (benchmarks/rtmdet_nano.py, exported to ONNX, read by our loader: letterbox, network,
    decoding, NMS) against HOG, per call on full frames, interleaved; then end to end (XS pose
    network, random weights) with automatic detection, each configuration paired with
    model-only timing in the same run (core.bench.end_to_end). Random detector weights find
    random boxes, so in the end-to-end runs the detector runs in full and then reports the
    athlete's hand-measured box (tests/test_person.py), as a trained one would: the cost is
    the real architecture's, the tracking behaves as with a working detector. Likewise the
    random pose network's keypoints are replaced, for the tracker only, by keypoints over the
    athlete's box (TrainedPoseTracker): else every track is lost and re-detected each frame.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import main as _checkout  # noqa: E402, F401  (registers this checkout as `posescope`)
from posescope.core.bench import end_to_end, machine  # noqa: E402
from posescope.core.detection import registry, weights  # noqa: E402
from posescope.core.detection.background import BackgroundDetector  # noqa: E402
from posescope.core.detection.base import Detection, whole_frame  # noqa: E402
from posescope.core.detection.onnx_detector import RTMDET, OnnxDetector  # noqa: E402
from posescope.core.person import PeopleDetector, PersonTracker, iou  # noqa: E402
from posescope.core.pipeline import Estimator, EstimatorConfig  # noqa: E402
from tests import factory  # noqa: E402
from tests.media_files import MEDIA, POSE2SIM  # noqa: E402
from tests.test_person import pose_in, subject_box  # noqa: E402

LABELS = ROOT / "benchmarks" / "person_boxes.json"


# ----------------------------------------------------------------------------- accuracy


def _frame(video: Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = cap.read()
    cap.release()
    assert ok, (video, index)
    return image


def _ignored(box, regions) -> bool:
    for r in regions:
        ix = max(0.0, min(box[0] + box[2], r[0] + r[2]) - max(box[0], r[0]))
        iy = max(0.0, min(box[1] + box[3], r[1] + r[3]) - max(box[1], r[1]))
        if ix * iy > 0.5 * box[2] * box[3]:
            return True
    return False


def match(found: list, truth: list, ignore: list, thr: float = 0.5) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) at IoU >= thr, greedy best first;
    a detection mostly inside an ignored region counts for nothing."""
    pairs = sorted(((iou(f, t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)),
                   reverse=True)  # fmt: skip
    used_f, used_t = set(), set()
    for overlap, i, j in pairs:
        if overlap < thr:
            break
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
    fp = sum(1 for i, f in enumerate(found) if i not in used_f and not _ignored(f, ignore))
    return len(used_t), fp, len(truth) - len(used_t)


def accuracy(min_score: float) -> dict:
    labels = json.loads(LABELS.read_text())["videos"]
    finders = {"hog": PeopleDetector()}
    for name in weights.CATALOGUE:
        if weights.is_cached(name):
            finders[name] = registry.create_detector(name, threads=torch.get_num_threads())

    def chain(image):  # no weights here: no detector, so the whole frame (the default run)
        return [Detection(whole_frame(image.shape[1], image.shape[0]), float("nan"))]

    rows = {}
    for name, detect in [*((n, f.detect) for n, f in finders.items()), ("fallback", chain)]:
        tp = fp = fn = 0
        per_video = {}
        for video, frames in labels.items():
            v = [0, 0, 0]
            for idx, lab in frames.items():
                image = _frame(MEDIA / video, int(idx))
                found = [d.box for d in detect(image) if not d.score < min_score]
                r = match(found, [tuple(b) for b in lab["people"]], lab["ignore"])
                v = [a + b for a, b in zip(v, r, strict=True)]
            per_video[video] = dict(zip(("tp", "fp", "fn"), v, strict=True))
            tp, fp, fn = tp + v[0], fp + v[1], fn + v[2]
        rows[name] = {
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0,
            "tp": tp, "fp": fp, "fn": fn, "videos": per_video,
        }  # fmt: skip
    return rows


# ----------------------------------------------------------------------------- speed


class FaithfulDouble:
    """The random-weight RTMDet-nano run in full on each frame, reporting the athlete's
    hand-measured box of that frame (found by the frame's fingerprint)."""

    name = "rtmdet"

    def __init__(self, inner: OnnxDetector, video: Path):
        self.inner = inner
        self.index: dict[str, int] = {}
        cap = cv2.VideoCapture(str(video))
        i = 0
        while True:
            ok, image = cap.read()
            if not ok:
                break
            self.index[self._key(image)] = i
            i += 1
        cap.release()

    @staticmethod
    def _key(image: np.ndarray) -> str:
        return hashlib.sha1(np.ascontiguousarray(image[::61, ::61]).tobytes()).hexdigest()

    def detect(self, image: np.ndarray) -> list[Detection]:
        self.inner.detect(image)  # the cost of the real architecture
        i = self.index.get(self._key(image))
        return [] if i is None else [Detection(tuple(subject_box(i)), 0.9)]


class TrainedPoseTracker(PersonTracker):
    """The pipeline's tracker, fed the pose a trained network would give: the random-weight
    pose network's keypoints collapse (its track would be lost and re-detected every frame),
    so each pose is replaced by keypoints spread over the athlete's hand-measured box."""

    def update(self, frame, poses) -> None:
        truth = pose_in(tuple(subject_box(frame.index)))
        super().update(frame, [(p[0], truth) for p in poses])


def export_rtmdet_nano(path: Path) -> Path:
    import warnings

    from rtmdet_nano import build

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(build(), (torch.zeros(1, 3, 320, 320),), str(path),
                          input_names=["input"], output_names=["output"], opset_version=17,
                          dynamo=False)  # fmt: skip
    return path


def per_call(det_onnx: OnnxDetector, hog: PeopleDetector, iters: int) -> dict:
    frames = [_frame(POSE2SIM, i) for i in (0, 40, 99)]
    for f in frames:  # warm-up
        det_onnx.detect(f)
        hog.detect(f)
    t_onnx, t_hog = [], []
    for k in range(iters):  # interleaved: load drifts over both alike
        f = frames[k % len(frames)]
        t = time.perf_counter()
        det_onnx.detect(f)
        t_onnx.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        hog.detect(f)
        t_hog.append((time.perf_counter() - t) * 1e3)
    return {
        "rtmdet_nano_ms": {"median": statistics.median(t_onnx), "min": min(t_onnx)},
        "hog_ms": {"median": statistics.median(t_hog), "min": min(t_hog)},
        "paired_hog_over_rtmdet": statistics.median(h / o for h, o in zip(t_hog, t_onnx,
                                                                             strict=True)),
    }  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--every", default="1,4,8", help="detection intervals N to time")
    p.add_argument("--min-score", type=float, default=0.5, help="score that starts a track")
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "detector-cpu.json"))
    args = p.parse_args()
    result: dict = {"machine": machine(), "accuracy": accuracy(args.min_score)}
    print(f"accuracy at IoU 0.5 (score >= {args.min_score}), {LABELS.name}:")
    print(f"  {'detector':<10} {'precision':>9} {'recall':>7} {'tp':>4} {'fp':>4} {'fn':>4}")
    for name, r in result["accuracy"].items():
        print(f"  {name:<10} {r['precision']:>9.2f} {r['recall']:>7.2f} "
              f"{r['tp']:>4} {r['fp']:>4} {r['fn']:>4}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        onnx = export_rtmdet_nano(Path(tmp) / "rtmdet_nano_random.onnx")
        threads = registry.default_threads()
        det = OnnxDetector(onnx, RTMDET, name="rtmdet", threads=threads)
        hog = PeopleDetector()
        calls = per_call(det, hog, args.iters)
        calls["rtmdet_threads"] = threads
        calls["provider"] = det.provider
        result["per_call"] = calls
        print(f"per call on 1080x1920 frames ({det.provider}, {threads} thread(s)): "
              f"RTMDet-nano arch {calls['rtmdet_nano_ms']['median']:.1f} ms, "
              f"HOG {calls['hog_ms']['median']:.1f} ms "
              f"(paired {calls['paired_hog_over_rtmdet']:.1f}x)")  # fmt: skip
        ckpt = factory.save_torch_zip(factory.state_dict_for("XS"), Path(tmp) / "XS.pth")
        est = Estimator.from_path(ckpt, EstimatorConfig(device="cpu"))
        double = FaithfulDouble(det, POSE2SIM)
        configs = {
            "fixed box": None,
            "HOG in line, every 15": TrainedPoseTracker(PeopleDetector()),
        }
        for n in [int(v) for v in args.every.split(",")]:
            configs[f"RTMDet-nano own thread, every {n}"] = TrainedPoseTracker(
                BackgroundDetector(double), detect_every=n, whole_frame=True
            )
        result["end_to_end"] = {}
        print(f"end to end, {args.frames} frames of {POSE2SIM.name}, XS pose network:")
        print(f"  {'configuration':<34} {'fps':>6} {'paired x model-only':>20} "
              f"{'det calls':>9} {'det ms/call':>11} {'det ms/frame':>12}")  # fmt: skip
        for label, tracker in configs.items():
            bbox = tuple(subject_box(0)) if tracker is None else None
            e2e = end_to_end(est, str(POSE2SIM), bbox, args.frames, tracker=tracker)
            e2e["video"] = str(POSE2SIM.relative_to(ROOT))  # the same file on every clone
            result["end_to_end"][label] = e2e
            d = e2e["detector"]
            print(f"  {label:<34} {e2e['fps']:>6.1f} {e2e['paired_ratio']:>20.2f} "
                  f"{d['calls']:>9} {d['ms_per_call']:>11.1f} "
                  f"{d['ms_per_frame']:>12.1f}")  # fmt: skip
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
