"""Finding people and following them from frame to frame.

`PeopleDetector` uses OpenCV's built-in HOG + linear SVM people detectors (`--detector hog`;
the CNN detectors are in core/detection). `PersonTracker` gives each person a stable id: it
detects on the first frame, every `detect_every` frames and whenever nobody is tracked, and in
between predicts each person's next box from the pose estimated in the current one. With a
`BackgroundDetector` the detections run in their own thread and are merged when they come
back; when nobody is found, the whole frame is the person box (unless turned off).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, cast

import cv2
import numpy as np

from posescope.core.detection.background import BackgroundDetector
from posescope.core.detection.base import Detection, ImageDetector, whole_frame
from posescope.core.types import Frame

Box = tuple[float, float, float, float]  # x, y, w, h in pixels


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _containment(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area (1.0: one box lies inside the other)."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    smaller = min(a[2] * a[3], b[2] * b[3])
    return ix * iy / smaller if smaller > 0 else 0.0


def clip_box(box: Box, width: int, height: int) -> Box:
    """The part of `box` inside a width x height image (w, h may become 0)."""
    x1 = min(max(box[0], 0.0), float(width))
    y1 = min(max(box[1], 0.0), float(height))
    x2 = min(max(box[0] + box[2], 0.0), float(width))
    y2 = min(max(box[1] + box[3], 0.0), float(height))
    return (x1, y1, x2 - x1, y2 - y1)


def nms(
    boxes: list[tuple[Box, float]], iou_threshold: float = 0.4, contain_threshold: float = 0.8
) -> list[tuple[Box, float]]:
    """Greedy non-maximum suppression, best score first.

    A box is dropped when it overlaps a kept one by more than `iou_threshold`, or lies mostly
    inside it (or around it): HOG fires on parts of a person at smaller scales.
    """
    kept: list[tuple[Box, float]] = []
    for box, score in sorted(boxes, key=lambda b: -b[1]):
        if all(
            iou(box, k) <= iou_threshold and _containment(box, k) <= contain_threshold
            for k, _ in kept
        ):
            kept.append((box, score))
    return kept


@dataclass(frozen=True)
class _HogModel:
    """One OpenCV HOG people model and how its raw windows map to person boxes and scores."""

    name: str
    window: tuple[int, int]  # (w, h)
    side_factor: float  # runs at max_side * side_factor
    stride: int
    margin_offset: float  # SVM margin that counts as score 0.5
    margin_gain: float  # logistic slope
    shrink: tuple[float, float]  # fraction of the window's w and h that is background, per side


_MODELS = {
    # INRIA 64x128 detector: the person fills about the middle 60% x 80% of the window.
    "default": _HogModel("default", (64, 128), 1.0, 8, 0.2, 4.0, (0.2, 0.1)),
    # Daimler 48x96 detector: tighter windows; finds the unusual poses the INRIA one misses
    # (lunges, bending) but also fires on trunks and posts, so its margins score lower.
    "daimler": _HogModel("daimler", (48, 96), 2.0 / 3.0, 4, 1.0, 3.0, (0.1, 0.0)),
}


def _hog_for(model: _HogModel) -> cv2.HOGDescriptor:
    if model.name == "daimler":
        hog = cv2.HOGDescriptor(model.window, (16, 16), (8, 8), (8, 8), 9)
        hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDaimlerPeopleDetector()))
    else:
        hog = cv2.HOGDescriptor()
        hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector()))
    return hog


class PeopleDetector(ImageDetector):
    """Whole-body people detection with OpenCV's HOG detectors.

    The frame is downscaled so its long side is `max_side` (the Daimler model runs at 2/3 of
    that, its window being smaller). Each window's SVM margin becomes a 0..1 score through a
    logistic calibrated per model (0.5 = the model's own decision threshold, roughly);
    windows below `min_score` are dropped, the rest go through NMS. Boxes are in full-image
    pixels, shrunk from the detection window to the person inside it, sorted by score.
    """

    name = "hog"

    def __init__(
        self,
        max_side: int = 480,
        min_score: float = 0.3,
        *,
        models: tuple[str, ...] = ("default", "daimler"),
        nms_iou: float = 0.4,
        scale_step: float = 1.05,
    ) -> None:
        unknown = set(models) - set(_MODELS)
        if unknown or not models:
            raise ValueError(f"unknown detector models {sorted(unknown)}; use {sorted(_MODELS)}")
        self.max_side = int(max_side)
        self.min_score = float(min_score)
        self.nms_iou = nms_iou
        self.scale_step = scale_step
        self._models = [(_MODELS[m], _hog_for(_MODELS[m])) for m in models]

    def _margin_threshold(self, model: _HogModel) -> float:
        """The SVM margin whose score is min_score (inverse of the logistic)."""
        p = min(max(self.min_score, 1e-6), 1 - 1e-6)
        return model.margin_offset + math.log(p / (1 - p)) / model.margin_gain

    def detect_bgr(self, image: np.ndarray) -> list[Detection]:
        """People in a BGR image: [Detection((x, y, w, h), score)], best first."""
        h, w = image.shape[:2]
        found: list[tuple[Box, float]] = []
        for model, hog in self._models:
            side = self.max_side * model.side_factor
            s = side / max(h, w)
            small = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            if small.shape[0] < model.window[1] or small.shape[1] < model.window[0]:
                continue
            rects, found_weights = hog.detectMultiScale(
                small,
                hitThreshold=self._margin_threshold(model),
                winStride=(model.stride, model.stride),
                padding=(16, 16),
                scale=self.scale_step,
                groupThreshold=0,
            )
            weights = np.ravel(found_weights)
            sx, sy = model.shrink
            for (rx, ry, rw, rh), margin in zip(np.asarray(rects, float), weights, strict=False):
                score = 1.0 / (1.0 + math.exp(-model.margin_gain * (margin - model.margin_offset)))
                box = (
                    (rx + sx * rw) / s,
                    (ry + sy * rh) / s,
                    rw * (1 - 2 * sx) / s,
                    rh * (1 - 2 * sy) / s,
                )
                box = clip_box(box, w, h)
                if box[2] >= 4 and box[3] >= 8 and score >= self.min_score:
                    found.append((box, score))
        return [Detection(box, score) for box, score in nms(found, self.nms_iou)]


@dataclass
class Track:
    """One followed person. `misses`: detection rounds in a row without a matching detection
    (and without a pose to vouch for it); `source`: where `bbox` came from."""

    id: int
    bbox: Box
    age: int = 0  # frames since the track was created
    misses: int = 0
    source: str = "detector"  # "given" | "detector" | "pose" | "frame" (whole-frame fallback)
    lost: bool = False  # the pose box collapsed or left the image: wait for a detection
    velocity: tuple[float, float] = (0.0, 0.0)  # box centre motion, px per frame
    posed: bool = False  # a valid pose confirmed the track since the last detection round
    pose_box: Box | None = None  # padded bounds of the last pose (before motion prediction)
    score: float = float("nan")  # the detector's confidence when it last matched this person


class PersonTracker:
    """Gives each person a box to estimate on, with an id that stays the same over time.

    Per frame: `boxes(frame)` -> estimate a pose in each box -> `update(frame, poses)`.
    Detection runs on the first frame, every `detect_every` frames, whenever no track is alive
    and while a track is lost; detections match tracks by IoU (greedy, best first), unmatched
    detections scoring at least `new_track_score` start new tracks (increasing ids from 1, at
    most `max_people` alive), and a track with neither a matching detection nor a valid pose
    for more than `max_misses` rounds is dropped. Between detections each box is the padded
    bounds of the track's last pose, moved by its recent motion.

    `detector` may be a `BackgroundDetector`: then a detection round is a request to its
    thread and the detections are merged when they come back, a few frames later; only when
    nobody is tracked does `boxes` wait for them. `whole_frame`: when nobody is tracked after
    detecting (or there is no detector), the whole frame is the one person box (a "frame"
    track with a stable id, not followed from its pose), as MMPose's inferencer does.
    """

    def __init__(
        self,
        detector: Any | None = None,
        detect_every: int = 15,
        max_people: int = 4,
        iou_match: float = 0.3,
        max_misses: int = 2,
        box_margin: float = 0.15,
        *,
        new_track_score: float = 0.5,
        min_box: float = 12.0,
        whole_frame: bool = True,
        wait_s: float = 10.0,
    ) -> None:
        self.detector = detector
        self.detect_every = max(1, int(detect_every))
        self.max_people = int(max_people)
        self.iou_match = iou_match
        self.max_misses = int(max_misses)
        self.box_margin = box_margin
        self.min_box = min_box  # a pose box narrower or shorter than this (px) is "collapsed"
        # Starting a track takes a surer detection than keeping one (fewer ghost tracks).
        self.new_track_score = new_track_score
        self.whole_frame = whole_frame
        self.wait_s = wait_s  # longest wait for a background detection when nobody is tracked
        self.tracks: list[Track] = []
        self._next_id = 1
        self._frame_id: int | None = None  # the whole-frame fallback's id, once given
        self._since_detect = 0
        self._force_detect = True
        self._fixed = False
        self.last_detections: list[tuple[Box, float]] = []
        self.detect_times_ms: list[float] = []  # each detection round's detector time

    @property
    def background(self) -> BackgroundDetector | None:
        d = self.detector
        return d if isinstance(d, BackgroundDetector) else None

    @classmethod
    def fixed(cls, box: Box) -> PersonTracker:
        """A tracker that always returns one given box with id 1 (no detection, no motion)."""
        tracker = cls(detector=None)
        tracker._fixed = True
        tracker.tracks = [Track(id=1, bbox=cast(Box, tuple(map(float, box))), source="given")]
        tracker._next_id = 2
        tracker._force_detect = False
        return tracker

    @property
    def is_fixed(self) -> bool:
        """True for `fixed()` trackers: the boxes are known before the frame is seen."""
        return self._fixed

    def add(self, box: Box) -> Track:
        """Start a track on a box chosen by the user; returns it."""
        track = Track(id=self._next_id, bbox=cast(Box, tuple(map(float, box))), source="given")
        self._next_id += 1
        self.tracks.append(track)
        return track

    @property
    def alive(self) -> list[Track]:
        """Tracks that have a usable box now."""
        return [t for t in self.tracks if not t.lost]

    def boxes(self, frame: Frame) -> list[Track]:
        """The tracks to estimate on this frame (copies), ordered by id."""
        if self._fixed:
            for t in self.tracks:
                t.age += 1
            return [replace(t) for t in self.tracks]
        need = (
            self._force_detect
            or self._since_detect >= self.detect_every
            or not self.alive
            or any(t.lost for t in self.tracks)
        )
        bg = self.background
        if bg is not None:
            self._boxes_in_background(bg, frame, need)
        elif need and self.detector is not None:
            self._detect(frame)
        else:
            self._since_detect += 1
        for t in self.tracks:
            t.age += 1
        alive = [replace(t) for t in sorted(self.alive, key=lambda t: t.id)]
        if not alive and self.whole_frame:
            if self._frame_id is None:
                self._frame_id = self._next_id
                self._next_id += 1
            return [Track(self._frame_id, whole_frame(frame.width, frame.height), source="frame")]
        return alive

    def _boxes_in_background(self, bg: BackgroundDetector, frame: Frame, need: bool) -> None:
        """Merge detections that came back; ask for a new round when one is due and the
        thread is free; wait only when nobody is tracked."""
        merged = False
        result = bg.poll()
        if result is not None:
            self._merge(result.detections, result.ms)
            merged = True
        if need and bg.idle:
            bg.submit(frame.index, frame.image)
            self._force_detect = False
            self._since_detect = 1
        else:
            self._since_detect += 1
        if not self.alive and not merged:
            result = bg.wait(self.wait_s)
            if result is not None:
                self._merge(result.detections, result.ms)

    def _detect(self, frame: Frame) -> None:
        assert self.detector is not None
        self._force_detect = False
        self._since_detect = 1
        t = time.perf_counter()
        dets = self.detector.detect(frame.image)
        self._merge(dets, (time.perf_counter() - t) * 1e3)

    def _merge(self, dets: list, ms: float | None = None) -> None:
        """One detection round: match detections to tracks, drop stale tracks, start new."""
        if ms is not None:
            self.detect_times_ms.append(ms)
        dets = [Detection(cast(Box, tuple(map(float, b))), float(s)) for b, s in dets]
        self.last_detections = dets
        pairs = sorted(
            (
                (iou(t.bbox, d[0]), ti, di)
                for ti, t in enumerate(self.tracks)
                for di, d in enumerate(dets)
            ),
            key=lambda p: -p[0],
        )
        matched_t: set[int] = set()
        matched_d: set[int] = set()
        for overlap, ti, di in pairs:
            if overlap < self.iou_match:
                break
            if ti in matched_t or di in matched_d:
                continue
            matched_t.add(ti)
            matched_d.add(di)
            t = self.tracks[ti]
            t.misses = 0
            t.score = dets[di].score
            if t.lost or t.source != "pose" or not t.posed:
                t.bbox = dets[di][0]
                t.source = "detector"
                t.lost = False
                t.velocity = (0.0, 0.0)
                t.pose_box = None
        survivors = []
        for ti, t in enumerate(self.tracks):
            if ti not in matched_t and not (t.posed and not t.lost):
                t.misses += 1
            if t.misses <= self.max_misses:
                survivors.append(t)
            t.posed = False
        self.tracks = survivors
        for di, (box, score) in enumerate(dets):
            if di in matched_d or len(self.alive) >= self.max_people:
                continue
            if score < self.new_track_score:
                continue
            if any(
                iou(box, t.bbox) > self.iou_match * 0.5 or _containment(box, t.bbox) > 0.7
                for t in self.alive
            ):
                continue  # a second detection on someone already tracked
            self.tracks.append(Track(id=self._next_id, bbox=box, source="detector", score=score))
            self._next_id += 1

    def box_from_keypoints(self, keypoints_2d: np.ndarray, width: int, height: int) -> Box | None:
        """Padded bounds of the keypoints inside the image; None if too few or collapsed."""
        k = np.asarray(keypoints_2d, float).reshape(-1, 2)
        inside = np.isfinite(k).all(axis=1)
        inside &= (k[:, 0] >= 0) & (k[:, 0] < width) & (k[:, 1] >= 0) & (k[:, 1] < height)
        if inside.sum() < max(2, len(k) // 3):
            return None
        pts = k[inside]
        x1, y1 = pts.min(axis=0)
        x2, y2 = pts.max(axis=0)
        if x2 - x1 < self.min_box or y2 - y1 < self.min_box:
            return None
        pad_x = (x2 - x1) * self.box_margin
        pad_y = (y2 - y1) * self.box_margin
        box = clip_box(
            (x1 - pad_x, y1 - pad_y, x2 - x1 + 2 * pad_x, y2 - y1 + 2 * pad_y), width, height
        )
        return box if box[2] >= self.min_box and box[3] >= self.min_box else None

    def update(self, frame: Frame, poses: list[tuple[int, np.ndarray]]) -> None:
        """Feed the poses estimated in this frame's boxes: (track id, keypoints_2d (J, 2)).

        Each track's next box becomes its pose's padded bounds, moved by the box's recent
        motion; a pose that collapses or leaves the image marks the track lost (re-detect).
        """
        if self._fixed:
            return
        by_id = {t.id: t for t in self.tracks}
        for item in poses:
            tid, kpts = item[0], item[1]
            t = by_id.get(int(tid))
            if t is None:
                continue
            box = self.box_from_keypoints(kpts, frame.width, frame.height)
            if box is None:
                t.lost = True
                t.posed = False
                t.velocity = (0.0, 0.0)
                t.pose_box = None
                self._force_detect = True
                continue
            if t.pose_box is not None:
                vx = box[0] + box[2] / 2 - (t.pose_box[0] + t.pose_box[2] / 2)
                vy = box[1] + box[3] / 2 - (t.pose_box[1] + t.pose_box[3] / 2)
                t.velocity = (0.5 * t.velocity[0] + 0.5 * vx, 0.5 * t.velocity[1] + 0.5 * vy)
            t.pose_box = box
            # The next frame's box: this pose's box moved by the recent motion.
            moved = (box[0] + t.velocity[0], box[1] + t.velocity[1], box[2], box[3])
            t.bbox = clip_box(moved, frame.width, frame.height)
            t.source = "pose"
            t.lost = False
            t.posed = True

    def reset(self) -> None:
        """After a seek: forget motion and re-detect on the next frame; ids keep counting."""
        if self._fixed:
            return
        for t in self.tracks:
            t.velocity = (0.0, 0.0)
            t.pose_box = None
            t.posed = False
        self._force_detect = True
        if self.background is not None:
            self.background.discard()

    def restart(self) -> None:
        """A new source: no tracks, ids start at 1 again, detect on the next frame."""
        if self._fixed:
            return
        self.tracks = []
        self._next_id = 1
        self._frame_id = None
        self._since_detect = 0
        self._force_detect = True
        self.last_detections = []
        if self.background is not None:
            self.background.discard()

    def close(self) -> None:
        """End the detection thread, if there is one; the tracker is done with after this."""
        if self.background is not None:
            self.background.close()
