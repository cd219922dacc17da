"""Writing a run's results: pose files (JSON, CSV, NPZ) and overlay videos.

A run is first turned into one plain document (`run_document`), the JSON layout below, which
every writer reads:

    {"checkpoint": {...}, "source": {"path", "width", "height", "fps", "frames"},
     "camera": {"focal": [fx, fy], "principal": [cx, cy]},
     "joint_names": [...], "skeleton": [[a, b], ...],
     "frames": [{"index", "time", "people": [{"id", "bbox": [x, y, w, h],
                 "keypoints_2d": [[u, v]], "depth_rel_mm": [z], "keypoints_3d_mm": [[X, Y, Z]],
                 "root_depth_mm", "score", "det_score"}]}]}

Pixels are rounded to 2 decimals, millimetres to 1, times to 4 (a tenth of a millisecond);
missing values (NaN) are written as null.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeVar

import cv2
import numpy as np

from posescope.core.types import FramePoses, PersonPose
from posescope.core.variants import JointSet

FORMAT_NAME = "posescope-run"
FORMAT_VERSION = 1
PX_DECIMALS = 2
MM_DECIMALS = 1
TIME_DECIMALS = 4

CSV_COLUMNS = (
    "frame",
    "time",
    "person",
    "joint",
    "joint_name",
    "u",
    "v",
    "depth_rel_mm",
    "X",
    "Y",
    "Z",
    "root_depth_mm",
)


class ExportError(OSError):
    """A result file could not be written; the message is meant for the user."""


def _rounded(values: Any, decimals: int) -> Any:
    """Nested lists of floats rounded to `decimals`, NaN/inf as None (valid JSON)."""
    arr = np.asarray(values, dtype=float)
    rounded = np.round(arr, decimals)
    if np.all(np.isfinite(rounded)):
        return rounded.tolist()
    # None as the fill makes an object array; numpy's stubs have no overload for it.
    return np.where(np.isfinite(rounded), rounded, None).tolist()  # type: ignore[call-overload]


def _scalar(value: float, decimals: int) -> float | None:
    value = float(value)
    return round(value, decimals) if math.isfinite(value) else None


def _pair(value: float | Sequence[float]) -> list[float]:
    arr = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2:
        raise ValueError(f"expected one number or a pair, got {value!r}")
    return [float(v) for v in arr]


def person_dict(p: PersonPose) -> dict[str, Any]:
    """One person of one frame in the document's layout."""
    return {
        "id": int(p.track_id),
        "bbox": _rounded(p.bbox, PX_DECIMALS),
        "keypoints_2d": _rounded(p.keypoints_2d, PX_DECIMALS),
        "depth_rel_mm": _rounded(p.depth_rel_mm, MM_DECIMALS),
        "keypoints_3d_mm": _rounded(p.keypoints_3d_mm, MM_DECIMALS),
        "root_depth_mm": _scalar(p.root_depth_mm, MM_DECIMALS),
        "score": _scalar(p.score, 4),
        "det_score": _scalar(p.det_score, 4),  # the person detector's confidence (null: none)
    }


def frame_dict(fp: FramePoses) -> dict[str, Any]:
    """One frame in the document's layout."""
    return {
        "index": int(fp.index),
        "time": _scalar(fp.time, TIME_DECIMALS),
        "people": [person_dict(p) for p in fp.people],
    }


def run_document(
    checkpoint_summary: dict[str, Any],
    source_info: dict[str, Any],
    focal: float | Sequence[float],
    principal: Sequence[float],
    joint_set: JointSet,
    frames: Iterable[FramePoses],
) -> dict[str, Any]:
    """The whole run as a JSON-ready dict (layout in the module docstring)."""
    doc = _header(checkpoint_summary, source_info, focal, principal, joint_set)
    doc["frames"] = [frame_dict(fp) for fp in frames]
    return doc


def _header(
    checkpoint_summary: dict[str, Any],
    source_info: dict[str, Any],
    focal: float | Sequence[float],
    principal: Sequence[float],
    joint_set: JointSet,
) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "checkpoint": _jsonable(dict(checkpoint_summary)),
        "source": {
            k: _jsonable(source_info.get(k)) for k in ("path", "width", "height", "fps", "frames")
        },
        "camera": {"focal": _pair(focal), "principal": _pair(principal)},
        "joint_set": joint_set.name,
        "root": int(joint_set.root),
        "joint_names": list(joint_set.joints),
        "skeleton": [[int(a), int(b)] for a, b in joint_set.bones],
    }


def _jsonable(value: Any) -> Any:
    """Numpy scalars/arrays, paths and tuples made JSON-friendly (NaN -> None)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _open_for_writing(path: str | Path, newline: str | None = None) -> TextIO:
    p = Path(path)
    if not p.parent.is_dir():
        raise ExportError(f"cannot write {p}: folder {p.parent} does not exist")
    try:
        return p.open("w", encoding="utf-8", newline=newline)
    except OSError as e:
        raise ExportError(f"cannot write {p}: {e.strerror or e}") from e


def write_json(path: str | Path, doc: dict[str, Any]) -> None:
    """The document as compact JSON, one frame per line (diff- and grep-friendly)."""
    with _open_for_writing(path) as f:
        f.write(_json_opening({k: v for k, v in doc.items() if k != "frames"}))
        for i, fr in enumerate(doc.get("frames", [])):
            f.write("\n" if i == 0 else ",\n")
            f.write(json.dumps(fr, separators=(",", ":"), allow_nan=False))
        f.write("\n]}\n")


def _json_opening(head: dict[str, Any]) -> str:
    """The document's text up to the opening bracket of its frames list."""
    text = json.dumps(head, separators=(",", ":"), allow_nan=False)
    return text[:-1] + (',"frames":[' if head else '"frames":[')


_W = TypeVar("_W", bound="_Closing")


class _Closing:
    """A writer used as a context manager: leaving it calls `close()`."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _W) -> _W:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JsonStreamWriter(_Closing):
    """Writes the JSON document frame by frame, for long or live runs.

    The result is the same file write_json gives for the same frames. Use as a context
    manager, or call close(): an unclosed file is not valid JSON.
    """

    def __init__(
        self,
        path: str | Path,
        checkpoint_summary: dict[str, Any],
        source_info: dict[str, Any],
        focal: float | Sequence[float],
        principal: Sequence[float],
        joint_set: JointSet,
    ) -> None:
        head = _header(checkpoint_summary, source_info, focal, principal, joint_set)
        self._f: TextIO | None = _open_for_writing(path)
        self._f.write(_json_opening(head))
        self.frames_written = 0

    def add(self, fp: FramePoses | dict[str, Any]) -> None:
        """Append one frame (FramePoses or an already converted frame dict)."""
        if self._f is None:
            raise ExportError("the JSON writer is closed")
        fr = frame_dict(fp) if isinstance(fp, FramePoses) else fp
        self._f.write("\n" if self.frames_written == 0 else ",\n")
        self._f.write(json.dumps(fr, separators=(",", ":"), allow_nan=False))
        self.frames_written += 1

    def close(self) -> None:
        """Finish the document and close the file."""
        if self._f is not None:
            self._f.write("\n]}\n")
            self._f.close()
            self._f = None


def _csv_value(v: Any) -> Any:
    return "" if v is None else v


def write_csv(path: str | Path, doc: dict[str, Any]) -> None:
    """One row per frame, person and joint (CSV_COLUMNS); missing values are empty."""
    names = doc.get("joint_names", [])
    with _open_for_writing(path, newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for fr in doc.get("frames", []):
            for p in fr["people"]:
                rows = zip(p["keypoints_2d"], p["depth_rel_mm"], p["keypoints_3d_mm"], strict=False)
                for j, (uv, z, xyz) in enumerate(rows):
                    name = names[j] if j < len(names) else f"J{j}"
                    w.writerow(
                        [
                            fr["index"],
                            _csv_value(fr["time"]),
                            p["id"],
                            j,
                            name,
                            *map(_csv_value, uv),
                            _csv_value(z),
                            *map(_csv_value, xyz),
                            _csv_value(p["root_depth_mm"]),
                        ]
                    )


def _nan_array(values: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Nested lists with None as a float array of `shape` (None -> NaN)."""
    return np.asarray(values, dtype=float).reshape(shape)


def write_npz(path: str | Path, doc: dict[str, Any]) -> None:
    """Padded arrays: F frames, P = most people in a frame, J joints; NaN (ids -1) pad.

    frame_index (F,), time (F,), person_id (F, P), keypoints_2d (F, P, J, 2),
    depth_rel_mm (F, P, J), keypoints_3d_mm (F, P, J, 3), root_depth_mm (F, P), bbox (F, P, 4),
    score (F, P), joint_names (J,), skeleton (B, 2).
    """
    frames = doc.get("frames", [])
    names = list(doc.get("joint_names", []))
    n_f = len(frames)
    n_p = max((len(fr["people"]) for fr in frames), default=0)
    n_j = len(names) or max(
        (len(p["keypoints_2d"]) for fr in frames for p in fr["people"]), default=0
    )
    out = {
        "frame_index": np.array([fr["index"] for fr in frames], dtype=np.int64).reshape(n_f),
        "time": _nan_array([fr["time"] for fr in frames], (n_f,)),
        "person_id": np.full((n_f, n_p), -1, dtype=np.int64),
        "keypoints_2d": np.full((n_f, n_p, n_j, 2), np.nan),
        "depth_rel_mm": np.full((n_f, n_p, n_j), np.nan),
        "keypoints_3d_mm": np.full((n_f, n_p, n_j, 3), np.nan),
        "root_depth_mm": np.full((n_f, n_p), np.nan),
        "bbox": np.full((n_f, n_p, 4), np.nan),
        "score": np.full((n_f, n_p), np.nan),
    }
    for fi, fr in enumerate(frames):
        for pi, p in enumerate(fr["people"]):
            out["person_id"][fi, pi] = p["id"]
            out["keypoints_2d"][fi, pi] = _nan_array(p["keypoints_2d"], (n_j, 2))
            out["depth_rel_mm"][fi, pi] = _nan_array(p["depth_rel_mm"], (n_j,))
            out["keypoints_3d_mm"][fi, pi] = _nan_array(p["keypoints_3d_mm"], (n_j, 3))
            out["root_depth_mm"][fi, pi] = _nan_array([p["root_depth_mm"]], (1,))[0]
            out["bbox"][fi, pi] = _nan_array(p["bbox"], (4,))
            out["score"][fi, pi] = _nan_array([p.get("score")], (1,))[0]
    out["joint_names"] = np.array(names, dtype=str)
    out["skeleton"] = np.array(doc.get("skeleton", []), dtype=np.int64).reshape(-1, 2)
    p = Path(path)
    if not p.parent.is_dir():
        raise ExportError(f"cannot write {p}: folder {p.parent} does not exist")
    try:
        with p.open("wb") as f:  # a file object: numpy would otherwise append ".npz"
            # numpy's stubs type **kwds with allow_pickle's bool; they are arrays here.
            np.savez_compressed(f, **out)  # type: ignore[arg-type]
    except OSError as e:
        raise ExportError(f"cannot write {p}: {e.strerror or e}") from e


POSE_WRITERS = {".json": write_json, ".csv": write_csv, ".npz": write_npz}


def write_poses(path: str | Path, doc: dict[str, Any]) -> None:
    """Write the document in the format its extension names (.json, .csv or .npz)."""
    suffix = Path(path).suffix.lower()
    writer = POSE_WRITERS.get(suffix)
    if writer is None:
        raise ValueError(
            f"cannot save poses as {suffix or 'a file without extension'!r}: "
            "use .json, .csv or .npz"
        )
    writer(path, doc)


class OverlayVideoWriter(_Closing):
    """An MP4 (mp4v) video writer for overlay frames of a fixed size (width, height).

    Frames of another size are resized to it; grayscale frames are converted to BGR.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        p = Path(path)
        self.path = p
        self.size = (int(size[0]), int(size[1]))
        self.fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else 30.0
        self.frames_written = 0
        if self.size[0] <= 0 or self.size[1] <= 0:
            raise ExportError(f"cannot write {p.name}: bad frame size {size}")
        if not p.parent.is_dir():
            raise ExportError(f"cannot write {p}: folder {p.parent} does not exist")
        fourcc = cv2.VideoWriter.fourcc(*"mp4v")
        self._writer: cv2.VideoWriter | None = cv2.VideoWriter(str(p), fourcc, self.fps, self.size)
        if not self._writer.isOpened():
            self._writer.release()
            self._writer = None
            raise ExportError(
                f"cannot write the video {p}: OpenCV could not open it for mp4v encoding "
                "(check the folder is writable and the name ends in .mp4)"
            )

    def write(self, image: np.ndarray) -> None:
        """Append one BGR frame."""
        if self._writer is None:
            raise ExportError(f"the video writer for {self.path.name} is closed")
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        if image.dtype != np.uint8:
            image = np.clip(image, 0, 255).astype(np.uint8)
        self._writer.write(np.ascontiguousarray(image))
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
