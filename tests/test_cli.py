"""posescope inspect / run / bench, through main.main as a user calls them."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from posescope import main
from tests import factory
from tests.test_pipeline import BOX, POSE2SIM

ROOT = Path(__file__).resolve().parents[1]


def run(*args: object) -> int:
    """`posescope ARGS...` as the user types it."""
    return main.main([str(a) for a in args])


@pytest.fixture(scope="module")
def xs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    sd = factory.add_prefix(factory.state_dict_for("XS", seed=1), "module.")
    return factory.save_torch_zip(factory.wrap(sd, "network"), d / "ConvNeXtPose_L.tar")


def test_inspect_table(xs, capsys) -> None:
    assert main.main(["inspect", str(xs)]) == 0
    out = capsys.readouterr().out
    assert "ConvNeXtPose-XS" in out
    assert "named L, tensors say XS" in out
    assert "2x40  2x80  6x160  2x320" in out
    assert "prefix 'module.' stripped" in out


def test_inspect_json_one_and_many(xs, tmp_path, capsys) -> None:
    assert main.main(["inspect", str(xs), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (
        doc["variant"] == "XS" and doc["format"] == "torch-zip" and doc["family"] == "convnextpose"
    )
    assert doc["backbone"] == {
        "type": "convnext-bn",
        "depths": [2, 2, 6, 2],
        "dims": [40, 80, 160, 320],
        "resnet_depth": None,
    }
    assert doc["head"]["style"] == "modern" and doc["head"]["upsample"] == [True, True, False]
    assert doc["joint_num"] == 18 and doc["depth_dim"] == 32 and doc["output_size"] == [32, 32]
    assert 0 < doc["confidence"] <= 1 and doc["params"] == 3528008
    m = factory.save_safetensors(factory.state_dict_for("M"), tmp_path / "weights.safetensors")
    assert main.main(["inspect", str(xs), str(m), "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert [d["variant"] for d in docs] == ["XS", "M"] and docs[1]["format"] == "safetensors"


def test_inspect_bad_files_exit_nonzero_with_one_line_each(xs, tmp_path, capsys) -> None:
    jpeg = tmp_path / "photo.pth"
    _, buf = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    jpeg.write_bytes(buf.tobytes())
    cls = factory.save_torch_zip(factory.make_classifier_sd(), tmp_path / "resnet18.pth")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    code = main.main(
        ["inspect", str(xs), str(jpeg), str(cls), str(empty), str(tmp_path / "nope.pth")]
    )
    assert code != 0
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == 4
    assert all(line.startswith("error: ") for line in errors)
    assert "JPEG" in errors[0]
    assert "not a pose checkpoint" in errors[1] and "classifier" in errors[1]
    assert "Traceback" not in captured.err
    assert "ConvNeXtPose-XS" in captured.out  # the good file is still reported


def test_inspect_needs_trust(tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"
    bad = factory.write_malicious_pickle(tmp_path / "evil.pth", marker)
    assert main.main(["inspect", str(bad)]) != 0
    err = capsys.readouterr().err
    assert "--trust" in err and not marker.exists()


def test_run_json_csv_npz_and_overlay(xs, tmp_path, capsys) -> None:
    out = tmp_path / "poses.json"
    video = tmp_path / "overlay.mp4"
    box = ",".join(str(v) for v in BOX)
    code = run("run", xs, POSE2SIM, "--bbox", box, "--frames", "3:7", "--out", out,
               "--render", video, "--device", "cpu")  # fmt: skip
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["checkpoint"]["variant"] == "XS"
    assert (
        doc["source"]["width"] == 1080
        and doc["source"]["height"] == 1920
        and doc["source"]["frames"] == 100
    )
    assert doc["camera"]["focal"] == [1500.0, 1500.0] and doc["camera"]["principal"] == [
        540.0,
        960.0,
    ]
    assert len(doc["joint_names"]) == 18 and [0, 7] in doc["skeleton"]
    assert [f["index"] for f in doc["frames"]] == [3, 4, 5, 6]
    person = doc["frames"][0]["people"][0]
    assert (
        person["id"] == 1
        and len(person["keypoints_2d"]) == 18
        and len(person["keypoints_3d_mm"][0]) == 3
    )
    assert "root_depth_mm" in person and len(person["depth_rel_mm"]) == 18
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    cap.release()
    csv_out = tmp_path / "p.csv"
    assert (
        run("run", xs, POSE2SIM, "--bbox", box, "--frames", "0:2", "--out", csv_out, "--smooth")
        == 0
    )
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len(rows) == 2 * 18
    npz_out = tmp_path / "p.npz"
    code = run("run", xs, POSE2SIM, "--bbox", box, "--frames", "0:2", "--out", npz_out,
               "--flip", "--focal", "1200,1300")  # fmt: skip
    assert code == 0
    npz = np.load(tmp_path / "p.npz")
    assert npz["keypoints_3d_mm"].shape[0] == 2 and npz["keypoints_3d_mm"].shape[-2:] == (18, 3)


def test_run_detects_people_without_a_box(xs, tmp_path) -> None:
    out = tmp_path / "poses.json"
    assert main.main(["run", str(xs), str(POSE2SIM), "--frames", "0:3", "--out", str(out)]) == 0
    frames = json.loads(out.read_text())["frames"]
    assert all(len(f["people"]) >= 1 for f in frames)


def test_run_bad_inputs(xs, tmp_path, capsys) -> None:
    assert main.main(["run", str(xs), "camera:97", "--out", str(tmp_path / "x.json")]) != 0
    assert "camera" in capsys.readouterr().err
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    assert main.main(["run", str(xs), str(text)]) != 0
    capsys.readouterr()
    assert main.main(["run", str(xs), str(POSE2SIM), "--bbox", "1,2,3"]) == 2
    assert capsys.readouterr().err == (
        "error: --bbox: 4 numbers separated by commas are needed, got 3\n"
    )
    assert (
        main.main(
            [
                "run",
                str(xs),
                str(POSE2SIM),
                "--frames",
                "0:1",
                "--out",
                str(tmp_path / "p.txt"),
                "--bbox",
                "1,2,300,300",
            ]
        )
        != 0
    )
    assert "Traceback" not in capsys.readouterr().err


def test_run_on_a_camera_that_is_unplugged_keeps_what_it_got(
    xs, tmp_path, capsys, monkeypatch
) -> None:
    from posescope.core.sources.live import CameraSource
    from tests.test_sources import FakeCapture

    monkeypatch.setattr(CameraSource, "_open_capture", staticmethod(lambda i: FakeCapture(30)))
    out = tmp_path / "live.json"
    assert run("run", xs, "camera:0", "--bbox", "2,2,20,20", "--out", out) == 0
    assert "camera 0 ended: 10 failed reads in a row" in capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["source"]["path"] == "camera:0" and 1 <= len(doc["frames"]) <= 30
    assert all(len(f["people"]) == 1 for f in doc["frames"])


def test_run_and_bench_refuse_wrong_checkpoints_and_arguments(xs, tmp_path, capsys) -> None:
    """One `error: FILE: reason` line and exit 1, never a traceback."""
    notes = tmp_path / "ConvNeXtPose_M.pth"
    notes.write_text("renamed notes, not a checkpoint")
    root = factory.save_torch_zip({"network": factory.make_rootnet_sd(seed=3)}, tmp_path / "r.pth")
    for ckpt, why in [
        (notes, "ConvNeXtPose_M.pth"),
        (root, "RootNet checkpoint (root depth only)"),
    ]:
        assert run("run", ckpt, POSE2SIM, "--frames", "0:1") == 1
        assert run("bench", ckpt, "--device", "cpu", "--iters", "1", "--batches", "1") == 1
        err = capsys.readouterr().err
        assert err.count("error: ") == 2 and why in err and "Traceback" not in err
    for bad, says in [
        (["--bbox", "a,b,c,d"], "error: --bbox: a number is needed, got 'a'"),
        (["--focal", "1500,1500,9"], "error: --focal: 2 numbers separated by commas"),
        (["--frames", "x:3"], "error: --frames: a whole number is needed, got 'x'"),
    ]:
        assert run("run", xs, POSE2SIM, *bad) == 2
        assert capsys.readouterr().err.startswith(says)


def test_bench_writes_json(xs, tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    box = ",".join(str(v) for v in BOX)
    code = main.main(
        [
            "bench",
            str(xs),
            "--device",
            "cpu",
            "--backend",
            "torch",  # the torch engine's form and its two frames in flight
            "--iters",
            "3",
            "--batches",
            "1,2",
            "--input",
            str(POSE2SIM),
            "--bbox",
            box,
            "--frames",
            "5",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    doc = json.loads(out.read_text())
    b1 = doc["model_only"]["batches"]["1"]
    assert b1["max_abs_diff"] < 1e-3
    assert b1["paired_ratio"] > 0 and b1["ratio"] > 0
    assert b1["engine"]["median_ms"] > 0 and b1["baseline"]["p90_ms"] >= b1["baseline"]["median_ms"]
    assert doc["model_only"]["best_batch"] in (1, 2)
    assert doc["model_only"]["form"] == "onednn"
    e2e = doc["end_to_end"]
    assert e2e["frames"] == 5 and e2e["fps"] > 0
    assert e2e["paired_ratio"] > 0 and e2e["paired_model_only_fps"] > 0
    assert e2e["in_flight"] == 2 and e2e["decode_threads"] == 1  # a fixed box, on a CPU
    assert e2e["paired_ratio_same_parallelism"] > 0
    assert {"video decode (overlapped)", "detect", "crop", "model", "decode", "smooth"} <= set(
        e2e["stages_median_ms"]
    )
    out = capsys.readouterr().out
    assert "end-to-end" in out and "engine form onednn" in out


def test_console_entry_without_display_does_not_import_qt(xs) -> None:
    """The engine's commands work headless: inspect never loads PySide6."""
    code = (
        "import sys, main; rc = main.main(['inspect', sys.argv[1]]); "
        "assert 'PySide6' not in sys.modules; sys.exit(rc)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(xs)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr


def test_log_lines_go_to_the_stderr_of_the_moment(monkeypatch) -> None:
    """The CLI's handler writes to `sys.stderr` as it is when a record comes, so a stream
    replaced (and closed) after `configure_logging` never gets a write ('I/O operation on
    closed file' from every later log call)."""
    import io
    import logging

    from posescope.core.cli_logging import configure_logging

    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging()
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("posescope.core.test").warning("after the swap")
    assert second.getvalue() == "warning: after the swap\n"
