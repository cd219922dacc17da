"""An image's size read from its header, so that a huge image is refused before decoding.

A 32000x32000 PNG of one colour is a few MB on disk and 3 GB once decoded; OpenCV would
decode it whole. `image_size` reads the width and height that PNG, JPEG, BMP, GIF and WebP
headers declare (nothing else is parsed); `check_pixels` refuses more than MAX_PIXELS.
"""

from __future__ import annotations

import struct

MAX_PIXELS = 100_000_000  # 100 MP: larger than any camera frame PoseScope is meant for
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class ImageTooLargeError(ValueError):
    """The header declares more than `limit` pixels (`width` x `height`)."""

    def __init__(self, width: int, height: int, limit: int) -> None:
        super().__init__(
            f"the image is {width}x{height} ({width * height / 1e6:.0f} MP); images over "
            f"{limit / 1e6:.0f} MP are refused before decoding"
        )
        self.width, self.height, self.limit = width, height, limit


def image_size(data: bytes | memoryview) -> tuple[int, int] | None:
    """(width, height) from the header, or None when the format is not one of the above."""
    b = bytes(data[:32])
    if b.startswith(b"\x89PNG\r\n\x1a\n") and len(b) >= 24:
        return struct.unpack(">II", b[16:24])
    if b[:6] in (b"GIF87a", b"GIF89a") and len(b) >= 10:
        return struct.unpack("<HH", b[6:10])
    if b.startswith(b"BM") and len(b) >= 26:
        w, h = struct.unpack("<ii", b[18:26])
        return abs(w), abs(h)
    if b[:4] == b"RIFF" and b[8:12] == b"WEBP":
        return _webp(bytes(data[:30]))
    if b.startswith(b"\xff\xd8"):
        return _jpeg(data)
    return None


def _webp(b: bytes) -> tuple[int, int] | None:
    if len(b) < 30:
        return None
    kind = b[12:16]
    if kind == b"VP8X":
        return 1 + int.from_bytes(b[24:27], "little"), 1 + int.from_bytes(b[27:30], "little")
    if kind == b"VP8L":
        bits = int.from_bytes(b[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if kind == b"VP8 ":
        w, h = struct.unpack("<HH", b[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def _jpeg(data: bytes | memoryview) -> tuple[int, int] | None:
    """Walk the JPEG segments up to the first start-of-frame marker."""
    i, n = 2, len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = (data[i + 2] << 8) | data[i + 3]
        if marker in _JPEG_SOF:
            h = (data[i + 5] << 8) | data[i + 6]
            w = (data[i + 7] << 8) | data[i + 8]
            return w, h
        i += 2 + length
    return None


def check_pixels(data: bytes | memoryview, limit: int = MAX_PIXELS) -> None:
    """Raise ImageTooLargeError when the header declares more than `limit` pixels."""
    size = image_size(data)
    if size is not None and size[0] * size[1] > limit:
        raise ImageTooLargeError(size[0], size[1], limit)
