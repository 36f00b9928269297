"""Where a page shows its 政府网站标识码: machine-readable sources first, then footer text.

Sources, most reliable first: ``<meta name="SiteIDCode" content="…">``, the ``sitecode`` attribute of
the 我为政府网站找错 script (``zfwzgl.www.gov.cn`` and the older ``pucha.kaipuyun.cn``, also when a script
writes it), then footer text (网站标识码 / 政府网站标识码 / 网站识别码).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from checks.numbers import SITE_CODE_LABEL_PATTERN, parse_site_code
from checks.page import Document, Page
from checks.reading.scripts import script_documents
from checks.reading.sightings import NumberSightings, element_evidence, search_page
from checks.verdict import Evidence


@dataclass(frozen=True, slots=True)
class SiteCodeSeen:
    """One 标识码 shown on the page."""

    raw: str  # as written
    value: str | None  # parsed (None when malformed)
    source: str  # meta / jiucuo / footer
    evidence: Evidence


def _is_jiucuo(el: etree._Element) -> bool:
    return (el.get("id") or "").strip() == "_jiucuo_" or "jiucuo" in (el.get("src") or "").lower()


def _machine_sources(doc: Document, name: str) -> list[SiteCodeSeen]:
    """SiteIDCode metas and jiucuo ``sitecode`` attributes of one document's live markup."""
    out: list[SiteCodeSeen] = []
    for el in doc.scripts_and_metas():
        if el.tag == "meta":
            if (el.get("name") or "").strip().lower() == "siteidcode":
                raw = (el.get("content") or "").strip()
                out.append(
                    SiteCodeSeen(raw, parse_site_code(raw), "meta", element_evidence(doc, el, raw, name))
                )
        elif _is_jiucuo(el) and (raw := (el.get("sitecode") or "").strip()):
            out.append(
                SiteCodeSeen(raw, parse_site_code(raw), "jiucuo", element_evidence(doc, el, raw, name))
            )
    # Metas first (the most reliable source), then scripts, each in document order.
    return sorted(out, key=lambda s: s.source != "meta")


@dataclass(slots=True)
class SiteCodeSightings:
    """Every 标识码 seen (``seen``, metas and scripts before footer text) and the footer search."""

    seen: list[SiteCodeSeen]
    search: NumberSightings


def read_site_codes(page: Page) -> SiteCodeSightings:
    """Every 标识码 the page shows, most reliable source first, and the footer search behind them."""
    docs: list[tuple[str, Document]] = [("home", page.home)]
    if page.rendered is not None:
        docs.append(("rendered", page.rendered))
    seen: list[SiteCodeSeen] = []
    for name, doc in docs:
        seen.extend(_machine_sources(doc, name))
    # With a machine-readable code in hand, footer text written by scripts adds nothing worth the cost.
    search = search_page(page, SITE_CODE_LABEL_PATTERN, read_scripts=not seen)
    for f in search.found:
        raw = f.match.group("value")
        seen.append(SiteCodeSeen(raw, parse_site_code(raw), "footer", f.evidence()))
    if not seen:
        # The jiucuo script is often written by document.write(unescape(…)).
        for name, doc in script_documents(page):
            for s in _machine_sources(doc, name):
                seen.append(
                    SiteCodeSeen(s.raw, s.value, s.source, Evidence(s.evidence.source, s.evidence.excerpt))
                )
    return SiteCodeSightings(seen, search)
