"""The ONNX detector reader against doubles with the exact mmdeploy signatures (exported here
from tiny torch modules): boxes in frame pixels, other classes and low scores dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posescope.core.detection import registry
from posescope.core.detection.base import Detection, Detector, DetectorError
from posescope.core.detection.onnx_detector import (
    RTMDET,
    YOLOX,
    OnnxDetector,
    letterbox,
    nms_xyxy,
)
from tests import detector_doubles as dd

# (frame width, height, the drawn person box x, y, w, h): portrait, landscape, tiny
FRAMES = [
    (1080, 1920, (300, 500, 400, 900)),
    (1920, 1080, (100, 200, 600, 700)),
    (40, 30, (10, 5, 20, 20)),
]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("onnx")
    return {
        "rtmdet": dd.rtmdet_end2end(d / "rtmdet.onnx"),
        "yolox": dd.yolox_end2end(d / "yolox.onnx"),
        "yolox_raw": dd.yolox_raw(d / "yolox_raw.onnx"),
    }


def _close(found: Detection, box: tuple[int, ...], frame_w: int, frame_h: int, size: int):
    px = 1.5 * max(frame_w, frame_h) / size + 1  # one input pixel, in frame pixels
    assert np.allclose(found.box, box, atol=px), (found.box, box)


@pytest.mark.parametrize("kind", ["rtmdet", "yolox", "yolox_raw"])
@pytest.mark.parametrize(("w", "h", "box"), FRAMES)
def test_boxes_in_frame_pixels(models, kind: str, w: int, h: int, box) -> None:
    pre = RTMDET if kind == "rtmdet" else YOLOX
    det = OnnxDetector(models[kind], pre, name=kind, threads=1)
    assert isinstance(det, Detector)
    assert det.input_size == ((320, 320) if kind == "rtmdet" else (416, 416))
    found = det.detect(dd.frame_with_box(w, h, box))
    # one person: the class-2 box (score 0.95) and the 0.1 person are dropped
    assert len(found) == 1, found
    _close(found[0], box, w, h, det.input_size[0])
    assert found[0].score == pytest.approx(0.9 if kind != "yolox_raw" else 0.81, abs=1e-4)


def test_our_threshold_is_honoured(models) -> None:
    image = dd.frame_with_box(640, 480, (100, 100, 200, 300))
    low = OnnxDetector(models["rtmdet"], RTMDET, min_score=0.05)
    scores = sorted(d.score for d in low.detect(image))
    assert scores == pytest.approx([0.1, 0.9], abs=1e-4)  # the class-2 box never comes back
    assert OnnxDetector(models["rtmdet"], RTMDET, min_score=0.95).detect(image) == []
    raw = OnnxDetector(models["yolox_raw"], YOLOX, min_score=0.05)
    flat = dd.frame_with_box(640, 480, (100, 100, 150, 60))  # the shifted box overlaps none
    assert sorted(round(d.score, 3) for d in raw.detect(flat)) == [0.1, 0.81]
    assert OnnxDetector(models["yolox_raw"], YOLOX, min_score=0.85).detect(image) == []


def test_nobody_and_odd_images(models) -> None:
    det = OnnxDetector(models["yolox_raw"], YOLOX)
    assert det.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert det.detect(np.zeros((0, 0, 3), np.uint8)) == []
    gray = dd.frame_with_box(320, 240, (50, 40, 100, 150))[:, :, 0]
    assert len(det.detect(gray)) == 1


def test_normalisation_matters(models) -> None:
    """The RTMDet double reads normalised values: read raw (as YOLOX is), the padding and the
    black background are "bright" and the box is the whole canvas, not the person."""
    image = dd.frame_with_box(1080, 1920, (300, 500, 400, 900))
    wrong = OnnxDetector(models["rtmdet"], YOLOX).detect(image)
    assert wrong and abs(wrong[0].box[2] - 400) > 100


def test_letterbox_top_left() -> None:
    image = np.full((100, 200, 3), 7, np.uint8)
    canvas, ratio = letterbox(image, (320, 320))
    assert ratio == pytest.approx(1.6)
    assert (canvas[:160, :320] == 7).all() and (canvas[160:] == 114).all()
    canvas, ratio = letterbox(np.zeros((1, 5000, 3), np.uint8), (320, 320))
    assert canvas.shape == (320, 320, 3) and (canvas[1:] == 114).all()


def test_nms() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32)
    assert nms_xyxy(boxes, np.array([0.5, 0.9, 0.7]), 0.5) == [1, 2]


def test_bad_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx file")
    with pytest.raises(DetectorError, match="not an ONNX detector"):
        OnnxDetector(junk, RTMDET)
    with pytest.raises(DetectorError, match="no such file"):
        registry.create_detector("rtmdet", tmp_path / "missing.onnx")


def test_cpu_provider_and_threads(models) -> None:
    det = OnnxDetector(models["rtmdet"], RTMDET, threads=1, device="cpu")
    assert det.provider == "CPUExecutionProvider"
    assert det.session.get_session_options().intra_op_num_threads == 1


def test_factory(models, tmp_path: Path) -> None:
    assert registry.create_detector("none") is None
    assert registry.create_detector("hog").name == "hog"
    det = registry.create_detector("yolox", models["yolox_raw"], threads=1)
    assert isinstance(det, OnnxDetector) and det.name == "yolox" and det.input_size == (416, 416)
    with pytest.raises(ValueError, match="unknown detector"):
        registry.create_detector("faster-rcnn")
    with pytest.raises(ValueError, match="--detector-model"):
        registry.create_detector("hog", models["yolox"])
