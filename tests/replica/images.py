"""Small valid image bytes (PNG, baseline JPEG, GIF), distinct per URL."""

from __future__ import annotations

import hashlib
import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(key: str, size: int = 4) -> bytes:
    """A ``size`` x ``size`` RGB PNG whose colour derives from ``key``."""
    rgb = hashlib.sha1(key.encode()).digest()[:3]
    raw = b"".join(b"\x00" + rgb * size for _ in range(size))
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw))
            + _chunk(b"IEND", b""))


def jpeg(key: str) -> bytes:
    """An 8x8 mid-grey baseline JPEG; a COM segment carries ``key`` so bytes differ per URL."""
    def seg(marker: int, data: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(data) + 2) + data
    com = hashlib.sha1(key.encode()).hexdigest().encode()
    return b"".join([
        b"\xff\xd8",
        seg(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
        seg(0xFE, com),
        seg(0xDB, b"\x00" + b"\x01" * 64),  # quantisation table 0, all ones
        seg(0xC0, b"\x08\x00\x08\x00\x08\x01\x01\x11\x00"),  # 8x8, one component
        # Huffman tables with a single 1-bit code each: DC category 0, AC end-of-block
        seg(0xC4, b"\x00" + b"\x01" + b"\x00" * 15 + b"\x00"),
        seg(0xC4, b"\x10" + b"\x01" + b"\x00" * 15 + b"\x00"),
        seg(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
        b"\x3f",  # bits 0 (DC diff 0) + 0 (EOB), padded with ones
        b"\xff\xd9",
    ])


GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def image_for(path: str) -> tuple[bytes, str] | None:
    """Bytes and content type for an image path, by extension; None if not an image."""
    low = path.lower()
    if low.endswith((".jpg", ".jpeg")):
        return jpeg(path), "image/jpeg"
    if low.endswith(".png"):
        return png(path), "image/png"
    if low.endswith(".gif"):
        return GIF, "image/gif"
    if low.endswith(".ico"):
        return png(path), "image/png"
    return None
