"""The page model: what a crawler captured for one site, as the checks read it.

The home page is decoded once (HTTP header charset, then ``<meta charset>``, then detection; GB2312
and GBK are read as GB18030) and parsed once into an ``lxml.html`` tree that every check shares.
Sub-resources are optional: a check that needs one it does not have says so through ``needs`` (see
:class:`Need`) and answers ``unknown`` until the crawler supplies it.
"""

from __future__ import annotations

import codecs
import contextlib
import re
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any
from urllib.parse import urljoin

import lxml.html
from lxml import etree

# Encodings that real Chinese pages declare but that are subsets of GB18030: decoding them as GB18030
# never loses a character, while decoding as GB2312 fails on the many GBK-only characters in use.
_GB_ALIASES = {"gb2312", "gbk", "gb_2312-80", "x-gbk", "cp936", "ms936", "euc-cn", "hz-gb-2312", "gb18030"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)


class NeedKind(StrEnum):
    """Sub-resources a check can ask the crawler for."""

    SCRIPT = "script"  # an external same-site script (footers built by JavaScript)
    BADGE_SCRIPT = "badge_script"  # the CONAC per-site badge script on dcs.conac.cn
    BSZS = "bszs"  # the CONAC verification page
    IMAGE = "image"  # an image whose bytes decide (local copy of the badge image)
    FRAME = "frame"  # an iframe document
    RENDER = "render"  # a browser-rendered DOM


@dataclass(frozen=True, slots=True)
class Need:
    """One sub-resource a check asks for: its kind and absolute URL (for RENDER: the page URL)."""

    kind: NeedKind
    url: str = ""

    @property
    def key(self) -> str:
        """The key under which a failure of this need is recorded in :attr:`Page.failed`."""
        return f"render:{self.url}" if self.kind is NeedKind.RENDER else self.url


def normalise_charset(name: str | None) -> str | None:
    """A Python codec name for a declared charset, or None if it is unknown or absent."""
    if not name:
        return None
    name = name.strip().strip("\"'").lower()
    if name in _GB_ALIASES:
        return "gb18030"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_body(body: bytes, content_type: str = "") -> tuple[str, str]:
    """Decode an HTML body; returns ``(text, encoding_used)``.

    Order: charset in the HTTP ``Content-Type``; ``<meta charset>`` in the first 4 KiB; a BOM; strict
    UTF-8; detection. Undecodable bytes become U+FFFD: a page is never refused for its encoding.
    """
    text, enc, _clean = _decode(body, content_type)
    return text, enc


def _decode(body: bytes, content_type: str) -> tuple[str, str, bytes | None]:
    """:func:`decode_body`, plus the UTF-8 bytes the text is the error-free decoding of (or None)."""
    if body.startswith(codecs.BOM_UTF8):
        try:
            return body[3:].decode("utf-8"), "utf-8", body[3:]
        except UnicodeDecodeError:
            return body[3:].decode("utf-8", "replace"), "utf-8", None
    candidates: list[str] = []
    m = _HEADER_CHARSET.search(content_type or "")
    if m and (cs := normalise_charset(m.group(1))):
        candidates.append(cs)
        try:
            return body.decode(cs), cs, (body if cs == "utf-8" else None)
        except (UnicodeDecodeError, LookupError):
            pass
    # The <meta> is read only when the header said nothing usable.
    m2 = _META_CHARSET.search(body[:4096])
    if m2 and (cs := normalise_charset(m2.group(1).decode("ascii", "ignore"))):
        candidates.append(cs)
        try:
            return body.decode(cs), cs, (body if cs == "utf-8" else None)
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        return body.decode("utf-8"), "utf-8", body
    except UnicodeDecodeError:
        pass
    # A declared (or UTF-8) page with a few broken bytes is still that encoding: a handful of U+FFFD
    # is better than reading the whole page in a wrong one. But CMS templates often declare UTF-8 over
    # a GBK footer (an ASCII page with a short Chinese footer has few bad bytes in absolute terms): the
    # declaration is trusted only when the characters it decodes cleanly far outnumber the broken ones.
    tolerated = max(8, len(body) // 2000)
    for cs in dict.fromkeys([*candidates, "utf-8"]):
        text = body.decode(cs, "replace")
        bad = text.count("\ufffd")
        if bad <= tolerated and _mostly_clean(text, bad):
            return text, cs, None
    try:
        # Chinese pages that are not valid in what they declare are almost always GBK/GB18030.
        return body.decode("gb18030"), "gb18030", None
    except UnicodeDecodeError:
        pass
    # Detection only when declarations failed: bs4's UnicodeDammit (charset-normalizer underneath).
    from bs4 import UnicodeDammit

    guess = UnicodeDammit(body[:65536], ["gb18030", "big5"], is_html=True).original_encoding
    enc = normalise_charset(guess) or (candidates[0] if candidates else "gb18030")
    return body.decode(enc, "replace"), enc, None


_NON_ASCII = re.compile(r"[^\x00-\x7f\ufffd]")


def _mostly_clean(text: str, bad: int) -> bool:
    """Whether ``bad`` replacement characters are stray damage rather than a wrong encoding."""
    if bad == 0:
        return True
    return len(_NON_ASCII.findall(text)) >= 4 * bad


_LOCAL = threading.local()  # lxml parsers must not be shared between threads
# lxml.html's own lookup is a Python callback run for every element handed to Python (half the cost of
# a tree walk); this C-level lookup gives the same HtmlElement API (text_content, …).
_LOOKUP = etree.ElementDefaultClassLookup(
    element=lxml.html.HtmlElement,
    comment=lxml.html.HtmlComment,
    pi=lxml.html.HtmlProcessingInstruction,
    entity=lxml.html.HtmlEntity,
)


def _parser() -> etree.HTMLParser:
    parser: etree.HTMLParser | None = getattr(_LOCAL, "parser", None)
    if parser is None:
        # huge_tree: libxml2 otherwise stops at nesting depth 256 and drops the rest of the page (the
        # footer) where browsers read on; broken CMS markup with unclosed tags nests that deep.
        parser = etree.HTMLParser(recover=True, huge_tree=True, remove_blank_text=False)
        parser.set_element_class_lookup(_LOOKUP)
        _LOCAL.parser = parser
    return parser


def _utf8_parser() -> etree.HTMLParser:
    parser: etree.HTMLParser | None = getattr(_LOCAL, "utf8_parser", None)
    if parser is None:
        # The same parser as _parser(), reading bytes known to be UTF-8 (a <meta charset> is ignored,
        # as it is for str input).
        parser = etree.HTMLParser(recover=True, huge_tree=True, remove_blank_text=False, encoding="utf-8")
        parser.set_element_class_lookup(_LOOKUP)
        _LOCAL.utf8_parser = parser
    return parser


def _empty() -> etree._Element:
    return etree.fromstring("<html><body></body></html>", _parser())


def parse_html(text: str, utf8: bytes | None = None) -> etree._Element:
    """An lxml.html tree for any text (see :func:`parse_html_checked`)."""
    return parse_html_checked(text, utf8)[0]


def _cut_short(parser: etree.HTMLParser) -> bool:
    """Whether libxml2 gave up before the end of the document (nesting deeper than it reads: 2048)."""
    log = parser.error_log
    return any("Excessive depth" in e.message for e in list(log)[-3:]) if len(log) else False


def parse_html_checked(text: str, utf8: bytes | None = None) -> tuple[etree._Element, bool]:
    """An lxml.html tree for any text, and whether the parser stopped before the end of the document
    (then the tree lacks the rest: a check must not call anything missing). Empty or unparsable input
    yields an empty ``<html>``.

    Elements are :class:`lxml.html.HtmlElement` (``text_content()`` and the rest of the lxml.html API).
    ``utf8``, when given, is the UTF-8 encoding of ``text``: libxml2 reads it as it is, where a str has
    to be converted first (the same tree, about a tenth of a parse sooner).
    """
    # lxml refuses str input that carries an encoding declaration; strip it instead of re-encoding.
    declared = _XML_DECL.match(text)
    cleaned = text if declared is None else text[declared.end() :]
    if not cleaned or cleaned.isspace():
        return _empty(), False
    if utf8 is not None and declared is None:
        parser = _utf8_parser()
        try:
            root = etree.fromstring(utf8, parser)
        except (etree.ParserError, etree.XMLSyntaxError, ValueError):
            root = None
        if root is not None:
            return root, _cut_short(parser)
    parser = _parser()
    try:
        root = etree.fromstring(cleaned, parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return _empty(), False
    if root is None:
        return _empty(), False
    return root, _cut_short(parser)


_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)


# The decoded text of the last few documents is kept a moment longer than its document. Freeing a
# page's 60–120 KB text the moment the page is dropped costs more than the checks' whole saving from
# freeing pages at once: malloc hands the block back (heap trim / munmap) and faults fresh memory in
# for the next page's text. Keeping the last eight (bounded: never more than eight texts) measured
# 2.92–3.01× → 2.78–2.79× the bare parse in ``bench_checks.py`` (load 1.0); the previous code kept
# them by accident, in module caches keyed by ``id(text)``.
_RECENT_TEXTS: deque[str] = deque(maxlen=8)


@dataclass(slots=True)
class Document:
    """One decoded document (home page, rendered DOM, frame or verification page)."""

    url: str
    text: str
    encoding: str = "utf-8"
    _tree: etree._Element | None = field(default=None, repr=False)
    _base: str | None = field(default=None, repr=False)
    #: The UTF-8 bytes ``text`` was decoded from without error, if it was (see :func:`parse_html`).
    utf8: bytes | None = field(default=None, repr=False, compare=False)
    #: What the checks derived from this document (contexts, script lists …), kept with it so it is
    #: freed with it; never holds a reference back to the document (no cycles: freed at once).
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    #: The parser stopped before the end (see :func:`parse_html_checked`); known once ``tree`` is built.
    cut: bool = field(default=False, repr=False, compare=False)

    @classmethod
    def from_bytes(cls, url: str, body: bytes, content_type: str = "") -> Document:
        text, enc, utf8 = _decode(body, content_type)
        _RECENT_TEXTS.append(text)
        return cls(url=url, text=text, encoding=enc, utf8=utf8)

    @property
    def tree(self) -> etree._Element:
        """The parsed tree, built on first use and then shared by every check."""
        if self._tree is None:
            self._tree, self.cut = parse_html_checked(self.text, self.utf8)
        return self._tree

    def scripts_and_metas(self) -> list[etree._Element]:
        """Every ``<script>`` and ``<meta>`` of the document in order: one C-level traversal, shared by
        the script reading, the include finder, the badge scan and the 标识码 sources (kept in ``memo``)."""
        found: list[etree._Element] | None = self.memo.get("scripts_and_metas")
        if found is None:
            found = self.memo["scripts_and_metas"] = list(self.tree.iter("script", "meta"))
        return found

    @property
    def base_url(self) -> str:
        """What relative URLs resolve against: the first ``<base href>`` (resolved), else ``url``."""
        if self._base is None:
            self._base = self.url
            # A <base> belongs in <head>: a few C-level scans of the head spare the tree walk on the
            # many pages without one.
            text = self.text
            end = next((i for tag in ("<body", "<BODY", "<Body") if (i := text.find(tag)) >= 0), len(text))
            if any(text.find(tag, 0, end) >= 0 for tag in ("<base", "<BASE", "<Base")):
                for el in self.tree.iter("base"):
                    href = (el.get("href") or "").strip()
                    if href and not href.lower().startswith(("javascript:", "data:")):
                        with contextlib.suppress(ValueError):  # a malformed base changes nothing
                            self._base = urljoin(self.url, href)
                        break
        return self._base


@dataclass
class Page:
    """Everything captured for one site visit.

    ``url`` is the final URL of the home page (after redirects): relative links resolve against it.
    ``scripts``/``images``/``frames`` are keyed by absolute URL (the URL of the :class:`Need` that asked
    for them). ``badge_scripts`` holds CONAC badge scripts (text) by URL; ``bszs`` holds verification
    pages by URL; ``rendered`` is the DOM a browser produced, if the page was rendered.

    ``failed`` records sub-resources the crawler tried and could not get (``Need.key`` → reason), so a
    check answers ``unknown`` instead of asking again forever. ``exhausted`` says the crawler will fetch
    nothing more for this page (budget reached, or offline as in ``inspect FILE``): checks then decide
    from what they have and ask for nothing.
    """

    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    status: int = 200
    scripts: dict[str, str] = field(default_factory=dict)
    badge_scripts: dict[str, str] = field(default_factory=dict)
    bszs: dict[str, Document] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    frames: dict[str, Document] = field(default_factory=dict)
    rendered: Document | None = None
    truncated: bool = False
    failed: dict[str, str] = field(default_factory=dict)
    exhausted: bool = False
    #: What the checks derived from this capture (searches, script output), keyed with the capture
    #: state it was computed for; freed with the page (entries never refer back to it).
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def home(self) -> Document:
        ctype = next((v for k, v in self.headers.items() if k.lower() == "content-type"), "")
        return Document.from_bytes(self.url, self.body, ctype)

    @property
    def incomplete(self) -> bool:
        """Not all of the home page could be read: cut at the size limit, or nested deeper than the
        parser reads. What is not there may be in the part not read."""
        return self.truncated or (self.home.tree is not None and self.home.cut)

    def have(self, need: Need) -> bool:
        """Whether the sub-resource ``need`` asks for is present in this capture."""
        kind = need.kind
        if kind is NeedKind.RENDER:
            return self.rendered is not None
        stores: dict[NeedKind, Mapping[str, object]] = {
            NeedKind.SCRIPT: self.scripts,
            NeedKind.BADGE_SCRIPT: self.badge_scripts,
            NeedKind.BSZS: self.bszs,
            NeedKind.IMAGE: self.images,
            NeedKind.FRAME: self.frames,
        }
        return need.url in stores[kind]

    def settled(self, need: Need) -> bool:
        """True when asking for ``need`` again is pointless: present, failed, or no more fetching."""
        return self.exhausted or need.key in self.failed or self.have(need)

    def mark_failed(self, need: Need, reason: str) -> None:
        """Record that ``need`` was fetched and failed (the crawler calls this)."""
        self.failed[need.key] = reason
