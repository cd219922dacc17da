"""Fetching one model file over HTTP(S), the way a careful app does it.

Each URL is tried in turn (the maker's server, then a mirror): the body streams into a
temporary file beside the destination, with progress reported and a way to cancel; a zip is
opened and only its `end2end.onnx` is extracted (size bounded); the SHA-256 of the result is
checked when one is pinned; only then is it renamed into place (atomic on one file system).
Whatever fails, nothing partial is left where the file belongs. Short socket timeouts: with
no network an attempt gives up within seconds.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlparse

from posescope.core.detection.base import ChecksumError, DetectorError, DownloadCancelled

ProgressFn = Callable[[int, int | None], None]  # bytes so far, total bytes (None: unknown)
CancelFn = Callable[[], bool]  # True: stop now

CHUNK = 64 * 1024
TIMEOUT_S = 8.0  # per socket operation (connect, each read)
MAX_BYTES = 256 * 1024 * 1024  # no detector we know is near this; a bigger body is refused
USER_AGENT = "posescope-model-fetch"


class DownloadError(DetectorError):
    """Every URL failed; `reasons` says why, one per URL."""

    def __init__(self, reasons: Sequence[str]):
        self.reasons = list(reasons)
        super().__init__("; ".join(self.reasons) or "no URL to fetch from")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _stream(url: str, out, progress: ProgressFn | None, cancel: CancelFn | None, timeout: float):
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if total is not None and total > MAX_BYTES:
            raise DetectorError(f"{url}: {total} bytes, more than a detector can be")
        done = 0
        if progress:
            progress(0, total)
        while True:
            if cancel is not None and cancel():
                raise DownloadCancelled("download cancelled")
            block = resp.read(CHUNK)
            if not block:
                break
            done += len(block)
            if done > MAX_BYTES:
                raise DetectorError(f"{url}: more than {MAX_BYTES} bytes")
            out.write(block)
            if progress:
                progress(done, total)
        if total is not None and done != total:
            raise DetectorError(f"{url}: connection closed after {done} of {total} bytes")


def extract_member(archive: Path, member_suffix: str, dest: Path, max_bytes: int = MAX_BYTES):
    """Copy the one member of a zip whose name ends with `member_suffix` to `dest`, reading
    at most `max_bytes` (a zip bomb or a lying header is refused, not unpacked)."""
    with zipfile.ZipFile(archive) as zf:
        names = [i for i in zf.infolist() if i.filename.endswith(member_suffix) and not i.is_dir()]
        if not names:
            raise DetectorError(f"the archive holds no {member_suffix}")
        info = names[0]
        if info.file_size > max_bytes:
            raise DetectorError(f"{info.filename} would unpack to {info.file_size} bytes")
        written = 0
        with zf.open(info) as src, open(dest, "wb") as out:
            for block in iter(lambda: src.read(CHUNK), b""):
                written += len(block)
                if written > max_bytes:
                    raise DetectorError(f"{info.filename} unpacks to more than {max_bytes} bytes")
                out.write(block)


def fetch(
    urls: Sequence[str],
    dest: Path,
    *,
    sha256: str | None = None,
    member: str = "end2end.onnx",
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    timeout: float = TIMEOUT_S,
) -> Path:
    """Download the first URL that works to `dest` (a zip: its `member`, extracted).

    Raises ChecksumError when the only files got were not the pinned ones, DownloadCancelled
    when `cancel()` said so, DownloadError (reasons per URL) otherwise."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    reasons: list[str] = []
    mismatch: ChecksumError | None = None
    for url in urls:
        host = urlparse(url).netloc or url
        tmp = Path(tempfile.mkstemp(dir=dest.parent, prefix=".part-", suffix=".tmp")[1])
        unpacked = tmp.with_suffix(".onnx")
        try:
            with open(tmp, "wb") as out:
                _stream(url, out, progress, cancel, timeout)
            if zipfile.is_zipfile(tmp):
                extract_member(tmp, member, unpacked)
                result = unpacked
            else:
                result = tmp
            if sha256 is not None:
                got = sha256_file(result)
                if got != sha256.lower():
                    raise ChecksumError(f"{url}: SHA-256 {got}, expected {sha256}")
            os.replace(result, dest)
            return dest
        except DownloadCancelled:
            raise
        except ChecksumError as exc:
            mismatch = exc
            reasons.append(str(exc))
        except urllib.error.HTTPError as exc:
            reasons.append(f"{host}: HTTP {exc.code} {exc.reason}")
        except urllib.error.URLError as exc:
            why = getattr(exc, "reason", exc)
            reasons.append(f"{host}: {getattr(why, 'strerror', None) or why}")
        except (OSError, zipfile.BadZipFile, DetectorError) as exc:
            reasons.append(f"{host}: {getattr(exc, 'strerror', None) or exc}")
        finally:
            for p in (tmp, unpacked):
                if p.exists():
                    p.unlink()
    if mismatch is not None and len(reasons) == 1:
        raise mismatch
    if mismatch is not None:
        raise ChecksumError("; ".join(reasons))
    raise DownloadError(reasons)
