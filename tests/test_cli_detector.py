"""`--detector` / `--detector-model` / `--no-whole-frame` and `posescope models`, as a user
types them. No network: the weights URLs point at a closed local port (conftest) or at an
http.server on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from pathlib import Path

import pytest

from posescope import main
from posescope.core.detection import weights
from tests import detector_doubles as dd
from tests import factory
from tests.test_detection_weights import Server, _zip
from tests.test_pipeline import POSE2SIM


@pytest.fixture(scope="module")
def xs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli-det")
    return factory.save_torch_zip(factory.wrap(factory.state_dict_for("XS", seed=1), "network"),
                                  d / "xs.pth")  # fmt: skip


@pytest.fixture(scope="module")
def double(tmp_path_factory) -> Path:
    return dd.rtmdet_end2end(tmp_path_factory.mktemp("det") / "rtmdet.onnx")


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv(weights.ENV_CACHE, str(tmp_path / "models"))
    return tmp_path / "models"


def run(*args: object) -> int:
    return main.main([str(a) for a in args])


def _lines(err: str, prefix: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(prefix)]


def test_default_without_weights_warns_once_and_uses_the_whole_frame(xs, cache, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert run("run", xs, POSE2SIM, "--frames", "0:3", "--device", "cpu", "--out", out) == 0
    err = capsys.readouterr().err
    warnings = _lines(err, "warning:")
    assert len(warnings) == 1, err
    w = warnings[0]
    assert str(cache / "rtmdet_nano_person_320.onnx") in w
    assert "rtmdet_nano_8xb32-100e_coco-obj365-person-05d8511e.zip" in w
    assert "--detector-model" in w and "whole frame" in w
    assert "Traceback" not in err and _lines(err, "error:") == []
    frames = json.loads(out.read_text())["frames"]
    assert [[p["bbox"] for p in f["people"]] for f in frames] == [[[0, 0, 1080, 1920]]] * 3
    assert frames[0]["people"][0]["det_score"] is None  # no detector: no confidence


@pytest.mark.parametrize("name", ["rtmdet", "yolox"])
def test_named_detector_without_weights_is_an_error(xs, cache, name, capsys) -> None:
    assert run("run", xs, POSE2SIM, "--frames", "0:2", "--detector", name) == 1
    err = capsys.readouterr().err
    assert len(_lines(err, "error:")) == 1 and "--detector-model" in err
    assert str(cache) in err and "Traceback" not in err


def test_detector_model_file(xs, double, tmp_path, capsys) -> None:
    out = tmp_path / "p.json"
    code = run("run", xs, POSE2SIM, "--frames", "0:4", "--device", "cpu", "--out", out,
               "--detector", "rtmdet", "--detector-model", double)  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert _lines(err, "warning:") == [] and _lines(err, "error:") == []
    assert not [t for t in threading.enumerate() if t.name == "posescope-detect"]
    frames = json.loads(out.read_text())["frames"]
    assert all(len(f["people"]) >= 1 for f in frames)
    # the double boxes the bright pixels, not the whole frame
    assert frames[0]["people"][0]["bbox"] != [0, 0, 1080, 1920]
    assert frames[0]["people"][0]["det_score"] == 0.9  # the detector's confidence, written


def test_detector_model_errors(xs, tmp_path, capsys) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"nope")
    assert run("run", xs, POSE2SIM, "--detector-model", junk) == 1
    assert run("run", xs, POSE2SIM, "--detector", "hog", "--detector-model", junk) == 1
    err = capsys.readouterr().err
    assert len(_lines(err, "error:")) == 2 and "Traceback" not in err


def test_none_and_no_whole_frame(xs, tmp_path, capsys) -> None:
    out = tmp_path / "p.json"
    assert run("run", xs, POSE2SIM, "--frames", "0:2", "--out", out, "--detector", "none") == 0
    assert all(len(f["people"]) == 1 for f in json.loads(out.read_text())["frames"])
    assert run("run", xs, POSE2SIM, "--frames", "0:2", "--out", out, "--detector", "none",
               "--no-whole-frame") == 0  # fmt: skip
    assert all(f["people"] == [] for f in json.loads(out.read_text())["frames"])
    assert "warning:" not in capsys.readouterr().err


def test_models_list_and_download(cache, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert run("models") == 0
    out = capsys.readouterr().out
    assert str(cache) in out and "rtmdet" in out and "yolox" in out and "hog" in out
    assert out.count("missing") == 2
    assert str(cache / "rtmdet_nano_person_320.onnx") in out
    # offline: an error naming where a hand-copied file goes
    assert run("models", "download", "rtmdet") == 1
    err = capsys.readouterr().err
    assert str(cache / "rtmdet_nano_person_320.onnx") in err and "Traceback" not in err
    # a server on 127.0.0.1 standing in for OpenMMLab's (pinned to what it serves)
    payload = dd.rtmdet_end2end(cache.parent / "served.onnx").read_bytes()
    archive = "rtmdet_nano_8xb32-100e_coco-obj365-person-05d8511e.zip"
    server = Server({f"/sdk/{archive}": _zip(data=payload)})
    try:
        monkeypatch.setenv(weights.ENV_URLS, server.url("/sdk/"))
        pinned = dataclasses.replace(
            weights.CATALOGUE["rtmdet"], sha256=hashlib.sha256(payload).hexdigest()
        )
        monkeypatch.setitem(weights.CATALOGUE, "rtmdet", pinned)
        assert run("models", "download", "rtmdet") == 0
        got = capsys.readouterr()
        assert str(cache / "rtmdet_nano_person_320.onnx") in got.out
        assert "rtmdet [" in got.err and " MB" in got.err  # the progress bar
        assert run("models") == 0
        assert capsys.readouterr().out.count("present") == 1
    finally:
        server.close()


def test_bench_with_automatic_detection(xs, tmp_path, double, capsys) -> None:
    out = tmp_path / "bench.json"
    code = run("bench", xs, "--device", "cpu", "--iters", "2", "--batches", "1",
               "--input", POSE2SIM, "--frames", "6", "--json", out,
               "--detector", "rtmdet", "--detector-model", double)  # fmt: skip
    assert code == 0
    e2e = json.loads(out.read_text())["end_to_end"]
    assert e2e["frames"] == 6 and e2e["detector"]["name"] == "rtmdet"
    assert e2e["detector"]["calls"] >= 1 and e2e["detector"]["ms_per_call"] > 0


def test_gui_detector_flags_reach_an_app_that_takes_them(capsys) -> None:
    args = main.parser().parse_args(["gui", "--detector", "yolox", "--detector-model", "m.onnx"])

    def takes(checkpoint=None, media=None, *, detector=None, detector_model=None):
        return 0

    def older(checkpoint=None, media=None, frame=None):
        return 0

    assert main._detector_options(takes, args) == {"detector": "yolox", "detector_model": "m.onnx"}
    assert main._detector_options(older, args) == {}
    assert "warning:" in capsys.readouterr().err
    plain = main.parser().parse_args(["gui"])
    assert main._detector_options(older, plain) == {}
    assert capsys.readouterr().err == ""
