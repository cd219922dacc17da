"""Frame sources on the project's real test videos, on images and folders, and on bad input."""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from posescope.core.sources.base import SourceError
from posescope.core.sources.images import FolderSource, ImageSource
from posescope.core.sources.live import CameraSource, ReplaySource
from posescope.core.sources.probe import list_cameras, open_source
from posescope.core.sources.video import VideoSource
from tests.media_files import POSE2SIM, SPORTS2D

# Indices compared after seeking: forward, backward, first, last, right after a seek.
SEEKS = {
    POSE2SIM: [57, 3, 99, 0, 58, 98, 1, 31],
    SPORTS2D: [57, 3, 99, 0, 58, 229, 200, 120, 17, 121],
}


def _md5(image: np.ndarray) -> str:
    """A fingerprint of every 4th pixel of every 4th row (hashing whole frames is slow)."""
    return hashlib.md5(np.ascontiguousarray(image[::4, ::4]).tobytes()).hexdigest()


class Reference:
    """One sequential decode with plain OpenCV: every frame's fingerprint, some whole frames."""

    def __init__(self, path: Path, keep: set[int]):
        cap = cv2.VideoCapture(str(path))
        self.fps = cap.get(cv2.CAP_PROP_FPS)
        self.hashes: list[str] = []
        self.frames: dict[int, np.ndarray] = {}
        while True:
            ok, image = cap.read()
            if not ok:
                break
            if len(self.hashes) in keep:
                self.frames[len(self.hashes)] = image
            self.hashes.append(_md5(image))
        cap.release()


@pytest.fixture(scope="module")
def refs() -> dict[Path, Reference]:
    return {p: Reference(p, set(idx) | {10, 11}) for p, idx in SEEKS.items()}


def _assert_quick(fn, seconds: float = 5.0) -> SourceError:
    """fn() must raise SourceError, and not after a hang."""
    t0 = time.monotonic()
    with pytest.raises(SourceError) as info:
        fn()
    assert time.monotonic() - t0 < seconds
    assert str(info.value)  # a message for the user
    return info.value


# --------------------------------------------------------------------------------------------
# Video files


@pytest.mark.parametrize("path", [POSE2SIM, SPORTS2D], ids=["pose2sim", "sports2d"])
def test_sequential_read_yields_every_frame(path: Path, refs: dict[Path, Reference]) -> None:
    ref = refs[path]
    with VideoSource(path) as src:
        assert src.frame_count == len(ref.hashes)
        assert (src.is_live, src.seekable) == (False, True)
        n = 0
        for frame in src:
            assert frame.index == n
            assert frame.time == pytest.approx(n / ref.fps)
            assert (frame.width, frame.height) == (src.width, src.height)
            assert _md5(frame.image) == ref.hashes[n]
            n += 1
        assert n == src.frame_count
        assert src.read() is None  # stays at the end


def test_info_describes_the_videos() -> None:
    with VideoSource(POSE2SIM) as src:
        assert src.info() == {
            "path": str(POSE2SIM),
            "width": 1080,
            "height": 1920,
            "fps": 60.0,
            "frames": 100,
        }
    with open_source(str(SPORTS2D)) as src:
        assert isinstance(src, VideoSource)
        info = src.info()
        assert (info["width"], info["height"], info["fps"], info["frames"]) == (1768, 994, 30, 230)


@pytest.mark.parametrize("path", [POSE2SIM, SPORTS2D], ids=["pose2sim", "sports2d"])
def test_random_access_is_frame_exact(path: Path, refs: dict[Path, Reference]) -> None:
    ref = refs[path]
    with VideoSource(path) as src:
        for i in SEEKS[path]:
            frame = src.get(i)
            assert frame.index == i
            assert frame.time == pytest.approx(i / ref.fps)
            assert np.array_equal(frame.image, ref.frames[i]), f"get({i}) is not frame {i}"
        # After a seek, reading continues right after it; reads then a short jump (grab path).
        src.get(10)
        assert np.array_equal(src.read().image, ref.frames[11])
        assert np.array_equal(
            src.get(17 if path == SPORTS2D else 31).image,
            ref.frames[17 if path == SPORTS2D else 31],
        )
        assert src._seek_mode == "auto"  # OpenCV's seek was exact: no fallback was needed
        with pytest.raises(SourceError, match="out of range"):
            src.get(len(ref.hashes))
        with pytest.raises(SourceError, match="out of range"):
            src.get(-1)


def test_decode_forward_mode_is_exact(refs: dict[Path, Reference]) -> None:
    ref = refs[POSE2SIM]
    with VideoSource(POSE2SIM, seek="decode") as src:
        for i in (57, 3, 58, 31):
            assert np.array_equal(src.get(i).image, ref.frames[i])


class _OffByThreeSeek:
    """A capture whose seek lands 3 frames late while claiming to be where it was asked."""

    def __init__(self, cap: cv2.VideoCapture):
        self.cap = cap

    def set(self, prop: int, value: float) -> bool:
        if prop == cv2.CAP_PROP_POS_FRAMES:
            value += 3
        return self.cap.set(prop, value)

    def get(self, prop: int) -> float:
        v = self.cap.get(prop)
        return v - 3 if prop == cv2.CAP_PROP_POS_FRAMES else v

    def __getattr__(self, name: str):
        return getattr(self.cap, name)


def test_inexact_seek_is_detected_and_replaced_by_decoding(
    refs: dict[Path, Reference],
) -> None:
    ref = refs[SPORTS2D]
    with VideoSource(SPORTS2D) as src:
        src._cap = _OffByThreeSeek(src._cap)
        frame = src.get(120)
        assert np.array_equal(frame.image, ref.frames[120])
        assert src._seek_mode == "decode"
        assert np.array_equal(src.get(57).image, ref.frames[57])


def test_damaged_tail_ends_the_stream(tmp_path: Path, refs: dict[Path, Reference]) -> None:
    # sports2d keeps its index (moov) at the front: a cut copy opens, and its tail is missing.
    cut = tmp_path / "cut.mp4"
    data = SPORTS2D.read_bytes()
    cut.write_bytes(data[: len(data) * 4 // 10])
    ref = refs[SPORTS2D]
    with VideoSource(cut) as src:
        assert src.frame_count == 230  # what the header says
        assert np.array_equal(src.get(10).image, ref.frames[10])
        with pytest.raises(SourceError, match="could not be decoded"):
            src.get(200)
        assert np.array_equal(src.get(57).image, ref.frames[57])  # seeking still works
    with VideoSource(cut) as src:
        n = sum(1 for _ in src)  # no exception mid-way: the stream just ends
        assert 60 < n < 230
        assert src.frame_count == n  # corrected to what decodes
        assert src.read() is None


# --------------------------------------------------------------------------------------------
# Images and folders


def _png(path: Path, h: int, w: int, value: int) -> np.ndarray:
    image = np.full((h, w, 3), value, np.uint8)
    image[: h // 2, : w // 2] = (0, 0, 255)
    assert cv2.imwrite(str(path), image)
    return image


def test_image_source(tmp_path: Path) -> None:
    image = _png(tmp_path / "one.png", 40, 60, 90)
    with open_source(tmp_path / "one.png") as src:
        assert isinstance(src, ImageSource)
        assert (src.width, src.height, src.frame_count) == (60, 40, 1)
        frame = src.read()
        assert frame is not None and frame.index == 0 and frame.time == 0.0
        assert np.array_equal(frame.image, image)
        assert src.read() is None
        assert np.array_equal(src.get(0).image, image)
        with pytest.raises(SourceError):
            src.get(1)
    # Recognised by content, not by name.
    (tmp_path / "image.dat").write_bytes((tmp_path / "one.png").read_bytes())
    assert isinstance(open_source(tmp_path / "image.dat"), ImageSource)


def test_folder_source_natural_order_and_sizes(tmp_path: Path) -> None:
    images = {
        name: _png(tmp_path / name, 30 + 10 * k, 50 + 10 * k, 40 * k)
        for k, name in enumerate(["frame1.png", "frame2.png", "frame10.png"])
    }
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "frame3.jpg").write_text("broken image")
    with open_source(tmp_path) as src:
        assert isinstance(src, FolderSource)
        assert [f.name for f in src.files] == [
            "frame1.png",
            "frame2.png",
            "frame3.jpg",
            "frame10.png",
        ]
        assert (src.width, src.height, src.frame_count) == (50, 30, 4)
        assert src.seekable and not src.is_live
        got = list(src)  # the broken one is skipped
        assert [f.index for f in got] == [0, 1, 3]
        assert np.array_equal(got[2].image, images["frame10.png"])
        assert got[1].time == pytest.approx(1 / src.fps)
        assert np.array_equal(src.get(1).image, images["frame2.png"])
        assert src.read().index == 3  # continues after the frame just fetched (2 is broken)
        with pytest.raises(SourceError, match=r"frame3\.jpg"):
            src.get(2)
        with pytest.raises(SourceError, match="out of range"):
            src.get(4)


# --------------------------------------------------------------------------------------------
# Live-like replay


def _counting_video(path: Path, n: int = 100, fps: float = 50.0) -> Path:
    """A small video whose frame i is uniformly grey at level 20 + 2 i (cheap to decode)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (160, 120))
    for i in range(n):
        writer.write(np.full((120, 160, 3), 20 + 2 * i, np.uint8))
    writer.release()
    return path


def test_replay_drops_frames_for_a_slow_consumer_and_returns_the_newest(tmp_path: Path) -> None:
    video = _counting_video(tmp_path / "count.mp4")
    src = open_source(f"replay:{video}", replay_speed=4.0)  # 100 frames at 200 fps: 0.5 s
    assert isinstance(src, ReplaySource)
    assert src.is_live and not src.seekable and src.frame_count is None
    assert (src.width, src.height, src.fps, src.source_frames) == (160, 120, 50.0, 100)
    with pytest.raises(SourceError):
        src.get(3)
    indices: list[int] = []
    t_start = time.monotonic()
    while (frame := src.read()) is not None:
        # The newest frame: about as far into the video as the wall clock says (20 frames =
        # 0.1 s of slack for a busy machine), and its content is that frame's.
        due = (time.monotonic() - t_start) * 50.0 * 4.0
        assert frame.index <= due + 2
        if indices:
            assert frame.index >= min(due - 20, 99), (frame.index, due)
        assert abs(frame.image.mean() - (20 + 2 * frame.index)) < 4
        indices.append(frame.index)
        time.sleep(0.05)  # a slow consumer: ~10 frames go by per read
        assert time.monotonic() - t_start < 10
    assert src.read() is None  # and stays ended
    assert src.end_reason == "it reached the last frame"
    src.close()
    assert indices == sorted(set(indices))
    assert 3 <= len(indices) < 40
    assert max(np.diff(indices)) > 5
    assert src.dropped > 50
    assert src.delivered + src.dropped == 100


def test_replay_of_the_real_video() -> None:
    with ReplaySource(POSE2SIM, speed=4.0) as src:
        indices = []
        while (frame := src.read()) is not None:
            indices.append(frame.index)
            assert frame.image.shape == (1920, 1080, 3)
            time.sleep(0.03)
    # Decoding 1080x1920 at 240 fps may be out of reach: then the producer skips, never queues.
    assert indices == sorted(set(indices)) and len(indices) < 100
    assert src.delivered == len(indices) and src.delivered + src.dropped == 100


def test_replay_with_a_fast_consumer_sees_every_frame() -> None:
    with ReplaySource(POSE2SIM, speed=8.0) as src:
        indices = [f.index for f in src]
    # Decoding may fall behind 480 fps on a slow machine: then frames are skipped, not queued.
    assert indices == sorted(set(indices)) and indices[-1] == 99
    assert src.delivered + src.dropped == 100


# --------------------------------------------------------------------------------------------
# Cameras (no webcam here: absent devices, and fake captures for the failure paths)


def test_absent_camera_fails_quickly() -> None:
    err = _assert_quick(lambda: open_source("camera:99"))
    assert "camera 99 is not available" in str(err)
    _assert_quick(lambda: open_source("camera:x"))
    t0 = time.monotonic()
    assert 99 not in list_cameras(3)
    assert time.monotonic() - t0 < 5


class FakeCapture:
    """Delivers `good` frames, then fails (unplugged) or blocks (hung driver)."""

    def __init__(self, good: int, then: str = "fail"):
        self.good, self.then, self.n = good, then, 0
        self.release_event = threading.Event()

    def isOpened(self) -> bool:
        return True

    def set(self, prop: int, value: float) -> bool:
        return True

    def get(self, prop: int) -> float:
        return 25.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        self.n += 1
        if self.n <= self.good:
            return True, np.full((24, 32, 3), self.n, np.uint8)
        if self.then == "block":
            self.release_event.wait(5.0)
        return False, None

    def release(self) -> None:
        self.release_event.set()


def test_unplugged_camera_ends_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCapture(good=5)
    monkeypatch.setattr(CameraSource, "_open_capture", staticmethod(lambda index: fake))
    t0 = time.monotonic()
    with open_source("camera:0") as cam:
        assert cam.is_live and cam.frame_count is None and (cam.width, cam.height) == (32, 24)
        frames = []
        assert cam.end_reason is None
        while (f := cam.read()) is not None:
            frames.append(f)
        assert cam.end_reason == "10 failed reads in a row"  # what the app shows
        assert 1 <= len(frames) <= 5
        assert all(b.index > a.index for a, b in itertools.pairwise(frames))
        assert all(b.time >= a.time >= 0 for a, b in itertools.pairwise(frames))
    assert time.monotonic() - t0 < 5
    assert list_cameras(2, opener=lambda i: FakeCapture(1) if i == 1 else None) == [1]


def test_a_camera_driver_that_raises_ends_the_stream_with_its_reason(monkeypatch) -> None:
    class Raising(FakeCapture):
        def read(self):
            if self.n >= 3:
                raise cv2.error("VIDIOC_DQBUF: No such device")
            return super().read()

    monkeypatch.setattr(CameraSource, "_open_capture", staticmethod(lambda index: Raising(9)))
    with open_source("camera:0") as cam:
        frames = list(cam)
        assert 1 <= len(frames) <= 3
        assert cam.end_reason.startswith("reading failed (error: ")
        assert "No such device" in cam.end_reason

    # closed by its consumer while running: no reason to report
    class Endless(FakeCapture):
        def read(self):
            return True, np.zeros((24, 32, 3), np.uint8)

    monkeypatch.setattr(CameraSource, "_open_capture", staticmethod(lambda index: Endless(0)))
    cam = open_source("camera:0")
    assert cam.read() is not None
    cam.close()
    assert cam.end_reason is None


def test_hung_camera_ends_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCapture(good=2, then="block")
    monkeypatch.setattr(CameraSource, "_open_capture", staticmethod(lambda index: fake))
    cam = CameraSource(0, stall_timeout=0.5)
    t0 = time.monotonic()
    while cam.read() is not None:
        pass
    assert time.monotonic() - t0 < 3
    assert cam.end_reason == "no frame for 0.5 s"
    fake.release_event.set()  # the driver comes back
    cam.close()
    fails = FakeCapture(good=0)
    monkeypatch.setattr(CameraSource, "_open_capture", staticmethod(lambda index: fails))
    _assert_quick(lambda: CameraSource(0), seconds=3)


# --------------------------------------------------------------------------------------------
# Bad input


def test_bad_inputs_raise_source_error_quickly(tmp_path: Path) -> None:
    _assert_quick(lambda: open_source(tmp_path / "missing.mp4"))
    _assert_quick(lambda: VideoSource(tmp_path / "missing.mp4"))

    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    assert "cannot open" in str(_assert_quick(lambda: open_source(text)))

    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    _assert_quick(lambda: open_source(empty))

    # pose2sim keeps its index (moov) at the end: a cut copy cannot be opened at all.
    cut = tmp_path / "cut.mp4"
    data = POSE2SIM.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    _assert_quick(lambda: open_source(cut))

    zero = tmp_path / "zero.mp4"
    writer = cv2.VideoWriter(str(zero), cv2.VideoWriter_fourcc(*"mp4v"), 30, (64, 48))
    writer.release()
    _assert_quick(lambda: open_source(zero))

    folder = tmp_path / "empty_folder"
    folder.mkdir()
    assert "no images" in str(_assert_quick(lambda: open_source(folder)))
    (folder / "readme.txt").write_text("hello")
    _assert_quick(lambda: open_source(folder))

    fake_png = tmp_path / "fake.png"
    fake_png.write_text("not a png")
    assert "image" in str(_assert_quick(lambda: open_source(fake_png)))


def test_video_decoded_with_one_ffmpeg_thread_is_the_same() -> None:
    """decode_threads=1 (what a CPU pipeline uses) gives the same pixels, sequential and seeked."""
    from posescope.core.sources.probe import open_source

    media = POSE2SIM
    with open_source(media) as auto, open_source(media, decode_threads=1) as one:
        assert one._cap.get(cv2.CAP_PROP_N_THREADS) == 1
        for _ in range(5):
            a, b = auto.read(), one.read()
            assert a.index == b.index and np.array_equal(a.image, b.image)
        assert np.array_equal(auto.get(40).image, one.get(40).image)
        assert np.array_equal(auto.get(12).image, one.get(12).image)
