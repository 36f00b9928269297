"""ICP 备案号 check: the number shown on the home page, its link to MIIT, its province, the registry.

Reading is tolerant (see :mod:`checks.reading.sightings` and :data:`checks.numbers.ICP_PATTERN`);
validation is strict. When several numbers appear, the one that matches the registry is judged;
otherwise the first well-formed filing number, and every number seen is listed in the detail.

Verdict ``data``: ``number`` (canonical, or None), ``linked`` (``current`` / ``outdated`` / ``none``),
``href``, ``numbers`` (every number seen), ``issues`` (every reason that applies, worst first),
``needs`` (sub-resources that would settle an ``unknown``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from checks.analysis import Analysis
from checks.expected import Expected
from checks.missing import NumberData, missing_verdict
from checks.numbers import ICP_PATTERN, IcpNumber, icp_from_match, parse_icp, province_label
from checks.page import Need, Page
from checks.reading.sightings import NumberSightings, Sighting, needs_of, search_page, with_script_needs
from checks.reasons import describe
from checks.rules import Rules
from checks.verdict import Status, Verdict


class IcpData(NumberData):
    """``Verdict.data`` of the icp check (its keys are the JSON keys stored with every finding)."""

    number: str | None
    linked: str
    href: str


CURRENT_HOSTS = frozenset({"beian.miit.gov.cn"})
OUTDATED_HOSTS = frozenset({"www.beian.miit.gov.cn", "www.miitbeian.gov.cn", "miitbeian.gov.cn"})
# A link beside the number (e.g. the word 工信部备案 linked separately) counts within this many chars.
_NEAR = 24


def classify_link(href: str) -> str:
    """``current`` (https://beian.miit.gov.cn/), ``outdated`` (old MIIT hosts) or ``none``."""
    if not href:
        return "none"
    h = href.strip()
    if h.startswith("//"):
        h = "http:" + h
    try:
        parts = urlsplit(h)
    except ValueError:
        return "none"
    if parts.scheme.lower() not in ("http", "https"):
        return "none"
    host = (parts.hostname or "").rstrip(".").lower()
    if host in CURRENT_HOSTS:
        return "current"
    if host in OUTDATED_HOSTS:
        return "outdated"
    return "none"


_LINK_RANK = {"current": 2, "outdated": 1, "none": 0}


@dataclass(frozen=True, slots=True)
class _Candidate:
    number: IcpNumber
    found: Sighting
    linked: str
    href: str


def _candidate(f: Sighting) -> _Candidate:
    number = icp_from_match(f.match)
    over = f.ctx.anchors_over(f.start, f.end)
    best_href, best = (over[0].href if over else ""), "none"
    for a in over + [a for a in f.ctx.anchors_near(f.start, f.end, _NEAR) if a not in over]:
        kind = classify_link(a.href)
        if _LINK_RANK[kind] > _LINK_RANK[best]:
            best, best_href = kind, a.href
    return _Candidate(number, f, best, best_href)


def _unit_province(expected: Expected, rules: Rules) -> str:
    return expected.province_code or rules.default_province_code


def _unique(cands: list[_Candidate]) -> list[_Candidate]:
    """One candidate per number (the best-linked occurrence)."""
    best: dict[str, _Candidate] = {}
    for c in cands:
        key = c.number.canonical()
        if key not in best or _LINK_RANK[c.linked] > _LINK_RANK[best[key].linked]:
            best[key] = c
    return list(best.values())


def analyse(page: Page, expected: Expected, rules: Rules) -> Analysis:
    """The ``icp`` verdict for one page, and what could still settle it."""
    search = search_page(page, ICP_PATTERN)
    return Analysis(_judge(page, expected, rules, search), with_script_needs(page, needs_of(page, search)))


def _judge(page: Page, expected: Expected, rules: Rules, search: NumberSightings) -> Verdict:
    cands = _unique([_candidate(f) for f in search.found])
    registry = parse_icp(expected.icp) if expected.icp.strip() else None
    seen = [c.number.canonical() for c in cands]
    base: IcpData = {"number": None, "linked": "none", "href": "", "numbers": seen, "issues": []}

    if not cands:
        return missing_verdict("icp", page, search, base)

    filings = [c for c in cands if c.number.is_filing]
    chosen: _Candidate | None = None
    if registry is not None:
        chosen = next((c for c in cands if c.number.same_filing(registry, rules.icp_ignore_suffix)), None)
    if chosen is None:
        chosen = next((c for c in filings if c.number.is_valid), None)
    if chosen is None:
        chosen = filings[0] if filings else None
    if chosen is None:
        # Only a commercial licence (ICP证) is shown: it is not the filing number a site must display.
        lic = cands[0]
        data: IcpData = {
            "number": None, "linked": lic.linked, "href": lic.href, "numbers": seen, "issues": ["icp.missing"]
        }  # fmt: skip
        return Verdict(
            "icp", Status.FAIL, "icp.missing",
            f"仅显示了经营许可证号 {lic.number.canonical()}，未显示ICP备案号",
            (lic.found.evidence(),), data,
        )  # fmt: skip

    num = chosen.number
    issues: list[tuple[str, str]] = []
    if not num.is_valid:
        issues.append(("icp.malformed", f"{num.canonical()}：" + "；".join(num.problems)))
    if registry is not None and not num.same_filing(registry, rules.icp_ignore_suffix):
        issues.append(("icp.number_mismatch", f"网站显示 {num.canonical()}，登记为 {registry.canonical()}"))
    if chosen.linked == "none":
        where = f"（链接指向 {chosen.href}）" if chosen.href else ""
        issues.append(("icp.link_missing", f"{num.canonical()} 未链接到 https://beian.miit.gov.cn/{where}"))
    unit_prov = _unit_province(expected, rules)
    if num.province_code and unit_prov and num.province_code != unit_prov:
        where = province_label(unit_prov)
        issues.append(("icp.province_mismatch", f"备案号省份简称“{num.province}”与单位所在省份{where}不一致"))
    if chosen.linked == "outdated":
        issues.append(("icp.link_outdated", f"链接指向旧地址 {chosen.href}"))
    if registry is None:
        why = "登记信息未填写ICP备案号"
        if expected.icp.strip():
            why = f"登记值“{expected.icp}”不是有效的ICP备案号"
        issues.append(("icp.not_in_registry", why))

    others = [s for s in seen if s != num.canonical()]
    detail_parts = [d for _, d in issues]
    if others:
        detail_parts.append("页面上还有：" + "、".join(others))
    data = IcpData(
        number=num.canonical(),
        linked=chosen.linked,
        href=chosen.href,
        numbers=seen,
        issues=[code for code, _ in issues],
        via=chosen.found.via,
    )
    evidence = (chosen.found.evidence(),)
    if not issues:
        return Verdict("icp", Status.PASS, "icp.ok", "；".join(detail_parts), evidence, data)
    code = issues[0][0]
    return Verdict("icp", describe(code).status, code, "；".join(detail_parts), evidence, data)


def check_icp(page: Page, expected: Expected, rules: Rules) -> Verdict:
    """The ``icp`` verdict alone (see :func:`analyse`)."""
    return analyse(page, expected, rules).verdict


def icp_needs(page: Page, expected: Expected, rules: Rules) -> list[Need]:
    """What :func:`analyse` still needs (empty once a number is read)."""
    return analyse(page, expected, rules).needs
