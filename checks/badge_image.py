"""Recognise a copy of the CONAC badge image by its bytes (no Pillow: PNG is zlib + filters).

CONAC's images are 80×80 PNGs: ``red.png`` (党政机关) is dominated by red, ``blue.png`` (事业单位) by
blue. A site that saved the image under its own path (``/images/dzjg.png``) still serves those bytes,
so the colour signature of an 80×80 PNG identifies the kind whatever the file is called. Known exact
hashes (``KNOWN_SHA256``) win over the colour signature; the colour rule is what recognises images
we have never seen, the real CONAC files included.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache

BADGE_SIZE = (80, 80)
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_MAX_PIXELS = 512 * 512  # larger images are not badge copies; never decode them
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}

#: sha256 of image bytes → (kind, error image). Extend when CONAC's real files are at hand.
KNOWN_SHA256: dict[str, tuple[str, bool]] = {}


@dataclass(frozen=True, slots=True)
class ImageSignature:
    """What the bytes of an image say: size, dominant colour shares and the badge kind if any."""

    width: int
    height: int
    red_share: float
    blue_share: float
    kind: str | None  # "党政机关" / "事业单位" / None
    error: bool = False


def _unfilter(raw: bytes, width: int, height: int, bpp: int, row_bytes: int) -> list[bytearray] | None:
    rows: list[bytearray] = []
    prev = bytearray(row_bytes)
    pos = 0
    for _ in range(height):
        if pos + 1 + row_bytes > len(raw):
            return None
        ftype = raw[pos]
        line = bytearray(raw[pos + 1 : pos + 1 + row_bytes])
        pos += 1 + row_bytes
        if ftype == 1:
            for x in range(bpp, row_bytes):
                line[x] = (line[x] + line[x - bpp]) & 0xFF
        elif ftype == 2:
            for x in range(row_bytes):
                line[x] = (line[x] + prev[x]) & 0xFF
        elif ftype == 3:
            for x in range(row_bytes):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((left + prev[x]) >> 1)) & 0xFF
        elif ftype == 4:
            for x in range(row_bytes):
                a = line[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
        elif ftype != 0:
            return None
        rows.append(line)
        prev = line
    return rows


def _pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int, int]]] | None:
    """(width, height, RGBA pixels) of an 8-bit (or palette) non-interlaced PNG, else None."""
    if not data.startswith(_PNG_SIG):
        return None
    pos = len(_PNG_SIG)
    width = height = depth = ctype = interlace = -1
    palette: list[tuple[int, int, int]] = []
    alpha: bytes = b""
    idat = bytearray()
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype_b = data[pos + 4 : pos + 8]
        chunk = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if ctype_b == b"IHDR" and len(chunk) >= 13:
            width, height, depth, ctype, _comp, _filt, interlace = struct.unpack(">IIBBBBB", chunk[:13])
            if width * height > _MAX_PIXELS or width <= 0 or height <= 0:
                return None
        elif ctype_b == b"PLTE":
            palette = [(chunk[k], chunk[k + 1], chunk[k + 2]) for k in range(0, len(chunk) - 2, 3)]
        elif ctype_b == b"tRNS":
            alpha = chunk
        elif ctype_b == b"IDAT":
            idat += chunk
        elif ctype_b == b"IEND":
            break
    if width < 0 or interlace != 0 or ctype not in _CHANNELS:
        return None
    if depth != 8 and not (ctype == 3 and depth in (1, 2, 4)):
        return None
    channels = _CHANNELS[ctype]
    row_bytes = (width * channels * depth + 7) // 8
    expected = (row_bytes + 1) * height
    try:
        d = zlib.decompressobj()
        raw = d.decompress(bytes(idat), expected + 1)  # bounded: a zip bomb stops here
    except zlib.error:
        return None
    rows = _unfilter(raw, width, height, max(1, channels * depth // 8), row_bytes)
    if rows is None:
        return None
    # Flat RGBA channel sequences (slicing is done in C: an 80×80 image costs well under a millisecond).
    reds: list[int] = []
    greens: list[int] = []
    blues: list[int] = []
    alphas: list[int] = []
    for line in rows:
        if ctype == 3:
            per = 8 // depth
            mask = (1 << depth) - 1
            for x in range(width):
                idx = (line[x // per] >> ((per - 1 - x % per) * depth)) & mask
                r, g, b = palette[idx] if idx < len(palette) else (0, 0, 0)
                reds.append(r)
                greens.append(g)
                blues.append(b)
                alphas.append(alpha[idx] if idx < len(alpha) else 255)
        elif ctype in (2, 6):
            step = 3 if ctype == 2 else 4
            n = width * step
            reds.extend(line[0:n:step])
            greens.extend(line[1:n:step])
            blues.extend(line[2:n:step])
            alphas.extend(line[3:n:4] if ctype == 6 else [255] * width)
        else:  # 0: grey, 4: grey + alpha
            step = 1 if ctype == 0 else 2
            grey = line[0 : width * step : step]
            reds.extend(grey)
            greens.extend(grey)
            blues.extend(grey)
            alphas.extend(line[1 : width * 2 : 2] if ctype == 4 else [255] * width)
    return width, height, list(zip(reds, greens, blues, alphas, strict=True))


def image_signature(data: bytes) -> ImageSignature | None:
    """The colour signature of PNG bytes; ``kind`` is set only for an 80×80 badge-like image.

    Cached by content (small images only, so memory stays bounded): the crawler's loop asks again after
    every round of fetches.
    """
    return _cached_signature(data) if len(data) <= 256 * 1024 else _signature(data)


@lru_cache(maxsize=256)
def _cached_signature(data: bytes) -> ImageSignature | None:
    return _signature(data)


def _signature(data: bytes) -> ImageSignature | None:
    known = KNOWN_SHA256.get(hashlib.sha256(data).hexdigest())
    decoded = _pixels(data)
    if decoded is None:
        return None
    width, height, pixels = decoded
    red = blue = red_tint = blue_tint = opaque = 0
    for r, g, b, a in pixels:
        if a < 128:
            continue
        opaque += 1
        if r > 140 and r > g + 60 and r > b + 60:
            red += 1
        elif b > 120 and b > r + 60 and b > g + 40:
            blue += 1
        elif r > g + 20 and r > b + 20:
            red_tint += 1
        elif b > r + 20 and b > g + 10:
            blue_tint += 1
    red_share = red / opaque if opaque else 0.0
    blue_share = blue / opaque if opaque else 0.0
    kind: str | None = None
    error = False
    if known is not None:
        kind, error = known
    elif (width, height) == BADGE_SIZE:
        # A clear majority of one colour among the coloured pixels, and enough of it to be the emblem.
        if red_share >= 0.15 and red_share >= 3 * blue_share:
            kind = "党政机关"
        elif blue_share >= 0.15 and blue_share >= 3 * red_share:
            kind = "事业单位"
        elif max(red_share, blue_share) < 0.05 and opaque:
            # A greyed-out badge (CONAC's error image): the tint still tells the kind.
            rt, bt = red_tint / opaque, blue_tint / opaque
            if rt >= 0.3 and rt >= 3 * bt:
                kind, error = "党政机关", True
            elif bt >= 0.3 and bt >= 3 * rt:
                kind, error = "事业单位", True
    return ImageSignature(width, height, round(red_share, 3), round(blue_share, 3), kind, error)


def encode_png(width: int, height: int, pixel: tuple[int, int, int]) -> bytes:
    """A minimal RGB PNG of one colour with a white border (used for reference images and tests)."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            border = x < 4 or y < 4 or x >= width - 4 or y >= height - 4
            rows.extend((255, 255, 255) if border else pixel)

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(rows), 9)
    return _PNG_SIG + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
