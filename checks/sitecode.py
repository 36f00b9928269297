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

from typing import NotRequired, TypedDict

from checks.analysis import Analysis
from checks.expected import Expected
from checks.missing import missing_verdict
from checks.numbers import parse_site_code, province_label, site_code_region
from checks.page import Need, Page
from checks.reading.sightings import needs_of, with_script_needs
from checks.reading.sitecode_sources import SiteCodeSightings, read_site_codes
from checks.reasons import describe
from checks.rules import Rules
from checks.verdict import Status, Verdict


class SiteCodeValue(TypedDict):
    value: str
    source: str


class SiteCodeData(TypedDict):
    """``Verdict.data`` of the site_code check (its keys are the JSON keys stored with every finding)."""

    value: str | None
    source: str
    values: list[SiteCodeValue]
    issues: list[str]
    needs: NotRequired[list[dict[str, str]]]  # only on ``site_code.unconfirmed``


_RANK = {"meta": 0, "jiucuo": 1, "footer": 2}


def _region_problem(code: str, division_code: str) -> str:
    region = site_code_region(code)
    if region is None or len(division_code) < 2:
        return ""
    if region[:2] != division_code[:2]:
        return f"标识码地区代码 {region} 不属于单位所在省份{province_label(division_code[:2])}"
    if division_code[2:4] not in ("", "00") and region[2:4] != division_code[2:4]:
        return f"标识码地区代码 {region} 与单位所在地区 {division_code} 不在同一地市"
    return ""


def analyse(page: Page, expected: Expected, rules: Rules) -> Analysis:
    """The ``site_code`` verdict for one page, and what could still settle it."""
    facts = read_site_codes(page)
    needs: list[Need] = []
    # Not known to be a government site (None): still read what the page shows, to report it.
    if expected.is_government_site is not False or parse_site_code(expected.site_code):
        needs = with_script_needs(page, [] if facts.seen else needs_of(page, facts.search))
    return Analysis(_judge(page, expected, facts), needs)


def _judge(page: Page, expected: Expected, facts: SiteCodeSightings) -> Verdict:
    seen, search = facts.seen, facts.search
    seen.sort(key=lambda s: _RANK[s.source])
    values = [SiteCodeValue(value=s.value or s.raw, source=s.source) for s in seen]
    base: SiteCodeData = {"value": None, "source": "", "values": values, "issues": []}
    registry = parse_site_code(expected.site_code) if expected.site_code.strip() else None
    valid = [s for s in seen if s.value]

    # A registered 标识码 marks a government site even where the registry row does not say so.
    if not (expected.is_government_site or registry is not None):
        shown = valid[0] if valid else None
        data = SiteCodeData(
            value=shown.value if shown else None,
            source=shown.source if shown else "",
            values=values,
            issues=[],
        )
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

    data = SiteCodeData(
        value=chosen.value or chosen.raw, source=chosen.source, values=values, issues=[c for c, _ in issues]
    )
    code = issues[0][0] if issues else "site_code.ok"
    evidence = (chosen.evidence,)
    return Verdict("site_code", describe(code).status, code, "；".join(d for _, d in issues), evidence, data)


def check_site_code(page: Page, expected: Expected, rules: Rules) -> Verdict:
    """The ``site_code`` verdict alone (see :func:`analyse`)."""
    return analyse(page, expected, rules).verdict


def site_code_needs(page: Page, expected: Expected, rules: Rules) -> list[Need]:
    """What :func:`analyse` still needs."""
    return analyse(page, expected, rules).needs
