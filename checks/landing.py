"""Landing stubs and loaded fragments: where a visitor's browser goes from the page a server sent.

Many registered home pages are not the page a visitor reads: a ``<meta http-equiv="refresh">``, a
``Refresh`` header, a script that sets ``location``, a frameset or a full-window iframe (registrars'
隐性转发 and old CMS entry pages) send the browser on; footers are often fetched into an empty
``<div>`` by ``$('#footer').load('footer.html')``, ``XMLHttpRequest`` or ``fetch``. Judging the stub
accuses the unit of a missing badge the page it leads to displays.

:func:`find_landing` names where a page leads (a :class:`Landing` with the target, or without one when
only a browser can compute it); :func:`find_includes` lists the fragments a page loads from literal
addresses. Both read the decoded document only (pure, no I/O): the crawler follows, the checks read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from lxml import etree

from checks.page import Document

#: A refresh that fires later than this lets the visitor read the page first: not a stub.
MAX_REFRESH_DELAY_S = 10.0


@dataclass(frozen=True, slots=True)
class Landing:
    """Where a page sends its visitor.

    ``kind`` is ``refresh_header``, ``meta_refresh``, ``script``, ``frameset`` or ``iframe``;
    ``target`` the absolute URL (None when only a browser can compute it); ``evidence`` the markup.
    A ``frameset``/``iframe`` keeps the address bar: the visitor reads the frame's page.
    """

    kind: str
    target: str | None
    evidence: str


# HTML's declarative refresh: a delay (digits, or a fraction) is required; then an optional separator,
# optional "url=", the address with or without quotes. A value without a delay refreshes nothing.
_REFRESH = re.compile(
    r"""^\s*(?P<delay>\d+(?:\.\d*)?|\.\d+)[\d.]*\s*(?:[;,]\s*)?(?:url\s*=\s*)?"""
    r"""(?P<q>['"]?)(?P<url>[^'"]*)(?P=q)\s*;?\s*$""",
    re.I,
)


def _quoted(n: int) -> str:
    """A quoted literal (any of ' " `) captured as ``url{n}``, not the first piece of a concatenation."""
    return rf"""(?P<q{n}>['"`])(?P<url{n}>[^'"`\n]{{1,2000}})(?P=q{n})(?!\s*[+.\[])"""


# A literal address written to the location (window./self./top./parent./document. prefixes) or
# passed to location.replace/assign, window.open or window.navigate.
_LOCATION_LITERAL = re.compile(
    r"(?:\b(?:window|self|top|parent|document)\s*\.\s*)?\blocation(?:\s*\.\s*href)?\s*=\s*(?!=)"
    + _quoted(1)
    + r"|\blocation\s*\.\s*(?:replace|assign)\s*\(\s*"
    + _quoted(2)
    + r"|\bwindow\s*\.\s*(?:open|navigate)\s*\(\s*"
    + _quoted(3),
    re.I,
)
# Any write to the location (literal or not): a stub that only a browser can follow.
_LOCATION_ANY = re.compile(
    r"\blocation(?:\s*\.\s*href)?\s*=\s*(?!=)|\blocation\s*\.\s*(?:replace|assign)\s*\(|"
    r"\bwindow\s*\.\s*(?:open|navigate)\s*\(",
    re.I,
)
_MOBILE = re.compile(r"(?:^|[/.\-_])(?:m|wap|mobile|phone|h5|sj|shouji)(?:[/.\-_]|$)|mobile|/m/", re.I)
_DEVICE_TEST = re.compile(r"useragent|navigator\.platform|screen\.width|ontouchstart|matchmedia", re.I)

# Fragments loaded into the page from literal addresses.
_INCLUDE = re.compile(
    r"\.load\s*\(\s*(?P<q1>['\"])(?P<u1>[^'\"\n]{1,500})(?P=q1)"
    r"|\$\s*\.\s*(?:get|ajax)\s*\(\s*(?P<q2>['\"])(?P<u2>[^'\"\n]{1,500})(?P=q2)"
    r"|\burl\s*:\s*(?P<q3>['\"])(?P<u3>[^'\"\n]{1,500})(?P=q3)"
    r"|\.open\s*\(\s*['\"](?:get|GET)['\"]\s*,\s*(?P<q4>['\"])(?P<u4>[^'\"\n]{1,500})(?P=q4)"
    r"|\bfetch\s*\(\s*(?P<q5>['\"`])(?P<u5>[^'\"`\n]{1,500})(?P=q5)"
    r"|\baxios\s*\.\s*get\s*\(\s*(?P<q6>['\"])(?P<u6>[^'\"\n]{1,500})(?P=q6)",
)
_INCLUDE_HINT = re.compile(r"\.load\s*\(|\$\s*\.\s*(?:get|ajax)|xmlhttprequest|\bfetch\s*\(|axios", re.I)
# Words one of which every include the patterns above find contains (JavaScript is case-sensitive): a
# script without any is passed over by substring tests, cheaper than the hint's search.
_INCLUDE_KEYS = (
    ".load", ".ajax", "XMLHttpRequest", "ActiveXObject", "fetch", "axios", ".get(", ".get (", "$.", "$ ."
)  # fmt: skip
_NOT_MARKUP = re.compile(
    r"\.(?:js|mjs|css|json|jsonp|xml|txt|png|jpe?g|gif|webp|svg|ico|woff2?|ttf|eot|mp4|mp3|pdf|zip)$", re.I
)
MAX_INCLUDES = 6
_FRAME_NAMES = ("main", "mainframe", "content", "contentframe", "body", "index", "right")
_SPACE = re.compile(r"\s+")


def _header(headers: Mapping[str, str], name: str) -> str:
    low = name.lower()
    return next((v for k, v in headers.items() if k.lower() == low), "")


def _absolute(base: str, raw: str) -> str | None:
    """``raw`` resolved against ``base`` when it is a web address (not ``javascript:``, ``#``…)."""
    raw = raw.strip().replace("\\/", "/")
    if (
        not raw
        or raw.startswith("#")
        or raw.lower().startswith(("javascript:", "about:", "data:", "mailto:"))
    ):
        return None
    try:
        url = urljoin(base, raw)
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return url


def _same_page(a: str, b: str) -> bool:
    return a.split("#", 1)[0].rstrip("/") == b.split("#", 1)[0].rstrip("/")


def parse_refresh(value: str) -> tuple[float, str] | None:
    """``(delay, url)`` of a ``Refresh`` header or meta content; None without a URL."""
    m = _REFRESH.match(value or "")
    if m is None or not m.group("url").strip():
        return None
    try:
        delay = float(m.group("delay"))
    except ValueError:
        delay = 0.0
    return delay, m.group("url").strip()


def _visible_chars(tree: etree._Element) -> int:
    parts = _VISIBLE(tree)
    return sum(1 for p in parts for c in str(p) if c.isalnum()) if isinstance(parts, list) else 0


_VISIBLE = etree.XPath(
    "//body//text()[not(ancestor::script or ancestor::style or ancestor::noscript or ancestor::noframes)]"
)


def _links(tree: etree._Element) -> int:
    return sum(
        1
        for a in tree.iter("a")
        if (a.get("href") or "").strip()[:11].lower() not in ("", "#", "javascript:")
    )


def find_landing(doc: Document, headers: Mapping[str, str] | None = None) -> Landing | None:
    """Where the page ``doc`` sends its visitor, or None when the visitor stays on it."""
    base = doc.base_url
    refresh = parse_refresh(_header(headers or {}, "refresh"))
    if refresh and refresh[0] <= MAX_REFRESH_DELAY_S:
        target = _absolute(base, refresh[1])
        if target and not _same_page(target, doc.url):
            return Landing("refresh_header", target, f"Refresh: {_header(headers or {}, 'refresh')}")
    text = doc.text
    low_head = text[:200_000].lower()
    tree = doc.tree
    if "refresh" in low_head:
        for meta in tree.iter("meta"):
            if (meta.get("http-equiv") or "").strip().lower() != "refresh":
                continue
            parsed = parse_refresh(meta.get("content") or "")
            if parsed and parsed[0] <= MAX_REFRESH_DELAY_S:
                target = _absolute(base, parsed[1])
                if target and not _same_page(target, doc.url):
                    return Landing("meta_refresh", target, _markup(meta))
    if "<frameset" in low_head or "<frame " in low_head:
        frame = _main_frame(tree)
        if frame is not None:
            target = _absolute(base, frame.get("src") or "")
            if target:
                return Landing("frameset", target, _markup(frame))
    chars = -1
    links = -1
    if "<iframe" in low_head:
        chars, links = _visible_chars(tree), _links(tree)
        if chars < 200 and links <= 3:
            # Only a frame that fills the window is the page (a small one holds a footer or a widget).
            frames = [f for f in tree.iter("iframe") if _absolute(base, f.get("src") or "")]
            if frames and _fills_window(frames[0]):
                target = _absolute(base, frames[0].get("src") or "")
                if target:
                    return Landing("iframe", target, _markup(frames[0]))
    if "location" in low_head or "window.open" in low_head or "navigate" in low_head:
        if chars < 0:
            chars, links = _visible_chars(tree), _links(tree)
        return _script_landing(doc, base, bare=chars < 200 and links <= 2)
    return None


def _script_landing(doc: Document, base: str, bare: bool) -> Landing | None:
    """A location change by script. On a bare page any one counts; on a page with content only an
    unconditional one at the top level of a script (a search box's handler does not move anyone)."""
    sources = [el.text or "" for el in doc.tree.iter("script") if not el.get("src")]
    for body in doc.tree.iter("body"):
        if body.get("onload"):
            sources.append(body.get("onload") or "")
    found: list[tuple[str, str]] = []
    computed = ""
    for src in sources:
        if not _LOCATION_ANY.search(src):
            continue
        for m in _LOCATION_LITERAL.finditer(src):
            if _where(src, m.start()) is None:
                continue  # in a comment
            if not bare and not _top_level_unconditional(src, m.start()):
                continue
            raw = m.group("url1") or m.group("url2") or m.group("url3") or ""
            target = _absolute(base, raw)
            if target and not _same_page(target, doc.url):
                found.append((target, src[max(0, m.start() - 60) : m.end() + 20]))
        if bare and not found and not computed:
            for m2 in _LOCATION_ANY.finditer(src):
                if _where(src, m2.start()) is not None and "reload" not in src[m2.start() : m2.end() + 20]:
                    computed = src[max(0, m2.start() - 80) : m2.end() + 80]
                    break
    if found:
        desktop = [f for f in found if not _MOBILE.search(urlsplit(f[0]).netloc + urlsplit(f[0]).path)]
        target, excerpt = (desktop or found)[0]
        if len(found) > 1 and not desktop and any(_DEVICE_TEST.search(s) for s in sources):
            return Landing("script", None, excerpt)  # every branch is for phones: let a browser say
        return Landing("script", target, excerpt)
    if computed:
        return Landing("script", None, computed)
    return None


def _where(src: str, pos: int) -> tuple[int, int, bool] | None:
    """``(block depth, start of the statement, inside a string)`` at ``pos`` in script ``src``; None
    when ``pos`` lies in a comment (a location write there does nothing; one in a string may still run,
    as ``setTimeout("location.href='…'", 0)``)."""
    depth = 0
    quote = ""
    i = 0
    stmt_start = 0
    while i < pos:
        c = src[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "'\"`":
            quote = c
        elif c == "/" and src.startswith("//", i):
            j = src.find("\n", i)
            if j < 0 or j >= pos:
                return None
            i = j
            continue
        elif c == "/" and src.startswith("/*", i):
            j = src.find("*/", i + 2)
            if j < 0 or j + 2 > pos:
                return None
            i = j + 2
            continue
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            stmt_start = i + 1
        elif c in ";\n" and depth == 0:
            stmt_start = i + 1
        i += 1
    return depth, stmt_start, bool(quote)


def _top_level_unconditional(src: str, pos: int) -> bool:
    """Whether ``pos`` in script ``src`` sits in code outside any block and not in a conditional."""
    where = _where(src, pos)
    if where is None or where[0] > 0 or where[2]:
        return False
    head = src[where[1] : pos]
    return not re.search(r"\bif\b|\belse\b|\?|&&|\|\||\bfunction\b|=>|\bcase\b", head)


def _fills_window(frame: etree._Element) -> bool:
    style = (frame.get("style") or "").replace(" ", "").lower()
    width, height = (frame.get("width") or "").strip(), (frame.get("height") or "").strip()
    return (width == "100%" and height == "100%") or ("height:100%" in style and "width:100%" in style)


def _main_frame(tree: etree._Element) -> etree._Element | None:
    """The frame of a frameset that holds the page: named like the main one, else the largest share."""
    frames = [f for f in tree.iter("frame") if (f.get("src") or "").strip()]
    if not frames:
        return None
    for f in frames:
        if (f.get("name") or f.get("id") or "").strip().lower() in _FRAME_NAMES:
            return f
    best, best_share = frames[0], -1.0
    for fs in tree.iter("frameset"):
        spec = fs.get("rows") or fs.get("cols") or ""
        kids = [k for k in fs if isinstance(k.tag, str) and k.tag in ("frame", "frameset")]
        for share, kid in zip(_shares(spec, len(kids)), kids, strict=False):
            if kid.tag == "frame" and (kid.get("src") or "").strip() and share > best_share:
                best, best_share = kid, share
    return best


def _shares(spec: str, n: int) -> list[float]:
    """Relative sizes of ``rows``/``cols`` entries (``*`` takes what is left, pixels count as small)."""
    out: list[float] = []
    for part in spec.split(",")[:n]:
        p = part.strip()
        if p.endswith("%"):
            try:
                out.append(float(p[:-1]))
            except ValueError:
                out.append(0.0)
        elif p.endswith("*"):
            out.append(50.0)
        else:
            out.append(1.0)
    return out


def _markup(el: etree._Element) -> str:
    try:
        return str(etree.tostring(el, encoding="unicode", with_tail=False))[:400]
    except (ValueError, TypeError):
        return ""


def find_includes(doc: Document) -> list[str]:
    """Addresses of the markup fragments the page's inline scripts load into it (literal ones only;
    scripts, styles, data and images left out), in page order, at most :data:`MAX_INCLUDES`."""
    memo: list[str] | None = doc.memo.get("includes")
    if memo is not None:
        return memo
    out: list[str] = []
    for src in _inline_scripts(doc):
        if not any(k in src for k in _INCLUDE_KEYS) or not _INCLUDE_HINT.search(src):
            continue
        for m in _INCLUDE.finditer(src):
            raw = next((g for g in m.groups()[1::2] if g), "")
            raw = raw.split(" ", 1)[0]  # jQuery's load('footer.html #part')
            url = _absolute(doc.base_url, raw)
            if url is None or _NOT_MARKUP.search(urlsplit(url).path) or url in out:
                continue
            out.append(url)
            if len(out) >= MAX_INCLUDES:
                break
    doc.memo["includes"] = out
    return out


def _inline_scripts(doc: Document) -> Iterator[str]:
    # The includes are in inline scripts, a few hundred bytes of a 40 KB page: reading only those
    # (from the script list the other checks share) is what keeps this finder cheap.
    for el in doc.scripts_and_metas():
        if el.tag == "script" and not el.get("src") and el.text:
            yield el.text
