"""Recognise a copy of the CONAC badge image by its bytes, whatever format the copy was saved in.

CONAC's images are 80×80 PNGs: ``red.png`` (党政机关) is dominated by red, ``blue.png`` (事业单位) by
blue. A site that saved the image under its own path (``/images/dzjg.png``) still serves those bytes,
and sites that re-saved it as GIF or JPEG serve the same picture, so the colour signature of an 80×80
image identifies the kind whatever the file is called or how it is encoded (Pillow decodes it). Known
exact hashes (``KNOWN_SHA256``) win over the colour signature; the colour rule is what recognises
images we have never seen, the real CONAC files included.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image

BADGE_SIZE = (80, 80)
_MAX_PIXELS = 512 * 512  # larger images are not badge copies; never decode them
#: Formats a badge copy is saved in on real sites (Pillow opens more; the others are not badges).
_FORMATS = frozenset({"PNG", "GIF", "JPEG", "BMP", "WEBP"})

#: sha256 of image bytes → (kind, error image). Extend when CONAC's real files are at hand.
KNOWN_SHA256: dict[str, tuple[str, bool]] = {}


@dataclass(frozen=True, slots=True)
class ImageSignature:
    """What the bytes of an image say: size, dominant colour shares and the badge kind if any.

    ``format`` is the encoding as Pillow names it (``PNG``, ``GIF``, ``JPEG`` …).
    """

    width: int
    height: int
    red_share: float
    blue_share: float
    kind: str | None  # "党政机关" / "事业单位" / None
    error: bool = False
    format: str = "PNG"


def _pixels(data: bytes) -> tuple[str, int, int, list[tuple[int, int, int, int]]] | None:
    """(format, width, height, RGBA pixels) of a small image in a badge format, else None.

    The size is read from the header before anything is decoded: an image announcing more than
    :data:`_MAX_PIXELS` is refused unread, so a decompression bomb costs nothing; a truncated or
    corrupt image is None (Pillow raises, it does not guess).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: refused below by size anyway
            with Image.open(io.BytesIO(data)) as im:
                if im.format not in _FORMATS:
                    return None
                width, height = im.size
                if width <= 0 or height <= 0 or width * height > _MAX_PIXELS:
                    return None
                fmt = str(im.format)
                rgba = im.convert("RGBA")  # the first frame of an animated GIF
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, Image.DecompressionBombError):
        return None
    # Flat channel sequences (slicing is done in C: an 80×80 image costs well under a millisecond).
    raw = rgba.tobytes()
    return fmt, width, height, list(zip(raw[0::4], raw[1::4], raw[2::4], raw[3::4], strict=True))


def image_signature(data: bytes) -> ImageSignature | None:
    """The colour signature of image bytes; ``kind`` is set only for an 80×80 badge-like image.

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
    fmt, width, height, pixels = decoded
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
    return ImageSignature(width, height, round(red_share, 3), round(blue_share, 3), kind, error, fmt)


def encode_png(width: int, height: int, pixel: tuple[int, int, int]) -> bytes:
    """A minimal RGB PNG of one colour with a white border (used for reference images and tests)."""
    im = Image.new("RGB", (width, height), (255, 255, 255))
    if width > 8 and height > 8:
        im.paste(pixel, (4, 4, width - 4, height - 4))
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()
