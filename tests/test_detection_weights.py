"""Getting detector weights, against an http.server on 127.0.0.1 (no network needed): progress,
temporary file then rename, checksum refused with nothing left, mirror fallback, zip members,
cancelling, cached-and-offline, and no network at all."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import random
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest

from posescope.core.detection import weights
from posescope.core.detection.base import ChecksumError, DownloadCancelled, WeightsMissingError
from posescope.core.detection.download import DownloadError, extract_member, fetch

PAYLOAD = random.Random(0).randbytes(512 * 1024)  # incompressible: the zip has several chunks
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _zip(member: str = "20230831/rtmdet_onnx/model/end2end.onnx", data: bytes = PAYLOAD):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("20230831/rtmdet_onnx/model/pipeline.json", b"{}")
        z.writestr(member, data)
    return buf.getvalue()


class Server:
    """Serves `files` (path -> bytes) on 127.0.0.1; any other path is a 404. Records hits."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.hits: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits.append(self.path)
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for i in range(0, len(body), 65536):
                    self.wfile.write(body[i : i + 65536])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server():
    s = Server({"/raw.onnx": PAYLOAD, "/model.zip": _zip(), "/bad.onnx": PAYLOAD[:-1] + b"x"})
    yield s
    s.close()


def _closed_port() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/model.zip"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_progress_then_rename(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "det.onnx"
    seen: list[tuple[int, int | None]] = []

    def progress(done: int, total: int | None) -> None:
        seen.append((done, total))
        assert not dest.exists()  # written under a temporary name until complete
        if done:
            assert any(p.name.startswith(".part-") for p in dest.parent.iterdir())

    assert fetch([server.url("/model.zip")], dest, sha256=SHA, progress=progress) == dest
    assert dest.read_bytes() == PAYLOAD  # the zip's end2end.onnx, not the zip
    total = len(_zip())
    assert seen[0] == (0, total) and seen[-1] == (total, total) and len(seen) > 3
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert _leftovers(dest.parent) == ["det.onnx"]


def test_checksum_mismatch_refused(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "det.onnx"
    with pytest.raises(ChecksumError, match="SHA-256"):
        fetch([server.url("/bad.onnx")], dest, sha256=SHA)
    assert _leftovers(dest.parent) == []


def test_mirror_used_when_first_fails(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "det.onnx"
    urls = [server.url("/gone.zip"), server.url("/raw.onnx")]
    assert fetch(urls, dest, sha256=SHA).read_bytes() == PAYLOAD
    assert server.hits == ["/gone.zip", "/raw.onnx"]
    # a bad first file is refused and the mirror's good one kept
    dest.unlink()
    fetch([server.url("/bad.onnx"), server.url("/model.zip")], dest, sha256=SHA)
    assert dest.read_bytes() == PAYLOAD


def test_every_url_failing(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as info:
        fetch([server.url("/a.zip"), _closed_port()], tmp_path / "x.onnx", sha256=SHA)
    assert len(info.value.reasons) == 2 and "404" in info.value.reasons[0]
    assert _leftovers(tmp_path) == []


def test_cancel(server: Server, tmp_path: Path) -> None:
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(DownloadCancelled):
        fetch([server.url("/raw.onnx")], tmp_path / "x.onnx", cancel=cancel)
    assert _leftovers(tmp_path) == []


def test_zip_member_bounded(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(_zip(data=b"\0" * 5_000_000))
    with pytest.raises(Exception, match="unpack"):
        extract_member(archive, "end2end.onnx", tmp_path / "out.onnx", max_bytes=1_000_000)
    archive.write_bytes(_zip(member="other/thing.bin"))
    with pytest.raises(Exception, match=r"no end2end\.onnx"):
        extract_member(archive, "end2end.onnx", tmp_path / "out.onnx")


@pytest.fixture
def pinned_to_payload(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The catalogue's rtmdet pinned to PAYLOAD's hash, the cache in a temp folder."""
    cache = tmp_path / "models"
    monkeypatch.setenv(weights.ENV_CACHE, str(cache))
    entry = dataclasses.replace(weights.CATALOGUE["rtmdet"], sha256=SHA)
    monkeypatch.setitem(weights.CATALOGUE, "rtmdet", entry)
    return cache


def test_ensure_downloads_once_then_cached_and_offline(server: Server, pinned_to_payload: Path):
    path = weights.ensure_weights("rtmdet", urls=(server.url("/model.zip"),))
    assert path == pinned_to_payload / "rtmdet_nano_person_320.onnx" and weights.verify("rtmdet")
    assert weights.is_cached("rtmdet")
    # offline now: the cached file is used, nothing is fetched
    server.hits.clear()
    t = time.perf_counter()
    assert weights.ensure_weights("rtmdet", urls=(_closed_port(),)) == path
    assert server.hits == [] and time.perf_counter() - t < 1.0
    # a different file put there by hand is refused, not used
    path.write_bytes(b"something else")
    with pytest.raises(ChecksumError, match="--detector-model"):
        weights.ensure_weights("rtmdet", urls=(_closed_port(),))


def test_no_network_at_all(pinned_to_payload: Path) -> None:
    """Connection refused and a name that does not resolve: a clear error within seconds."""
    t = time.perf_counter()
    with pytest.raises(WeightsMissingError) as info:
        weights.ensure_weights("rtmdet", urls=(_closed_port(), "http://nowhere.invalid/m.zip"))
    assert time.perf_counter() - t < 10
    err = info.value
    assert err.path == pinned_to_payload / "rtmdet_nano_person_320.onnx"
    assert "127.0.0.1" in err.reason and "nowhere.invalid" in err.reason
    assert _leftovers(pinned_to_payload) == []
    with pytest.raises(WeightsMissingError):
        weights.ensure_weights("rtmdet", download=False)


def test_cache_dir_per_platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from posescope.core import onnx_cache, userdirs

    monkeypatch.delenv(weights.ENV_CACHE, raising=False)
    monkeypatch.delenv(onnx_cache.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(userdirs.sys, "platform", "linux")
    assert weights.cache_dir() == tmp_path / "xdg" / "posescope" / "models"
    assert onnx_cache.cache_dir() == tmp_path / "xdg" / "posescope" / "onnx"
    monkeypatch.setattr(userdirs.sys, "platform", "darwin")
    monkeypatch.setattr(userdirs.Path, "home", lambda: tmp_path / "home")
    assert weights.cache_dir() == tmp_path / "home" / "Library" / "Caches" / "posescope" / "models"
    monkeypatch.setattr(userdirs.sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert weights.cache_dir() == tmp_path / "local" / "posescope" / "models"
    assert onnx_cache.cache_dir() == tmp_path / "local" / "posescope" / "onnx"


def test_catalogue_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(weights.ENV_URLS)
    for meta in weights.CATALOGUE.values():
        assert meta.urls[0].startswith("https://download.openmmlab.com/")
        assert meta.urls[1].startswith("https://huggingface.co/")
        assert meta.urls[0].rsplit("/", 1)[1] == meta.urls[1].rsplit("/", 1)[1] == meta.archive
        assert meta.sha256 is None or len(meta.sha256) == 64
    monkeypatch.setenv(weights.ENV_URLS, "http://mirror.example/a/, http://b.example/x")
    assert weights.info("yolox").urls == (
        "http://mirror.example/a/yolox_tiny_8xb8-300e_humanart-6f3252f9.zip",
        "http://b.example/x/yolox_tiny_8xb8-300e_humanart-6f3252f9.zip",
    )
