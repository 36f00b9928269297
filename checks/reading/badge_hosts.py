"""Where the CONAC hosts occur in a page, and the elements the badge scan looks at (the fast paths).

The badge scan reads *candidate* elements only — scripts, frames, verification links, badge images —
never the whole tree. Which walks are worth doing is decided by C-level substring counts of the hosts
in the source outside scripts (:func:`_present`); verification links are found from where the host
occurs in the source (:func:`_links_near`) instead of a walk over every ``<a>`` of a news page. Each
fast path falls back to the plain walk when the source cannot tell; ``tests/checks/test_speed_paths.py``
proves each gives what the plain walk gives. ``docs/bench/checks.md`` says why each exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

from lxml import etree

from checks.expected import Expected
from checks.page import Page
from checks.reading.lines import LineIndex
from checks.rules import Rules

_SECOND_LEVEL = frozenset({"gov", "com", "edu", "org", "net", "ac", "xn--zfr164b", "xn--55qw42g", "mil"})
_MAX_CANDIDATES = 400


def clean_url(raw: str) -> str:
    # Quirks seen in pasted code: spaces inside src, "&amp;" written twice in a link.
    return raw.strip().replace("&amp;", "&")


def absolute_url(base: str, raw: str) -> str | None:
    raw = clean_url(raw)
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


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def site_key(host: str) -> str:
    """The registrable part of a host name (``www.bd.gov.cn`` → ``bd.gov.cn``)."""
    labels = host.lower().rstrip(".").split(".")
    if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) <= 3:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def site_keys(page: Page, expected: Expected) -> frozenset[str]:
    hosts = {host_of(page.url), host_of(expected.site_url) if expected.site_url else ""}
    hosts.update(d.lower() for d in expected.en_domains)
    return frozenset(site_key(h) for h in hosts if h)


def on_hosts(url: str, hosts: tuple[str, ...]) -> bool:
    host = host_of(url)
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


def _host_count(text: str, needle: str, tails: _Tails) -> int:
    """``text.count(needle)`` for a host variant, read off the page's one letter-case-blind scan for
    the host's tail (:func:`_tail_starts`, shared by every host and variant, and needed anyway for
    the mixed-case test on nearly every page) instead of a scan per variant."""
    tail = _tail_of(needle)
    if tail is None:
        return text.count(needle)
    return _count_at(text, needle, _tail_starts(text, tail[1], tails), tail[0])


def _joined_scripts(scripts: list[etree._Element]) -> str:
    return "\0".join([(el.text or "") + "\n" + (el.get("src") or "") for el in scripts])


def _contains_any(value: str | None, needles: list[str]) -> bool:
    if not value:
        return False
    return any(n in value for n in needles)


def badge_candidates(
    root: etree._Element,
    text: str,
    rules: Rules,
    scripts: list[etree._Element] | None = None,
    lines: LineIndex | None = None,
) -> list[etree._Element]:
    """The elements the badge scan looks at: scripts, frames, verification links, badge images.

    Single-tag ``iter`` walks (lxml's fast path; measured faster than the equivalent XPath with the
    C-level element lookup of :func:`checks.page.parse_html`); a walk whose marker does not occur in the
    source outside scripts is skipped. ``scripts`` is the document's ``<script>`` list when the caller
    already has it (one walk shared with the number checks), ``lines`` the line index of ``text`` when
    it is a document's. Hosts match in any letter case.
    """
    tails: _Tails = {}
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
    verify = _present(text, rules.conac_verify_hosts, script_text, tails)
    conac = _present(text, rules.conac_script_hosts, script_text, tails)
    if verify:
        match = _host_pattern(rules.conac_verify_hosts).search
        areas = any(el.tag == "area" for el in rare)
        near = _links_near(root, text, rules.conac_verify_hosts, lines, tails)
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
    root: etree._Element,
    text: str,
    hosts: tuple[str, ...],
    lines: LineIndex | None = None,
    tails: _Tails | None = None,
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
    tails = {} if tails is None else tails
    positions = sorted(
        {at for pattern in dict.fromkeys(patterns) for at in _tail_starts(text, pattern, tails)}
    )
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


def _present(text: str, hosts: tuple[str, ...], script_text: str, tails: _Tails) -> bool:
    """Whether one of ``hosts`` occurs in the source outside scripts, in any letter case."""
    if any(_outside_scripts(text, v, script_text, _host_count(text, v, tails)) for v in _variants(hosts)):
        return True
    # Mixed case (``Bszs.Conac.cn``) is rare, and a case-blind regex over a whole page costs more than
    # every check together; a pattern that starts at the host's first dot is found by a fast literal
    # search, and the few hits are confirmed by the label before the dot.
    total = sum(_mixed_count(text, h, tails) for h in hosts)
    return bool(total) and total > sum(_mixed_count(script_text, h, tails) for h in hosts)


@lru_cache(maxsize=16)
def _tail_pattern(host: str) -> tuple[str, re.Pattern[str]]:
    head, dot, tail = host.lower().partition(".")
    if not dot:
        return "", re.compile(re.escape(host), re.I)
    classes = "".join(f"[{c}{c.upper()}]" if c.isalpha() else re.escape(c) for c in tail)
    return head, re.compile(r"\." + classes)


def _mixed_count(text: str, host: str, tails: _Tails) -> int:
    head, pattern = _tail_pattern(host)
    n = len(head)
    return sum(1 for at in _tail_starts(text, pattern, tails) if text[at - n : at].lower() == head)


#: Offsets of a tail pattern's matches by (text, pattern), for the texts of one candidate search.
_Tails = dict[tuple[int, re.Pattern[str]], tuple[str, list[int]]]


def _tail_starts(text: str, pattern: re.Pattern[str], tails: _Tails) -> list[int]:
    """Where ``pattern`` (a host's tail, :func:`_tail_pattern`) matches in ``text``: one case-blind scan
    per text, read for every host and variant. ``tails`` lives for one :func:`badge_candidates` call
    (identity-checked: it holds the texts it describes, so an ``id`` cannot be reused meanwhile)."""
    key = (id(text), pattern)
    hit = tails.get(key)
    if hit is not None and hit[0] is text:
        return hit[1]
    starts = [m.start() for m in pattern.finditer(text)]
    tails[key] = (text, starts)
    return starts
