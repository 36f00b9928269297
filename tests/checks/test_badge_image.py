"""Recognising the badge image by its bytes: reference PNGs in every encoding a copy may use."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from checks.badge_image import encode_png, image_signature

RES = Path(__file__).parent / "fixtures" / "badge" / "res"


@pytest.mark.parametrize(
    ("name", "kind", "error"),
    [
        ("red.png", "党政机关", False),  # RGBA, Sub/None filters
        ("blue.png", "事业单位", False),  # palette + tRNS
        ("red_error.png", "党政机关", True),  # greyed with a cross
        ("blue_error.png", "事业单位", True),
    ],
)
def test_reference_badges(name: str, kind: str, error: bool) -> None:
    sig = image_signature((RES / name).read_bytes())
    assert sig is not None and (sig.width, sig.height) == (80, 80)
    assert (sig.kind, sig.error) == (kind, error)


def test_simnet_badges_are_recognised_too() -> None:
    """A second, independently drawn set of CONAC images (simnet's) gives the same answers."""
    pngs = pytest.importorskip("simnet.pngs")
    for name, kind, error in (
        ("red", "党政机关", False),
        ("blue", "事业单位", False),
        ("red_error", "党政机关", True),
        ("blue_error", "事业单位", True),
    ):
        sig = image_signature(pngs.badge_png(name))
        assert sig is not None and (sig.kind, sig.error) == (kind, error), name


@pytest.mark.parametrize("name", ["dzjg_custom.png", "sydw_custom.png"])
def test_custom_footer_images_do_not_decide(name: str) -> None:
    """A 110×40 site-made picture is not a copy of the 80×80 badge: its colour is not evidence."""
    sig = image_signature((RES / name).read_bytes())
    assert sig is not None and sig.kind is None


def test_plain_rgb_encoder_and_other_colours() -> None:
    assert image_signature(encode_png(80, 80, (200, 20, 20))).kind == "党政机关"  # type: ignore[union-attr]
    assert image_signature(encode_png(80, 80, (20, 60, 200))).kind == "事业单位"  # type: ignore[union-attr]
    assert image_signature(encode_png(80, 80, (20, 160, 20))).kind is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a\x01\x00\x01\x00",
        b"\x89PNG\r\n\x1a\n",
        b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"\xff" * 13,  # absurd size: not decoded
        encode_png(80, 80, (200, 0, 0))[:60],  # truncated IDAT
    ],
)
def test_garbage_is_not_an_image(data: bytes) -> None:
    assert image_signature(data) is None


def test_decompression_bomb_is_bounded() -> None:
    """IDAT that inflates far beyond 80×80 is cut at the size the header announces."""
    import struct

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    bomb = zlib.compress(b"\x00" * 50_000_000, 9)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 80, 80, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", bomb)
        + chunk(b"IEND", b"")
    )
    sig = image_signature(data)
    assert sig is not None and sig.kind is None  # black pixels: decoded, bounded, undecided
