"""The CONAC website badge (网站标识): is it displayed, of which kind, and is it this site's own?

Reads only *live* markup (lxml never yields elements inside comments; ``<noscript>``/``<template>``
content and ``href="#"`` placeholders are ignored) of the home page, of what inline and same-site
external scripts would write (static evaluation, :mod:`checks.badge_js`), of iframes and of a
browser-rendered DOM when the crawler has one. Every shape of domain.md §3 is recognised:

===================  =====================================================================
``shape``            what was found
===================  =====================================================================
embed_code           the official ``document.write(unescape(…))`` code / the CONAC script tag
rendered_dom         the expanded ``<span id="_ideConac"><a …><img id="imgConac" …>`` (saved or rendered)
static_copy          a copy of the expanded markup, image on the CONAC host
local_image_copy     the CONAC image saved on the site (recognised by its bytes or file name)
custom_image         a site-made image inside a link to the verification page
text_link            a text link to the verification page
script_built         any of the above written by a script (footer built by JavaScript)
===================  =====================================================================

The kind comes from the strongest available signal: badge script content > image file > verification
page > alt/``wzades``/link text. A stronger signal that has not been fetched yet makes the verdict wait
(``unknown`` with a need) instead of resting on a weaker one; a signal that failed is skipped. The
check never says ``fail`` where the evidence could not decide.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

from lxml import etree

from checks.analysis import Analysis
from checks.badge_image import image_signature
from checks.badge_js import inserted_markup
from checks.expected import Expected, UnitKind
from checks.landing import find_includes
from checks.numbers import BADGE_CODE_PATTERN
from checks.page import Document, Need, NeedKind, Page, parse_html
from checks.reading.lines import LineIndex
from checks.reading.scripts import opaque_scripts
from checks.rules import DEFAULT_RULES, Rules
from checks.verdict import Evidence, Status, Verdict

RED = UnitKind.PARTY_GOV.value  # 党政机关: red badge
BLUE = UnitKind.INSTITUTION.value  # 事业单位: blue badge

_IMAGE_NAME = re.compile(r"(?:^|/)(red|blue)(_error)?\.png$", re.I)
_SCRIPT_IMAGE = re.compile(r"(red|blue)(_error)?\.png", re.I)
_VERIFY_ID = re.compile(r"[?&;]id=([0-9A-Fa-f]{32})(?![0-9A-Fa-f])")
_JS_TYPES = re.compile(r"^\s*$|javascript|ecmascript|^\s*module\s*$|jscript", re.I)
_ESCAPE_HINT = re.compile(r"%[0-9a-f]{2}|\\x[0-9a-f]{2}|\\u[0-9a-f]{4}|fromcharcode|&#", re.I)
# Libraries never write a footer: not worth a fetch.
_LIBRARY = re.compile(
    r"(?:^|[/_.-])(?:jquery|bootstrap|swiper|layer|echarts|vue|react|angular|axios|lodash|moment|"
    r"html5shiv|respond|modernizr|polyfill|superslide|jquery\.[\w.-]+)[\w.-]*\.js$",
    re.I,
)
_FOOTERISH = re.compile(r"foot|bottom|bot|copyright|banquan|bq|common|public|gonggong|tail|wei|db", re.I)
_SECOND_LEVEL = frozenset({"gov", "com", "edu", "org", "net", "ac", "xn--zfr164b", "xn--55qw42g", "mil"})
_BSZS_KIND = re.compile(r"(?:类型|类别|性质)\s*[:：]?\s*(党政机关|事业单位)")
_BSZS_NAME = re.compile(
    r"(?:单位名称|机构名称|开办单位|主办单位|开办主体(?:名称)?)\s*[:：]?\s*([^\s:：|]{2,60})"
)
# Labels and values sit in table cells (no colon) or in "label：value" lines.
_BSZS_DOMAINS = re.compile(r"(?:网站域名|域名|网址|网站地址)\s*[:：]?\s*([^\n]{0,400})")
_HOSTLIKE = re.compile(r"(?:[\w\u4e00-\u9fff-]+\.)+[\w\u4e00-\u9fff-]{2,}", re.U)
_SPACES = re.compile(r"\s+")
_EXCERPT_MAX = 800
_MAX_DEPTH = 3
_MAX_CANDIDATES = 400


# --- what a scan of one document finds ------------------------------------------------------------


@dataclass(slots=True)
class Embed:
    """A CONAC badge script (``…/CA<21 digits>.js``) that the page loads."""

    code: str
    url: str
    asynchronous: bool
    source: str
    evidence: Evidence
    external: bool = False  # written by an external script (a footer built by JavaScript)


@dataclass(slots=True)
class Mark:
    """A displayed badge: a link to the verification page and/or the badge image."""

    verify_url: str | None
    verify_id: str | None
    img_url: str | None
    alt: str
    text: str
    source: str
    evidence: Evidence
    conac_image: bool  # the image is served by CONAC's script host
    saved_dom: bool  # the document also holds an embed: a saved/rendered DOM
    via_script: bool = False  # written by a script (inline or external), not plain markup


@dataclass(slots=True)
class Scan:
    """Everything badge-related found in the documents read so far."""

    embeds: list[Embed] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)  # same-site external scripts, fetch order
    async_scripts: set[str] = field(default_factory=set)  # … loaded with async/defer
    script_tags: dict[str, Evidence] = field(default_factory=dict)  # url -> the tag that loads it
    frame_tags: dict[str, Evidence] = field(default_factory=dict)
    frames: list[str] = field(default_factory=list)
    dynamic: list[Evidence] = field(default_factory=list)  # badge-related code only a browser can run


@dataclass(slots=True)
class _Ctx:
    page: Page
    expected: Expected
    rules: Rules
    site_keys: frozenset[str]
    scan: Scan


# --- URL helpers --------------------------------------------------------------------------------


def _clean_url(raw: str) -> str:
    # Quirks seen in pasted code: spaces inside src, "&amp;" written twice in a link.
    return raw.strip().replace("&amp;", "&")


def _absolute(base: str, raw: str) -> str | None:
    raw = _clean_url(raw)
    if not raw or raw.startswith("#") or raw.lower().startswith(("javascript:", "mailto:", "data:", "tel:")):
        return None
    if base.startswith(("http://", "https://")) and _PLAIN_URL.match(raw) and not _JOIN_SPECIAL.search(raw):
        # What urljoin gives for the forms script and link URLs take, without its parse and unparse:
        # an absolute http(s) URL as it is, a scheme-relative one with the page's scheme.
        return raw if raw.startswith("http") else base[: base.index(":") + 1] + raw
    try:
        return urljoin(base, raw)
    except ValueError:
        return None


# Characters urljoin's parse would split on, drop or reorder (query, fragment, params, whitespace and
# controls, backslashes): URLs holding one take the full urljoin.
_JOIN_SPECIAL = re.compile(r"[?#;\\\x00-\x20\x7f]")
# An http(s) or scheme-relative URL with a plain ASCII host part (no brackets, nothing urlsplit checks).
_PLAIN_URL = re.compile(r"(?:https?:)?//[A-Za-z0-9._~!$&'()*+,=:@%-]+(?:/[!-~]*)?\Z")


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def _site_key(host: str) -> str:
    """The registrable part of a host name (``www.bd.gov.cn`` → ``bd.gov.cn``)."""
    labels = host.lower().rstrip(".").split(".")
    if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) <= 3:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def _site_keys(page: Page, expected: Expected) -> frozenset[str]:
    hosts = {_host(page.url), _host(expected.site_url) if expected.site_url else ""}
    hosts.update(d.lower() for d in expected.en_domains)
    return frozenset(_site_key(h) for h in hosts if h)


def _on_hosts(url: str, hosts: tuple[str, ...]) -> bool:
    host = _host(url)
    return any(host == h or host.endswith("." + h) for h in hosts)


@lru_cache(maxsize=8)
def _variants(hosts: tuple[str, ...]) -> tuple[str, ...]:
    """Configured hosts as written in the wild: lower or upper case."""
    return tuple(v for h in hosts for v in dict.fromkeys((h.lower(), h.upper())))


def _outside_scripts(text: str, needle: str, script_text: str, total: int | None = None) -> bool:
    """Whether ``needle`` occurs in the source other than inside scripts (their text or ``src``).

    ``script_text`` is every script's text and ``src`` joined by NUL (see :func:`_joined_scripts`): a
    needle without NUL cannot span two scripts, so one C-level count replaces a count per script.
    ``total`` is ``text.count(needle)`` when the caller already knows it.
    """
    if total is None:
        total = text.count(needle)
    return bool(total) and total > script_text.count(needle)


def _count_at(text: str, needle: str, anchors: list[int], offset: int) -> int:
    """``text.count(needle)`` from the ascending offsets of every occurrence of a piece of ``needle``
    (found at ``offset`` in it): the same non-overlapping count, without another scan of the page."""
    count = 0
    end = 0
    for at in anchors:
        start = at - offset
        if start >= end and text.startswith(needle, start):
            count += 1
            end = start + len(needle)
    return count


@lru_cache(maxsize=32)
def _tail_of(needle: str) -> tuple[int, re.Pattern[str]] | None:
    """Where a host variant's ``.tail`` starts in it, and the pattern finding that tail in any letter
    case, when the pattern's matches are sure to include every occurrence of the variant (an ASCII
    host with a dot, whose ``.tail`` cannot overlap itself); else None."""
    head, dot, tail = needle.lower().partition(".")
    if not needle.isascii() or not dot or not tail:
        return None
    piece = "." + tail
    if any(piece[:k] == piece[-k:] for k in range(1, len(piece))):
        return None
    return len(head), _tail_pattern(needle)[1]


def _host_count(text: str, needle: str) -> int:
    """``text.count(needle)`` for a host variant, read off the page's one letter-case-blind scan for
    the host's tail (:func:`_tail_starts`, shared by every host and variant, and needed anyway for
    the mixed-case test on nearly every page) instead of a scan per variant."""
    tail = _tail_of(needle)
    if tail is None:
        return text.count(needle)
    return _count_at(text, needle, _tail_starts(text, tail[1]), tail[0])


def _joined_scripts(scripts: list[etree._Element]) -> str:
    return "\0".join([(el.text or "") + "\n" + (el.get("src") or "") for el in scripts])


def _contains_any(value: str | None, needles: list[str]) -> bool:
    if not value:
        return False
    return any(n in value for n in needles)


def _candidates(
    root: etree._Element, text: str, rules: Rules, scripts: list[etree._Element] | None = None
) -> list[etree._Element]:
    """The elements the badge scan looks at: scripts, frames, verification links, badge images.

    Single-tag ``iter`` walks (lxml's fast path; measured faster than the equivalent XPath with the
    C-level element lookup of :func:`checks.page.parse_html`); a walk whose marker does not occur in the
    source outside scripts is skipped. ``scripts`` is the document's ``<script>`` list when the caller
    already has it (one walk shared with the number checks). Hosts match in any letter case.
    """
    if scripts is None:
        scripts = list(root.iter("script"))
    found: list[etree._Element] = list(scripts)
    script_text = _joined_scripts(scripts)
    # Tags absent from most pages are looked up in the tree (a C-level walk, under a microsecond on a
    # news page) rather than in the source (a scan of the page per spelling, ~10 µs each).
    rare = list(root.iter("iframe", "frame", "area"))
    found.extend(el for el in rare if el.tag != "area" and el.get("src"))
    scripts_and_frames = len(found)
    # Plain substring counts (C, fast) decide which walks are worth doing at all: a host that occurs in
    # the source only inside scripts (the embed code) cannot be in a link or an image.
    verify = _present(text, rules.conac_verify_hosts, script_text)
    conac = _present(text, rules.conac_script_hosts, script_text)
    if verify:
        match = _host_pattern(rules.conac_verify_hosts).search
        areas = any(el.tag == "area" for el in rare)
        near = _links_near(root, text, rules.conac_verify_hosts)
        if near is None:
            found.extend(el for el in root.iter("a") if (h := el.get("href")) and match(h))
            if areas:
                # An image map: the badge is one hot spot of a footer picture (``<area href=bszs…>``).
                found.extend(el for el in root.iter("area") if (h := el.get("href")) and match(h))
        else:
            found.extend(el for el in near if el.tag == "a" and (h := el.get("href")) and match(h))
            if areas:
                found.extend(el for el in near if el.tag == "area" and (h := el.get("href")) and match(h))
    if conac or _outside_scripts(text, "imgConac", script_text):
        match = _host_pattern(rules.conac_script_hosts).search
        found.extend(
            el for el in root.iter("img") if el.get("id") == "imgConac" or ((h := el.get("src")) and match(h))
        )
    if len(found) == scripts_and_frames and _outside_scripts(text, "_ideConac", script_text):
        # A hand-copied local image inside the span, without a verification link.
        for span in root.iter("span"):
            if "_ideConac" in (span.get("id") or "") or "_ideConac" in (span.get("class") or ""):
                found.extend(span.iter("img"))
    # An element reached twice (an image both named imgConac and inside the span) is read once; a
    # page with hundreds of badge links is junk, and reading the first few is enough to decide.
    return list(dict.fromkeys(found))[:_MAX_CANDIDATES]


class _NoLines(Exception):
    """An element without a source line: the tree cannot be searched by line."""


# libxml2 may stop counting lines here: beyond it, sourceline says nothing.
_MAX_LINE = 65_000
# Occurrences of the hosts read by line at most, and the longest line read that way.
_MAX_NEAR = 64
_LONG_LINE = 20_000


def _links_near(
    root: etree._Element, text: str, hosts: tuple[str, ...], lines: LineIndex | None = None
) -> list[etree._Element] | None:
    """The ``<a>``/``<area>`` elements whose start tag may hold one of ``hosts`` (in any letter case),
    in document order: a superset of those a walk over every link would match, found from where the
    hosts occur in the source instead of by that walk (hundreds of links on a news page). None when
    the source cannot tell (the caller walks every link).

    An attribute value is the source text unless a character reference spells it (``&#46;``: then
    None); a host's tail after its first dot (``.conac.cn``) has no letter that matches anything but
    ASCII in a case-blind pattern, so every link the walk would match holds one of the tail's
    occurrences (:func:`_tail_starts`, already scanned). libxml2 gives an element the line of the
    ``>`` closing its start tag, and lines never decrease in document order; the link holding an
    occurrence is on the lines from it to the next ``>``, or, when an attribute value holds a ``>``,
    the first line after them that holds an element.
    """
    patterns = []
    for host in hosts:
        tail = _tail_of(host)
        if tail is None or any(c in "iks" for c in host.lower().partition(".")[2]):
            return None
        patterns.append(tail[1])
    if _has_char_ref(text):
        return None
    positions = sorted({at for pattern in dict.fromkeys(patterns) for at in _tail_starts(text, pattern)})
    if not positions:
        return []
    if len(positions) > _MAX_NEAR:
        return None  # junk, or a page of badges: the C-level walk is the safer bet
    index = LineIndex(text) if lines is None else lines
    found: dict[etree._Element, int] = {}
    done = 0  # every element up to this line has been read (-1: to the end)
    for at in positions:
        close = text.find(">", at)
        lo, hi = index.line_of(at), index.line_of(close if close >= 0 else at)
        if hi >= _MAX_LINE or index.length(lo) > _LONG_LINE:
            return None  # line numbers stop, or minified markup where a line holds the page
        if done < 0 or hi < done:
            continue  # read already, up to the first line after it that holds an element
        after = 0  # the first line after ``hi`` that holds an element: all of it is read
        try:
            for el in _from_line(root, lo):
                line = el.sourceline
                if line is None:
                    raise _NoLines
                if line > hi:
                    if not after:
                        after = line
                    elif line > after:
                        break
                if el.tag in ("a", "area"):
                    found.setdefault(el, line)
            else:
                after = -1  # no element left: the rest of the page is read
        except _NoLines:
            return None
        done = after or hi
    # Every line read is read whole, so ordering by line (stable) keeps document order.
    return sorted(found, key=found.__getitem__)


def _has_char_ref(text: str) -> bool:
    """Whether ``&#`` occurs in ``text``: a one-character search (memchr) and a look at the next
    character is several times faster than a two-character search on CJK text, where most pages
    have a few dozen ``&``."""
    find = text.find
    i = find("&")
    for _ in range(64):
        if i < 0:
            return False
        if text.startswith("#", i + 1):
            return True
        i = find("&", i + 1)
    return i >= 0 and "&#" in text[i:]


def _from_line(root: etree._Element, line: int) -> Iterator[etree._Element]:
    """The elements of ``root`` from the first whose source line is ``line`` or later, in document
    order (comments and other nodes left out)."""
    el = root
    while True:
        before = None
        for child in el:
            if isinstance(child.tag, str):
                child_line = child.sourceline
                if child_line is None:
                    raise _NoLines
                if child_line >= line:
                    break
                before = child
        if before is None:
            break
        el = before
    # ``el`` starts before ``line`` and none of its children does: all its descendants come later.
    for d in el.iterdescendants():
        if isinstance(d.tag, str):
            yield d
    node: etree._Element | None = el
    while node is not None and node is not root:
        for sibling in node.itersiblings():
            for d in sibling.iter():
                if isinstance(d.tag, str):
                    yield d
        node = node.getparent()


@lru_cache(maxsize=8)
def _host_pattern(hosts: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(h) for h in hosts) or "(?!)", re.I)


def _present(text: str, hosts: tuple[str, ...], script_text: str) -> bool:
    """Whether one of ``hosts`` occurs in the source outside scripts, in any letter case."""
    if any(_outside_scripts(text, v, script_text, _host_count(text, v)) for v in _variants(hosts)):
        return True
    # Mixed case (``Bszs.Conac.cn``) is rare, and a case-blind regex over a whole page costs more than
    # every check together; a pattern that starts at the host's first dot is found by a fast literal
    # search, and the few hits are confirmed by the label before the dot.
    total = sum(_mixed_count(text, h) for h in hosts)
    return bool(total) and total > sum(_mixed_count(script_text, h) for h in hosts)


@lru_cache(maxsize=16)
def _tail_pattern(host: str) -> tuple[str, re.Pattern[str]]:
    head, dot, tail = host.lower().partition(".")
    if not dot:
        return "", re.compile(re.escape(host), re.I)
    classes = "".join(f"[{c}{c.upper()}]" if c.isalpha() else re.escape(c) for c in tail)
    return head, re.compile(r"\." + classes)


def _mixed_count(text: str, host: str) -> int:
    head, pattern = _tail_pattern(host)
    n = len(head)
    return sum(1 for at in _tail_starts(text, pattern) if text[at - n : at].lower() == head)


# The verification and script hosts share their tail (``.conac.cn``): the scan of a page for it is done
# once and read for every host (identity-checked; a few entries, finished pages are not kept alive).
_TAIL_MEMO: dict[tuple[int, re.Pattern[str]], tuple[str, list[int]]] = {}


def _tail_starts(text: str, pattern: re.Pattern[str]) -> list[int]:
    key = (id(text), pattern)
    hit = _TAIL_MEMO.get(key)
    if hit is not None and hit[0] is text:
        return hit[1]
    starts = [m.start() for m in pattern.finditer(text)]
    if len(_TAIL_MEMO) >= 8:
        _TAIL_MEMO.clear()
    _TAIL_MEMO[key] = (text, starts)
    return starts


# --- evidence -----------------------------------------------------------------------------------


def _locate(doc: Document, el: etree._Element, needle: str) -> Evidence:
    """The exact source markup of ``el`` (found near its source line by ``needle``) with its offsets."""
    text = doc.text
    tag = str(el.tag).lower()
    idx = text.find(needle) if needle else -1
    if idx >= 0 and text.find(needle, idx + 1) >= 0:
        # The needle occurs more than once: start from the element's source line.
        pos = 0
        for _ in range((getattr(el, "sourceline", None) or 1) - 1):
            nxt = text.find("\n", pos)
            if nxt < 0:
                break
            pos = nxt + 1
        at = text.find(needle, pos)
        idx = at if at >= 0 else idx
    if idx < 0:
        return Evidence("", _serialise(el))
    lowered = text[max(0, idx - 4000) : idx].lower()
    back = len(lowered)
    while True:  # the start tag itself, not a longer tag name sharing its prefix (<a / <abbr)
        back = lowered.rfind("<" + tag, 0, back)
        after = lowered[back + 1 + len(tag) : back + 2 + len(tag)]
        if back < 0 or not after or not (after.isalnum() or after in "-_"):
            break
    start = idx - (len(lowered) - back) if back >= 0 else idx
    closer = "</" + tag + ">" if tag in ("a", "script", "span", "iframe") else ">"
    end_rel = text[idx : idx + 4000].lower().find(closer)
    end = idx + end_rel + len(closer) if end_rel >= 0 else min(len(text), idx + 200)
    end = min(end, start + _EXCERPT_MAX)
    return Evidence("", text[start:end], start, end)


def _serialise(el: etree._Element) -> str:
    try:
        return str(etree.tostring(el, encoding="unicode", with_tail=False))[:_EXCERPT_MAX]
    except (ValueError, TypeError):
        return ""


def _with_source(ev: Evidence, source: str) -> Evidence:
    return Evidence(source, ev.excerpt, ev.start, ev.end)


# --- scanning a document ------------------------------------------------------------------------


def _not_live(el: etree._Element) -> bool:
    """Inside ``<noscript>``/``<template>`` or an ``href="#"``/``javascript:`` placeholder link."""
    for anc in el.iterancestors():
        tag = anc.tag
        if tag in ("noscript", "template", "textarea", "xmp"):
            return True
        if tag == "a":
            href = (anc.get("href") or "").strip()
            if not href or href.startswith("#") or href.lower().startswith("javascript"):
                return True
    return False


def _marker(text: str, rules: Rules) -> bool:
    low = text.lower()
    return "conac" in low or "_ideconac" in low or any(h in low for h in rules.conac_verify_hosts)


def _scan_doc(
    ctx: _Ctx,
    doc: Document,
    root: etree._Element,
    source: str,
    *,
    evaluate: bool,
    depth: int = 0,
    wrapper: etree._Element | None = None,
    wrapper_async: bool = False,
    wrapper_doc: Document | None = None,
    script_url: str = "",
    text: str | None = None,
) -> None:
    """Add what ``root`` holds to ``ctx.scan``; ``text`` is its source (``doc.text`` when omitted).

    ``wrapper`` is the inline script that produced ``root`` (its source is the evidence); ``script_url``
    the external script that did. ``evaluate`` is False for a rendered DOM: its scripts already ran.
    """
    rules = ctx.rules
    scan = ctx.scan
    base = doc.base_url
    found_embed_here = False
    pending_marks: list[Mark] = []

    wrapper_evidence: list[Evidence] = []

    def evidence_for(el: etree._Element, needle: str) -> Evidence:
        if wrapper is not None and wrapper_doc is not None:
            if not wrapper_evidence:  # the script's source, located once
                wrapper_evidence.append(
                    _with_source(_locate(wrapper_doc, wrapper, _wrapper_needle(wrapper)), source)
                )
            return wrapper_evidence[0]
        if script_url:
            return Evidence(f"script:{script_url}", _serialise(el))
        return _with_source(_locate(doc, el, needle), source)

    seen_links: set[int] = set()
    # The home page's script list is shared with the number checks (one walk); documents that only the
    # badge reads (script output, frames) would just crowd that small cache.
    shared = None
    if source == "home" and doc is ctx.page.home and root is doc.tree:
        shared = [el for el in doc.scripts_and_metas() if el.tag == "script"]
    for el in _candidates(root, doc.text if text is None else text, rules, shared):
        tag = el.tag
        if tag == "script":
            if _not_live(el):
                continue
            src = el.get("src")
            if src is not None:
                url = _absolute(base, src)
                if url is None:
                    continue
                # An async/deferred CONAC script can still fill an existing _ideConac span, but its
                # document.write fallback is ignored: without the span it never renders.
                deferred = el.get("async") is not None or el.get("defer") is not None
                asynchronous = wrapper_async or (deferred and not _has_span(root))
                if _on_hosts(url, rules.conac_script_hosts):
                    m = BADGE_CODE_PATTERN.search(url)
                    if m:
                        code = "CA" + m.group(1)
                        scan.embeds.append(
                            Embed(code, url, asynchronous, source, evidence_for(el, code), bool(script_url))
                        )
                        found_embed_here = True
                    continue
                if (
                    _site_key(_host(url)) in ctx.site_keys
                    and not _LIBRARY.search(urlsplit(url).path)
                    and url not in scan.scripts
                ):
                    scan.scripts.append(url)
                    scan.script_tags[url] = evidence_for(el, _clean_url(src)[:80])
                    if el.get("async") is not None or el.get("defer") is not None:
                        # document.write from an async/deferred external script is ignored by browsers.
                        scan.async_scripts.add(url)
                continue
            if not evaluate or depth >= _MAX_DEPTH:
                continue
            code_text = el.text or ""
            if not _JS_TYPES.search(el.get("type") or ""):
                # A client-side template (text/template, text/html …) holding the badge: some script
                # renders it, and only a browser shows whether it does.
                if wrapper is None and not script_url and _marker(code_text, rules):
                    scan.dynamic.append(_with_source(_locate(doc, el, _wrapper_needle(el)), source))
                continue
            has_marker = _marker(code_text, rules)
            if not has_marker and not _ESCAPE_HINT.search(code_text):
                continue
            _evaluate_script(
                ctx,
                doc,
                code_text,
                source,
                depth,
                el if wrapper is None else wrapper,
                wrapper_doc or doc,
                # ``async`` has no effect on an inline script: only the enclosing external script counts.
                wrapper_async,
                script_url,
                has_marker,
            )
        elif tag == "a" or tag == "area":
            if _not_live(el) or id(el) in seen_links:
                continue
            seen_links.add(id(el))
            mark = _mark_from_link(ctx, el, base, source, evidence_for)
            if mark is not None:
                pending_marks.append(mark)
        elif tag == "img":
            if _not_live(el):
                continue
            if any(a.tag == "a" and _is_verify_link(a, base, rules) for a in el.iterancestors()):
                continue  # handled with its link
            src = el.get("src") or el.get("data-src") or ""
            url = _absolute(base, src)
            if url is None:
                continue
            conac = _on_hosts(url, rules.conac_script_hosts)
            if conac and not _IMAGE_NAME.search(urlsplit(url).path):
                continue  # some other CONAC image (analytics pixel)
            pending_marks.append(
                Mark(
                    None,
                    None,
                    url,
                    _alt(el),
                    "",
                    source,
                    evidence_for(el, _clean_url(src)[:60]),
                    conac,
                    False,
                )
            )
        elif tag in ("iframe", "frame"):
            if _not_live(el):
                continue
            url = _absolute(base, el.get("src") or "")
            if url and _site_key(_host(url)) in ctx.site_keys and url not in scan.frames and url != base:
                scan.frames.append(url)
                scan.frame_tags[url] = evidence_for(el, _clean_url(el.get("src") or "")[:80])
    for mark in pending_marks:
        mark.saved_dom = found_embed_here or source == "rendered"
        mark.via_script = wrapper is not None or bool(script_url)
        scan.marks.append(mark)


def _has_span(root: etree._Element) -> bool:
    return bool(root.xpath("//*[@id='_ideConac']"))


def _wrapper_needle(el: etree._Element) -> str:
    text = (el.text or "").strip()
    return text.split("\n", 1)[0].rstrip("\r")[:60] if text else (el.get("src") or "")


def _alt(el: etree._Element) -> str:
    return " ".join(v for k in ("alt", "wzades", "title") if (v := el.get(k)))


def _is_verify_link(a: etree._Element, base: str, rules: Rules) -> bool:
    return _verify_url(a.get("href") or "", base, rules) is not None


def _verify_url(href: str, base: str, rules: Rules) -> str | None:
    href = _clean_url(href)
    low = href.lower()
    if low.startswith("javascript"):
        # ``javascript:window.open('//bszs.conac.cn/…')``: the URL inside is what opens.
        m = re.search(r"""['"]((?:https?:)?//[^'"\s]+)""", href)
        if not m:
            return None
        href = m.group(1)
    url = _absolute(base, href)
    if url is None or not _on_hosts(url, rules.conac_verify_hosts):
        return None
    return url


def _mark_from_link(
    ctx: _Ctx,
    a: etree._Element,
    base: str,
    source: str,
    evidence_for: Callable[[etree._Element, str], Evidence],
) -> Mark | None:
    href = a.get("href") or ""
    url = _verify_url(href, base, ctx.rules)
    if url is None:
        return None
    m = _VERIFY_ID.search(url)
    if a.tag == "area":
        # A hot spot has no content: what it shows is the map's picture, what it says is its alt.
        img = _map_image(a)
        text = _SPACES.sub(" ", a.get("alt") or a.get("title") or "").strip()
    else:
        img = next((i for i in a.iter("img") if i.get("src") or i.get("data-src")), None)
        text = _SPACES.sub(" ", a.text_content() or "").strip()
    img_url = _absolute(base, (img.get("src") or img.get("data-src") or "")) if img is not None else None
    if img_url is None and not text:
        return None  # an empty link shows nothing
    conac = img_url is not None and _on_hosts(img_url, ctx.rules.conac_script_hosts)
    alt = _alt(img) if img is not None else ""
    host = next((h for h in ctx.rules.conac_verify_hosts if h in href.lower()), "") or href[:40]
    return Mark(
        url,
        m.group(1).upper() if m else None,
        img_url,
        alt,
        text,
        source,
        evidence_for(a, host),
        conac,
        False,
    )


def _map_image(area: etree._Element) -> etree._Element | None:
    """The ``<img usemap="#name">`` that the ``<map>`` holding ``area`` belongs to, if any."""
    owner = next((m for m in area.iterancestors() if m.tag == "map"), None)
    if owner is None:
        return None
    names = {n.strip() for n in (owner.get("name"), owner.get("id")) if n and n.strip()}
    for img in area.getroottree().iter("img"):
        usemap = (img.get("usemap") or "").strip().lstrip("#")
        if usemap and usemap in names:
            return img
    return None


def _evaluate_script(
    ctx: _Ctx,
    doc: Document,
    code_text: str,
    source: str,
    depth: int,
    wrapper: etree._Element | None,
    wrapper_doc: Document,
    wrapper_async: bool,
    script_url: str,
    has_marker: bool,
) -> None:
    out = inserted_markup(code_text)
    before = (len(ctx.scan.embeds), len(ctx.scan.marks))
    if out.markup.strip() and "<" in out.markup:
        sub = parse_html(out.markup)
        _scan_doc(
            ctx,
            doc,
            sub,
            source,
            evaluate=True,
            depth=depth + 1,
            wrapper=wrapper,
            wrapper_async=wrapper_async,
            wrapper_doc=wrapper_doc if wrapper is not None else None,
            script_url=script_url,
            text=out.markup,
        )
    produced = (len(ctx.scan.embeds), len(ctx.scan.marks)) != before
    if has_marker and not produced:
        # Badge-related code whose output static reading cannot reproduce: only a browser can tell.
        if script_url:
            excerpt = (
                out.dynamic_excerpts[0] if out.dynamic_excerpts else _around_marker(code_text, ctx.rules)
            )
            ctx.scan.dynamic.append(Evidence(f"script:{script_url}", excerpt))
        elif wrapper is not None:
            ctx.scan.dynamic.append(
                _with_source(_locate(wrapper_doc, wrapper, _wrapper_needle(wrapper)), source)
            )


def _around_marker(text: str, rules: Rules) -> str:
    low = text.lower()
    idx = max(low.find("conac"), low.find("_ideconac"))
    return text[max(0, idx - 150) : idx + 250] if idx >= 0 else text[:300]


def _scan_script(ctx: _Ctx, url: str, text: str, asynchronous: bool) -> None:
    doc = Document(url=url, text="")
    _evaluate_script(ctx, doc, text, "script", 0, None, doc, asynchronous, url, _marker(text, ctx.rules))


# --- kind signals -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Signal:
    kind: str | None
    error: bool
    origin: str  # script / image / bszs / alt
    evidence: Evidence | None = None
    mark: Mark | None = None
    shape: str = ""


def _kind_of_words(text: str) -> str | None:
    red, blue = RED in text, BLUE in text
    if red != blue:
        return RED if red else BLUE
    return None


def _script_signal(url: str, text: str) -> _Signal | None:
    names = {(m.group(1).lower(), bool(m.group(2))) for m in _SCRIPT_IMAGE.finditer(text)}
    colours = {c for c, _ in names}
    if len(colours) != 1:
        return None
    colour = colours.pop()
    error = all(e for _, e in names)
    m = _SCRIPT_IMAGE.search(text)
    idx = m.start() if m else 0
    ev = Evidence(f"script:{url}", text[max(0, idx - 200) : idx + 100], max(0, idx - 200), idx + 100)
    return _Signal(RED if colour == "red" else BLUE, error, "script", ev)


def _name_signal(url: str) -> tuple[str, bool] | None:
    m = _IMAGE_NAME.search(urlsplit(url).path)
    if not m:
        return None
    return (RED if m.group(1).lower() == "red" else BLUE), bool(m.group(2))


def _bszs_facts(doc: Document, expected: Expected) -> tuple[str | None, str, str, Evidence]:
    """(kind, identity problem or "", outdated registration or "", evidence) read from a verification
    page.

    The page names the unit, its type, the website's domains and the badge code (证书编号). Another
    code, or another unit *and* other domains: the badge belongs to someone else. Only the unit's name
    or only the domains differing is this site's badge registered before a 机构改革 or a move to a new
    address: the registration is outdated, not copied.
    """
    text = _SPACES.sub(" ", " ".join(doc.tree.itertext()))
    m = _BSZS_KIND.search(text)
    kind = m.group(1) if m else _kind_of_words(text)
    want_code = expected.badge_code.strip().upper()
    codes = {"CA" + c for c in BADGE_CODE_PATTERN.findall(text)}
    pos = m.start() if m else 0
    evidence = Evidence("bszs", text[max(0, pos - 200) : pos + 200])
    if want_code and codes and want_code not in codes:
        return kind, f"核验页面的标识代码为 {'、'.join(sorted(codes))}，登记为 {want_code}", "", evidence
    name_problem = ""
    name = expected.unit_name.strip()
    # The name field decides (the page also lists the unit's Chinese domains, which hold its name).
    nm = _BSZS_NAME.search(text) if name else None
    if nm and nm.group(1) != name and name not in nm.group(1):
        name_problem = f"核验页面的单位名称为“{nm.group(1)}”，登记为“{name}”"
    site_problem = _bszs_site_problem(text, expected)
    if name_problem and site_problem:
        return kind, f"{name_problem}；{site_problem}", "", evidence
    return kind, "", name_problem or site_problem, evidence


def _bszs_site_problem(text: str, expected: Expected) -> str:
    ours: set[str] = set()
    if expected.site_url:
        ours.add(_host(expected.site_url if "//" in expected.site_url else "http://" + expected.site_url))
    ours.update(d.lower() for d in (*expected.en_domains, *expected.cn_domains))
    ours = {h.removeprefix("www.") for h in ours if h}
    if not ours:
        return ""
    listed: set[str] = set()
    for dm in _BSZS_DOMAINS.finditer(text):
        listed.update(h.lower().removeprefix("www.") for h in _HOSTLIKE.findall(dm.group(1)))
    if listed and not (listed & ours):
        low = text.lower()
        if not any(o in low for o in ours):
            return f"核验页面登记的网站域名为 {'、'.join(sorted(listed))}，与本网站不符"
    return ""


# --- the check ----------------------------------------------------------------------------------


BadgeAnalysis = Analysis


def _scan_page(page: Page, expected: Expected, rules: Rules) -> tuple[_Ctx, list[Need], list[str]]:
    """Scan every available document; returns the context, discovery needs, and failed discoveries.

    The static pass reads the home page, then (only if it shows no badge) its same-site frames, then
    its same-site external scripts. A rendered DOM, when present and showing a badge, is the best
    evidence of what a visitor sees; the static pass still contributes the badge scripts it loads.
    """
    ctx = _Ctx(page, expected, rules, _site_keys(page, expected), Scan())
    needs: list[Need] = []
    failed: list[str] = []
    _static_pass(ctx, needs, failed)
    if page.rendered is None:
        return ctx, needs, failed
    rctx = _Ctx(page, expected, rules, ctx.site_keys, Scan())
    _scan_doc(rctx, page.rendered, page.rendered.tree, "rendered", evaluate=False)
    if rctx.scan.marks:
        codes = {x.code for x in rctx.scan.embeds}
        rctx.scan.embeds.extend(e for e in ctx.scan.embeds if e.code not in codes)
        return rctx, [], []
    ctx.scan.dynamic.clear()  # the browser ran those scripts: what they wrote is in the rendered DOM
    return ctx, needs, failed


def _static_pass(ctx: _Ctx, needs: list[Need], failed: list[str]) -> None:
    page, rules, scan = ctx.page, ctx.rules, ctx.scan
    _scan_doc(ctx, page.home, page.home.tree, "home", evaluate=True)
    if scan.marks or scan.embeds:
        return
    # Fragments the page loads into itself ($.load, XHR, fetch) are read like its frames.
    for url in find_includes(page.home):
        if url not in scan.frames:
            scan.frames.append(url)
            scan.frame_tags[url] = Evidence("home", f"页面脚本加载：{url}")
    i = 0
    while i < min(len(scan.frames), rules.badge_max_frames):  # frames inside frames join the list
        url = scan.frames[i]
        i += 1
        frame = page.frames.get(url)
        if frame is not None:
            _scan_doc(ctx, frame, frame.tree, "frame", evaluate=True)
        else:
            _pending(page, Need(NeedKind.FRAME, url), needs, failed)
    if scan.marks or scan.embeds:
        return
    ordered = sorted(scan.scripts, key=lambda u: 0 if _FOOTERISH.search(urlsplit(u).path) else 1)
    for url in ordered[: rules.badge_max_scripts]:
        text = page.scripts.get(url)
        if text is not None:
            _scan_script(ctx, url, text, url in scan.async_scripts)
        else:
            _pending(page, Need(NeedKind.SCRIPT, url), needs, failed)


def _pending(page: Page, need: Need, needs: list[Need], failed: list[str]) -> None:
    if need.key in page.failed:
        failed.append(f"{need.url}: {page.failed[need.key]}")
    elif not page.exhausted:
        needs.append(need)
    else:
        failed.append(f"{need.url}: 未获取")


def _verdict(
    status: Status, reason: str, detail: str, evidence: list[Evidence], data: dict[str, object]
) -> Verdict:
    base: dict[str, object] = {"kind": None, "code": None, "verify_id": None, "shape": None, "source": None}
    base.update(data)
    return Verdict("badge", status, reason, detail, tuple(e for e in evidence if e.excerpt), base)


def analyse_badge(page: Page, expected: Expected, rules: Rules = DEFAULT_RULES) -> BadgeAnalysis:
    """The badge verdict and what to fetch next (both from one scan of the page)."""
    ctx, needs, failed = _scan_page(page, expected, rules)
    scan = ctx.scan
    live_embeds = [e for e in scan.embeds if not e.asynchronous]
    if not scan.marks and not live_embeds:
        return _undisplayed(page, scan, needs, failed)
    return _displayed(page, expected, rules, scan, live_embeds, needs)


def _undisplayed(page: Page, scan: Scan, needs: list[Need], failed: list[str]) -> BadgeAnalysis:
    if scan.embeds:  # only async embeds: a browser ignores document.write from them
        e = scan.embeds[0]
        return BadgeAnalysis(
            _verdict(
                Status.FAIL,
                "badge.never_renders",
                "标识代码所在的 script 标签带有 async 属性",
                [e.evidence],
                {"code": e.code, "shape": "embed_code", "source": e.source},
            ),
            needs,
        )
    if scan.dynamic:
        render = Need(NeedKind.RENDER, page.url)
        pending = [] if page.settled(render) else [render]
        why = page.failed.get(render.key, "")
        return BadgeAnalysis(
            _verdict(
                Status.UNKNOWN,
                "badge.needs_render",
                "页面脚本引用了网站标识，但无法静态还原其输出" + (f"；渲染失败：{why}" if why else ""),
                list(scan.dynamic[:3]),
                {},
            ),
            needs + pending,
        )
    tags = [ev for ev in (*scan.frame_tags.values(), *scan.script_tags.values()) if ev.excerpt][:5]
    if needs:
        return BadgeAnalysis(
            _verdict(
                Status.UNKNOWN,
                "badge.script_unavailable",
                "静态页面中没有网站标识，待获取可能生成页脚的脚本或框架页面："
                + "、".join(n.url for n in needs[:5]),
                tags,
                {},
            ),
            needs,
        )
    if failed:
        return BadgeAnalysis(
            _verdict(
                Status.UNKNOWN,
                "badge.script_unavailable",
                "静态页面中没有网站标识，可能生成页脚的脚本或框架页面获取失败：" + "；".join(failed[:5]),
                tags,
                {},
            ),
            needs,
        )
    opaque = opaque_scripts(page) if page.rendered is None else ()
    if opaque:
        # Scripts write into the page in ways static reading cannot follow: only a browser can say the
        # badge is not there.
        render = Need(NeedKind.RENDER, page.url)
        pending = [] if page.settled(render) else [render]
        why = page.failed.get(render.key, "")
        return BadgeAnalysis(
            _verdict(
                Status.UNKNOWN,
                "badge.needs_render",
                "静态页面中没有网站标识，页面脚本可能生成页脚，需浏览器渲染后确认："
                + "、".join(opaque[:5])
                + (f"；渲染失败：{why}" if why else ""),
                tags,
                {},
            ),
            needs + pending,
        )
    if page.incomplete and page.rendered is None:
        # The footer (where badges live) may be in the part that was not read.
        why = (
            f"只读取了首页的前 {len(page.body)} 字节"
            if page.truncated
            else "首页标签嵌套过深，解析器未能读完整个页面"
        )
        return BadgeAnalysis(_verdict(Status.UNKNOWN, "badge.page_truncated", why, tags, {}), needs)
    where = "渲染后的页面" if page.rendered is not None else "首页"
    # The end of the page (where footers live) shows what was read instead of a badge.
    doc = page.rendered if page.rendered is not None else page.home
    start = max(0, len(doc.text) - 400)
    label = "rendered" if page.rendered is not None else "home"
    tail = Evidence(label, doc.text[start:], start, len(doc.text))
    return BadgeAnalysis(
        _verdict(
            Status.FAIL,
            "badge.missing",
            f"{where}中没有网站标识代码、标识图片或核验链接",
            [tail] if doc.text.strip() else [],
            {},
        ),
        [],
    )


def _mark_shape(mark: Mark, image_kind_from_bytes: bool, embeds: list[Embed]) -> str:
    if mark.img_url is None:
        shape = "text_link"
    elif mark.conac_image:
        # Embed code beside its own expansion in one document: a saved (or rendered) DOM.
        saved = mark.saved_dom or any(e.source == mark.source for e in embeds)
        shape = "rendered_dom" if saved else "static_copy"
    elif image_kind_from_bytes:
        shape = "local_image_copy"
    else:
        shape = "custom_image"
    return "script_built" if mark.via_script and mark.source != "rendered" else shape


def _displayed(
    page: Page, expected: Expected, rules: Rules, scan: Scan, embeds: list[Embed], needs: list[Need]
) -> BadgeAnalysis:
    signals: list[_Signal] = []
    pending: list[Need] = []
    waiting = False  # a stronger kind signal is still being fetched
    verify_ids: list[str] = [m.verify_id for m in scan.marks if m.verify_id]
    failures: list[str] = []

    # 1. badge script content
    for e in embeds:
        text = _lookup_badge_script(page, e)
        need = Need(NeedKind.BADGE_SCRIPT, e.url)
        if text is not None:
            sig = _script_signal(e.url, text)
            verify_ids.extend(m.group(1).upper() for m in _VERIFY_ID.finditer(text))
            if sig is not None:
                signals.append(sig)
        elif not page.settled(need):
            pending.append(need)
            waiting = True
        elif need.key in page.failed:
            failures.append(f"标识脚本 {e.url} 获取失败：{page.failed[need.key]}")
    # 2. image file
    images_asked = 0
    for mark in scan.marks:
        if mark.img_url is None:
            continue
        if mark.conac_image:
            named = _name_signal(mark.img_url)
            if named:
                signals.append(_Signal(named[0], named[1], "image", mark.evidence, mark))
            continue
        need = Need(NeedKind.IMAGE, mark.img_url)
        data = page.images.get(mark.img_url)
        if data is not None:
            isig = image_signature(data)
            if isig is not None and isig.kind is not None:
                note = (
                    f"{isig.width}×{isig.height} {isig.format}，"
                    f"红色占比 {isig.red_share:.0%}，蓝色占比 {isig.blue_share:.0%}"
                )
                ev = Evidence(f"image:{mark.img_url}", note)
                signals.append(_Signal(isig.kind, isig.error, "image", ev, mark, "bytes"))
                continue
        elif images_asked < rules.badge_max_images and not page.settled(need):
            images_asked += 1
            pending.append(need)
            waiting = True
            continue
        named = _name_signal(mark.img_url)  # bytes failed or undecisive: the file name still speaks
        if named:
            signals.append(_Signal(named[0], named[1], "image", mark.evidence, mark, "name"))
    # 3. verification page
    verify_urls = [m.verify_url for m in scan.marks if m.verify_url]
    if not verify_urls and verify_ids and rules.conac_verify_hosts:
        scheme = urlsplit(page.url).scheme or "http"
        verify_urls = [f"{scheme}://{rules.conac_verify_hosts[0]}/sitename?method=show&id={verify_ids[0]}"]
    identity_problem = ""
    outdated = ""
    want_bszs = not waiting and not any(s.kind for s in signals)
    # The verification page is read whenever there is a unit to compare it with: besides telling a
    # copied badge from the unit's own, it shows a registration outdated by a 机构改革 or a move.
    want_bszs = want_bszs or bool(expected.unit_name)
    for url in verify_urls[:1]:
        doc = _lookup_bszs(page, url)
        need = Need(NeedKind.BSZS, url)
        if doc is not None:
            kind, identity_problem, outdated, ev = _bszs_facts(doc, expected)
            if kind:
                signals.append(_Signal(kind, False, "bszs", ev))
        elif want_bszs and not page.settled(need):
            pending.append(need)
            waiting = True
        elif need.key in page.failed:
            failures.append(f"核验页面 {url} 获取失败：{page.failed[need.key]}")
    # 4. alt / wzades / link text
    for mark in scan.marks:
        kind = _kind_of_words(mark.alt) or _kind_of_words(mark.text)
        if kind:
            signals.append(_Signal(kind, False, "alt", mark.evidence, mark))

    return _decide(
        page,
        expected,
        scan,
        embeds,
        signals,
        pending,
        verify_ids,
        identity_problem,
        failures,
        needs,
        outdated,
    )


_ORDER = {"script": 0, "image": 1, "bszs": 2, "alt": 3}
_COLOUR = {RED: "红色", BLUE: "蓝色"}
_ORIGIN_ZH = {"script": "标识脚本", "image": "标识图片", "bszs": "核验页面", "alt": "图片替代文字或链接文字"}


def _decide(
    page: Page,
    expected: Expected,
    scan: Scan,
    embeds: list[Embed],
    signals: list[_Signal],
    pending: list[Need],
    verify_ids: list[str],
    identity_problem: str,
    failures: list[str],
    needs: list[Need],
    outdated: str = "",
) -> BadgeAnalysis:
    signals.sort(key=lambda s: _ORDER[s.origin])
    best = signals[0] if signals else None
    # A pending stronger signal outranks whatever is available now.
    pending_rank = min(
        (
            _ORDER["script"]
            if n.kind is NeedKind.BADGE_SCRIPT
            else _ORDER["image"]
            if n.kind is NeedKind.IMAGE
            else _ORDER["bszs"]
            for n in pending
        ),
        default=99,
    )
    kind_final = best is not None and _ORDER[best.origin] < pending_rank
    kind = best.kind if best is not None else None

    codes = [e.code for e in embeds] or [e.code for e in scan.embeds]
    want_code = expected.badge_code.strip().upper()
    code = want_code if want_code in codes else (codes[0] if codes else None)
    want_id = expected.badge_verify_id.strip().upper()
    verify_id = want_id if want_id in verify_ids else (verify_ids[0] if verify_ids else None)

    main_mark = (
        best.mark if best is not None and best.mark is not None else (scan.marks[0] if scan.marks else None)
    )
    if main_mark is not None:
        shape = _mark_shape(
            main_mark, best is not None and best.mark is main_mark and best.shape == "bytes", scan.embeds
        )
        source = main_mark.source
        evidence = [main_mark.evidence]
    else:
        e = embeds[0]
        shape = "script_built" if e.external else "embed_code"
        source = e.source
        evidence = [e.evidence]
    if embeds and main_mark is not None and embeds[0].evidence != main_mark.evidence:
        evidence.append(embeds[0].evidence)
    if best is not None and best.evidence is not None and best.evidence not in evidence:
        evidence.append(best.evidence)
    data: dict[str, object] = {
        "kind": kind if kind_final else None,
        "code": code,
        "verify_id": verify_id,
        "shape": shape,
        "source": source,
        "kind_from": best.origin if kind_final and best is not None else None,
    }
    all_needs = needs + pending

    def out(status: Status, reason: str, detail: str) -> BadgeAnalysis:
        return BadgeAnalysis(_verdict(status, reason, detail, evidence, data), all_needs)

    # Whose badge it is comes first: another site's badge is that, whatever its colour or state.
    if want_code and codes and want_code not in codes:
        return out(Status.FAIL, "badge.code_mismatch", f"页面标识代码 {'、'.join(codes)}，登记为 {want_code}")
    if want_id and verify_ids and want_id not in verify_ids:
        return out(Status.FAIL, "badge.id_mismatch", f"页面核验编号 {verify_ids[0]}，登记为 {want_id}")
    if identity_problem:
        return out(Status.FAIL, "badge.id_mismatch", identity_problem)
    if kind_final and best is not None and best.error:
        return out(Status.FAIL, "badge.error_image", f"标识显示为异常图标（依据：{_ORIGIN_ZH[best.origin]}）")
    unit_kind = expected.unit_kind.value if expected.unit_kind is not None else ""
    if kind_final and kind and unit_kind in (RED, BLUE) and kind != unit_kind:
        return out(
            Status.FAIL,
            "badge.wrong_kind",
            f"网站标识为{kind}标识（依据：{_ORIGIN_ZH[best.origin] if best else ''}），单位类别为{unit_kind}",
        )
    if pending:  # what is still being fetched could change the verdict
        return out(
            Status.UNKNOWN,
            "badge.script_unavailable",
            "待获取：" + "、".join(f"{n.kind}:{n.url}" for n in pending),
        )
    if mixed_content(page, embeds, scan):
        return out(
            Status.FAIL,
            "badge.mixed_content",
            f"HTTPS 网页 {page.url} 以 {embeds[0].url} 加载标识脚本，浏览器拦截该脚本，标识不显示",
        )
    if expected.unit_kind is None:  # no unit kind given (inspect without --kind): report, do not judge
        if kind_final and kind and best is not None:
            seen = f"{kind}（{_COLOUR.get(kind, '')}）网站标识（依据：{_ORIGIN_ZH[best.origin]}）"
        else:
            seen = "网站标识，类型无法读取" + (f"（{'；'.join(failures)}）" if failures else "")
        return out(Status.PASS, "badge.displayed", f"已加挂{seen}")
    if unit_kind not in (RED, BLUE):
        return out(Status.PASS, "badge.ok", "已加挂网站标识")
    if not kind_final:
        if failures:
            return out(Status.UNKNOWN, "badge.script_unavailable", "；".join(failures))
        return out(
            Status.UNKNOWN, "badge.kind_unknown", "标识图片、脚本、核验页面和替代文字都无法说明标识类型"
        )
    if outdated:
        return out(Status.WARN, "badge.registration_outdated", outdated)
    basis = _ORIGIN_ZH[best.origin] if best else ""
    return out(Status.PASS, "badge.ok", f"已加挂{kind}网站标识（依据：{basis}）")


def mixed_content(page: Page, embeds: list[Embed], scan: Scan) -> bool:
    """Whether a browser shows nothing of the badge because an ``https`` page loads its script over
    ``http://`` (active mixed content is blocked; images would be upgraded, scripts are not)."""
    if not embeds or urlsplit(page.url).scheme != "https":
        return False
    if not all(e.url.lower().startswith("http://") for e in embeds):
        return False
    # A badge in the markup itself (a static copy) still shows: only the script is blocked.
    return not any(not m.via_script and m.source != "rendered" for m in scan.marks)


def _lookup_badge_script(page: Page, e: Embed) -> str | None:
    text = page.badge_scripts.get(e.url)
    if text is not None:
        return text
    for url, body in page.badge_scripts.items():  # same script under another scheme
        if e.code in url:
            return body
    return None


def _lookup_bszs(page: Page, url: str) -> Document | None:
    doc = page.bszs.get(url)
    if doc is not None:
        return doc
    m = _VERIFY_ID.search(url)
    if m:
        for key, d in page.bszs.items():
            if m.group(1).lower() in key.lower():
                return d
    return None


def check_badge(page: Page, expected: Expected, rules: Rules = DEFAULT_RULES) -> Verdict:
    """Whether the page displays this site's CONAC badge of the unit's kind (see the module docstring)."""
    return analyse_badge(page, expected, rules).verdict


def badge_needs(page: Page, expected: Expected, rules: Rules = DEFAULT_RULES) -> list[Need]:
    """Sub-resources to fetch before the badge verdict can be final (empty when it is)."""
    return analyse_badge(page, expected, rules).needs


analyse = analyse_badge
