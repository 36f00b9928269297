"""Recognising the badge image by its bytes: reference PNGs in every encoding a copy may use."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from checks.badge import analyse_badge
from checks.badge_image import encode_png, image_signature
from checks.expected import Expected, UnitKind
from checks.page import Document, Page

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


def _emblem(colour: tuple[int, int, int], size: tuple[int, int] = (80, 80)) -> Image.Image:
    """A badge-like picture drawn with Pillow: a coloured emblem on white."""
    im = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(im)
    w, h = size
    draw.ellipse((6, 6, w - 6, h - 6), fill=colour)
    draw.rectangle((w // 2 - 6, 14, w // 2 + 6, h - 14), fill=(255, 255, 255))
    return im


def _encode(im: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "GIF":
        im.convert("P", palette=Image.Palette.ADAPTIVE, colors=32).save(out, format="GIF")
    elif fmt == "JPEG":
        im.save(out, format="JPEG", quality=75)
    else:
        im.save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "JPEG"])
@pytest.mark.parametrize(
    ("colour", "kind", "error"),
    [
        ((210, 16, 24), "党政机关", False),
        ((16, 70, 200), "事业单位", False),
        ((200, 160, 160), "党政机关", True),  # CONAC's greyed error image keeps a tint of its colour
        ((160, 172, 205), "事业单位", True),
    ],
)
def test_a_badge_copy_saved_in_any_format_tells_its_kind(
    fmt: str, colour: tuple[int, int, int], kind: str, error: bool
) -> None:
    """Real sites re-save the badge as GIF or JPEG: the colour is read whatever the encoding."""
    data = _encode(_emblem(colour), fmt)
    sig = image_signature(data)
    assert sig is not None and sig.format == fmt and (sig.width, sig.height) == (80, 80)
    assert (sig.kind, sig.error) == (kind, error)


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "JPEG"])
def test_other_sizes_and_colours_do_not_decide_in_any_format(fmt: str) -> None:
    assert image_signature(_encode(_emblem((210, 16, 24), size=(110, 40)), fmt)).kind is None  # type: ignore[union-attr]
    assert image_signature(_encode(_emblem((20, 160, 20)), fmt)).kind is None  # type: ignore[union-attr]


@pytest.mark.parametrize("fmt", ["GIF", "JPEG"])
def test_truncated_gif_and_jpeg_are_not_images(fmt: str) -> None:
    data = _encode(_emblem((210, 16, 24)), fmt)
    assert image_signature(data[: len(data) // 3]) is None


def test_an_oversized_gif_is_refused_unread() -> None:
    """The size is read from the header: a huge image is not decoded (no bomb through GIF either)."""
    data = _encode(Image.new("RGB", (2000, 2000), (210, 16, 24)), "GIF")
    assert image_signature(data) is None


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "JPEG"])
def test_the_badge_check_reads_the_kind_of_a_local_copy_in_any_format(fmt: str) -> None:
    """The site saved CONAC's blue badge under its own name (``a8f3c2.png``) and in another encoding;
    its alt text wrongly says 党政机关: the bytes decide (事业单位), whatever the format."""
    site = "http://www.bdsdyzxyy.com/"
    image_url = site + "uploads/2020/0412/a8f3c2.png"
    bszs_url = "http://bszs.conac.cn/sitename?method=show&id=0A1B2C3D4E5F60718293A4B5C6D7E8F9"
    with Image.open(RES / "blue.png") as im:
        copy = _encode(im.convert("RGB"), fmt)
    expected = Expected(UnitKind.INSTITUTION, unit_name="保定市第一中心医院", site_url=site)
    page = Page(url=site, body=(RES.parent / "local_copy_renamed.html").read_bytes())
    for _ in range(5):
        analysis = analyse_badge(page, expected)
        if not analysis.needs:
            break
        for need in analysis.needs:
            if need.url == image_url:
                page.images[image_url] = copy
            elif need.url == bszs_url:
                page.bszs[bszs_url] = Document.from_bytes(bszs_url, (RES / "bszs_blue.html").read_bytes(), "")
            else:
                page.mark_failed(need, "HTTP 404")
    verdict = analysis.verdict
    assert (str(verdict.status), verdict.reason) == ("pass", "badge.ok"), verdict.detail
    assert (verdict.data["kind"], verdict.data["kind_from"], verdict.data["shape"]) == (
        "事业单位", "image", "local_image_copy",
    )  # fmt: skip
    assert any(ev.source == f"image:{image_url}" and fmt in ev.excerpt for ev in verdict.evidence)
