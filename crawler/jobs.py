"""Subjects of a scan (a website, a domain or a unit) and how they are read from the registry.

The scope is streamed from the database a page of units at a time (keyset pagination by unit id),
so memory stays flat however large the registry; subjects that already have findings in the scan (a
resumed scan) are skipped inside the query.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload

from checks.expected import Expected, UnitKind
from storage.expected import expected_for
from storage.models import Domain, DomainKind, Finding, Office, Unit, Website
from storage.subjects import Subject, SubjectKind

UNIT_PAGE = 200


@dataclass
class SiteJob:
    """One website to visit."""

    website_id: int
    url: str
    expected: Expected
    attempt: int = 1
    history: list[dict[str, tuple[str, str]]] = field(default_factory=list)

    @property
    def subject(self) -> str:
        return str(Subject.site(self.website_id))


@dataclass
class DomainJob:
    """One domain to resolve (and, for a Chinese domain, to fetch to see how it is used)."""

    domain_id: int
    name: str
    ascii: str
    kind: str
    unit_kind: str
    expiry: date | None
    site_urls: tuple[str, ...]
    expected: Expected | None = None  # the unit's site this domain should serve (usage check)
    attempt: int = 1
    history: list[dict[str, tuple[str, str]]] = field(default_factory=list)

    @property
    def subject(self) -> str:
        return str(Subject.domain(self.domain_id))

    @property
    def chinese(self) -> bool:
        return self.kind != DomainKind.ENGLISH


@dataclass
class UnitJob:
    """One unit: does it hold a Chinese domain of its kind at all (no network; the registry says)."""

    unit_id: int
    unit_kind: str
    domains: tuple[str, ...]
    attempt: int = 1
    history: list[dict[str, tuple[str, str]]] = field(default_factory=list)

    @property
    def subject(self) -> str:
        return str(Subject.unit(self.unit_id))


Job = SiteJob | DomainJob | UnitJob


@dataclass(frozen=True)
class Scope:
    """What a scan covers: offices (with their sub-offices) and an optional limit on websites."""

    office_codes: tuple[str, ...] = ()  # empty: everything
    limit: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"office_codes": list(self.office_codes), "limit": self.limit}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Scope:
        return cls(tuple(raw.get("office_codes") or ()), raw.get("limit"))


def expand_offices(session: Session, office: str | None) -> tuple[str, ...]:
    """The office and every office below it; empty tuple for "all offices"."""
    if not office:
        return ()
    rows = session.execute(sa.select(Office.code, Office.parent_code)).all()
    if office not in {code for code, _ in rows}:
        raise LookupError(f"编办代码 {office} 不存在")
    children: dict[str | None, list[str]] = {}
    for code, parent in rows:
        children.setdefault(parent, []).append(code)
    out, todo = [], [office]
    while todo:
        code = todo.pop()
        out.append(code)
        todo.extend(children.get(code, []))
    return tuple(sorted(out))


def lock_names(session: Session, scope: Scope) -> list[str]:
    """Lock rows a scan of ``scope`` takes: one per office, so overlapping scopes collide."""
    if scope.office_codes:
        return [f"office:{c}" for c in scope.office_codes]
    return [f"office:{c}" for c in session.scalars(sa.select(Office.code).order_by(Office.code))]


def _site_filter(scope: Scope) -> list[Any]:
    conds: list[Any] = []
    if scope.office_codes:
        conds.append(Website.unit_id.in_(sa.select(Unit.id).where(Unit.office_code.in_(scope.office_codes))))
    return conds


def _limited_site_ids(session: Session, scope: Scope) -> list[int] | None:
    if scope.limit is None:
        return None
    q = sa.select(Website.id).where(*_site_filter(scope)).order_by(Website.id).limit(scope.limit)
    return list(session.scalars(q))


@dataclass(frozen=True)
class ScopeCounts:
    """How many subjects of each kind a scope holds."""

    sites: int
    domains: int
    units: int

    @property
    def total(self) -> int:
        return self.sites + self.domains + self.units


def count_subjects(engine: Engine, scope: Scope) -> ScopeCounts:
    """Websites, domains and units in scope."""
    with Session(engine) as s:
        ids = _limited_site_ids(s, scope)
        n_units = int(s.scalar(_unit_scope(sa.select(sa.func.count()).select_from(Unit), scope, ids)) or 0)
        if ids is not None:
            n_dom = (
                s.scalar(sa.select(sa.func.count()).select_from(Domain).where(Domain.website_id.in_(ids)))
                or 0
            )
            return ScopeCounts(len(ids), n_dom, n_units)
        n_sites = s.scalar(sa.select(sa.func.count()).select_from(Website).where(*_site_filter(scope))) or 0
        dq = sa.select(sa.func.count()).select_from(Domain)
        if scope.office_codes:
            dq = dq.where(
                Domain.unit_id.in_(sa.select(Unit.id).where(Unit.office_code.in_(scope.office_codes)))
            )
        return ScopeCounts(n_sites, s.scalar(dq) or 0, n_units)


def _not_done(scan_id: int, column: Any, kind: SubjectKind) -> Any:
    subject = sa.literal(kind.prefix) + sa.cast(column, sa.String)
    done = sa.select(Finding.id).where(Finding.scan_id == scan_id, Finding.subject == subject)
    return ~sa.exists(done)


def _site_query() -> Any:
    return sa.select(Website).options(selectinload(Website.unit), selectinload(Website.domains))


def _site_jobs(sites: Iterable[Website]) -> list[SiteJob]:
    return [SiteJob(w.id, w.url, expected_for(w)) for w in sites]


def _domain_query() -> Any:
    return sa.select(Domain).options(
        selectinload(Domain.unit).selectinload(Unit.websites).selectinload(Website.domains),
        selectinload(Domain.unit).selectinload(Unit.domains),
        selectinload(Domain.website).selectinload(Website.domains),
    )


def _domain_jobs(rows: Iterable[Domain]) -> list[DomainJob]:
    return [
        DomainJob(
            domain_id=d.id,
            name=d.name,
            ascii=d.ascii,
            kind=d.kind,
            unit_kind=d.unit.kind,
            expiry=d.expiry,
            site_urls=tuple(sorted(w.url for w in d.unit.websites)),
            expected=domain_expected(d),
        )
        for d in rows
    ]


def _site_scope(q: Any, scope: Scope, limited: list[int] | None) -> Any:
    if limited is not None:
        return q.where(Website.id.in_(limited)) if limited else q.where(sa.false())
    return q.where(*_site_filter(scope))


def _domain_scope(q: Any, scope: Scope, limited: list[int] | None) -> Any:
    if limited is not None:
        return q.where(Domain.website_id.in_(limited)) if limited else q.where(sa.false())
    if scope.office_codes:
        return q.where(Domain.unit_id.in_(sa.select(Unit.id).where(Unit.office_code.in_(scope.office_codes))))
    return q


def _unit_query() -> Any:
    return sa.select(Unit).options(selectinload(Unit.domains))


def _unit_jobs(rows: Iterable[Unit]) -> list[UnitJob]:
    return [UnitJob(u.id, u.kind, tuple(sorted(d.name for d in u.domains))) for u in rows]


def _unit_scope(q: Any, scope: Scope, limited: list[int] | None) -> Any:
    if limited is not None:
        # A limited scan covers the units of its websites.
        return q.where(Unit.id.in_(sa.select(Website.unit_id).where(Website.id.in_(limited))))
    if scope.office_codes:
        return q.where(Unit.office_code.in_(scope.office_codes))
    return q


def _unit_pages(engine: Engine, scope: Scope) -> Iterator[tuple[list[int], list[int] | None]]:
    """The scope's unit ids, a page at a time (with the limited site ids, if the scope is limited)."""
    with Session(engine) as s:
        limited = _limited_site_ids(s, scope)
    last = 0
    while True:
        with Session(engine) as s:
            q = _unit_scope(sa.select(Unit.id).where(Unit.id > last), scope, limited)
            ids = list(s.scalars(q.order_by(Unit.id).limit(UNIT_PAGE)))
        if not ids:
            return
        last = ids[-1]
        yield ids, limited


def iter_jobs(engine: Engine, scope: Scope, scan_id: int) -> Iterator[Job]:
    """Every subject of the scope without findings in ``scan_id`` yet, unit by unit (a page of units:
    their websites, their domains, then the units themselves).

    Grouping by unit keeps the names a unit's subjects resolve close together in time, so the scan's
    DNS cache (bounded) answers the second lookup of a name however large the registry.
    """
    for unit_ids, limited in _unit_pages(engine, scope):
        with Session(engine) as s:
            sites = _site_query().where(
                Website.unit_id.in_(unit_ids), _not_done(scan_id, Website.id, SubjectKind.SITE)
            )
            site_jobs = _site_jobs(s.scalars(_site_scope(sites, scope, limited).order_by(Website.id)))
            doms = _domain_query().where(
                Domain.unit_id.in_(unit_ids), _not_done(scan_id, Domain.id, SubjectKind.DOMAIN)
            )
            domain_jobs = _domain_jobs(s.scalars(_domain_scope(doms, scope, limited).order_by(Domain.id)))
            units = _unit_query().where(Unit.id.in_(unit_ids), _not_done(scan_id, Unit.id, SubjectKind.UNIT))
            unit_jobs = _unit_jobs(s.scalars(units.order_by(Unit.id)))
        yield from site_jobs
        yield from domain_jobs
        yield from unit_jobs


def iter_subjects(engine: Engine, scope: Scope, scan_id: int) -> Iterator[str]:
    """The ``subject`` strings of :func:`iter_jobs`, in the same order, read with id-only queries
    (cheap: for seeding a shared frontier, where :func:`load_jobs` rebuilds each job when a worker
    takes it)."""
    for unit_ids, limited in _unit_pages(engine, scope):
        with Session(engine) as s:
            sites = sa.select(Website.id).where(
                Website.unit_id.in_(unit_ids), _not_done(scan_id, Website.id, SubjectKind.SITE)
            )
            site_ids = list(s.scalars(_site_scope(sites, scope, limited).order_by(Website.id)))
            doms = sa.select(Domain.id).where(
                Domain.unit_id.in_(unit_ids), _not_done(scan_id, Domain.id, SubjectKind.DOMAIN)
            )
            domain_ids = list(s.scalars(_domain_scope(doms, scope, limited).order_by(Domain.id)))
            units = sa.select(Unit.id).where(
                Unit.id.in_(unit_ids), _not_done(scan_id, Unit.id, SubjectKind.UNIT)
            )
            pending_units = list(s.scalars(units.order_by(Unit.id)))
        yield from (str(Subject.site(i)) for i in site_ids)
        yield from (str(Subject.domain(i)) for i in domain_ids)
        yield from (str(Subject.unit(i)) for i in pending_units)


def parse_subject(subject: str) -> tuple[str, int]:
    """``"site:12"`` → ``("site", 12)``: :meth:`storage.subjects.Subject.parse` as a pair."""
    parsed = Subject.parse(subject)
    return parsed.kind.value, parsed.id


def load_jobs(engine: Engine, subjects: Iterable[str]) -> list[Job]:
    """The jobs of ``subjects`` (as :func:`iter_subjects` yields them), rebuilt from the registry.

    Subjects whose website or domain no longer exists are left out (the registry changed mid-scan).
    """
    ids: dict[SubjectKind, list[int]] = {kind: [] for kind in SubjectKind}
    order: list[str] = []
    for subject in subjects:
        parsed = Subject.parse(subject)
        ids[parsed.kind].append(parsed.id)
        order.append(subject)
    by_subject: dict[str, Job] = {}
    with Session(engine) as s:
        if ids[SubjectKind.SITE]:
            for sj in _site_jobs(s.scalars(_site_query().where(Website.id.in_(ids[SubjectKind.SITE])))):
                by_subject[sj.subject] = sj
        if ids[SubjectKind.DOMAIN]:
            for dj in _domain_jobs(s.scalars(_domain_query().where(Domain.id.in_(ids[SubjectKind.DOMAIN])))):
                by_subject[dj.subject] = dj
        if ids[SubjectKind.UNIT]:
            for uj in _unit_jobs(s.scalars(_unit_query().where(Unit.id.in_(ids[SubjectKind.UNIT])))):
                by_subject[uj.subject] = uj
    return [by_subject[x] for x in order if x in by_subject]


def domain_expected(d: Domain) -> Expected:
    """What a domain should serve: the unit's site whose host it is, else the site it is linked to,
    else the unit's first site. Every site and domain of the unit counts as the unit's own (a unit with
    two sites may point its Chinese domain at either)."""

    sites = sorted(d.unit.websites, key=lambda w: w.id)
    by_host = {(urlsplit(w.url).hostname or "").lower(): w for w in sites}
    site = by_host.get(d.ascii) or d.website or (sites[0] if sites else None)
    unit_cn = tuple(sorted(x.name for x in d.unit.domains if x.kind != DomainKind.ENGLISH))
    unit_en = tuple(
        sorted({x.name for x in d.unit.domains if x.kind == DomainKind.ENGLISH} | set(by_host) - {""})
    )
    if site is not None:
        if site.unit is None:  # pragma: no cover - relationships are loaded above
            site.unit = d.unit
        exp = expected_for(site)
        return replace(
            exp,
            cn_domains=tuple(sorted(set(exp.cn_domains) | set(unit_cn))),
            en_domains=tuple(sorted(set(exp.en_domains) | set(unit_en))),
        )
    return Expected(
        unit_kind=UnitKind(d.unit.kind), unit_name=d.unit.name, cn_domains=unit_cn, en_domains=unit_en
    )
