"""The ``baoding`` sample: offices and units of 保定市 as of 2015-03-31 reproducing 附件1 of the seed.

Per office (row of 附件1) the registry holds exactly: ``registered`` units with at least one Chinese
domain, ``domains`` Chinese domains, ``party`` websites of 党政机关 with 标识状态 已通过 and
``institution`` websites of 事业单位 with 已通过. The roster count (机构数) goes to the offices CSV (易县
keeps 543 and still gets 557 registered units, as in the table). A few extra units per office hold no
Chinese domain (not counted as registered). Sites draw their scenario from a seeded generator: most are
compliant, the rest spread over the catalogue's failure scenarios.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path

from simnet import scenarios as sc
from simnet.build import (
    Built,
    SiteSpec,
    UnitSpec,
    build_site,
    build_unit,
    cn_domain_for,
    platform_portal,
    unit_truth,
)
from simnet.ident import INSTITUTION, PARTY
from simnet.samples import Sample, assemble, today
from simnet.samples.names import unit_name

AS_OF = "2015-03-31"
SEED = 20150331


@dataclass(frozen=True)
class OfficeRow:
    """One row of 附件1."""

    name: str
    code: str
    roster: int
    registered: int
    domains: int
    party: int
    institution: int


# 附件1: 地区, 行政事业单位机构数, 已注册, 已注册域名数, 党政机关/事业单位网站标识申请通过数量.
TABLE: tuple[OfficeRow, ...] = (
    OfficeRow("市直", "130600", 545, 210, 215, 41, 39),
    OfficeRow("北市区", "130603", 160, 84, 93, 52, 101),
    OfficeRow("南市区", "130604", 152, 111, 113, 53, 101),
    OfficeRow("新市区", "130602", 178, 156, 157, 50, 13),
    OfficeRow("安国市", "130683", 291, 187, 188, 34, 54),
    OfficeRow("高碑店市", "130684", 376, 349, 352, 63, 267),
    OfficeRow("满城县", "130621", 403, 2, 3, 1, 0),
    OfficeRow("清苑县", "130622", 535, 76, 77, 5, 32),
    OfficeRow("涞水县", "130623", 390, 267, 268, 37, 230),
    OfficeRow("阜平县", "130624", 368, 328, 329, 59, 311),
    OfficeRow("徐水县", "130625", 320, 135, 136, 15, 1),
    OfficeRow("定兴县", "130626", 450, 426, 429, 58, 391),
    OfficeRow("唐县", "130627", 539, 435, 436, 74, 170),
    OfficeRow("高阳县", "130628", 318, 242, 243, 27, 6),
    OfficeRow("容城县", "130629", 262, 247, 250, 49, 215),
    OfficeRow("涞源县", "130630", 331, 293, 295, 58, 241),
    OfficeRow("望都县", "130631", 260, 135, 137, 22, 0),
    OfficeRow("安新县", "130632", 400, 382, 383, 48, 175),
    OfficeRow("易县", "130633", 543, 557, 558, 74, 9),
    OfficeRow("曲阳县", "130634", 540, 154, 156, 66, 24),
    OfficeRow("顺平县", "130636", 291, 58, 59, 48, 6),
    OfficeRow("蠡县", "130635", 424, 410, 411, 53, 16),
    OfficeRow("博野县", "130637", 258, 92, 93, 33, 56),
    OfficeRow("雄县", "130638", 396, 60, 61, 27, 10),
)
TOTAL = OfficeRow("合计", "", 8730, 5396, 5442, 1047, 2468)

PLATFORM_ADDR = "127.62.0.1"  # the city's consolidation platform (集约化平台)
PLATFORM_SITES = 450
SITES_PER_ADDRESS = 25
COMPLIANT_SHARE = 0.8
UNAPPROVED_SITE_SHARE = 0.3  # units without an approved badge that still run a site
NO_DOMAIN_UNITS = 2  # extra units per office without any Chinese domain


def office_prefix(row: OfficeRow) -> str:
    return "保定市" if row.code == "130600" else row.name


def offices() -> list[dict[str, str]]:
    out = []
    for row in TABLE:
        out.append(
            {
                "编办代码": row.code,
                "编办名称": "保定市" if row.code == "130600" else row.name,
                "上级编办代码": "" if row.code == "130600" else "130600",
                "机构数": str(row.roster),
                "联系邮箱": f"bianban{row.code}@example.gov.cn",
                "联系手机": f"1390312{row.code[-4:]}",
            }
        )
    return out


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)] if parts else []


class _Addresses:
    """Site addresses: the first sites on the shared platform, then small groups per address."""

    def __init__(self) -> None:
        self.count = 0

    def next(self) -> str:
        i = self.count
        self.count += 1
        if i < PLATFORM_SITES:
            return PLATFORM_ADDR
        j = (i - PLATFORM_SITES) // SITES_PER_ADDRESS
        return f"127.62.{1 + j // 200}.{1 + j % 200}"


IMPORT_REFUSED_DOMAIN_RULES = frozenset({"wrong_kind", "label_too_long", "invalid"})


def _scenario(rng: random.Random, kind: str, approved: bool) -> sc.Scenario:
    if not approved:
        return sc.Scenario("unapproved.no_badge", badge="missing", kind=kind)
    if rng.random() < COMPLIANT_SHARE:
        variant = rng.choice(
            (
                "embed_http",
                "embed_https",
                "embed_protocol_relative",
                "static_copy",
                "custom_image_alt",
                "local_image_copy",
                "rendered_dom",
            )
        )
        base = "compliant.party" if kind == PARTY else "compliant.institution"
        return sc.Scenario(base, badge=variant, kind=kind)
    while True:
        s = rng.choice(sc.FAILURE_SCENARIOS)
        if s.badge == "wrong_kind" and kind == PARTY:
            continue
        # The registry import refuses these rows (issue 2), and a refused row would move 附件1's counts;
        # the catalogue sample carries them instead.
        if s.domain in IMPORT_REFUSED_DOMAIN_RULES:
            continue
        return replace(s, kind=kind)


def build_baoding(workdir: Path, xlsx: bool = False) -> Sample:
    """Generate the sample into ``workdir`` (deterministic)."""
    rng = random.Random(SEED)
    as_of = today()
    addresses = _Addresses()
    built: list[Built] = []
    serial = 1000
    for county_no, row in enumerate(TABLE):
        prefix = office_prefix(row)
        d4 = "0000" if row.code == "130600" else f"{county_no:04d}"
        approved = row.party + row.institution
        if row.party + row.institution:
            n_party = round(row.registered * row.party / approved)
        else:
            n_party = round(row.registered * 0.4)
        n_party = max(1 if row.party else 0, min(n_party, row.registered - (1 if row.institution else 0)))
        kinds = [PARTY] * n_party + [INSTITUTION] * (row.registered - n_party)
        party_sites = _split(row.party, n_party)
        inst_sites = _split(row.institution, row.registered - n_party)
        counters = {PARTY: 0, INSTITUTION: 0}
        for u, kind in enumerate(kinds):
            index = counters[kind]
            counters[kind] += 1
            seq = int(row.code) * 1000 + u
            unit = UnitSpec(
                unit_name(prefix, kind, index), kind, row.code, seq, functions_reviewed=rng.random() < 0.9
            )
            domains = [cn_domain_for(unit, "ok", as_of)]
            if u < row.domains - row.registered:
                domains.append(cn_domain_for(unit, "ok", as_of, second=True))
            n_sites = party_sites[index] if kind == PARTY else inst_sites[index]
            site_plan = [True] * n_sites
            if not n_sites and rng.random() < UNAPPROVED_SITE_SHARE:
                site_plan = [False]
            key = f"bd-{row.code}-{u:04d}"
            if not site_plan:
                b = build_unit(key, unit, domains, as_of)
                built.append(b)
                continue
            unit_built = Built()
            for k, is_approved in enumerate(site_plan):
                serial += 1
                s = _scenario(rng, kind, is_approved)
                if k == 0 and s.domain in ("wrong_kind", "expiring", "expired"):
                    domains[0] = cn_domain_for(unit, s.domain, as_of)
                    if s.domain == "expired":
                        domains[0].dns = "nxdomain"
                row_domains = domains if k == 0 else []
                if k == 0 and s.dns != "ok":
                    row_domains = [replace(domains[0], dns=s.dns), *domains[1:]]
                if k == 0 and s.usage != "own_site_redirect":
                    row_domains = [replace(row_domains[0], usage=s.usage), *row_domains[1:]]
                on_cn = (
                    k == 0
                    and (s.site_on_cn or rng.random() < 0.1)
                    and s.dns == "ok"
                    and s.usage == "own_site_redirect"
                )
                tld = (
                    ".gov.cn"
                    if kind == PARTY or s.gov_cn_institution
                    else rng.choice((".cn", ".com", ".org.cn"))
                )
                en_host = "" if on_cn else f"www.bd{row.code[-2:]}{u:03d}{'abcdefgh'[k % 8]}{tld}"
                spec = SiteSpec(
                    key=f"{key}-{k}",
                    unit=unit,
                    scenario=s,
                    site_name=unit.name + ("网" if k == 0 else f"{k + 1}号网站"),
                    en_host=en_host,
                    domains=row_domains,
                    address=addresses.next(),
                    serial=serial,
                    badge_status="已通过" if is_approved else rng.choice(("审核中", "未申请")),
                    badge_prefix=("05", "106", d4),
                )
                b = build_site(spec, as_of)
                unit_built.dns += b.dns
                unit_built.hosts += b.hosts
                unit_built.rows += b.rows
                unit_built.sites += b.sites
                unit_built.domains += b.domains
            unit_built.units.append(unit_truth(key, unit, domains))
            built.append(unit_built)
        # Units on the roster without any Chinese domain (domain.no_chinese).
        for extra in range(min(NO_DOMAIN_UNITS, max(0, row.roster - row.registered))):
            kind = INSTITUTION if extra % 2 else PARTY
            unit = UnitSpec(
                unit_name(prefix, kind, counters[kind] + 1000 + extra),
                kind,
                row.code,
                int(row.code) * 1000 + 900 + extra,
            )
            built.append(build_unit(f"bd-{row.code}-nd{extra}", unit, [], as_of))
    meta = {
        "sample": "baoding",
        "as_of": as_of.isoformat(),
        "registry_as_of": AS_OF,
        "seed": SEED,
        "table": [row.__dict__ for row in (*TABLE, TOTAL)],
        "red_page_hosts": ["hy.conac.cn"],
    }
    # The city's platform answers host names it does not know with its portal, as real ones do.
    built.append(Built(defaults={PLATFORM_ADDR: platform_portal(PLATFORM_ADDR, "保定市政府网站集约化平台")}))
    return assemble("baoding", workdir, built, offices(), meta, xlsx=xlsx)
