"""What the dashboard, office and unit pages show, read from the database within a reviewer's scope."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from checks.verdict import Status
from reports.coverage import CoverageTable
from reports.source import ReportInputError, coverage_from_db, latest_scan
from review.accounts import Principal
from storage.models import AnnualReport, Domain, Finding, Office, Scan, ScanStatus, Unit, Website


def top_offices(session: Session, who: Principal) -> list[str]:
    """The offices a reviewer's dashboard starts from: their own office, or every root for the center."""
    if who.offices is None:
        codes = set(session.scalars(sa.select(Office.code)))
        return sorted(
            c
            for c, p in session.execute(sa.select(Office.code, Office.parent_code))
            if p is None or p not in codes
        )
    return [who.office_code] if who.office_code else []


def coverage_tables(session: Session, who: Principal, day: dt.date) -> tuple[list[CoverageTable], list[str]]:
    tables, problems = [], []
    for code in top_offices(session, who):
        try:
            tables.append(coverage_from_db(session, code, day))
        except (ReportInputError, ValueError) as exc:
            problems.append(f"{code}：{exc}")
    return tables, problems


@dataclass(frozen=True, slots=True)
class TrendPoint:
    scan_id: int
    started: dt.datetime
    counts: dict[str, int]  # badge findings by status within the scope

    @property
    def judged(self) -> int:
        return self.counts.get("pass", 0) + self.counts.get("fail", 0) + self.counts.get("warn", 0)

    @property
    def pass_pct(self) -> float | None:
        return None if not self.judged else 100.0 * self.counts.get("pass", 0) / self.judged


def _scope(stmt: Any, who: Principal) -> Any:
    return stmt if who.offices is None else stmt.where(Unit.office_code.in_(sorted(who.offices)))


def trend(session: Session, who: Principal, scans: int = 10) -> list[TrendPoint]:
    """Badge verdicts of the scope's websites over the last ``scans`` finished scans (oldest first)."""
    recent = list(
        session.scalars(
            sa.select(Scan)
            .where(Scan.status == ScanStatus.FINISHED.value)
            .order_by(Scan.started_at.desc(), Scan.id.desc())
            .limit(scans)
        )
    )
    if not recent:
        return []
    stmt = (
        sa.select(Finding.scan_id, Finding.status, sa.func.count(Finding.id))
        .join(Website, Website.id == Finding.website_id)
        .join(Unit, Unit.id == Website.unit_id)
        .where(Finding.scan_id.in_([s.id for s in recent]), Finding.check == "badge")
        .group_by(Finding.scan_id, Finding.status)
    )
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for scan_id, status, n in session.execute(_scope(stmt, who)):
        counts[scan_id][str(status)] = int(n)
    return [TrendPoint(s.id, s.started_at, counts.get(s.id, {})) for s in reversed(recent)]


@dataclass(slots=True)
class UnitRow:
    unit: Unit
    domains: int = 0
    sites: int = 0
    fails: int = 0  # confirmed failures in the latest scan
    warns: int = 0
    unknown: int = 0
    checked: bool = False
    report_state: str = ""
    report_id: int | None = None


@dataclass(slots=True)
class OfficePage:
    office: Office
    parent: Office | None
    children: list[Office]
    rows: list[UnitRow] = field(default_factory=list)
    scan: Scan | None = None


def office_page(session: Session, code: str, year: int) -> OfficePage:
    office = session.get(Office, code)
    if office is None:
        raise LookupError(code)
    parent = session.get(Office, office.parent_code) if office.parent_code else None
    children = list(
        session.scalars(sa.select(Office).where(Office.parent_code == code).order_by(Office.code))
    )
    units = list(session.scalars(sa.select(Unit).where(Unit.office_code == code).order_by(Unit.name)))
    page = OfficePage(office, parent, children, [UnitRow(u) for u in units], latest_scan(session))
    by_id = {r.unit.id: r for r in page.rows}
    ids = list(by_id)
    if not ids:
        return page
    for uid, n in session.execute(
        sa.select(Domain.unit_id, sa.func.count(Domain.id))
        .where(Domain.unit_id.in_(ids))
        .group_by(Domain.unit_id)
    ):
        by_id[uid].domains = int(n)
    for uid, n in session.execute(
        sa.select(Website.unit_id, sa.func.count(Website.id))
        .where(Website.unit_id.in_(ids))
        .group_by(Website.unit_id)
    ):
        by_id[uid].sites = int(n)
    if page.scan is not None:
        site_q = (
            sa.select(Website.unit_id, Finding.status, Finding.confirmed)
            .join(Finding, Finding.website_id == Website.id)
            .where(Finding.scan_id == page.scan.id, Website.unit_id.in_(ids))
        )
        dom_q = (
            sa.select(Domain.unit_id, Finding.status, Finding.confirmed)
            .join(Finding, Finding.domain_id == Domain.id)
            .where(Finding.scan_id == page.scan.id, Domain.unit_id.in_(ids), Finding.website_id.is_(None))
        )
        for q in (site_q, dom_q):
            for uid, status, confirmed in session.execute(q):
                row = by_id[uid]
                row.checked = True
                if status == Status.FAIL and confirmed:
                    row.fails += 1
                elif status == Status.WARN:
                    row.warns += 1
                elif status == Status.UNKNOWN:
                    row.unknown += 1
    for rid, uid, state in session.execute(
        sa.select(AnnualReport.id, AnnualReport.unit_id, AnnualReport.state).where(
            AnnualReport.unit_id.in_(ids), AnnualReport.year == year
        )
    ):
        by_id[uid].report_state, by_id[uid].report_id = state, rid
    return page


def unit_findings(session: Session, unit: Unit, limit: int = 300) -> list[tuple[Finding, Scan]]:
    """The unit's findings over all scans, newest first (its websites' and its domains')."""
    site_ids = [w.id for w in unit.websites]
    dom_ids = [d.id for d in unit.domains]
    conds = []
    if site_ids:
        conds.append(Finding.website_id.in_(site_ids))
    if dom_ids:
        conds.append(Finding.domain_id.in_(dom_ids))
    if not conds:
        return []
    stmt = (
        sa.select(Finding, Scan)
        .join(Scan, Scan.id == Finding.scan_id)
        .where(sa.or_(*conds))
        .order_by(Scan.started_at.desc(), Finding.id.desc())
        .limit(limit)
    )
    return [(f, s) for f, s in session.execute(stmt)]


def unit_office_code(
    session: Session, *, website_id: int | None = None, domain_id: int | None = None, capture: Any = None
) -> str | None:
    """The office code that owns a website, a domain or a capture (None when unknown)."""
    if capture is not None:
        website_id, domain_id = capture.website_id, capture.domain_id
    if website_id is not None:
        return session.scalar(
            sa.select(Unit.office_code)
            .join(Website, Website.unit_id == Unit.id)
            .where(Website.id == website_id)
        )
    if domain_id is not None:
        return session.scalar(
            sa.select(Unit.office_code).join(Domain, Domain.unit_id == Unit.id).where(Domain.id == domain_id)
        )
    return None
