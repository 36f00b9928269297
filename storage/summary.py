"""What the registry holds, per office: the first part of ``badgewatch demo`` (and a quick look for
operators)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from checks.domains import DomainKind, check_domain
from checks.expected import UnitKind
from checks.verdict import Status
from storage.models import Domain, Office, Unit, Website


@dataclass(frozen=True, slots=True)
class OfficeSummary:
    code: str
    name: str
    roster_count: int | None
    units: int
    party_units: int
    institution_units: int
    chinese_domains: int
    english_domains: int
    websites: int
    government_sites: int


@dataclass(frozen=True, slots=True)
class DomainRemark:
    office_code: str
    unit_name: str
    domain: str
    status: Status
    reason: str
    detail: str


def office_summaries(engine: Engine, on: date | None = None) -> list[OfficeSummary]:
    """One line per office (offices no longer valid on ``on`` and without units are left out)."""
    on = on or date.today()
    with engine.connect() as conn:
        units = conn.execute(
            sa.select(Unit.office_code, Unit.kind, sa.func.count()).group_by(Unit.office_code, Unit.kind)
        ).all()
        domains = conn.execute(
            sa.select(Unit.office_code, Domain.kind, sa.func.count())
            .join(Unit, Domain.unit_id == Unit.id)
            .group_by(Unit.office_code, Domain.kind)
        ).all()
        sites = conn.execute(
            sa.select(Unit.office_code, Website.is_government_site, sa.func.count())
            .join(Unit, Website.unit_id == Unit.id)
            .group_by(Unit.office_code, Website.is_government_site)
        ).all()
        offices = conn.execute(sa.select(Office).order_by(Office.code)).all()
    out = []
    for o in offices:
        by_kind = {k: n for code, k, n in units if code == o.code}
        doms = {k: n for code, k, n in domains if code == o.code}
        site = {g: n for code, g, n in sites if code == o.code}
        if not by_kind and o.valid_until is not None and o.valid_until < on:
            continue
        out.append(
            OfficeSummary(
                code=o.code,
                name=o.name,
                roster_count=o.roster_count,
                units=sum(by_kind.values()),
                party_units=by_kind.get(str(UnitKind.PARTY_GOV), 0),
                institution_units=by_kind.get(str(UnitKind.INSTITUTION), 0),
                chinese_domains=doms.get(str(DomainKind.ZHENGWU), 0) + doms.get(str(DomainKind.GONGYI), 0),
                english_domains=doms.get(str(DomainKind.ENGLISH), 0),
                websites=sum(site.values()),
                government_sites=site.get(True, 0),
            )
        )
    return out


def domain_remarks(engine: Engine, today: date | None = None, expiring_days: int = 30) -> list[DomainRemark]:
    """Registry-level domain verdicts that are not a pass (wrong kind, expired, expiring, .gov.cn)."""
    today = today or date.today()
    q = (
        sa.select(Unit.office_code, Unit.name, Unit.kind, Domain.name, Domain.expiry)
        .join(Unit, Domain.unit_id == Unit.id)
        .order_by(Unit.office_code, Unit.name, Domain.ascii)
    )
    out = []
    with engine.connect() as conn:
        for office_code, unit_name, kind, name, expiry in conn.execute(q):
            v = check_domain(name, UnitKind(kind), expiry=expiry, today=today, expiring_days=expiring_days)
            if v.status is not Status.PASS:
                out.append(DomainRemark(office_code, unit_name, name, v.status, v.reason, v.detail))
    return out
