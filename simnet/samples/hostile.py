"""The hostile sample: servers that answer with whatever a broken, odd or malicious web server sends.

Every site of it is a compliant site (badge, ICP, 公安, 标识码 all right, as in ``generated``) whose server
wraps the page in hostile shapes drawn per site from a seeded generator and combined: broken status
lines, raw bytes / ``\\r`` / bare ``\\n`` / no colon / huge lines in headers, lying or conflicting
``Content-Length``, broken chunked framing, ``Content-Encoding`` over plain bytes, charsets that lie,
bodies of random bytes, NULs, broken multibyte sequences, deep nesting or huge lines, malformed
``Location`` / ``Refresh`` / meta refresh targets, redirect loops and chains to hosts that do not exist
or do not answer, answers cut mid-body, dripped slowly, or stalled. Some registry rows are awkward but
accepted by the import (Unicode hosts, explicit ports, query strings, Unicode or odd paths, IP hosts),
and each unit's Chinese domain is served by the same hostile server, by a redirect to the site, or by
a hostile answer of its own.

The sample exists for the crawler's fuzz test: whatever a server sends, the scan finishes and every
subject gets exactly one finding per check. The ground truth therefore says which checks each subject
must have (``checks``: check → null, no verdict predicted) and, per site, the shape drawn (``shape``),
what a browser would make of it (``effect``: ``page`` the complete page, ``damaged`` a page a visitor
sees incomplete or garbled, ``none`` no page at all) and ``fail_ok``: whether a ``fail`` of a page check
can be right. It can only when one of the shapes garbles or cuts the page as any client shows it and
the client can reach that page (the garbling may hide that the answer is no page either); a page check
that fails on the complete compliant page, or on an answer that is no page, accuses the site wrongly.

Site ``i`` is a pure function of ``(config, i)`` and is served from its names in constant memory by
the machinery of ``generated`` (a bounded cache of recently used sites).
"""

from __future__ import annotations

import gzip
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import idna

from simnet import scenarios as sc
from simnet.build import DEAD_ADDR, Built, SiteSpec, UnitSpec, build_site, cn_domain_for, unit_truth
from simnet.ident import INSTITUTION, PARTY, stable_int
from simnet.model import Action, DnsEntry, HostSite, Route
from simnet.output import RegistryWriter, TruthWriter, write_offices
from simnet.samples import Sample, today
from simnet.samples.baoding import TABLE, office_prefix, offices
from simnet.samples.generated import SERIAL_BASE, GenConfig, GeneratedUniverse

NET = "127.65"  # the sample's own loopback range: 127.65.0.0/16
SITE_CHECKS = ("http", "badge", "icp", "police", "site_code")
DOMAIN_CHECKS = ("dns", "domain", "usage")
UNIT_CHECKS = ("domain",)
# What a browser makes of an answer, from best to worst.
EFFECTS = ("page", "damaged", "none")


@dataclass
class HostileConfig:
    sites: int = 2000
    seed: int = 1
    addresses: int = 32  # loopback addresses the sites are spread over
    # Share of the drawn shapes that hang until the client gives up (each costs a crawler its timeout).
    stall_rate: float = 0.03

    def __post_init__(self) -> None:
        if not 1 <= self.sites <= 10_000_000:
            raise ValueError(f"sites must be between 1 and 10,000,000, not {self.sites}")
        if not 1 <= self.addresses <= 60_000:
            raise ValueError(f"addresses must be between 1 and 60,000, not {self.addresses}")


def address_of(cfg: HostileConfig, i: int) -> str:
    a = i % cfg.addresses
    return f"{NET}.{a // 250}.{a % 250 + 1}"


# --- the answer as bytes ------------------------------------------------------------------------------


@dataclass
class Wire:
    """One HTTP answer being assembled; mutators change it, :meth:`encode` writes it."""

    body: bytes
    status_line: bytes = b"HTTP/1.1 200 OK"
    headers: list[bytes] = field(default_factory=list)  # raw header lines, no line ending
    content_type: bytes | None = b"text/html; charset=utf-8"
    framing: str = "length"  # length | close | chunked | custom (the mutator wrote framing headers)
    eol: bytes = b"\r\n"
    chunked_body: bytes | None = None  # the framed body when a mutator wrote the chunks itself
    prefix: bytes = b""  # bytes before the status line
    whole: bytes | None = None  # the whole answer, replacing everything (an empty answer: b"")
    action: Action = Action.RAW
    delay_ms: int = 0
    piece: int = 0
    sent: int | None = None  # bytes of the encoded answer sent before stalling (None: all)
    effect: str = "page"
    damaged: bool = False
    labels: list[str] = field(default_factory=list)

    def worsen(self, effect: str) -> None:
        if EFFECTS.index(effect) > EFFECTS.index(self.effect):
            self.effect = effect
        if effect == "damaged":
            # The page as any client shows it is garbled or cut: a fail may be right, whatever else is
            # wrong with the answer (the damage may hide that it is no page).
            self.damaged = True

    def encode(self) -> bytes:
        if self.whole is not None:
            return self.whole
        lines = [self.status_line, b"Server: simnet-hostile"]
        if self.content_type is not None:
            lines.append(b"Content-Type: " + self.content_type)
        lines += self.headers
        body = self.body
        if self.framing == "length":
            lines.append(b"Content-Length: %d" % len(body))
        elif self.framing == "chunked":
            lines.append(b"Transfer-Encoding: chunked")
            body = self.chunked_body if self.chunked_body is not None else chunked(body)
        elif self.framing == "custom" and self.chunked_body is not None:
            body = self.chunked_body
        lines.append(b"Connection: close")
        return self.prefix + self.eol.join(lines) + self.eol + self.eol + body

    def route(self) -> Route:
        raw = self.encode()
        if self.sent is not None:
            return Route(body=raw[: self.sent], action=Action.STALL)
        if self.action is Action.DRIP:
            return Route(body=raw, action=Action.DRIP, delay_ms=self.delay_ms, stream_bytes=self.piece)
        return Route(body=raw, action=Action.RAW)


def chunked(body: bytes, size: int = 4096) -> bytes:
    out = b"".join(
        b"%x\r\n" % len(body[i : i + size]) + body[i : i + size] + b"\r\n" for i in range(0, len(body), size)
    )
    return out + b"0\r\n\r\n"


@dataclass
class Ctx:
    """What the mutators of one site know."""

    rng: random.Random
    host: str
    page: bytes  # the compliant page, UTF-8, declared by <meta charset="utf-8">


Mutator = Callable[[Wire, Ctx], None]
_META_UTF8 = b'<meta charset="utf-8">'


def _without_meta(page: bytes) -> bytes:
    return page.replace(_META_UTF8, b"", 1)


def _between(rng: random.Random, lo: int, hi: int) -> int:
    """A number in ``lo..hi-1`` (``lo`` when the range is empty: the body may be empty by now)."""
    return rng.randrange(lo, hi) if hi > lo else lo


def _footer_at(body: bytes) -> int:
    i = body.find(b'<div class="footer"')
    return i if i >= 0 else len(body) // 2


# Status lines. ``effect`` is what a browser makes of the answer.
def _status(line: bytes, effect: str, framing: str | None = None) -> Mutator:
    def m(w: Wire, _c: Ctx) -> None:
        w.status_line = line
        w.worsen(effect)
        if framing:
            w.framing = framing

    return m


def _status_nothing(w: Wire, _c: Ctx) -> None:
    w.whole = b""
    w.worsen("none")


def _status_garbage(w: Wire, c: Ctx) -> None:
    w.status_line = bytes(c.rng.randrange(33, 256) for _ in range(c.rng.randrange(4, 60)))
    w.worsen("none")


def _status_all_garbage(w: Wire, c: Ctx) -> None:
    w.whole = c.rng.randbytes(c.rng.randrange(1, 3000))
    w.worsen("none")


def _status_continue_first(w: Wire, _c: Ctx) -> None:
    # An interim 100 before the real answer: browsers skip it.
    w.prefix = b"HTTP/1.1 100 Continue\r\n\r\n"


def _status_blank_line_first(w: Wire, _c: Ctx) -> None:
    w.prefix = b"\r\n"  # browsers skip it


STATUS: dict[str, Mutator] = {
    "status.words": _status(b"HTTP/1.1 two hundred OK", "none"),
    "status.http10_close": _status(b"HTTP/1.0 200 OK", "page", framing="close"),
    "status.999": _status(b"HTTP/1.1 999 X", "none"),
    "status.no_reason": _status(b"HTTP/1.1 200", "page"),
    "status.http2": _status(b"HTTP/2 200", "none"),
    "status.lowercase": _status(b"http/1.1 200 ok", "page"),
    "status.zero": _status(b"HTTP/1.1 0 Zero", "none"),
    "status.negative": _status(b"HTTP/1.1 -200 OK", "none"),
    "status.huge": _status(b"HTTP/1.1 20000000000000000000 OK", "none"),
    "status.two_digit": _status(b"HTTP/1.1 20 OK", "none"),
    "status.204_with_body": _status(b"HTTP/1.1 204 No Content", "none"),
    "status.304_with_body": _status(b"HTTP/1.1 304 Not Modified", "none"),
    "status.double_space": _status(b"HTTP/1.1  200 OK", "none"),
    "status.icy": _status(b"ICY 200 OK", "none"),
    "status.version_junk": _status(b"HTTP/x.y 200 OK", "none"),
    "status.reason_bytes": _status(b"HTTP/1.1 200 \xb3\xc9\xb9\xa6\x00\x7f", "page"),
    "status.garbage": _status_garbage,
    "status.all_garbage": _status_all_garbage,
    "status.nothing": _status_nothing,
    "status.continue_first": _status_continue_first,
    "status.blank_line_first": _status_blank_line_first,
}


# Headers (several may be drawn).
def _header(line: bytes, effect: str = "page") -> Mutator:
    def m(w: Wire, _c: Ctx) -> None:
        w.headers.append(line)
        w.worsen(effect)

    return m


def _hdr_big(w: Wire, c: Ctx) -> None:
    # A long policy or cookie header: browsers read header sections up to 256 KiB.
    w.headers.append(
        b"Content-Security-Policy: default-src 'self' " + b"x.gov.cn " * c.rng.randrange(2_000, 6_000)
    )


def _hdr_huge(w: Wire, c: Ctx) -> None:
    w.headers.append(b"X-Padding: " + b"a" * c.rng.randrange(300_000, 600_000))
    w.worsen("none")  # browsers refuse header sections this large


def _hdr_many(w: Wire, c: Ctx) -> None:
    w.headers += [b"X-H%d: %d" % (n, n) for n in range(c.rng.randrange(300, 3000))]


def _hdr_bare_lf(w: Wire, _c: Ctx) -> None:
    w.eol = b"\n"


def _hdr_fold(w: Wire, _c: Ctx) -> None:
    w.headers += [b"X-Folded: first part", b"\tsecond part", b"  third part"]


def _hdr_refresh(target: bytes) -> Mutator:
    def m(w: Wire, _c: Ctx) -> None:
        w.headers.append(b"Refresh: " + target)

    return m


HEADERS: dict[str, Mutator] = {
    "header.raw_gbk_bytes": _header("X-Powered-By: 政务云平台".encode("gbk")),
    "header.raw_utf8_bytes": _header("Server-Name: 门户网站 ©".encode()),
    "header.raw_high_bytes": _header(b"X-Trace: \xff\xfe\x80\x81"),
    "header.cr_inside": _header(b"X-Note: first\rsecond"),
    "header.nul_inside": _header(b"X-Nul: a\x00b", "none"),  # Chromium refuses the answer
    # Lines browsers skip.
    "header.no_colon": _header(b"This line is not a header"),
    "header.empty_name": _header(b": no name"),
    "header.space_in_name": _header(b"Bad Name: value"),
    "header.non_ascii_name": _header("标题: 值".encode()),
    "header.big_line": _hdr_big,
    "header.huge_line": _hdr_huge,
    "header.many": _hdr_many,
    "header.bare_lf": _hdr_bare_lf,
    "header.folded": _hdr_fold,
    "header.location_on_200": _header(b"Location: http://[broken"),
    "header.cookie_junk": _header(b"Set-Cookie: \x01\x02=\xff; Path=/; Expires=never"),
    "header.refresh_junk": _hdr_refresh(b"abc;;;url"),
    "header.refresh_javascript": _hdr_refresh(b"0; url=javascript:alert(1)"),
    "header.refresh_bad_url": _hdr_refresh(b"0; url=http://[x"),
    "header.refresh_huge_delay": _hdr_refresh(b"99999999999999999999999; url=/"),
    "header.refresh_self": _hdr_refresh(b"0; url=/"),
    "header.content_location_junk": _header(b"Content-Location: \x00://\xff"),
}


# Framing: Content-Length and Transfer-Encoding.
def _cl(values: list[bytes], effect: str) -> Mutator:
    def m(w: Wire, _c: Ctx) -> None:
        w.framing = "custom"
        w.headers += [b"Content-Length: " + v.replace(b"N", b"%d" % len(w.body)) for v in values]
        w.worsen(effect)

    return m


def _cl_long(w: Wire, c: Ctx) -> None:
    # Content-Length promises more than is sent, then the connection closes: an answer cut mid-body.
    w.framing = "custom"
    cut = _between(c.rng, len(w.body) // 3, len(w.body))
    w.headers.append(b"Content-Length: %d" % len(w.body))
    w.chunked_body = w.body[:cut]
    w.worsen("none")  # a transfer that failed, not what the site shows


def _cl_short(w: Wire, c: Ctx) -> None:
    # Content-Length smaller than the page: a browser shows the start of the page only.
    w.framing = "custom"
    w.headers.append(b"Content-Length: %d" % _between(c.rng, len(w.body) // 4, _footer_at(w.body)))
    w.worsen("damaged")


def _chunk_broken_size(w: Wire, c: Ctx) -> None:
    w.framing = "chunked"
    first = w.body[:1000]
    size = c.rng.choice([b"zz", b"-5", b"0x10", b"", b"1 2", b"ffffffffffffffffffff"])
    w.chunked_body = (
        b"%x\r\n" % len(first) + first + b"\r\n" + size + b"\r\n" + w.body[1000:] + b"\r\n0\r\n\r\n"
    )
    w.worsen("none")


def _chunk_no_end(w: Wire, _c: Ctx) -> None:
    w.framing = "chunked"
    w.chunked_body = chunked(w.body)[: -len(b"0\r\n\r\n")]
    w.worsen("none")


def _chunk_lying_size(w: Wire, c: Ctx) -> None:
    # Chunk sizes that do not match their data.
    w.framing = "chunked"
    w.chunked_body = b"%x\r\n" % (len(w.body) + c.rng.randrange(1, 500)) + w.body + b"\r\n0\r\n\r\n"
    w.worsen("none")


def _chunk_extensions(w: Wire, _c: Ctx) -> None:
    # Valid, rarely seen: chunk extensions and a trailer.
    w.framing = "chunked"
    body = w.body
    w.chunked_body = b"%x;name=value\r\n" % len(body) + body + b"\r\n0\r\nX-Trailer: yes\r\n\r\n"


def _chunk_and_length(w: Wire, _c: Ctx) -> None:
    # Both: Transfer-Encoding wins (RFC 9112 6.3), the Content-Length is wrong.
    w.framing = "chunked"
    w.headers.append(b"Content-Length: 5")


def _te_unknown(w: Wire, _c: Ctx) -> None:
    w.framing = "custom"
    w.headers.append(b"Transfer-Encoding: gzip, chunked")
    w.chunked_body = chunked(w.body)
    w.worsen("none")


FRAMING: dict[str, Mutator] = {
    "framing.cl_conflict": _cl([b"N", b"12"], "none"),
    "framing.cl_duplicate_same": _cl([b"N", b"N"], "page"),
    "framing.cl_list": _cl([b"N, N"], "page"),
    "framing.cl_negative": _cl([b"-5"], "none"),
    "framing.cl_non_numeric": _cl([b"abc"], "none"),
    "framing.cl_plus": _cl([b"+N"], "none"),
    "framing.cl_huge": _cl([b"99999999999999999999999"], "none"),
    "framing.cl_long_cut": _cl_long,
    "framing.cl_short": _cl_short,
    "framing.close_delimited": lambda w, _c: setattr(w, "framing", "close"),
    "framing.chunk_broken_size": _chunk_broken_size,
    "framing.chunk_no_end": _chunk_no_end,
    "framing.chunk_lying_size": _chunk_lying_size,
    "framing.chunk_extensions": _chunk_extensions,
    "framing.chunk_and_length": _chunk_and_length,
    "framing.te_unknown": _te_unknown,
}


# Encodings: Content-Encoding and charsets.
def _ce(name: bytes) -> Mutator:
    def m(w: Wire, _c: Ctx) -> None:
        w.headers.append(b"Content-Encoding: " + name)  # over the plain page
        w.worsen("none")  # browsers show a decoding error

    return m


def _ce_gzip_truncated(w: Wire, c: Ctx) -> None:
    z = gzip.compress(w.body)
    w.body = z[: _between(c.rng, 20, len(z) - 8)]
    w.headers.append(b"Content-Encoding: gzip")
    w.worsen("none")


def _ce_gzip_ok_double_header(w: Wire, _c: Ctx) -> None:
    w.body = gzip.compress(w.body)
    w.headers += [b"Content-Encoding: gzip", b"Content-Encoding: identity"]  # identity: no coding


def _ce_unknown(w: Wire, _c: Ctx) -> None:
    w.headers.append(b"Content-Encoding: x-foo")  # over the plain page: read as it is, or refused


def _charset(ct: bytes, encoding: str, meta: bytes | None, effect: str) -> Mutator:
    """The page re-encoded in ``encoding``, declared by header ``ct`` and meta ``meta`` (None: none)."""

    def m(w: Wire, c: Ctx) -> None:
        page = _without_meta(c.page).decode("utf-8")
        body = page.encode(encoding, "xmlcharrefreplace")
        if meta is not None:
            body = body.replace(b"<head>", b"<head>\n" + meta, 1) if encoding[:6] != "utf-16" else body
        w.body = body
        w.content_type = ct
        w.worsen(effect)

    return m


def _utf16_bom(w: Wire, c: Ctx) -> None:
    w.body = b"\xff\xfe" + _without_meta(c.page).decode("utf-8").encode("utf-16-le")
    w.content_type = b"text/html; charset=utf-16"


def _not_html(ct: bytes) -> Mutator:
    def m(w: Wire, _c: Ctx) -> None:
        w.content_type = ct
        w.worsen("none")  # a browser offers a download or shows an image: no page

    return m


CHARSETS: dict[str, Mutator] = {
    "encoding.gzip_over_plain": _ce(b"gzip"),
    "encoding.deflate_over_plain": _ce(b"deflate"),
    "encoding.br_over_plain": _ce(b"br"),
    "encoding.gzip_truncated": _ce_gzip_truncated,
    "encoding.gzip_then_identity": _ce_gzip_ok_double_header,
    "encoding.unknown_coding": _ce_unknown,
    "charset.utf16_over_gbk": _charset(b"text/html; charset=utf-16", "gbk", None, "damaged"),
    "charset.unknown_label": _charset(b"text/html; charset=x-foo", "utf-8", _META_UTF8, "page"),
    "charset.unknown_label_gbk": _charset(
        b"text/html; charset=x-foo",
        "gbk",
        b'<meta http-equiv="Content-Type" content="text/html; charset=gbk">',
        "page",
    ),
    "charset.empty_label": _charset(b"text/html; charset=", "utf-8", _META_UTF8, "page"),
    "charset.unclosed_quote": _charset(b'text/html; charset="utf-8', "utf-8", _META_UTF8, "page"),
    "charset.utf8_declared_gbk_sent": _charset(b"text/html; charset=utf-8", "gbk", None, "damaged"),
    "charset.meta_x_foo": _charset(b"text/html", "utf-8", b'<meta charset="x-foo">', "damaged"),
    "charset.utf16_with_bom": _utf16_bom,
    "charset.xml_decl_lie": lambda w, c: setattr(
        w, "body", b'<?xml version="1.0" encoding="utf-16"?>\n' + c.page
    ),
    "charset.no_content_type": lambda w, _c: setattr(w, "content_type", None),
    "charset.octet_stream": _not_html(b"application/octet-stream"),
    "charset.image_type": _not_html(b"image/png"),
    "charset.two_content_types": lambda w, _c: w.headers.append(b"Content-Type: application/json"),
}


# Bodies.
def _insert_before_footer(w: Wire, junk: bytes) -> None:
    at = _footer_at(w.body)
    w.body = w.body[:at] + junk + w.body[at:]


def _body_random(w: Wire, c: Ctx) -> None:
    w.body = c.rng.randbytes(c.rng.randrange(1, 20_000))
    w.worsen("none")


def _body_nuls_sprinkled(w: Wire, c: Ctx) -> None:
    data = bytearray(w.body)
    for _ in range(c.rng.randrange(1, 40)):
        at = _between(c.rng, 0, len(data))
        if at < len(data) and data[at] in b" \n>":  # between tokens and characters: the page reads the same
            data[at : at + 1] = bytes(data[at : at + 1]) + b"\x00"
    w.body = bytes(data)  # browsers render NULs as nothing


def _body_all_nul(w: Wire, c: Ctx) -> None:
    w.body = b"\x00" * c.rng.randrange(1, 50_000)
    w.worsen("none")


def _body_broken_multibyte(w: Wire, c: Ctx) -> None:
    # Truncated UTF-8 sequences between elements: browsers show U+FFFD there.
    _insert_before_footer(w, b"<p>\xe6\x94\xbf\xe5</p><p>\xe5\x8a</p><p>\xf0\x9f\x98</p>\n")


def _body_cut_multibyte_end(w: Wire, _c: Ctx) -> None:
    w.body = w.body + "网站".encode()[:4]


def _body_deep_nesting(w: Wire, c: Ctx) -> None:
    depth = c.rng.randrange(300, 20_000)
    _insert_before_footer(w, b"<div>" * depth + b"deep" + b"</div>" * depth)


def _body_deep_unclosed(w: Wire, c: Ctx) -> None:
    w.body = w.body.replace(b"</html>", b"<span>" * c.rng.randrange(1000, 50_000) + b"</html>")


def _body_huge_line(w: Wire, c: Ctx) -> None:
    _insert_before_footer(w, b"<p>" + b"x" * c.rng.randrange(100_000, 600_000) + b"</p>")


def _body_huge_attribute(w: Wire, c: Ctx) -> None:
    _insert_before_footer(w, b'<div title="' + b"y" * c.rng.randrange(100_000, 500_000) + b'"></div>')


def _body_empty(w: Wire, _c: Ctx) -> None:
    w.body = b""
    w.worsen("none")


def _body_png(w: Wire, c: Ctx) -> None:
    w.body = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + c.rng.randbytes(2000)
    w.worsen("none")


def _body_utf16_bom_over_utf8(w: Wire, _c: Ctx) -> None:
    w.body = b"\xff\xfe" + w.body
    w.worsen("damaged")


def _body_control_chars(w: Wire, _c: Ctx) -> None:
    _insert_before_footer(w, bytes(range(1, 32)) + b"\x7f")


def _body_unclosed_script(w: Wire, _c: Ctx) -> None:
    # An unterminated script at the end: the page above it is intact.
    w.body = w.body.replace(b"</body>", b"<script>var x = '</body>", 1)


def _body_bad_entities(w: Wire, _c: Ctx) -> None:
    _insert_before_footer(w, b"<p>&#0; &#xD800; &#99999999999; &#x110000; &bogus; &</p>")


def _body_xml_junk(w: Wire, _c: Ctx) -> None:
    w.body = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "' + b"A" * 1000 + b'">]>' + w.body


def _body_only_stub(target: bytes) -> Mutator:
    def m(w: Wire, _c: Ctx) -> None:
        w.body = (
            b'<html><head><meta http-equiv="refresh" content="' + target + b'"></head><body></body></html>'
        )
        w.worsen("none")

    return m


BODIES: dict[str, Mutator] = {
    "body.random_bytes": _body_random,
    "body.nuls_sprinkled": _body_nuls_sprinkled,
    "body.all_nul": _body_all_nul,
    "body.broken_multibyte": _body_broken_multibyte,
    "body.cut_multibyte_end": _body_cut_multibyte_end,
    "body.deep_nesting": _body_deep_nesting,
    "body.deep_unclosed": _body_deep_unclosed,
    "body.huge_line": _body_huge_line,
    "body.huge_attribute": _body_huge_attribute,
    "body.empty": _body_empty,
    "body.png": _body_png,
    "body.utf16_bom_over_utf8": _body_utf16_bom_over_utf8,
    "body.control_chars": _body_control_chars,
    "body.unclosed_script": _body_unclosed_script,
    "body.bad_entities": _body_bad_entities,
    "body.xml_junk": _body_xml_junk,
    "body.meta_refresh_javascript": _body_only_stub(b"0;url=javascript:alert(1)"),
    "body.meta_refresh_bad_url": _body_only_stub(b"0;url=http://[x"),
    "body.meta_refresh_garbage": _body_only_stub(b";;;\x01garbage"),
    "body.meta_refresh_ftp": _body_only_stub(b"0; URL='ftp://ftp.example.gov.cn/'"),
}


# Delivery.
def _drip(w: Wire, c: Ctx) -> None:
    # Within the crawler's timeout: ~1 s in all.
    w.action = Action.DRIP
    w.piece = c.rng.choice([256, 1024, 4096])
    w.delay_ms = c.rng.randrange(5, 40)
    raw = len(w.encode())
    pieces = max(1, raw // w.piece)
    if pieces * w.delay_ms > 1200:
        w.piece = raw // max(1, 1200 // w.delay_ms) + 1


def _drip_too_slow(w: Wire, c: Ctx) -> None:
    w.action = Action.DRIP
    w.piece = 64
    w.delay_ms = 1000  # beyond any sane timeout for a page of a few kB
    w.worsen("none")


def _stall(where: str) -> Mutator:
    def m(w: Wire, c: Ctx) -> None:
        raw = w.encode()
        head = raw.find(b"\r\n\r\n")
        head = head + 4 if head >= 0 else len(raw) // 2
        w.sent = {"status": raw.find(b"\n") + 1, "headers": head, "body": (head + len(raw)) // 2}[where]
        w.worsen("none")

    return m


DELIVERY: dict[str, Mutator] = {
    "delivery.drip": _drip,
    "delivery.drip_too_slow": _drip_too_slow,
    "delivery.stall_after_status": _stall("status"),
    "delivery.stall_after_headers": _stall("headers"),
    "delivery.stall_mid_body": _stall("body"),
}
SLOW = frozenset(
    {
        "delivery.drip_too_slow",
        "delivery.stall_after_status",
        "delivery.stall_after_headers",
        "delivery.stall_mid_body",
    }
)

# Mutator families, applied in this order (encodings re-encode the page; bodies insert into it; framing
# and status wrap it; delivery sends it).
FAMILIES: tuple[tuple[str, dict[str, Mutator]], ...] = (
    ("charset", CHARSETS),
    ("body", BODIES),
    ("header", HEADERS),
    ("framing", FRAMING),
    ("status", STATUS),
    ("delivery", DELIVERY),
)


def hostile_answer(cfg: HostileConfig, ctx: Ctx) -> Wire:
    """1 to 3 mutators from distinct families (headers may stack), applied to the compliant page."""
    rng = ctx.rng
    families = [f for f, _ in FAMILIES]
    n = rng.choice((1, 1, 2, 2, 3))
    chosen = set(rng.sample(families, n))
    w = Wire(body=ctx.page)
    for family, table in FAMILIES:
        if family not in chosen:
            continue
        names = sorted(table)
        if family == "delivery":
            slow = rng.random() < cfg.stall_rate * 5  # delivery is one family of six
            names = [x for x in names if (x in SLOW) == slow] or names
        picks = [rng.choice(names)]
        if family == "header" and rng.random() < 0.3:
            picks.append(rng.choice(names))
        for name in picks:
            table[name](w, ctx)
            w.labels.append(name)
    return w


# --- redirects ----------------------------------------------------------------------------------------


def _redirect_raw(location: bytes | None, status: bytes = b"302 Found", extra: bytes = b"") -> Route:
    loc = b"" if location is None else b"Location: " + location + b"\r\n"
    body = b"<html><body>moved</body></html>"
    raw = (
        b"HTTP/1.1 " + status + b"\r\n" + loc + extra + b"Content-Type: text/html\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    ) + body
    return Route(body=raw, action=Action.RAW)


BAD_LOCATIONS: dict[str, Callable[[str, int], bytes]] = {
    "location.bracket": lambda h, i: b"http://[x",
    "location.no_host": lambda h, i: b"http:///",
    "location.javascript": lambda h, i: b"javascript:alert(1)",
    "location.ftp": lambda h, i: f"ftp://ftp.{h}/pub/".encode(),
    "location.slashes_only": lambda h, i: b"//",
    "location.data": lambda h, i: b"data:text/html,<h1>hi</h1>",
    "location.file": lambda h, i: b"file:///etc/passwd",
    "location.mailto": lambda h, i: b"mailto:webmaster@example.gov.cn",
    "location.bad_port": lambda h, i: f"http://{h}:99999/".encode(),
    "location.bad_percent_host": lambda h, i: b"http://%zz%/",
    "location.empty_label": lambda h, i: b"http://xn--/",
    "location.link_local": lambda h, i: b"http://169.254.169.254/latest/meta-data/",
    "location.nul": lambda h, i: b"/p/\x00index.html",
    "location.newline_tail": lambda h, i: b"/p/index.html\n",
    "location.control_bytes": lambda h, i: b"/\x01\x02\x7f/",
}
# Locations that lead somewhere a browser can go: the page is served there.
GOOD_ODD_LOCATIONS: dict[str, Callable[[str, int], bytes]] = {
    "location.long_url": lambda h, i: f"http://{h}/{'a' * 5000}/index.html".encode(),
    "location.raw_utf8": lambda h, i: "/首页/index.html".encode(),
    "location.spaces": lambda h, i: b"/new page/index.html",
    "location.tab": lambda h, i: b"/p/in\tdex.html",
    "location.backslashes": lambda h, i: b"\\p\\index.html",
    "location.relative_dots": lambda h, i: b"../../p/./index.html",
    "location.query_only": lambda h, i: b"?from=%E9%A6%96%E9%A1%B5&x=<script>",
}


def redirect_plan(
    i: int, host: str, rng: random.Random, effect: str
) -> tuple[dict[str, Route], str, str, bool]:
    """Routes for a host whose "/" redirects: (routes, plan label, effect, whether a client can reach
    the page by following it). Every other path of the host serves its hostile answer (``effect``)."""
    plans = [
        "bad_location",
        "odd_location",
        "loop",
        "long_chain",
        "nxdomain",
        "dead_host",
        "hang_host",
        "no_location",
        "two_locations",
        "empty_location",
        "redirect_ok",
        "redirect_status_odd",
    ]
    plan = rng.choice(plans)
    routes: dict[str, Route] = {}
    if plan == "bad_location":
        label, make = rng.choice(sorted(BAD_LOCATIONS.items()))
        routes["/"] = _redirect_raw(make(host, i))
        return routes, label, "none", False
    if plan == "odd_location":
        label, make = rng.choice(sorted(GOOD_ODD_LOCATIONS.items()))
        routes["/"] = _redirect_raw(make(host, i))
        return routes, label, effect, True  # every other path serves the answer
    if plan == "loop":
        kind = rng.choice(["self", "pair", "case"])
        if kind == "self":
            routes["/"] = _redirect_raw(b"/")
        elif kind == "pair":
            routes["/"] = _redirect_raw(b"/a/")
            routes["/a/"] = _redirect_raw(f"http://{host}/".encode())
        else:
            routes["/"] = _redirect_raw(b"/Home/")
            routes["/Home/"] = _redirect_raw(b"/home/")
            routes["/home/"] = _redirect_raw(b"/")
        return routes, f"redirect.loop_{kind}", "none", False
    if plan == "long_chain":
        n = rng.randrange(11, 16)
        for k in range(n):
            routes["/" if k == 0 else f"/r{k}/"] = _redirect_raw(f"/r{k + 1}/".encode())
        return routes, "redirect.long_chain", "none", False
    if plan == "nxdomain":
        routes["/"] = _redirect_raw(f"http://nx{i}.hostile-nx.gov.cn/".encode())
        return routes, "redirect.nxdomain", "none", False
    if plan == "dead_host":
        routes["/"] = _redirect_raw(f"http://dead{i}.hostile.gov.cn/".encode())
        return routes, "redirect.dead_host", "none", False
    if plan == "hang_host":
        routes["/"] = _redirect_raw(f"http://hang{i}.hostile.gov.cn/".encode())
        return routes, "redirect.hang_host", "none", False
    if plan == "no_location":
        routes["/"] = _redirect_raw(None, b"301 Moved Permanently")
        return routes, "redirect.no_location", "none", False
    if plan == "two_locations":
        # Browsers refuse the answer; a client that joins the two values gets to the page (any path
        # serves it) and may read it as damaged as it is.
        routes["/"] = _redirect_raw(b"/p/index.html", extra=b"Location: http://[x\r\n")
        return routes, "redirect.two_locations", "none", True
    if plan == "empty_location":
        routes["/"] = _redirect_raw(b"")
        return routes, "redirect.empty_location", "none", False
    if plan == "redirect_status_odd":
        status = rng.choice([b"399 Odd", b"300 Multiple Choices", b"305 Use Proxy", b"306 Unused"])
        routes["/"] = _redirect_raw(b"/p/index.html", status)
        return routes, "redirect.status_" + status.split(b" ")[0].decode(), "none", False
    routes["/"] = _redirect_raw(b"/p/index.html")
    return routes, "redirect.ok", effect, True


class _Fallback(dict[str, Route]):
    """Routes of a hostile host: what it was given, and its answer for every other path (servers that
    answer anything, as many CMS front controllers do)."""

    def __init__(self, routes: dict[str, Route], fallback: Route) -> None:
        super().__init__(routes)
        self.fallback = fallback

    def get(self, key: str, default: Route | None = None) -> Route | None:  # type: ignore[override]
        found = super().get(key)
        return found if found is not None else self.fallback


# --- registry rows the import accepts but that are awkward --------------------------------------------

AWKWARD: dict[str, Callable[[str, int, str], str]] = {
    "url.query_unicode": lambda h, i, a: f"http://{h}/portal/index.jsp?lang=中文&id={i}&x=a%20b",
    "url.unicode_path": lambda h, i, a: f"http://{h}/首页/网站{i}/",
    "url.percent_path": lambda h, i, a: f"http://{h}/%E9%A6%96%E9%A1%B5/{i}/",
    "url.bad_percent": lambda h, i, a: f"http://{h}/a%zz{i}/",
    "url.uppercase": lambda h, i, a: f"HTTP://{h.upper()}/Index{i}.HTML",
    "url.fullwidth": lambda h, i, a: f"http：//{h.replace('.', '。')}／",
    "url.no_scheme": lambda h, i, a: f"{h}/s{i}/",
    "url.protocol_relative": lambda h, i, a: f"//{h}/p{i}/",
    "url.trailing_dot_default_port": lambda h, i, a: f"http://{h}.:80/t{i}/",
    "url.userinfo": lambda h, i, a: f"http://user:pass@{h}/u{i}/",
    "url.fragment": lambda h, i, a: f"http://{h}/f{i}/#top",
    "url.spaces": lambda h, i, a: f" http://{h}/ s{i} / ",
    "url.http_on_https_port": lambda h, i, a: f"http://{h}:443/",
    "url.closed_port": lambda h, i, a: f"http://{h}:9/",
    "url.ip_host": lambda h, i, a: f"http://{a}/h{i}/",
    "url.https_scheme_upper": lambda h, i, a: f"HTTPS://{h}/",
}


# Addresses that reach no page of the site: its address is not its host name (the farm answers 404),
# plain HTTP to the TLS port, a port where nothing listens.
NO_PAGE_URLS = frozenset({"url.ip_host", "url.http_on_https_port", "url.closed_port"})
HTTPS_URLS = frozenset({"url.https_scheme_upper"})


# --- one site -------------------------------------------------------------------------------------------


def site_spec(cfg: HostileConfig, i: int, on_cn: bool, https: bool = False) -> SiteSpec:
    row = TABLE[i % len(TABLE)]
    kind = PARTY if stable_int(cfg.seed, i, "kind") % 3 else INSTITUTION
    unit = UnitSpec(f"{office_prefix(row)}抽检单位{i}", kind, row.code, SERIAL_BASE + i)
    d = cn_domain_for(unit, "ok", today())
    tld = ".gov.cn" if kind == PARTY else ".cn"
    return SiteSpec(
        key=f"hostile-{i}",
        unit=unit,
        scenario=sc.Scenario(
            "compliant.party" if kind == PARTY else "compliant.institution",
            kind=kind,
            site_on_cn=on_cn,
            https=https,
            # An https page loads the badge script over https: over http it would be mixed content.
            badge="embed_https" if https else "embed_http",
        ),
        site_name=f"{unit.name}网站",
        en_host="" if on_cn else f"www.h{i}{tld}",
        domains=[d],
        address=address_of(cfg, i),
        serial=SERIAL_BASE + i,
        badge_prefix=("05", "106", f"{i % len(TABLE):04d}"),
    )


def build_hostile(cfg: HostileConfig, i: int) -> Built:
    """Site ``i``: its compliant build, its servers replaced by hostile ones, and its ground truth."""
    rng = random.Random(stable_int(cfg.seed, i, "hostile"))
    has_site = rng.random() >= 0.03  # a few units hold only their Chinese domain
    awkward = rng.choice(sorted(AWKWARD)) if has_site and rng.random() < 0.12 else ""
    on_cn = has_site and (awkward == "" and rng.random() < 0.05)
    spec = site_spec(cfg, i, on_cn, https=awkward in HTTPS_URLS)
    b = build_site(spec, today())
    cn = spec.domains[0]
    cn_ascii = cn.ascii or ""
    site_host = cn_ascii if on_cn else spec.en_host
    page_route = next(h for h in b.hosts if h.host == (spec.en_host or cn_ascii)).routes["/"]
    ctx = Ctx(rng, site_host, page_route.body)
    wire = hostile_answer(cfg, ctx)
    answer = wire.route()
    shape = list(wire.labels)
    effect = wire.effect
    routes: dict[str, Route] = {}
    plan = "direct"
    reaches = awkward not in NO_PAGE_URLS
    if not awkward and rng.random() < 0.25:
        routes, plan, effect, reaches = redirect_plan(i, site_host, rng, effect)
    served = HostSite(site_host, spec.address, _Fallback(routes, answer))

    # The Chinese domain: the same server, a redirect to the site, or a hostile answer of its own.
    cn_mode = "site" if on_cn else rng.choice(["same", "same", "redirect", "redirect", "own"])
    cn_shape: list[str] = []
    cn_host: HostSite | None = None
    if cn_mode == "same":
        cn_host = HostSite(cn_ascii, spec.address, _Fallback(routes, answer))
    elif cn_mode == "redirect":
        cn_host = HostSite(cn_ascii, spec.address, {"/": _redirect_raw(f"http://{site_host}/".encode())})
    elif cn_mode == "own":
        own_ctx = Ctx(random.Random(stable_int(cfg.seed, i, "cn")), cn_ascii, ctx.page)
        own = hostile_answer(cfg, own_ctx)
        cn_shape = own.labels
        own_routes: dict[str, Route] = {}
        if own_ctx.rng.random() < 0.4:
            own_routes, label, _effect, _reaches = redirect_plan(i, cn_ascii, own_ctx.rng, own.effect)
            cn_shape = [*cn_shape, label]
        cn_host = HostSite(cn_ascii, spec.address, _Fallback(own_routes, own.route()))

    hosts: list[HostSite] = [h for h in b.hosts if h.host not in (site_host, cn_ascii)]  # CONAC pages
    dns = [e for e in b.dns if e.name in (site_host, cn_ascii)]
    if has_site:
        hosts.append(served)
    if cn_host is not None and cn_host.host != site_host:
        hosts.append(cn_host)
    if not any(e.name == cn_ascii for e in dns):
        dns.append(DnsEntry(cn_ascii, a=[spec.address]))
    # Where the redirects lead.
    dns += [
        DnsEntry(f"dead{i}.hostile.gov.cn", a=[DEAD_ADDR]),
        DnsEntry(f"hang{i}.hostile.gov.cn", a=[spec.address]),
    ]
    hosts.append(HostSite(f"hang{i}.hostile.gov.cn", spec.address, default=Route(action=Action.HANG)))

    out = Built(dns=dns, hosts=hosts)
    row = dict(b.rows[0])
    url = row["网站地址"]
    if awkward:
        url = AWKWARD[awkward](site_host, i, spec.address)
        row["网站地址"] = url
        if awkward in NO_PAGE_URLS:
            effect = "none"
    if not has_site:
        for k in (
            "英文域名",
            "网站名称",
            "网站地址",
            "ICP备案号",
            "公安备案号",
            "政府网站标识码",
            "政府网站",
            "网站标识代码",
            "标识状态",
        ):
            row[k] = ""
    out.rows.append(row)
    unit = unit_truth(spec.key, spec.unit, spec.domains)
    unit["checks"] = dict.fromkeys(UNIT_CHECKS)
    out.units.append(unit)
    if has_site:
        out.sites.append(
            {
                "id": spec.key,
                "unit": {
                    "name": spec.unit.name,
                    "kind": spec.unit.kind,
                    "uscc": spec.unit.uscc,
                    "office_code": spec.unit.office_code,
                },
                "url": url,
                "awkward": awkward,
                "host": site_host,
                "address": spec.address,
                "plan": plan,
                "shape": shape,
                "effect": effect,
                "fail_ok": wire.damaged and reaches,
                "checks": dict.fromkeys(SITE_CHECKS),
            }
        )
    names = [cn.name] + ([spec.en_host] if spec.en_host and has_site else [])
    for name in names:
        english = name == spec.en_host
        out.domains.append(
            {
                "domain": name,
                "ascii": name if english else cn_ascii,
                "kind": "english" if english else (".政务" if spec.unit.kind == PARTY else ".公益"),
                "unit": spec.unit.name,
                "uscc": spec.unit.uscc,
                "site_id": spec.key if has_site else None,
                "served": "site" if english else cn_mode,
                "shape": shape if english or cn_mode in ("same", "site") else cn_shape,
                "checks": dict.fromkeys(DOMAIN_CHECKS),
            }
        )
    return out


# --- serving from names --------------------------------------------------------------------------------

_PATTERNS = (re.compile(r"^(?:www\.h|hang|dead|nx)(\d+)\."),)
_CN = re.compile(r"抽检单位(\d+)")


class HostileUniverse(GeneratedUniverse):
    """The hostile sites, rebuilt from any of their names (and the CONAC pages of their badges)."""

    def __init__(self, cfg: HostileConfig) -> None:
        self.hostile = cfg
        super().__init__(GenConfig(sites=cfg.sites, seed=cfg.seed, failure_rate=0, addresses=cfg.addresses))

    def build(self, i: int) -> Built:
        return build_hostile(self.hostile, i)

    def addresses(self) -> list[str]:
        own = [address_of(self.hostile, a) for a in range(min(self.hostile.addresses, self.hostile.sites))]
        # The parent's list: its own site addresses (unused here), then the infrastructure's.
        infra = super().addresses()[min(self.cfg.addresses, self.cfg.sites) :]
        return [*own, *infra]

    def index_of(self, name: str) -> int | None:
        for pattern in _PATTERNS:
            m = pattern.match(name)
            if m:
                return int(m.group(1))
        if "xn--" in name:
            try:
                m2 = _CN.search(idna.decode(name))
            except idna.IDNAError:
                return None
            if m2:
                return int(m2.group(1))
        return super().index_of(name)


def load_hostile(workdir: Path, cfg: HostileConfig) -> Sample:
    """Stream the registry and ground truth of ``cfg`` into ``workdir``; serve it from names."""
    workdir.mkdir(parents=True, exist_ok=True)
    name = f"hostile-{cfg.sites}"
    reg = RegistryWriter(workdir / f"{name}-registry.csv")
    meta: dict[str, Any] = {
        "sample": "hostile",
        "as_of": today().isoformat(),
        "red_page_hosts": ["hy.conac.cn"],
        "config": dict(cfg.__dict__),
        "checks": {"site": list(SITE_CHECKS), "domain": list(DOMAIN_CHECKS), "unit": list(UNIT_CHECKS)},
    }
    with TruthWriter(workdir / f"{name}-truth.json", meta) as truth:
        for i in range(cfg.sites):
            b = build_hostile(cfg, i)
            reg.write(b.rows)
            truth.add(b)
    reg.close()
    offices_path = workdir / f"{name}-offices.csv"
    write_offices(offices_path, offices())
    return Sample("hostile", HostileUniverse(cfg), reg.path, offices_path, truth.path, sites=cfg.sites)
