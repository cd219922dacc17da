"""Run documents and their JSON / CSV / NPZ files, overlay videos, and pose drawing."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from posescope.core.drawing import SIDE_COLORS_BGR, draw_frame, draw_pose
from posescope.core.export import (
    CSV_COLUMNS,
    ExportError,
    JsonStreamWriter,
    OverlayVideoWriter,
    run_document,
    write_json,
    write_poses,
)
from posescope.core.types import FramePoses, PersonPose
from posescope.core.variants import H36M

SUMMARY = {"variant": "M", "confidence": 0.93, "params": np.int64(7590000), "notes": ("a", "b")}
SOURCE = {"path": "/videos/walk.mp4", "width": 640, "height": 480, "fps": 30.0, "frames": 3}
FOCAL, PRINCIPAL = 1500.0, (320.0, 240.0)


def _person(tid: int, seed: int, nan_joint: int | None = None) -> PersonPose:
    rng = np.random.default_rng(seed)
    kp2d = rng.uniform(50, 450, (18, 2))
    depth_rel = rng.uniform(-500, 500, 18)
    root = 3000.0 + 100 * seed
    z = depth_rel + root
    xyz = np.stack([(kp2d[:, 0] - 320) / 1500 * z, (kp2d[:, 1] - 240) / 1500 * z, z], axis=1)
    if nan_joint is not None:
        kp2d[nan_joint] = np.nan
        xyz[nan_joint] = np.nan
        depth_rel[nan_joint] = np.nan
    box = tuple(float(v) for v in rng.uniform(10, 300, 4))
    return PersonPose(tid, box, kp2d, depth_rel, xyz, root, score=0.4567)


@pytest.fixture
def frames() -> list[FramePoses]:
    return [
        FramePoses(0, 0.0, [_person(1, 0)]),
        FramePoses(1, 1 / 30, []),
        FramePoses(2, 2 / 30, [_person(1, 1, nan_joint=5), _person(3, 2)], {"model": 4.2}),
    ]


@pytest.fixture
def doc(frames: list[FramePoses]) -> dict:
    return run_document(SUMMARY, SOURCE, FOCAL, PRINCIPAL, H36M, frames)


def _people(frames: list[FramePoses]):
    for fp in frames:
        for p in fp.people:
            yield fp, p


def test_document_layout(doc: dict, frames: list[FramePoses]) -> None:
    for key in ("checkpoint", "source", "camera", "joint_names", "skeleton", "frames"):
        assert key in doc
    assert doc["source"] == SOURCE
    assert doc["camera"] == {"focal": [1500.0, 1500.0], "principal": [320.0, 240.0]}
    assert doc["joint_names"] == list(H36M.joints)
    assert doc["skeleton"] == [list(b) for b in H36M.bones]
    assert doc["checkpoint"]["params"] == 7590000
    assert [f["index"] for f in doc["frames"]] == [0, 1, 2]
    person = doc["frames"][2]["people"][0]
    assert set(person) >= {
        "id",
        "bbox",
        "keypoints_2d",
        "depth_rel_mm",
        "keypoints_3d_mm",
        "root_depth_mm",
    }
    assert person["keypoints_2d"][5] == [None, None]  # NaN becomes null
    # Rounded: 2 decimals for pixels, 1 for millimetres.
    uv = np.array(doc["frames"][0]["people"][0]["keypoints_2d"])
    assert np.allclose(uv, frames[0].people[0].keypoints_2d, atol=0.005 + 1e-9)
    assert np.array_equal(uv, np.round(uv, 2))
    xyz = np.array(doc["frames"][0]["people"][0]["keypoints_3d_mm"])
    assert np.array_equal(xyz, np.round(xyz, 1))
    json.dumps(doc, allow_nan=False)  # plain JSON


def test_json_round_trip(tmp_path: Path, doc: dict, frames: list[FramePoses]) -> None:
    path = tmp_path / "run.json"
    write_poses(path, doc)
    back = json.loads(path.read_text())
    assert back == doc
    for fi, (fp, p) in enumerate(_people(frames)):
        f = next(f for f in back["frames"] if f["index"] == fp.index)
        q = next(q for q in f["people"] if q["id"] == p.track_id)
        assert f["time"] == pytest.approx(fp.time, abs=1e-4)
        as_float = lambda v: np.array(v, dtype=float)  # noqa: E731
        np.testing.assert_allclose(as_float(q["keypoints_2d"]), p.keypoints_2d, atol=0.005)
        np.testing.assert_allclose(as_float(q["keypoints_3d_mm"]), p.keypoints_3d_mm, atol=0.05)
        np.testing.assert_allclose(as_float(q["depth_rel_mm"]), p.depth_rel_mm, atol=0.05)
        np.testing.assert_allclose(q["bbox"], p.bbox, atol=0.005)
        assert q["root_depth_mm"] == pytest.approx(p.root_depth_mm, abs=0.05), fi


def test_json_stream_writer_matches_write_json(tmp_path: Path, frames: list[FramePoses]) -> None:
    write_json(tmp_path / "a.json", run_document(SUMMARY, SOURCE, FOCAL, PRINCIPAL, H36M, frames))
    with JsonStreamWriter(tmp_path / "b.json", SUMMARY, SOURCE, FOCAL, PRINCIPAL, H36M) as w:
        for fp in frames:
            w.add(fp)
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()
    with JsonStreamWriter(tmp_path / "empty.json", SUMMARY, SOURCE, FOCAL, PRINCIPAL, H36M):
        pass
    assert json.loads((tmp_path / "empty.json").read_text())["frames"] == []


def test_json_ten_thousand_frames(tmp_path: Path) -> None:
    person = _person(1, 0)
    frames = [FramePoses(i, i / 30, [person]) for i in range(10_000)]
    t0 = time.monotonic()
    doc = run_document(SUMMARY, SOURCE, FOCAL, PRINCIPAL, H36M, frames)
    write_json(tmp_path / "long.json", doc)
    assert time.monotonic() - t0 < 20
    back = json.loads((tmp_path / "long.json").read_text())
    assert len(back["frames"]) == 10_000 and back["frames"][-1]["index"] == 9999
    assert (tmp_path / "long.json").stat().st_size < 12_000_000  # rounding keeps it small


def test_csv_round_trip(tmp_path: Path, doc: dict, frames: list[FramePoses]) -> None:
    path = tmp_path / "run.csv"
    write_poses(path, doc)
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 18 * 3  # people x joints; the empty frame has no rows
    for fp, p in _people(frames):
        mine = [r for r in rows if int(r["frame"]) == fp.index and int(r["person"]) == p.track_id]
        assert [int(r["joint"]) for r in mine] == list(range(18))
        assert [r["joint_name"] for r in mine] == list(H36M.joints)
        for j, r in enumerate(mine):
            assert float(r["time"]) == pytest.approx(fp.time, abs=1e-4)
            assert float(r["root_depth_mm"]) == pytest.approx(p.root_depth_mm, abs=0.05)
            if np.isnan(p.keypoints_2d[j, 0]):
                assert r["u"] == r["v"] == r["X"] == r["depth_rel_mm"] == ""
                continue
            assert float(r["u"]) == pytest.approx(p.keypoints_2d[j, 0], abs=0.005)
            assert float(r["v"]) == pytest.approx(p.keypoints_2d[j, 1], abs=0.005)
            assert float(r["depth_rel_mm"]) == pytest.approx(p.depth_rel_mm[j], abs=0.05)
            xyz = [float(r[k]) for k in "XYZ"]
            np.testing.assert_allclose(xyz, p.keypoints_3d_mm[j], atol=0.05)


def test_npz_round_trip(tmp_path: Path, doc: dict, frames: list[FramePoses]) -> None:
    path = tmp_path / "run.npz"
    write_poses(path, doc)
    z = np.load(path)
    assert list(z["frame_index"]) == [0, 1, 2]
    np.testing.assert_allclose(z["time"], [0, 1 / 30, 2 / 30], atol=1e-4)
    assert z["person_id"].tolist() == [[1, -1], [-1, -1], [1, 3]]
    assert z["keypoints_2d"].shape == (3, 2, 18, 2)
    assert z["depth_rel_mm"].shape == (3, 2, 18)
    assert z["keypoints_3d_mm"].shape == (3, 2, 18, 3)
    assert z["root_depth_mm"].shape == z["person_id"].shape
    assert z["bbox"].shape == (3, 2, 4)
    assert list(z["joint_names"]) == list(H36M.joints)
    assert z["skeleton"].tolist() == [list(b) for b in H36M.bones]
    assert np.isnan(z["keypoints_2d"][1]).all() and np.isnan(z["keypoints_2d"][0, 1]).all()
    assert np.isnan(z["root_depth_mm"][1]).all()
    for fi, fp in enumerate(frames):
        for pi, p in enumerate(fp.people):
            np.testing.assert_allclose(z["keypoints_2d"][fi, pi], p.keypoints_2d, atol=0.005)
            np.testing.assert_allclose(z["depth_rel_mm"][fi, pi], p.depth_rel_mm, atol=0.05)
            np.testing.assert_allclose(z["keypoints_3d_mm"][fi, pi], p.keypoints_3d_mm, atol=0.05)
            np.testing.assert_allclose(z["bbox"][fi, pi], p.bbox, atol=0.005)
            assert z["root_depth_mm"][fi, pi] == pytest.approx(p.root_depth_mm, abs=0.05)


def test_write_poses_rejects_unknown_types_and_bad_folders(tmp_path: Path, doc: dict) -> None:
    with pytest.raises(ValueError, match=r"\.json, \.csv or \.npz"):
        write_poses(tmp_path / "run.txt", doc)
    with pytest.raises(ValueError):
        write_poses(tmp_path / "run", doc)
    with pytest.raises(ExportError, match="does not exist"):
        write_poses(tmp_path / "nowhere" / "run.json", doc)
    with pytest.raises(OSError):  # ExportError is an OSError: callers may catch either
        write_poses(tmp_path / "nowhere" / "run.npz", doc)
    empty = run_document({}, SOURCE, (1400, 1450), PRINCIPAL, H36M, [])
    write_poses(tmp_path / "empty.npz", empty)
    assert np.load(tmp_path / "empty.npz")["keypoints_2d"].shape == (0, 0, 18, 2)
    write_poses(tmp_path / "empty.csv", empty)
    assert (tmp_path / "empty.csv").read_text().strip() == ",".join(CSV_COLUMNS)


def test_overlay_video_is_readable(tmp_path: Path, frames: list[FramePoses]) -> None:
    path = tmp_path / "overlay.mp4"
    with OverlayVideoWriter(path, 30.0, (320, 240)) as w:
        for i in range(12):
            image = np.full((480, 640, 3), 20 * i, np.uint8)  # resized to the video's size
            w.write(draw_frame(image, frames[i % 3], H36M))
        assert w.frames_written == 12
    cap = cv2.VideoCapture(str(path))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (320, 240)
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 12
    with pytest.raises(ExportError):
        OverlayVideoWriter(tmp_path / "no" / "such" / "dir.mp4", 30.0, (320, 240))
    with pytest.raises(ExportError):
        w.write(np.zeros((240, 320, 3), np.uint8))  # closed


def _color_near(image: np.ndarray, xy: np.ndarray, color: tuple[int, int, int]) -> bool:
    x, y = (round(float(v)) for v in xy)
    return bool(np.all(np.abs(image[y, x].astype(int) - color) <= 40))


def test_draw_pose_marks_joints_by_side() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    p = _person(2, 5)
    before = image.copy()
    draw_pose(image, p, H36M, box=True, labels=True)
    assert (image != before).any()
    for j, xy in enumerate(p.keypoints_2d):
        side = H36M.side(j)
        if side == "centre":
            continue  # centre joints may sit under a later left/right bone
        x, y = (round(float(v)) for v in xy)
        assert image[y, x].any(), f"joint {j} not drawn"
    # Wrists are ends of chains: their dot is the last thing drawn there.
    assert _color_near(image, p.keypoints_2d[13], SIDE_COLORS_BGR["left"])  # L_Wrist
    assert _color_near(image, p.keypoints_2d[16], SIDE_COLORS_BGR["right"])  # R_Wrist
    # draw_frame returns a copy with everyone drawn and leaves its input alone.
    blank = np.zeros((480, 640, 3), np.uint8)
    out = draw_frame(blank, FramePoses(0, 0.0, [p, _person(3, 6, nan_joint=0)]), H36M)
    assert not blank.any() and out.any() and out.shape == blank.shape
    # Nothing to draw, or a grayscale image: no crash.
    assert not draw_frame(blank, FramePoses(0, 0.0, []), H36M).any()
    assert draw_frame(np.zeros((100, 100), np.uint8), FramePoses(0, 0.0, [p]), H36M).ndim == 3
