"""公安机关备案号 check: the number shown on the home page, its link, its region, the registry.

Both link forms count as linked: ``http://www.beian.gov.cn/portal/registerSystemInfo?recordcode=…``
(older) and ``https://beian.mps.gov.cn/#/query/webSearch?code=…`` (newer). The region cross-check is a
warning (Beijing and other municipalities use non-GB bureau prefixes such as ``1104xx``): the province
always, the city (first 4 digits) only outside the municipalities.

Verdict ``data``: ``number`` (canonical, or None), ``digits``, ``linked`` (``current`` / ``none``),
``link_form`` (``portal`` / ``mps`` / ""), ``href``, ``numbers``, ``issues``, ``needs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from checks.analysis import Analysis
from checks.expected import Expected
from checks.missing import NumberData, missing_verdict
from checks.numbers import POLICE_PATTERN, PoliceNumber, parse_police, police_from_match, province_label
from checks.page import Need, Page
from checks.reading.sightings import NumberSightings, Sighting, needs_of, search_page, with_script_needs
from checks.reasons import describe
from checks.rules import Rules
from checks.verdict import Verdict


class PoliceData(NumberData):
    """``Verdict.data`` of the police check (its keys are the JSON keys stored with every finding)."""

    number: str | None
    digits: str | None
    linked: str
    link_form: str
    href: str


PORTAL_HOSTS = frozenset({"www.beian.gov.cn", "beian.gov.cn"})
MPS_HOSTS = frozenset({"beian.mps.gov.cn", "www.beian.mps.gov.cn"})
# Municipalities whose bureaus use prefixes that are not GB division codes below the province.
_MUNICIPALITIES = frozenset({"11", "12", "31", "50"})
# The 公安 icon is often linked separately beside the text: a link this close counts.
_NEAR = 24


def classify_link(href: str) -> tuple[str, str]:
    """``(form, code)``: form ``portal`` / ``mps`` / "" and the record code the link asks for."""
    h = (href or "").strip()
    if h.startswith("//"):
        h = "http:" + h
    try:
        parts = urlsplit(h)
    except ValueError:
        return "", ""
    if parts.scheme.lower() not in ("http", "https"):
        return "", ""
    host = (parts.hostname or "").rstrip(".").lower()
    if host in PORTAL_HOSTS:
        q = parse_qs(parts.query)
        return "portal", (q.get("recordcode") or q.get("recordCode") or [""])[0]
    if host in MPS_HOSTS:
        # The query sits in the fragment: #/query/webSearch?code=…
        frag = parts.fragment.split("?", 1)
        q = parse_qs(frag[1] if len(frag) == 2 else parts.query)
        return "mps", (q.get("code") or q.get("recordcode") or [""])[0]
    return "", ""


@dataclass(frozen=True, slots=True)
class _Candidate:
    number: PoliceNumber
    found: Sighting
    form: str
    link_code: str
    href: str


def _candidate(f: Sighting) -> _Candidate:
    number = police_from_match(f.match)
    over = f.ctx.anchors_over(f.start, f.end)
    first_href = over[0].href if over else ""
    for a in over + [a for a in f.ctx.anchors_near(f.start, f.end, _NEAR) if a not in over]:
        form, code = classify_link(a.href)
        if form:
            return _Candidate(number, f, form, code, a.href)
    return _Candidate(number, f, "", "", first_href)


def _region_problem(num: PoliceNumber, division_code: str) -> str:
    """Why the number's region disagrees with the unit's (empty when it agrees or cannot tell)."""
    if len(division_code) < 2:
        return ""
    prov = division_code[:2]
    if num.province_code and num.province_code != prov:
        return f"备案号所属省份{province_label(num.province_code)}与单位所在省份{province_label(prov)}不一致"
    digits_prov = num.digits[:2]
    if digits_prov != prov:
        return f"备案号地区代码 {num.division_prefix} 不属于单位所在省份{province_label(prov)}"
    city = division_code[2:4]
    if prov not in _MUNICIPALITIES and city != "00" and len(division_code) >= 4 and num.digits[2:4] != city:
        return f"备案号地区代码 {num.division_prefix} 与单位所在地区 {division_code} 不在同一地市"
    return ""


def analyse(page: Page, expected: Expected, rules: Rules) -> Analysis:
    """The ``police`` verdict for one page, and what could still settle it."""
    search = search_page(page, POLICE_PATTERN)
    return Analysis(_judge(page, expected, rules, search), with_script_needs(page, needs_of(page, search)))


def _judge(page: Page, expected: Expected, rules: Rules, search: NumberSightings) -> Verdict:
    cands: dict[str, _Candidate] = {}
    for f in search.found:
        c = _candidate(f)
        old = cands.get(c.number.digits)
        if old is None or (c.form and not old.form):
            cands[c.number.digits] = c
    registry = parse_police(expected.police_record) if expected.police_record.strip() else None
    seen = [c.number.canonical() for c in cands.values()]
    base: PoliceData = {
        "number": None, "digits": None, "linked": "none", "link_form": "", "href": "", "numbers": seen,
        "issues": [],
    }  # fmt: skip
    if not cands:
        return missing_verdict("police", page, search, base)

    values = list(cands.values())
    chosen = None
    if registry is not None:
        chosen = cands.get(registry.digits)
    if chosen is None:
        chosen = next((c for c in values if c.number.is_valid), values[0])
    num = chosen.number

    issues: list[tuple[str, str]] = []
    if not num.is_valid:
        issues.append(("police.malformed", f"{num.canonical()}：" + "；".join(num.problems)))
    if registry is not None and registry.digits != num.digits:
        issues.append(("police.number_mismatch", f"网站显示 {num.digits}，登记为 {registry.digits}"))
    if not chosen.form:
        where = f"（链接指向 {chosen.href}）" if chosen.href else ""
        issues.append(("police.link_missing", f"{num.canonical()} 未链接到公安备案查询页面{where}"))
    division = expected.division_code or rules.default_province_code
    if num.is_valid and (problem := _region_problem(num, division)):
        issues.append(("police.region_mismatch", problem))
    if registry is None:
        why = "登记信息未填写公安机关备案号"
        if expected.police_record.strip():
            why = f"登记值“{expected.police_record}”不是有效的公安机关备案号"
        issues.append(("police.not_in_registry", why))

    notes = [d for _, d in issues]
    if chosen.form and chosen.link_code and chosen.link_code != num.digits:
        notes.append(f"备案链接查询的是 {chosen.link_code}，与显示的号码不同")
    others = [s for s in seen if s != num.canonical()]
    if others:
        notes.append("页面上还有：" + "、".join(others))
    data = PoliceData(
        number=num.canonical(),
        digits=num.digits,
        linked="current" if chosen.form else "none",
        link_form=chosen.form,
        href=chosen.href,
        numbers=seen,
        issues=[code for code, _ in issues],
        via=chosen.found.via,
    )
    evidence = (chosen.found.evidence(),)
    code = issues[0][0] if issues else "police.ok"
    return Verdict("police", describe(code).status, code, "；".join(notes), evidence, data)


def check_police(page: Page, expected: Expected, rules: Rules) -> Verdict:
    """The ``police`` verdict alone (see :func:`analyse`)."""
    return analyse(page, expected, rules).verdict


def police_needs(page: Page, expected: Expected, rules: Rules) -> list[Need]:
    """What :func:`analyse` still needs (empty once a number is read)."""
    return analyse(page, expected, rules).needs
