"""The scripts of a page as the number checks read them: which run, which were captured, what they write.

Same-site external scripts that were not captured may write the footer (the number checks ask for
them); scripts of other hosts that are not known to leave the page alone, and inline or captured
scripts whose written markup static evaluation cannot reproduce, are what only a browser can settle.
What the scripts write (:mod:`checks.badge_js`) is evaluated once per page and set of captured scripts
and shared by the three number checks (kept in ``Page.memo``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from urllib.parse import urljoin

from checks.badge_js import inserted_markup
from checks.landing import find_includes
from checks.numbers import ICP_PATTERN, POLICE_PATTERN, SITE_CODE_LABEL_PATTERN
from checks.page import Document, Need, NeedKind, Page
from checks.reading.contexts import trigger_contexts

_JS_TYPES = frozenset({"", "text/javascript", "application/javascript", "module", "text/ecmascript",
                       "application/x-javascript", "text/jscript", "javascript"})  # fmt: skip


_HOST = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//(?:[^/?#@]*@)?(\[[^\]]*\]|[^/?#:]*)")


def _host(url: str) -> str:
    # A regex instead of urlsplit().hostname: this runs for every script of every page.
    m = _HOST.match(url.strip())
    return m.group(1).rstrip(".").lower() if m else ""


def _resolve(base: str, origin: str, ref: str) -> str:
    """``urljoin(base, ref)`` with fast paths for the forms script ``src`` takes."""
    if ref.startswith(("http://", "https://")):
        return ref
    if ref.startswith("//"):
        return base.split(":", 1)[0] + ":" + ref
    if ref.startswith("/") and origin:
        return origin + ref
    return urljoin(base, ref)


def same_site(url: str, page_url: str) -> bool:
    """Whether ``url`` is served by the page's own site (same host, or a sub-host of it without www)."""
    host, own = _host(url), _host(page_url)
    if not host or not own:
        return False
    base = own[4:] if own.startswith("www.") else own
    return host in (own, base) or host.endswith("." + base)


def _live_scripts(doc: Document) -> list[tuple[str, str]]:
    """``(src, inline_text)`` of every executable ``<script>`` in live markup (src absolute, or "")."""
    out: list[tuple[str, str]] | None = doc.memo.get("live_scripts")
    if out is None:
        out = doc.memo["live_scripts"] = _read_scripts(doc)
    return out


def _read_scripts(doc: Document) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    base = doc.base_url
    m = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*", base)
    origin = m.group(0) if m else ""
    for el in doc.scripts_and_metas():
        if el.tag != "script":
            continue
        if (el.get("type") or "").strip().lower() not in _JS_TYPES:
            continue
        src = (el.get("src") or "").strip()
        if src:
            out.append((_resolve(base, origin, html.unescape(src) if "&" in src else src), ""))
        else:
            out.append(("", el.text or ""))
    return out


def unread_scripts(page: Page) -> tuple[str, ...]:
    """Same-site external scripts the page runs that were not captured (fetched or not), in page order."""
    seen: dict[str, None] = {}
    own = _host(page.url)
    base = own[4:] if own.startswith("www.") else own
    for src, _ in _live_scripts(page.home):
        if src and src not in page.scripts and own:
            host = _host(src)
            if host in (own, base) or host.endswith("." + base):
                seen.setdefault(src)
    return tuple(seen)


def script_needs(page: Page) -> tuple[str, ...]:
    """Same-site scripts worth fetching for the number checks: none when every identifier shows in
    the static page (or a rendered DOM exists), else the unread scripts not yet settled. The three
    number checks ask in turn: kept in ``page.memo`` while the capture is unchanged (captures only
    grow, so their sizes tell a change)."""
    if page.exhausted or page.rendered is not None:
        return ()
    state = (len(page.scripts), len(page.failed))
    hit: tuple[tuple[int, int], tuple[str, ...]] | None = page.memo.get("script_needs")
    if hit is None or hit[0] != state:
        hit = page.memo["script_needs"] = (state, _script_needs(page))
    return hit[1]


def _script_needs(page: Page) -> tuple[str, ...]:
    unread = [u for u in unread_scripts(page) if not page.settled(Need(NeedKind.SCRIPT, u))]
    if not unread or _shows_all_numbers(page.home):
        return ()
    return tuple(unread)


# Scripts of other hosts that never write a footer: analytics, CONAC's own badge and beacons, the
# 找错 widget, share buttons, and the libraries templates load from CDNs.
_INERT_HOSTS = re.compile(
    r"(?:^|\.)(?:conac\.cn|cnzz\.com|51\.la|baidu\.com|bdstatic\.com|bdimg\.com|google-analytics\.com|"
    r"googletagmanager\.com|kaipuyun\.cn|www\.gov\.cn|360\.cn|12377\.cn|growingio\.com|qq\.com)$",
    re.I,
)
_LIBRARY = re.compile(
    r"(?:^|/)(?:jquery|bootstrap|swiper|layer|laydate|echarts|html5shiv|respond|modernizr|polyfill|zepto|"
    r"lodash|moment|axios|popper|require|sea)(?:[-.][\w.-]*)?\.js$",
    re.I,
)


def foreign_scripts(page: Page) -> tuple[str, ...]:
    """External scripts of other hosts the page runs that may write into it (not analytics, CONAC or a
    known library): a platform's shared footer script, a bundle on a CDN. Not fetched: a rendering
    settles them."""
    hit: tuple[str, ...] | None = page.memo.get("foreign_scripts")
    if hit is not None:
        return hit
    own = _host(page.url)
    base = own[4:] if own.startswith("www.") else own
    found: dict[str, None] = {}
    for src, _ in _live_scripts(page.home):
        if not src:
            continue
        host = _host(src)
        if not host or host in (own, base) or host.endswith("." + base) or _INERT_HOSTS.search(host):
            continue
        if _LIBRARY.search(src.split("?", 1)[0]):
            continue
        found.setdefault(src)
    page.memo["foreign_scripts"] = result = tuple(found)
    return result


def opaque_scripts(page: Page) -> tuple[str, ...]:
    """Scripts whose effect on the page only a browser can tell: inline or captured scripts that
    write markup static evaluation cannot reproduce (not the date widget), and :func:`foreign_scripts`.
    A check that finds nothing must not call its item missing while any of them runs."""
    return (*script_docs_and_dynamic(page)[1], *foreign_scripts(page))


def include_needs(page: Page) -> list[Need]:
    """The fragments the page loads into itself, still to be fetched (as frames: they are documents)."""
    if page.exhausted or page.rendered is not None:
        return []
    return [n for url in find_includes(page.home) if not page.settled(n := Need(NeedKind.FRAME, url))]


def _shows_all_numbers(doc: Document) -> bool:
    """Whether the static text shows an ICP number, a 公安 number and a 标识码 (kept in ``doc.memo``)."""
    hit: bool | None = doc.memo.get("shows_all_numbers")
    if hit is not None:
        return hit
    contexts = [c.text for c in trigger_contexts(doc).contexts]
    patterns = (ICP_PATTERN, POLICE_PATTERN, SITE_CODE_LABEL_PATTERN)
    shown = all(any(p.search(t) for t in contexts) for p in patterns)
    doc.memo["shows_all_numbers"] = shown
    return shown


# Dynamic writes that cannot carry a footer: the date/clock widget of every government header, and
# the loaders of analytics counters (CNZZ's document.write of its own script with the page's protocol).
_HARMLESS_WRITE = re.compile(
    r"\bDate\b|getFullYear|getMonth|getDay|getHours|toLocale\w*String|星期|week|"
    r"cnzz\.com|cnzz_|hm\.baidu\.com|51\.la|google-analytics\.com|googletagmanager\.com",
    re.I,
)


def _only_harmless(count: int, excerpts: Sequence[str]) -> bool:
    """Whether every dynamic write of a script is a clock or a counter's loader (all were quoted)."""
    return count == len(excerpts) and all(_HARMLESS_WRITE.search(e) for e in excerpts)


def script_documents(page: Page) -> list[tuple[str, Document]]:
    """``(source name, document)`` of the markup each live script of the page writes."""
    return script_docs_and_dynamic(page)[0]


_ScriptDocs = tuple[list[tuple[str, Document]], list[str]]


def script_docs_and_dynamic(page: Page) -> _ScriptDocs:
    """Markup written by the page's scripts (inline and captured external) as documents to read;
    evaluated once per page and set of captured scripts (the three checks share it)."""
    captured = frozenset(page.scripts)
    hit: tuple[frozenset[str], _ScriptDocs] | None = page.memo.get("script_docs")
    if hit is not None and hit[0] == captured:
        return hit[1]
    result = _evaluate_scripts(page)
    page.memo["script_docs"] = (captured, result)
    return result


def _evaluate_scripts(page: Page) -> _ScriptDocs:
    docs: list[tuple[str, Document]] = []
    dynamic: list[str] = []
    for n, (src, inline) in enumerate(_live_scripts(page.home)):
        code = page.scripts.get(src, "") if src else inline
        if not code:
            continue
        name = f"script:{src}" if src else "home"
        label = src or f"inline script #{n + 1}"
        out = inserted_markup(code)
        # A library's sinks are generic (jQuery's own .html()): only what the page's code does counts.
        library = bool(src) and bool(_LIBRARY.search(src.split("?", 1)[0]))
        if out.dynamic and not library and not _only_harmless(out.dynamic, out.dynamic_excerpts):
            dynamic.append(label)
        if out.markup:
            docs.append((name, Document(url=src or page.url, text=out.markup)))
    return docs, dynamic
