"""What the dashboard, office and unit pages show, read from the database within a reviewer's scope."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from reports.coverage import CoverageTable
from reports.source import ReportInputError, coverage_from_db
from review.accounts import Principal
from storage.models import AnnualReport, Domain, Finding, Office, Scan, ScanStatus, Unit, Website
from storage.status import (
    State,
    Summary,
    covers,
    finding_state,
    latest_covering,
    office_units,
    rank,
    unit_summaries,
)


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
    counts: dict[str, int]  # badge findings by state (storage.status.State values) within the scope

    @property
    def judged(self) -> int:
        return sum(self.counts.get(k, 0) for k in ("pass", "fail", "pending", "warn"))

    @property
    def pass_pct(self) -> float | None:
        return None if not self.judged else 100.0 * self.counts.get("pass", 0) / self.judged


def _scope(stmt: Any, who: Principal) -> Any:
    return stmt if who.offices is None else stmt.where(Unit.office_code.in_(sorted(who.offices)))


def trend(session: Session, who: Principal, scans: int = 10) -> list[TrendPoint]:
    """Badge verdicts of the scope's websites over the last ``scans`` finished scans (oldest first),
    counted by state: a failure is 不合规 only once confirmed, 待确认 before."""
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
        sa.select(Finding.scan_id, Finding.status, Finding.confirmed, sa.func.count(Finding.id))
        .join(Website, Website.id == Finding.website_id)
        .join(Unit, Unit.id == Website.unit_id)
        .where(Finding.scan_id.in_([s.id for s in recent]), Finding.check == "badge")
        .group_by(Finding.scan_id, Finding.status, Finding.confirmed)
    )
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for scan_id, status, confirmed, n in session.execute(_scope(stmt, who)):
        counts[scan_id][str(finding_state(status, bool(confirmed)))] += int(n)
    return [TrendPoint(s.id, s.started_at, dict(counts.get(s.id, {}))) for s in reversed(recent)]


@dataclass(slots=True)
class UnitRow:
    unit: Unit
    domains: int = 0
    sites: int = 0
    summary: Summary = field(default_factory=Summary)  # the unit's status in the page's scan
    report_state: str = ""
    report_id: int | None = None

    @property
    def state(self) -> State:
        return self.summary.state


@dataclass(slots=True)
class ChildRow:
    """A sub-office on its parent's page: its status figures over its whole area in the page's scan."""

    office: Office
    scanned: bool
    units: int = 0
    by_state: Counter[State] = field(default_factory=Counter)  # units per state


@dataclass(slots=True)
class OfficePage:
    office: Office
    parent: Office | None
    children: list[Office]
    rows: list[UnitRow] = field(default_factory=list)
    scan: Scan | None = None
    child_rows: list[ChildRow] = field(default_factory=list)

    @property
    def scanned(self) -> bool:
        return self.scan is not None and covers(self.scan, self.office.code)

    @property
    def by_state(self) -> Counter[State]:
        """Units of the office itself per state (what the counts at the top show)."""
        return Counter(r.state for r in self.rows)


def _subtree(session: Session, code: str) -> list[str]:
    kids: dict[str, list[str]] = defaultdict(list)
    for c, p in session.execute(sa.select(Office.code, Office.parent_code)):
        if p is not None:
            kids[p].append(c)
    out, stack = [], [code]
    while stack:
        c = stack.pop()
        out.append(c)
        stack.extend(kids.get(c, ()))
    return out


def office_page(session: Session, code: str, year: int) -> OfficePage:
    """The office's units, worst status first (then by name), in the latest scan that covered the
    office; and each sub-office's figures over its area."""
    office = session.get(Office, code)
    if office is None:
        raise LookupError(code)
    parent = session.get(Office, office.parent_code) if office.parent_code else None
    children = list(
        session.scalars(sa.select(Office).where(Office.parent_code == code).order_by(Office.code))
    )
    units = list(session.scalars(sa.select(Unit).where(Unit.office_code == code).order_by(Unit.name)))
    scan = latest_covering(session, _subtree(session, code))
    page = OfficePage(office, parent, children, [UnitRow(u) for u in units], scan)
    by_id = {r.unit.id: r for r in page.rows}
    ids = list(by_id)
    for child in children:
        area = _subtree(session, child.code)
        row = ChildRow(child, scan is not None and covers(scan, child.code))
        members = [uid for uids in office_units(session, area).values() for uid in uids]
        row.units = len(members)
        summaries = unit_summaries(session, scan if row.scanned else None, members)
        row.by_state = Counter(sm.state for sm in summaries.values())
        page.child_rows.append(row)
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
    if page.scanned:
        for uid, summary in unit_summaries(session, scan, ids).items():
            by_id[uid].summary = summary
    for rid, uid, state in session.execute(
        sa.select(AnnualReport.id, AnnualReport.unit_id, AnnualReport.state).where(
            AnnualReport.unit_id.in_(ids), AnnualReport.year == year
        )
    ):
        by_id[uid].report_state, by_id[uid].report_id = state, rid
    # Problems first: the worst status leads, then the most findings of it, then the name.
    page.rows.sort(key=lambda r: (rank(r.state), -r.summary.count(r.state), r.unit.name))
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
