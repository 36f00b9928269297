"""政府网站标识码 check: the identifier a government site must show, where it is, and what it says.

Sources, most reliable first: ``<meta name="SiteIDCode" content="…">``, the ``sitecode`` attribute of
the 我为政府网站找错 script (``zfwzgl.www.gov.cn`` and the older ``pucha.kaipuyun.cn``, also when a script
writes it), then footer text (网站标识码 / 政府网站标识码 / 网站识别码). Required only on 政府网站
(``Expected.is_government_site``, or a 标识码 registered for the site); when that is not known
(``is_government_site`` None: ``inspect`` without a registry entry) the code shown is reported and the
verdict is ``unknown/site_code.not_judged``. The region cross-check is a
warning: the province always, the city (first 4 digits) when the unit is below province level.

Verdict ``data``: ``value`` (the code judged, or None), ``source`` (``meta`` / ``jiucuo`` / ``footer``),
``values`` (every ``{"value", "source"}`` seen), ``issues``, ``needs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from checks.expected import Expected
from checks.numbers import SITE_CODE_LABEL_PATTERN, parse_site_code, province_label, site_code_region
from checks.page import Document, Need, Page
from checks.reasons import describe
from checks.rules import Rules
from checks.text import (
    Search,
    element_evidence,
    missing_verdict,
    needs_of,
    script_documents,
    search_page,
)
from checks.verdict import Evidence, Status, Verdict

_RANK = {"meta": 0, "jiucuo": 1, "footer": 2}


@dataclass(frozen=True, slots=True)
class _Seen:
    raw: str  # as written
    value: str | None  # parsed (None when malformed)
    source: str  # meta / jiucuo / footer
    evidence: Evidence


def _is_jiucuo(el: etree._Element) -> bool:
    return (el.get("id") or "").strip() == "_jiucuo_" or "jiucuo" in (el.get("src") or "").lower()


def _machine_sources(doc: Document, name: str) -> list[_Seen]:
    """SiteIDCode metas and jiucuo ``sitecode`` attributes of one document's live markup."""
    out: list[_Seen] = []
    for el in doc.scripts_and_metas():
        if el.tag == "meta":
            if (el.get("name") or "").strip().lower() == "siteidcode":
                raw = (el.get("content") or "").strip()
                out.append(_Seen(raw, parse_site_code(raw), "meta", element_evidence(doc, el, raw, name)))
        elif _is_jiucuo(el) and (raw := (el.get("sitecode") or "").strip()):
            out.append(_Seen(raw, parse_site_code(raw), "jiucuo", element_evidence(doc, el, raw, name)))
    # Metas first (the most reliable source), then scripts, each in document order.
    return sorted(out, key=lambda s: s.source != "meta")


_Collected = tuple[list[_Seen], Search]


def _collect(page: Page) -> _Collected:
    # The check and its needs function read the same page one after the other: collect once per page
    # and capture state (kept in ``page.memo``, freed with the page).
    state = (id(page.rendered), len(page.frames), len(page.scripts), page.incomplete)
    hit: tuple[tuple[object, ...], _Collected] | None = page.memo.get("site_code")
    if hit is not None and hit[0] == state:
        return hit[1]
    result = _collect_now(page)
    page.memo["site_code"] = (state, result)
    return result


def _collect_now(page: Page) -> _Collected:
    docs: list[tuple[str, Document]] = [("home", page.home)]
    if page.rendered is not None:
        docs.append(("rendered", page.rendered))
    seen: list[_Seen] = []
    for name, doc in docs:
        seen.extend(_machine_sources(doc, name))
    # With a machine-readable code in hand, footer text written by scripts adds nothing worth the cost.
    search = search_page(page, SITE_CODE_LABEL_PATTERN, read_scripts=not seen)
    for f in search.found:
        raw = f.match.group("value")
        seen.append(_Seen(raw, parse_site_code(raw), "footer", f.evidence()))
    if not seen:
        # The jiucuo script is often written by document.write(unescape(…)).
        for name, doc in script_documents(page):
            for s in _machine_sources(doc, name):
                seen.append(_Seen(s.raw, s.value, s.source, Evidence(s.evidence.source, s.evidence.excerpt)))
    return seen, search


def _region_problem(code: str, division_code: str) -> str:
    region = site_code_region(code)
    if region is None or len(division_code) < 2:
        return ""
    if region[:2] != division_code[:2]:
        return f"标识码地区代码 {region} 不属于单位所在省份{province_label(division_code[:2])}"
    if division_code[2:4] not in ("", "00") and region[2:4] != division_code[2:4]:
        return f"标识码地区代码 {region} 与单位所在地区 {division_code} 不在同一地市"
    return ""


def check_site_code(page: Page, expected: Expected, rules: Rules) -> Verdict:
    """The ``site_code`` verdict for one page."""
    seen, search = _collect(page)
    seen.sort(key=lambda s: _RANK[s.source])
    values = [{"value": s.value or s.raw, "source": s.source} for s in seen]
    base: dict[str, Any] = {"value": None, "source": "", "values": values, "issues": []}
    registry = parse_site_code(expected.site_code) if expected.site_code.strip() else None
    valid = [s for s in seen if s.value]

    # A registered 标识码 marks a government site even where the registry row does not say so.
    if not (expected.is_government_site or registry is not None):
        shown = valid[0] if valid else None
        data = dict(base, value=shown.value if shown else None, source=shown.source if shown else "")
        ev = (shown.evidence,) if shown else ()
        if expected.is_government_site is None:  # no registry entry: what is shown is reported only
            why = f"页面显示 {shown.value}（{shown.source}）" if shown else "页面中未读到标识码"
            return Verdict("site_code", Status.UNKNOWN, "site_code.not_judged", why, ev, data)
        return Verdict("site_code", Status.PASS, "site_code.not_required", "", ev, data)

    if not seen:
        return missing_verdict("site_code", page, search, base)

    chosen = next((s for s in valid if registry and s.value == registry), None)
    if chosen is None:
        chosen = valid[0] if valid else seen[0]
    issues: list[tuple[str, str]] = []
    if chosen.value is None:
        bad = f"“{chosen.raw}”（{chosen.source}）不是10位数字或 bm 加8位数字"
        issues.append(("site_code.malformed", bad))
    if registry is not None and chosen.value is not None and chosen.value != registry:
        issues.append(("site_code.mismatch", f"网站显示 {chosen.value}，登记为 {registry}"))
    if chosen.value and (problem := _region_problem(chosen.value, expected.division_code)):
        issues.append(("site_code.region_mismatch", problem))
    distinct = sorted({s.value for s in valid if s.value})
    if len(distinct) > 1:
        where = "、".join(f"{s.value}（{s.source}）" for s in valid)
        issues.append(("site_code.conflict", f"页面中的标识码互相矛盾：{where}"))
    if registry is None:
        why = "登记信息未填写政府网站标识码"
        if expected.site_code.strip():
            why = f"登记值“{expected.site_code}”不是有效的政府网站标识码"
        issues.append(("site_code.not_in_registry", why))

    data = dict(base, value=chosen.value or chosen.raw, source=chosen.source, issues=[c for c, _ in issues])
    code = issues[0][0] if issues else "site_code.ok"
    evidence = (chosen.evidence,)
    return Verdict("site_code", describe(code).status, code, "；".join(d for _, d in issues), evidence, data)


def site_code_needs(page: Page, expected: Expected, rules: Rules) -> list[Need]:
    """Sub-resources that would settle an undecided ``site_code`` verdict."""
    # Not known to be a government site (None): still read what the page shows, to report it.
    if expected.is_government_site is False and not parse_site_code(expected.site_code):
        return []
    seen, search = _collect(page)
    return [] if seen else needs_of(page, search)
