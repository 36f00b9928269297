"""The badge scan: every badge candidate a page shows, in its home page, frames, scripts and rendered DOM.

Reads only *live* markup (lxml never yields elements inside comments; ``<noscript>``/``<template>``
content and ``href="#"`` placeholders are ignored) of the home page, of what inline and same-site
external scripts would write (static evaluation, :mod:`checks.badge_js`), of iframes and of a
browser-rendered DOM when the crawler has one. The result (:class:`BadgeScan`) lists the CONAC scripts
the page loads (:class:`Embed`), the badges it displays (:class:`Mark`), badge-related code only a
browser can run, and the frames and scripts still to read. The candidates themselves are found by the
fast paths of :mod:`checks.reading.badge_hosts`. Nothing here judges.

One module a little over 500 lines: the scan of a document and the static evaluation of the scripts it
runs feed one another (a script's output is scanned like the page), and splitting them would pass the
scan's whole state across a module boundary.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from lxml import etree

from checks.badge_js import inserted_markup
from checks.expected import Expected
from checks.landing import find_includes
from checks.numbers import BADGE_CODE_PATTERN
from checks.page import Document, Need, NeedKind, Page, parse_html
from checks.reading.badge_hosts import (
    absolute_url,
    badge_candidates,
    clean_url,
    host_of,
    on_hosts,
    site_key,
    site_keys,
)
from checks.reading.lines import lines_of
from checks.rules import Rules
from checks.verdict import Evidence

IMAGE_NAME = re.compile(r"(?:^|/)(red|blue)(_error)?\.png$", re.I)
VERIFY_ID = re.compile(r"[?&;]id=([0-9A-Fa-f]{32})(?![0-9A-Fa-f])")
_JS_TYPES = re.compile(r"^\s*$|javascript|ecmascript|^\s*module\s*$|jscript", re.I)
_ESCAPE_HINT = re.compile(r"%[0-9a-f]{2}|\\x[0-9a-f]{2}|\\u[0-9a-f]{4}|fromcharcode|&#", re.I)
# Libraries never write a footer: not worth a fetch.
_LIBRARY = re.compile(
    r"(?:^|[/_.-])(?:jquery|bootstrap|swiper|layer|echarts|vue|react|angular|axios|lodash|moment|"
    r"html5shiv|respond|modernizr|polyfill|superslide|jquery\.[\w.-]+)[\w.-]*\.js$",
    re.I,
)
_FOOTERISH = re.compile(r"foot|bottom|bot|copyright|banquan|bq|common|public|gonggong|tail|wei|db", re.I)
SPACES = re.compile(r"\s+")
_EXCERPT_MAX = 800
_MAX_DEPTH = 3


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


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where the markup being scanned comes from."""

    source: str  # home / frame / rendered / script: the evidence's document
    evaluate: bool  # False for a rendered DOM: its scripts already ran
    depth: int = 0  # how many script evaluations deep
    wrapper: etree._Element | None = None  # the inline script that wrote it (its source is the evidence)
    wrapper_doc: Document | None = None  # … and the document holding that script
    wrapper_async: bool = False  # written by an async/deferred external script
    script_url: str = ""  # the external script that wrote it


def _scan_doc(
    ctx: _Ctx, doc: Document, root: etree._Element, origin: _Origin, text: str | None = None
) -> None:
    """Add what ``root`` holds to ``ctx.scan``; ``text`` is its source (``doc.text`` when omitted)."""
    source, wrapper, wrapper_doc = origin.source, origin.wrapper, origin.wrapper_doc
    script_url, wrapper_async = origin.script_url, origin.wrapper_async
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
    lines = lines_of(doc) if text is None else None
    for el in badge_candidates(root, doc.text if text is None else text, rules, shared, lines):
        tag = el.tag
        if tag == "script":
            if _not_live(el):
                continue
            src = el.get("src")
            if src is not None:
                url = absolute_url(base, src)
                if url is None:
                    continue
                # An async/deferred CONAC script can still fill an existing _ideConac span, but its
                # document.write fallback is ignored: without the span it never renders.
                deferred = el.get("async") is not None or el.get("defer") is not None
                asynchronous = wrapper_async or (deferred and not _has_span(root))
                if on_hosts(url, rules.conac_script_hosts):
                    m = BADGE_CODE_PATTERN.search(url)
                    if m:
                        code = "CA" + m.group(1)
                        scan.embeds.append(
                            Embed(code, url, asynchronous, source, evidence_for(el, code), bool(script_url))
                        )
                        found_embed_here = True
                    continue
                if (
                    site_key(host_of(url)) in ctx.site_keys
                    and not _LIBRARY.search(urlsplit(url).path)
                    and url not in scan.scripts
                ):
                    scan.scripts.append(url)
                    scan.script_tags[url] = evidence_for(el, clean_url(src)[:80])
                    if el.get("async") is not None or el.get("defer") is not None:
                        # document.write from an async/deferred external script is ignored by browsers.
                        scan.async_scripts.add(url)
                continue
            if not origin.evaluate or origin.depth >= _MAX_DEPTH:
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
            # ``async`` has no effect on an inline script: only the enclosing external script counts.
            # (Built directly, not with dataclasses.replace: this runs for most inline scripts.)
            writer = _Origin(
                source, True, origin.depth, el if wrapper is None else wrapper, wrapper_doc or doc,
                wrapper_async, script_url,
            )  # fmt: skip
            _evaluate_script(ctx, doc, code_text, writer, has_marker)
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
            url = absolute_url(base, src)
            if url is None:
                continue
            conac = on_hosts(url, rules.conac_script_hosts)
            if conac and not IMAGE_NAME.search(urlsplit(url).path):
                continue  # some other CONAC image (analytics pixel)
            pending_marks.append(
                Mark(
                    None,
                    None,
                    url,
                    _alt(el),
                    "",
                    source,
                    evidence_for(el, clean_url(src)[:60]),
                    conac,
                    False,
                )
            )
        elif tag in ("iframe", "frame"):
            if _not_live(el):
                continue
            url = absolute_url(base, el.get("src") or "")
            if url and site_key(host_of(url)) in ctx.site_keys and url not in scan.frames and url != base:
                scan.frames.append(url)
                scan.frame_tags[url] = evidence_for(el, clean_url(el.get("src") or "")[:80])
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
    href = clean_url(href)
    low = href.lower()
    if low.startswith("javascript"):
        # ``javascript:window.open('//bszs.conac.cn/…')``: the URL inside is what opens.
        m = re.search(r"""['"]((?:https?:)?//[^'"\s]+)""", href)
        if not m:
            return None
        href = m.group(1)
    url = absolute_url(base, href)
    if url is None or not on_hosts(url, rules.conac_verify_hosts):
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
    m = VERIFY_ID.search(url)
    if a.tag == "area":
        # A hot spot has no content: what it shows is the map's picture, what it says is its alt.
        img = _map_image(a)
        text = SPACES.sub(" ", a.get("alt") or a.get("title") or "").strip()
    else:
        img = next((i for i in a.iter("img") if i.get("src") or i.get("data-src")), None)
        text = SPACES.sub(" ", a.text_content() or "").strip()
    img_url = absolute_url(base, (img.get("src") or img.get("data-src") or "")) if img is not None else None
    if img_url is None and not text:
        return None  # an empty link shows nothing
    conac = img_url is not None and on_hosts(img_url, ctx.rules.conac_script_hosts)
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


def _evaluate_script(ctx: _Ctx, doc: Document, code_text: str, writer: _Origin, has_marker: bool) -> None:
    """Scan what ``code_text`` writes (static evaluation); ``writer`` says which script wrote it."""
    source, wrapper, script_url = writer.source, writer.wrapper, writer.script_url
    out = inserted_markup(code_text)
    before = (len(ctx.scan.embeds), len(ctx.scan.marks))
    if out.markup.strip() and "<" in out.markup:
        sub = parse_html(out.markup)
        inner = _Origin(
            source, True, writer.depth + 1, wrapper, writer.wrapper_doc if wrapper is not None else None,
            writer.wrapper_async, script_url,
        )  # fmt: skip
        _scan_doc(ctx, doc, sub, inner, out.markup)
    produced = (len(ctx.scan.embeds), len(ctx.scan.marks)) != before
    if has_marker and not produced:
        # Badge-related code whose output static reading cannot reproduce: only a browser can tell.
        if script_url:
            excerpt = (
                out.dynamic_excerpts[0] if out.dynamic_excerpts else _around_marker(code_text, ctx.rules)
            )
            ctx.scan.dynamic.append(Evidence(f"script:{script_url}", excerpt))
        elif wrapper is not None and writer.wrapper_doc is not None:
            ctx.scan.dynamic.append(
                _with_source(_locate(writer.wrapper_doc, wrapper, _wrapper_needle(wrapper)), source)
            )


def _around_marker(text: str, rules: Rules) -> str:
    low = text.lower()
    idx = max(low.find("conac"), low.find("_ideconac"))
    return text[max(0, idx - 150) : idx + 250] if idx >= 0 else text[:300]


def _scan_script(ctx: _Ctx, url: str, text: str, asynchronous: bool) -> None:
    doc = Document(url=url, text="")
    writer = _Origin("script", evaluate=True, wrapper_doc=doc, wrapper_async=asynchronous, script_url=url)
    _evaluate_script(ctx, doc, text, writer, _marker(text, ctx.rules))


@dataclass(slots=True)
class BadgeScan:
    """What the scan of every available document found, the documents it still needs to read
    (``needs``: frames and same-site scripts) and those that failed (``failed``, as ``url: why``)."""

    scan: Scan
    needs: list[Need]
    failed: list[str]


def scan_badge(page: Page, expected: Expected, rules: Rules) -> BadgeScan:
    """Scan every available document for badge candidates.

    The static pass reads the home page, then (only if it shows no badge) its same-site frames, then
    its same-site external scripts. A rendered DOM, when present and showing a badge, is the best
    evidence of what a visitor sees; the static pass still contributes the badge scripts it loads.
    """
    ctx = _Ctx(page, expected, rules, site_keys(page, expected), Scan())
    needs: list[Need] = []
    failed: list[str] = []
    _static_pass(ctx, needs, failed)
    if page.rendered is None:
        return BadgeScan(ctx.scan, needs, failed)
    rctx = _Ctx(page, expected, rules, ctx.site_keys, Scan())
    _scan_doc(rctx, page.rendered, page.rendered.tree, _Origin("rendered", evaluate=False))
    if rctx.scan.marks:
        codes = {x.code for x in rctx.scan.embeds}
        rctx.scan.embeds.extend(e for e in ctx.scan.embeds if e.code not in codes)
        return BadgeScan(rctx.scan, [], [])
    ctx.scan.dynamic.clear()  # the browser ran those scripts: what they wrote is in the rendered DOM
    return BadgeScan(ctx.scan, needs, failed)


def _static_pass(ctx: _Ctx, needs: list[Need], failed: list[str]) -> None:
    page, rules, scan = ctx.page, ctx.rules, ctx.scan
    _scan_doc(ctx, page.home, page.home.tree, _Origin("home", evaluate=True))
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
            _scan_doc(ctx, frame, frame.tree, _Origin("frame", evaluate=True))
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
