"""The ``catalogue`` sample: one unit and site per scenario of :mod:`simnet.scenarios`."""

from __future__ import annotations

from pathlib import Path

from simnet import scenarios as sc
from simnet.build import (
    Built,
    DomainSpec,
    SiteSpec,
    UnitSpec,
    build_site,
    build_unit,
    cn_domain_for,
    platform_portal,
    unit_truth,
)
from simnet.ident import PARTY
from simnet.samples import Sample, assemble, today
from simnet.samples.baoding import TABLE, office_prefix, offices
from simnet.samples.names import unit_name

PLATFORM_ADDR = "127.61.0.1"  # half of the catalogue shares one address, like a consolidation platform


def site_address(i: int) -> str:
    return PLATFORM_ADDR if i % 2 == 0 else f"127.61.{1 + i // 400}.{1 + (i // 2) % 200}"


def build_catalogue(workdir: Path, xlsx: bool = False) -> Sample:
    """Every scenario once, in catalogue order."""
    as_of = today()
    built: list[Built] = []
    counters: dict[tuple[str, str], int] = {}
    for i, s in enumerate(sc.CATALOGUE):
        row = TABLE[i % len(TABLE)]
        n = counters.get((row.code, s.kind), 0)
        counters[(row.code, s.kind)] = n + 1
        unit = UnitSpec(unit_name(office_prefix(row), s.kind, n), s.kind, row.code, int(row.code) * 1000 + i)
        key = f"cat-{i:03d}"
        domains: list[DomainSpec] = []
        if s.has_cn_domain:
            d = cn_domain_for(unit, s.domain, as_of)
            d.dns, d.usage = s.dns, s.usage
            domains.append(d)
        if not s.has_site:
            b = build_unit(key, unit, domains, as_of)
        else:
            tld = ".gov.cn" if s.kind == PARTY or s.gov_cn_institution else ".cn"
            spec = SiteSpec(
                key=key,
                unit=unit,
                scenario=s,
                site_name=unit.name + "网",
                en_host="" if s.site_on_cn else f"www.cat{i:03d}{tld}",
                domains=domains,
                address=site_address(i),
                serial=10_000 + i,
                badge_status=s.badge_status,
                badge_prefix=("05", "106", f"{i % len(TABLE):04d}"),
            )
            b = build_site(spec, as_of)

            b.units.append(unit_truth(key, unit, domains))
        built.append(b)
    # The shared address answers host names it does not know with the platform's portal.
    built.append(Built(defaults={PLATFORM_ADDR: platform_portal(PLATFORM_ADDR, "保定市政府网站集约化平台")}))
    meta = {
        "sample": "catalogue",
        "as_of": as_of.isoformat(),
        "red_page_hosts": ["hy.conac.cn"],
        "scenarios": [s.name for s in sc.CATALOGUE],
    }
    return assemble("catalogue", workdir, built, offices(), meta, xlsx=xlsx)
