"""Reading what reports need from the database: office tree, registry counts, scans and findings.

Counting rules (docs/reports.md):

* 行政事业单位机构数 is the office's roster count (``Office.roster_count``), summed over a
  district's or county's own sub-offices;
* 已注册 counts 党政机关 and 事业单位 holding at least one ``.政务``/``.公益`` domain, 已注册域名数
  the ``.政务``/``.公益`` domains they hold;
* the badge columns count self-built websites (red pages excluded) whose badge status is 已通过,
  by the kind of the unit that owns them;
* the scan columns come from one scan: the latest finished scan unless one is named.

The registry holds the current state; ``as_of`` chooses the offices valid on that date and the names
they carried then (regions change: docs/registry.md).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from checks.errors import InputError
from checks.expected import UnitKind
from checks.verdict import Status
from reports.coverage import (
    CoverageTable,
    OfficeCounts,
    PublishedTable,
    build_coverage,
    own_units_label,
    with_notes,
)
from reports.noncompliance import FindingRecord, NoncomplianceReport, build_noncompliance
from storage.models import (
    BadgeStatus,
    Domain,
    DomainKind,
    Finding,
    Office,
    OfficeLevel,
    Scan,
    ScanStatus,
    Unit,
    Website,
)
from storage.readable import readable_detail
from storage.status import covers, latest_covering, scope_offices
from storage.timefmt import DEFAULT_TIMEZONE, local_date, zone

CN_KINDS = (DomainKind.ZHENGWU.value, DomainKind.GONGYI.value)
COUNTED_KINDS = (UnitKind.PARTY_GOV.value, UnitKind.INSTITUTION.value)


class ReportInputError(InputError, LookupError):
    """A report cannot be made from what the database holds (says which office/scan and why)."""


@dataclass(frozen=True, slots=True)
class OfficeTree:
    offices: dict[str, Office]
    children: dict[str | None, list[str]]

    @classmethod
    def load(cls, session: Session) -> OfficeTree:
        offices = {o.code: o for o in session.scalars(sa.select(Office))}
        children: dict[str | None, list[str]] = defaultdict(list)
        for o in offices.values():
            parent = o.parent_code if o.parent_code in offices else None
            children[parent].append(o.code)
        return cls(offices, dict(children))

    def get(self, code: str) -> Office:
        try:
            return self.offices[code]
        except KeyError:
            raise ReportInputError(f"编办代码 {code} 不在登记信息中") from None

    def subtree(self, code: str) -> list[str]:
        out, stack = [], [code]
        while stack:
            c = stack.pop()
            out.append(c)
            stack.extend(self.children.get(c, ()))
        return out

    def sub_offices(self, code: str, day: dt.date) -> list[Office]:
        """Direct sub-offices valid on ``day``, in the order official tables use: 区, 市, 县, then code."""
        kids = [self.offices[c] for c in self.children.get(code, ()) if self.offices[c].valid_on(day)]
        return sorted(kids, key=lambda o: (_suffix_rank(o.name_on(day)), o.code))

    def roots(self) -> list[str]:
        return sorted(self.children.get(None, ()))


def _suffix_rank(name: str) -> int:
    for rank, suffix in enumerate(("区", "市", "县")):
        if name.endswith(suffix):
            return rank
    return 3


@dataclass(frozen=True, slots=True)
class _Raw:
    roster: int
    registry_units: int
    registered_units: int
    domains: int
    party_badges: int
    institution_badges: int
    websites: int


def _group_count(session: Session, stmt: sa.Select[str, int]) -> dict[str, int]:
    return {code: int(n) for code, n in session.execute(stmt)}


def registry_counts(session: Session) -> dict[str, _Raw]:
    """Per office code (the unit's own office), the registry figures of the coverage table."""
    counted = Unit.kind.in_(COUNTED_KINDS)
    units = _group_count(
        session, sa.select(Unit.office_code, sa.func.count(Unit.id)).where(counted).group_by(Unit.office_code)
    )
    registered = _group_count(
        session,
        sa.select(Unit.office_code, sa.func.count(sa.distinct(Unit.id)))
        .join(Domain, Domain.unit_id == Unit.id)
        .where(counted, Domain.kind.in_(CN_KINDS))
        .group_by(Unit.office_code),
    )
    domains = _group_count(
        session,
        sa.select(Unit.office_code, sa.func.count(Domain.id))
        .join(Domain, Domain.unit_id == Unit.id)
        .where(counted, Domain.kind.in_(CN_KINDS))
        .group_by(Unit.office_code),
    )
    self_built = sa.and_(counted, Website.red_page.is_(False))
    websites = _group_count(
        session,
        sa.select(Unit.office_code, sa.func.count(Website.id))
        .join(Website, Website.unit_id == Unit.id)
        .where(self_built)
        .group_by(Unit.office_code),
    )
    badges: dict[tuple[str, str], int] = {}
    stmt = (
        sa.select(Unit.office_code, Unit.kind, sa.func.count(Website.id))
        .join(Website, Website.unit_id == Unit.id)
        .where(self_built, Website.badge_status == BadgeStatus.APPROVED.value)
        .group_by(Unit.office_code, Unit.kind)
    )
    for code, kind, n in session.execute(stmt):
        badges[(code, kind)] = int(n)
    rosters = {o.code: o.roster_count or 0 for o in session.scalars(sa.select(Office))}
    codes = set(rosters) | set(units)
    return {
        c: _Raw(
            rosters.get(c, 0),
            units.get(c, 0),
            registered.get(c, 0),
            domains.get(c, 0),
            badges.get((c, UnitKind.PARTY_GOV.value), 0),
            badges.get((c, UnitKind.INSTITUTION.value), 0),
            websites.get(c, 0),
        )
        for c in codes
    }


@dataclass(frozen=True, slots=True)
class _ScanRaw:
    badge_verified: int
    cn_checked: int
    cn_resolving: int
    unverifiable: int


def scan_counts(session: Session, scan_id: int) -> dict[str, _ScanRaw]:
    """Per office code, the scan figures: verified badges, resolving Chinese domains, unverifiable sites."""
    site_rows = session.execute(
        sa.select(Unit.office_code, Finding.website_id, Finding.reason, Finding.status)
        .join(Website, Website.id == Finding.website_id)
        .join(Unit, Unit.id == Website.unit_id)
        .where(Finding.scan_id == scan_id, Unit.kind.in_(COUNTED_KINDS), Website.red_page.is_(False))
    )
    badge_status: dict[tuple[str, int], str] = {}
    any_unknown: set[tuple[str, int]] = set()
    for code, site, reason, status in site_rows:
        if site is None:
            continue
        key = (code, site)
        if str(reason).startswith("badge."):
            badge_status[key] = status
        if status == Status.UNKNOWN:
            any_unknown.add(key)
    verified: dict[str, int] = defaultdict(int)
    unverifiable: dict[str, int] = defaultdict(int)
    for (code, _), status in badge_status.items():
        if status == Status.PASS:
            verified[code] += 1
        elif status == Status.UNKNOWN:
            unverifiable[code] += 1
    for key in any_unknown - set(badge_status):
        unverifiable[key[0]] += 1  # no badge verdict at all: the page could not be read
    dom_rows = session.execute(
        sa.select(Unit.office_code, Finding.domain_id, Finding.status)
        .join(Domain, Domain.id == Finding.domain_id)
        .join(Unit, Unit.id == Domain.unit_id)
        .where(
            Finding.scan_id == scan_id,
            Finding.reason.like("dns.%"),
            Domain.kind.in_(CN_KINDS),
            Unit.kind.in_(COUNTED_KINDS),
        )
    )
    checked: dict[str, set[int]] = defaultdict(set)
    resolving: dict[str, set[int]] = defaultdict(set)
    for code, dom, status in dom_rows:
        if dom is None:
            continue
        checked[code].add(dom)
        if status == Status.PASS:
            resolving[code].add(dom)
    codes = set(verified) | set(unverifiable) | set(checked)
    return {
        c: _ScanRaw(
            verified.get(c, 0), len(checked.get(c, ())), len(resolving.get(c, ())), unverifiable.get(c, 0)
        )
        for c in codes
    }


def latest_scan(session: Session, before: dt.datetime | None = None) -> Scan | None:
    """The latest finished scan (started before ``before`` when given)."""
    stmt = sa.select(Scan).where(Scan.status == ScanStatus.FINISHED.value)
    if before is not None:
        stmt = stmt.where(Scan.started_at < before)
    return session.scalars(stmt.order_by(Scan.started_at.desc(), Scan.id.desc()).limit(1)).first()


def get_scan(session: Session, scan_id: int | None, before: dt.datetime | None = None) -> Scan | None:
    if scan_id is None:
        return latest_scan(session, before)
    scan = session.get(Scan, scan_id)
    if scan is None:
        raise ReportInputError(f"巡检 {scan_id} 不存在")
    return scan


def previous_scan(session: Session, scan: Scan) -> Scan | None:
    """The finished scan before ``scan``: what "new", "persisting" and "fixed" compare against."""
    stmt = (
        sa.select(Scan)
        .where(
            Scan.status == ScanStatus.FINISHED.value,
            Scan.id != scan.id,
            sa.or_(
                Scan.started_at < scan.started_at,
                sa.and_(Scan.started_at == scan.started_at, Scan.id < scan.id),
            ),
        )
        .order_by(Scan.started_at.desc(), Scan.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def _sum(raws: Iterable[_Raw | None], attr: str) -> int:
    return sum(getattr(r, attr) for r in raws if r is not None)


def coverage_from_db(
    session: Session,
    office_code: str | None,
    as_of: dt.date,
    *,
    scan_id: int | None = None,
    published: PublishedTable | None = None,
    tz: str = DEFAULT_TIMEZONE,
) -> CoverageTable:
    """The coverage table of ``office_code`` (the only root office when omitted) on ``as_of``."""
    tree = OfficeTree.load(session)
    if office_code is None:
        roots = tree.roots()
        if len(roots) != 1:
            raise ReportInputError(
                f"登记信息中有{len(roots)}个顶级编办，请用 --office 指定一个"
                + (f"（{'、'.join(roots[:10])}）" if roots else "")
            )
        office_code = roots[0]
    top = tree.get(office_code)
    raw = registry_counts(session)
    # The end of the reporting day where the officials are (a scan at 01:00 Beijing time is that day's).
    end_of_day = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=zone(tz))
    if scan_id is None:
        # The scan that speaks for this office: the latest one whose scope included it.
        scan = latest_covering(session, tree.subtree(office_code))
        if scan is not None and scan.started_at >= end_of_day:
            scan = get_scan(session, None, end_of_day)
    else:
        scan = get_scan(session, scan_id, end_of_day)
    sraw = scan_counts(session, scan.id) if scan is not None else {}
    outside: list[str] = []

    def row(code: str, name: str, codes: Sequence[str]) -> OfficeCounts:
        rs = [raw.get(c) for c in codes]
        ss = [sraw.get(c) for c in codes]
        in_scope = scan is not None and covers(scan, code)
        if scan is not None and not in_scope:
            outside.append(name)  # no zeros for an office the scan never visited: its figures are —
        scan_figure = (lambda attr: sum(getattr(s, attr) for s in ss if s is not None)) if in_scope else None
        return OfficeCounts(
            code=code,
            name=name,
            institutions=_sum(rs, "roster"),
            registered_units=_sum(rs, "registered_units"),
            domains=_sum(rs, "domains"),
            party_badges=_sum(rs, "party_badges"),
            institution_badges=_sum(rs, "institution_badges"),
            registry_units=_sum(rs, "registry_units"),
            websites=_sum(rs, "websites"),
            badge_verified=scan_figure("badge_verified") if scan_figure else None,
            cn_domains_checked=scan_figure("cn_checked") if scan_figure else None,
            cn_domains_resolving=scan_figure("cn_resolving") if scan_figure else None,
            unverifiable=scan_figure("unverifiable") if scan_figure else None,
        )

    name = top.name_on(as_of)
    subs = tree.sub_offices(office_code, as_of)
    rows = []
    own = raw.get(office_code)
    if not subs or (own is not None and (own.roster or own.registry_units)):
        level_label = {OfficeLevel.PROVINCE.value: "省直", OfficeLevel.CITY.value: "市直"}.get(top.level)
        label = (level_label or own_units_label(office_code, name)) if subs else name
        rows.append(row(office_code, label, [office_code]))
    for sub in subs:
        rows.append(row(sub.code, sub.name_on(as_of), tree.subtree(sub.code)))
    table = build_coverage(
        office_code,
        name,
        as_of,
        rows,
        published=published,
        scan_id=str(scan.id) if scan is not None else None,
    )
    if outside and scan is not None:
        note = f"{'、'.join(outside)}不在巡检 {scan.id} 的范围内（未巡检），巡检各列显示为“—”。"
        table = with_notes(table, [note])
    return table


def finding_records(
    session: Session,
    scan_id: int,
    office_codes: Iterable[str] | None = None,
    day: dt.date | None = None,
    unit_ids: Iterable[int] | None = None,
) -> list[FindingRecord]:
    """The findings of ``scan_id`` with unit, office, site and domain context (of ``office_codes``'
    units, or only of ``unit_ids``)."""
    names = {o.code: (o.name_on(day) if day else o.name) for o in session.scalars(sa.select(Office))}
    wanted = set(office_codes) if office_codes is not None else None
    out: list[FindingRecord] = []
    site_q = (
        sa.select(Finding, Website, Unit)
        .join(Website, Website.id == Finding.website_id)
        .join(Unit, Unit.id == Website.unit_id)
        .where(Finding.scan_id == scan_id)
    )
    dom_q = (
        sa.select(Finding, Domain, Unit)
        .join(Domain, Domain.id == Finding.domain_id)
        .join(Unit, Unit.id == Domain.unit_id)
        .where(Finding.scan_id == scan_id, Finding.website_id.is_(None))
    )
    unit_q = sa.select(Finding, Unit).join(Unit, Unit.id == Finding.unit_id).where(Finding.scan_id == scan_id)
    if wanted is not None:
        site_q = site_q.where(Unit.office_code.in_(wanted))
        dom_q = dom_q.where(Unit.office_code.in_(wanted))
        unit_q = unit_q.where(Unit.office_code.in_(wanted))
    if unit_ids is not None:
        ids = sorted(set(unit_ids))
        site_q = site_q.where(Unit.id.in_(ids))
        dom_q = dom_q.where(Unit.id.in_(ids))
        unit_q = unit_q.where(Unit.id.in_(ids))
    for f, site, unit in session.execute(site_q):
        out.append(_record(f, unit, names, site_name=site.name, site_url=site.url))
    for f, dom, unit in session.execute(dom_q):
        out.append(_record(f, unit, names, domain=dom.name, domain_kind=dom.kind))
    for f, unit in session.execute(unit_q):
        out.append(_record(f, unit, names))
    return out


def finding_record(session: Session, finding_id: int, day: dt.date | None = None) -> FindingRecord | None:
    """One finding with its unit, office, site or domain context (None when it or its unit is gone)."""
    f = session.get(Finding, finding_id)
    if f is None:
        return None
    office_names = {o.code: (o.name_on(day) if day else o.name) for o in session.scalars(sa.select(Office))}
    if f.website_id is not None:
        site = session.get(Website, f.website_id)
        if site is not None:
            return _record(f, site.unit, office_names, site_name=site.name, site_url=site.url)
    if f.domain_id is not None:
        dom = session.get(Domain, f.domain_id)
        if dom is not None:
            return _record(f, dom.unit, office_names, domain=dom.name, domain_kind=dom.kind)
    unit = session.get(Unit, f.unit_id) if f.unit_id is not None else None
    return _record(f, unit, office_names) if unit is not None else None


def _record(
    f: Finding,
    unit: Unit,
    names: dict[str, str],
    *,
    site_name: str = "",
    site_url: str = "",
    domain: str = "",
    domain_kind: str = "",
) -> FindingRecord:
    return FindingRecord(
        finding_id=f.id,
        scan_id=f.scan_id,
        office_code=unit.office_code,
        office_name=names.get(unit.office_code, unit.office_code),
        unit_id=unit.id,
        unit_name=unit.name,
        unit_kind=unit.kind,
        subject=f.subject,
        check=f.check,
        status=f.status,
        reason=f.reason,
        detail=readable_detail(f.detail),
        confirmed=f.confirmed,
        site_name=site_name,
        site_url=site_url,
        domain=domain,
        capture_id=f.capture_id,
        first_seen_at=f.first_seen_at,
        visits=f.visits,
        domain_kind=domain_kind,
    )


def scope_label(tree: OfficeTree, scan: Scan, day: dt.date, office_code: str | None = None) -> str:
    """What a scan (or its part for ``office_code``) covered, as an official reads it."""
    if office_code:
        o = tree.get(office_code)
        below = "及下级编办" if tree.children.get(office_code) else ""
        return f"{o.name_on(day)}{below}"
    codes = scope_offices(scan)
    if codes is None:
        return "全部编办"
    tops = sorted(c for c in codes if tree.offices.get(c) and tree.offices[c].parent_code not in codes)
    names = [tree.offices[c].name_on(day) + ("及下级编办" if tree.children.get(c) else "") for c in tops]
    return "、".join(names[:5]) + (f"等{len(names)}个编办" if len(names) > 5 else "")


def noncompliance_from_db(
    session: Session,
    scan_id: int | None = None,
    office_code: str | None = None,
    base_url: str = "",
    tz: str = DEFAULT_TIMEZONE,
) -> NoncomplianceReport:
    """Lists of one scan (the latest finished one by default) for an office and its sub-offices.

    Offices the scan was not meant to visit (outside its scope) are marked 未巡检, never clean.
    """
    tree = OfficeTree.load(session)
    if office_code:
        tree.get(office_code)
    codes = tree.subtree(office_code) if office_code else list(tree.offices)
    scan = latest_covering(session, codes) if scan_id is None and office_code else get_scan(session, scan_id)
    if scan is None:
        raise ReportInputError("还没有完成的巡检，无法生成不合规清单")
    prev = previous_scan(session, scan)
    day = local_date(scan.started_at, tz)
    current = finding_records(session, scan.id, codes, day)
    previous = finding_records(session, prev.id, codes, day) if prev is not None else []
    # Offices with units get a list even when clean; empty offices (no units) do not.
    with_units = set(session.scalars(sa.select(Unit.office_code).distinct()))
    listed = [c for c in codes if c in with_units]
    offices = {c: tree.offices[c].name_on(day) for c in listed if covers(scan, c)}
    outside = {c: tree.offices[c].name_on(day) for c in listed if not covers(scan, c)}
    return build_noncompliance(
        scan.id,
        current,
        previous,
        previous_scan_id=prev.id if prev else None,
        offices=offices,
        not_scanned=outside,
        base_url=base_url,
        started_at=scan.started_at,
        scope=scope_label(tree, scan, day, office_code),
        tz=tz,
    )
