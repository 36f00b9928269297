"""The CONAC badge images: real 80×80 PNGs drawn here (red, blue and their error variants)."""

from __future__ import annotations

import functools
import struct
import zlib

SIZE = 80

# (badge colour, inner mark colour); the error variants are greyed with a cross.
_COLOURS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "red": ((0xD7, 0x1A, 0x1A), (0xFF, 0xD7, 0x00)),
    "blue": ((0x1A, 0x4F, 0xC8), (0xFF, 0xFF, 0xFF)),
    "red_error": ((0x99, 0x66, 0x66), (0x33, 0x33, 0x33)),
    "blue_error": ((0x66, 0x77, 0x99), (0x33, 0x33, 0x33)),
}
# Site-hosted custom badge images (a different picture of the same badge, as CMSs keep them).
_CUSTOM: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "dzjg": ((0xC0, 0x10, 0x10), (0xFF, 0xFF, 0xFF)),
    "sydw": ((0x10, 0x40, 0xB0), (0xFF, 0xFF, 0xFF)),
}

BADGE_IMAGES = tuple(_COLOURS)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _draw(bg: tuple[int, int, int], fg: tuple[int, int, int], cross: bool, w: int, h: int) -> bytes:
    rows = []
    cx, cy = w / 2, h / 2
    for y in range(h):
        row = bytearray(b"\x00")  # filter type 0
        for x in range(w):
            r2 = (x - cx + 0.5) ** 2 + (y - cy + 0.5) ** 2
            inside = r2 <= (w / 2 - 1) ** 2
            mark = (w / 5) ** 2 <= r2 <= (w / 3) ** 2 or (abs(x - cx) < 3 and abs(y - cy) < w / 4)
            if cross and (abs(x - y) < 3 or abs(x + y - w) < 3):
                pixel = (0x20, 0x20, 0x20, 0xFF)
            elif not inside:
                pixel = (0, 0, 0, 0)
            elif mark:
                pixel = (*fg, 0xFF)
            else:
                pixel = (*bg, 0xFF)
            row.extend(pixel)
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )


@functools.cache
def badge_png(name: str) -> bytes:
    """The bytes of ``red``, ``blue``, ``red_error`` or ``blue_error`` (80×80 RGBA PNG)."""
    bg, fg = _COLOURS[name]
    return _draw(bg, fg, name.endswith("_error"), SIZE, SIZE)


@functools.cache
def custom_png(name: str) -> bytes:
    """A site's own picture of the badge (``dzjg`` red, ``sydw`` blue), 110×40 like CMS footers."""
    bg, fg = _CUSTOM[name]
    return _draw(bg, fg, False, 110, 40)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    w, h = struct.unpack(">II", data[16:24])
    return int(w), int(h)
