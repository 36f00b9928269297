"""The badge facts: the scan, and what every source says about the badge's kind and owner.

:func:`read_badge` gives :class:`BadgeFacts`: the candidates of :mod:`checks.reading.badge_scan`, and —
when a badge is displayed — every kind signal that can be read now (the badge script's content, the
image file's bytes or name, the verification page, alt/``wzades``/link text), what the verification page
says (:class:`BszsFacts`), and the sub-resources whose signal is still pending (a stronger signal not
fetched yet makes the verdict wait instead of resting on a weaker one). Nothing here judges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from checks.badge_image import image_signature
from checks.expected import Expected, UnitKind
from checks.numbers import BADGE_CODE_PATTERN
from checks.page import Document, Need, NeedKind, Page
from checks.reading.badge_scan import IMAGE_NAME, SPACES, VERIFY_ID, Embed, Mark, Scan, scan_badge
from checks.rules import Rules
from checks.verdict import Evidence

RED = UnitKind.PARTY_GOV.value  # 党政机关: red badge
BLUE = UnitKind.INSTITUTION.value  # 事业单位: blue badge

_SCRIPT_IMAGE = re.compile(r"(red|blue)(_error)?\.png", re.I)
_BSZS_KIND = re.compile(r"(?:类型|类别|性质)\s*[:：]?\s*(党政机关|事业单位)")
_BSZS_NAME = re.compile(
    r"(?:单位名称|机构名称|开办单位|主办单位|开办主体(?:名称)?)\s*[:：]?\s*([^\s:：|]{2,60})"
)
# Labels and values sit in table cells (no colon) or in "label：value" lines.
_BSZS_DOMAINS = re.compile(r"(?:网站域名|域名|网址|网站地址)\s*[:：]?\s*([^\n]{0,400})")
_HOSTLIKE = re.compile(r"(?:[\w\u4e00-\u9fff-]+\.)+[\w\u4e00-\u9fff-]{2,}", re.U)


@dataclass(slots=True)
class KindSignal:
    """One source's word on the badge's kind: ``origin`` script / image / bszs / alt."""

    kind: str | None
    error: bool
    origin: str
    evidence: Evidence | None = None
    mark: Mark | None = None
    shape: str = ""  # "bytes" when an image file's bytes spoke, "name" when its file name did


def kind_of_words(text: str) -> str | None:
    red, blue = RED in text, BLUE in text
    if red != blue:
        return RED if red else BLUE
    return None


def _script_signal(url: str, text: str) -> KindSignal | None:
    names = {(m.group(1).lower(), bool(m.group(2))) for m in _SCRIPT_IMAGE.finditer(text)}
    colours = {c for c, _ in names}
    if len(colours) != 1:
        return None
    colour = colours.pop()
    error = all(e for _, e in names)
    m = _SCRIPT_IMAGE.search(text)
    idx = m.start() if m else 0
    ev = Evidence(f"script:{url}", text[max(0, idx - 200) : idx + 100], max(0, idx - 200), idx + 100)
    return KindSignal(RED if colour == "red" else BLUE, error, "script", ev)


def _name_signal(url: str) -> tuple[str, bool] | None:
    m = IMAGE_NAME.search(urlsplit(url).path)
    if not m:
        return None
    return (RED if m.group(1).lower() == "red" else BLUE), bool(m.group(2))


@dataclass(frozen=True, slots=True)
class BszsFacts:
    """What a verification page (核验页面) says: the kind, the badge codes (证书编号), the unit's name
    (None when the page has no name field), the website domains it lists (lower case, ``www.``
    dropped), and its text (whitespace folded)."""

    kind: str | None
    codes: frozenset[str]
    unit_name: str | None
    domains: frozenset[str]
    text: str
    evidence: Evidence


def read_bszs(doc: Document) -> BszsFacts:
    """The facts of a verification page."""
    text = SPACES.sub(" ", " ".join(doc.tree.itertext()))
    m = _BSZS_KIND.search(text)
    kind = m.group(1) if m else kind_of_words(text)
    codes = frozenset("CA" + c for c in BADGE_CODE_PATTERN.findall(text))
    pos = m.start() if m else 0
    evidence = Evidence("bszs", text[max(0, pos - 200) : pos + 200])
    nm = _BSZS_NAME.search(text)
    listed: set[str] = set()
    for dm in _BSZS_DOMAINS.finditer(text):
        listed.update(h.lower().removeprefix("www.") for h in _HOSTLIKE.findall(dm.group(1)))
    return BszsFacts(kind, codes, nm.group(1) if nm else None, frozenset(listed), text, evidence)


@dataclass(slots=True)
class BadgeFacts:
    """Everything read about the badge of one page (see the module docstring).

    ``needs``/``failed``: documents the scan still needs (frames, same-site scripts) and those that
    failed. ``embeds``: the CONAC scripts that run (not async). The rest is read only when a badge is
    displayed: ``signals`` (kind signals available now), ``pending`` (signal sources still to fetch),
    ``verify_ids`` (verification ids in links and badge scripts), ``failures`` (signal sources that
    failed, in words), ``bszs`` (the verification page, when read).
    """

    scan: Scan
    needs: list[Need]
    failed: list[str]
    embeds: list[Embed]
    signals: list[KindSignal] = field(default_factory=list)
    pending: list[Need] = field(default_factory=list)
    verify_ids: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    bszs: BszsFacts | None = None

    @property
    def displayed(self) -> bool:
        """A badge is shown (a mark, or a CONAC script that runs)."""
        return bool(self.scan.marks or self.embeds)


def read_badge(page: Page, expected: Expected, rules: Rules) -> BadgeFacts:
    """The badge facts of ``page`` (one scan; the kind signals only when a badge is displayed)."""
    found = scan_badge(page, expected, rules)
    facts = BadgeFacts(
        found.scan, found.needs, found.failed, [e for e in found.scan.embeds if not e.asynchronous]
    )
    if facts.displayed:
        _read_signals(page, expected, rules, facts)
    return facts


def _read_signals(page: Page, expected: Expected, rules: Rules, facts: BadgeFacts) -> None:
    """Fill the kind-signal fields of ``facts``, strongest source first (see :class:`BadgeFacts`)."""
    signals: list[KindSignal] = []
    pending: list[Need] = []
    waiting = False  # a stronger kind signal is still being fetched
    verify_ids: list[str] = [m.verify_id for m in facts.scan.marks if m.verify_id]
    failures: list[str] = []

    # 1. badge script content
    for e in facts.embeds:
        text = _lookup_badge_script(page, e)
        need = Need(NeedKind.BADGE_SCRIPT, e.url)
        if text is not None:
            sig = _script_signal(e.url, text)
            verify_ids.extend(m.group(1).upper() for m in VERIFY_ID.finditer(text))
            if sig is not None:
                signals.append(sig)
        elif not page.settled(need):
            pending.append(need)
            waiting = True
        elif need.key in page.failed:
            failures.append(f"标识脚本 {e.url} 获取失败：{page.failed[need.key]}")
    # 2. image file
    images_asked = 0
    for mark in facts.scan.marks:
        if mark.img_url is None:
            continue
        if mark.conac_image:
            named = _name_signal(mark.img_url)
            if named:
                signals.append(KindSignal(named[0], named[1], "image", mark.evidence, mark))
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
                signals.append(KindSignal(isig.kind, isig.error, "image", ev, mark, "bytes"))
                continue
        elif images_asked < rules.badge_max_images and not page.settled(need):
            images_asked += 1
            pending.append(need)
            waiting = True
            continue
        named = _name_signal(mark.img_url)  # bytes failed or undecisive: the file name still speaks
        if named:
            signals.append(KindSignal(named[0], named[1], "image", mark.evidence, mark, "name"))
    # 3. verification page
    verify_urls = [m.verify_url for m in facts.scan.marks if m.verify_url]
    if not verify_urls and verify_ids and rules.conac_verify_hosts:
        scheme = urlsplit(page.url).scheme or "http"
        verify_urls = [f"{scheme}://{rules.conac_verify_hosts[0]}/sitename?method=show&id={verify_ids[0]}"]
    bszs: BszsFacts | None = None
    want_bszs = not waiting and not any(s.kind for s in signals)
    # The verification page is read whenever there is a unit to compare it with: besides telling a
    # copied badge from the unit's own, it shows a registration outdated by a 机构改革 or a move.
    want_bszs = want_bszs or bool(expected.unit_name)
    for url in verify_urls[:1]:
        doc = _lookup_bszs(page, url)
        need = Need(NeedKind.BSZS, url)
        if doc is not None:
            bszs = read_bszs(doc)
            if bszs.kind:
                signals.append(KindSignal(bszs.kind, False, "bszs", bszs.evidence))
        elif want_bszs and not page.settled(need):
            pending.append(need)
            waiting = True
        elif need.key in page.failed:
            failures.append(f"核验页面 {url} 获取失败：{page.failed[need.key]}")
    # 4. alt / wzades / link text
    for mark in facts.scan.marks:
        kind = kind_of_words(mark.alt) or kind_of_words(mark.text)
        if kind:
            signals.append(KindSignal(kind, False, "alt", mark.evidence, mark))
    facts.signals, facts.pending, facts.verify_ids, facts.failures, facts.bszs = (
        signals,
        pending,
        verify_ids,
        failures,
        bszs,
    )


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
    m = VERIFY_ID.search(url)
    if m:
        for key, d in page.bszs.items():
            if m.group(1).lower() in key.lower():
                return d
    return None
