"""SQLAlchemy 2.0 typed models: every entity of the design's "Data" section.

Registry: :class:`Office` (编办), :class:`Unit` (机构), :class:`Domain`, :class:`Website`.
Scanning: :class:`Scan`, :class:`ScanLock`, :class:`Capture`, :class:`Finding`.
Reporting: :class:`AnnualReport` with its audit trail :class:`AnnualReportEvent`,
:class:`Notification`, :class:`User`.
Accounts: :class:`AuthSession`, :class:`ApiToken`, :class:`AuthEvent` (append-only).
Scheduling: :class:`ScheduleRun` and :class:`ScheduleStage`, the nightly chain's claims and checkpoints
(APScheduler's own ``apscheduler_jobs`` table is APScheduler's, outside these models and migrations).

Timestamps are timezone-aware UTC (:class:`storage.types.UtcDateTime`). Kinds and states are stored as
the strings of the enums below, so the database reads well and reports can print them as they are.
The schema itself is created by the Alembic migrations in ``storage/migrations`` (``badgewatch init``);
a test checks that the migrations and these models agree.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from checks.domains import DomainKind
from checks.expected import UnitKind
from storage.subjects import Subject
from storage.types import UtcDateTime, utcnow

__all__ = [
    "AnnualReport",
    "AnnualReportEvent",
    "ApiToken",
    "AuditEvent",
    "AuthEvent",
    "AuthSession",
    "BadgeStatus",
    "Base",
    "Capture",
    "Domain",
    "DomainKind",
    "Finding",
    "Notification",
    "NotificationStatus",
    "Office",
    "OfficeLevel",
    "ReportState",
    "Scan",
    "ScanLock",
    "ScanStatus",
    "ScheduleRun",
    "ScheduleStage",
    "Unit",
    "UnitKind",
    "User",
    "UserRole",
    "Website",
]

# Constraint names are fixed so that migrations can refer to them on both databases.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: sa.JSON(),
        list[Any]: sa.JSON(),
    }


class OfficeLevel(StrEnum):
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"


class BadgeStatus(StrEnum):
    """Badge application status (标识状态) as the registry writes it."""

    APPROVED = "已通过"
    PENDING = "审核中"
    NONE = "未申请"


class ScanStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class ReportState(StrEnum):
    """Annual report workflow: submitted → office_approved → approved, or rejected (then resubmitted)."""

    SUBMITTED = "submitted"
    OFFICE_APPROVED = "office_approved"
    APPROVED = "approved"
    REJECTED = "rejected"


class NotificationStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class UserRole(StrEnum):
    OFFICE = "office"
    CENTER = "center"
    ADMIN = "admin"
    # The portal through which units submit annual reports: submits, and may do nothing else.
    SUBMITTER = "submitter"


# --- registry -----------------------------------------------------------------------------------


class Office(Base):
    """An office (编办) of the reporting hierarchy, keyed by its GB division code.

    Regions change (docs/registry.md): ``valid_from``/``valid_until`` bound the code's life,
    ``successor_code`` names the office it merged into, and ``former_names`` keeps the names a code
    carried before (``[{"name": ..., "until": "YYYY-MM-DD"}]``) so a report can print the name valid
    at its date (:meth:`name_on`).
    """

    __tablename__ = "office"

    code: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    parent_code: Mapped[str | None] = mapped_column(sa.ForeignKey("office.code"), index=True)
    level: Mapped[str] = mapped_column(sa.String(16), default=OfficeLevel.COUNTY)
    # 行政事业单位机构数: the denominator of domain coverage.
    roster_count: Mapped[int | None]
    email: Mapped[str] = mapped_column(sa.String(200), default="")
    mobile: Mapped[str] = mapped_column(sa.String(40), default="")
    valid_from: Mapped[date | None]
    valid_until: Mapped[date | None]
    successor_code: Mapped[str | None] = mapped_column(sa.String(12))
    former_names: Mapped[list[Any]] = mapped_column(default=list)

    parent: Mapped[Office | None] = relationship(remote_side=[code], back_populates="children")
    children: Mapped[list[Office]] = relationship(back_populates="parent")
    units: Mapped[list[Unit]] = relationship(back_populates="office")

    def name_on(self, day: date) -> str:
        """The office's name valid on ``day`` (its current name if no former name covers the day)."""
        for entry in sorted(self.former_names, key=lambda e: str(e.get("until", ""))):
            until = str(entry.get("until", ""))
            if until and day.isoformat() <= until:
                return str(entry.get("name", self.name))
        return self.name

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )


class Unit(Base):
    """A unit (机构): a party/government body, public institution or social organisation."""

    __tablename__ = "unit"
    __table_args__ = (sa.UniqueConstraint("office_code", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    uscc: Mapped[str | None] = mapped_column(sa.String(18), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # a UnitKind value
    office_code: Mapped[str] = mapped_column(sa.ForeignKey("office.code"), index=True)
    # 职能审核: None when the registry does not say.
    functions_reviewed: Mapped[bool | None]
    email: Mapped[str] = mapped_column(sa.String(200), default="")
    mobile: Mapped[str] = mapped_column(sa.String(40), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    office: Mapped[Office] = relationship(back_populates="units")
    domains: Mapped[list[Domain]] = relationship(back_populates="unit", cascade="all, delete-orphan")
    websites: Mapped[list[Website]] = relationship(back_populates="unit", cascade="all, delete-orphan")

    @property
    def unit_kind(self) -> UnitKind:
        return UnitKind(self.kind)


class Website(Base):
    """A website of a unit. ``url`` is the normalised home URL and identifies the site."""

    __tablename__ = "website"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    url: Mapped[str] = mapped_column(sa.String(500), unique=True)
    icp: Mapped[str] = mapped_column(sa.String(64), default="")
    police_record: Mapped[str] = mapped_column(sa.String(64), default="")
    site_code: Mapped[str] = mapped_column(sa.String(16), default="")
    badge_code: Mapped[str] = mapped_column(sa.String(32), default="")
    badge_verify_id: Mapped[str] = mapped_column(sa.String(64), default="")
    badge_status: Mapped[str] = mapped_column(sa.String(8), default="")  # a BadgeStatus value or ""
    red_page: Mapped[bool] = mapped_column(default=False)
    is_government_site: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    unit: Mapped[Unit] = relationship(back_populates="websites")
    domains: Mapped[list[Domain]] = relationship(back_populates="website")

    @property
    def cn_domains(self) -> list[Domain]:
        return [d for d in self.domains if d.kind != DomainKind.ENGLISH]

    @property
    def en_domains(self) -> list[Domain]:
        return [d for d in self.domains if d.kind == DomainKind.ENGLISH]


class Domain(Base):
    """A domain name held by a unit; ``website_id`` links it to the site it should serve."""

    __tablename__ = "domain"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(300))  # Unicode form (U-label), e.g. 中央编办.政务.cn
    ascii: Mapped[str] = mapped_column(sa.String(300), unique=True)  # A-label form, lower case
    kind: Mapped[str] = mapped_column(sa.String(8))  # a DomainKind value
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id", ondelete="CASCADE"), index=True)
    website_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("website.id", ondelete="SET NULL"), index=True
    )
    expiry: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    unit: Mapped[Unit] = relationship(back_populates="domains")
    website: Mapped[Website | None] = relationship(back_populates="domains")


# --- scanning -----------------------------------------------------------------------------------


class Scan(Base):
    """One scan run. ``scope`` says what was asked (office, limit, ...), ``counters`` what happened."""

    __tablename__ = "scan"

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default=ScanStatus.RUNNING, index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    counters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str] = mapped_column(sa.Text, default="")

    captures: Mapped[list[Capture]] = relationship(back_populates="scan", cascade="all, delete-orphan")
    findings: Mapped[list[Finding]] = relationship(back_populates="scan", cascade="all, delete-orphan")


class ScanLock(Base):
    """A named lock row: two overlapping scans of the same ``name`` cannot run at once.

    Taking the lock is an INSERT (the primary key refuses a second holder); a holder whose
    ``heartbeat_at`` is older than the configured staleness may be taken over.
    """

    __tablename__ = "scan_lock"

    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    scan_id: Mapped[int | None] = mapped_column(sa.ForeignKey("scan.id", ondelete="SET NULL"))
    holder: Mapped[str] = mapped_column(sa.String(200), default="")  # host:pid
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class Capture(Base):
    """One visit's evidence. Large payloads live in the evidence store; columns hold blob keys."""

    __tablename__ = "capture"

    id: Mapped[int] = mapped_column(primary_key=True)
    scan_id: Mapped[int] = mapped_column(sa.ForeignKey("scan.id", ondelete="CASCADE"), index=True)
    website_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("website.id", ondelete="SET NULL"), index=True
    )
    domain_id: Mapped[int | None] = mapped_column(sa.ForeignKey("domain.id", ondelete="SET NULL"), index=True)
    # "site:<id>" or "domain:<id>": the subject the capture belongs to.
    subject: Mapped[str] = mapped_column(sa.String(40), default="", index=True)
    attempt: Mapped[int] = mapped_column(default=1)
    url: Mapped[str] = mapped_column(sa.String(2000))
    final_url: Mapped[str] = mapped_column(sa.String(2000), default="")
    status: Mapped[int | None]  # final HTTP status, None when no response
    started: Mapped[datetime] = mapped_column(default=utcnow)
    duration: Mapped[float | None]  # seconds
    error: Mapped[str] = mapped_column(sa.Text, default="")
    http_chain: Mapped[list[Any]] = mapped_column(default=list)
    dns: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body_blob: Mapped[str] = mapped_column(sa.String(80), default="")
    headers_blob: Mapped[str] = mapped_column(sa.String(80), default="")
    rendered_blob: Mapped[str] = mapped_column(sa.String(80), default="")
    screenshot_blob: Mapped[str] = mapped_column(sa.String(80), default="")
    subresources: Mapped[dict[str, Any]] = mapped_column(default=dict)  # url -> blob key
    # The marked screenshots of a confirmed page-check failure (crawler/screenshots.py): blob keys of the
    # full page and the crops, the marked boxes, the CONAC image the badge script showed, or why none.
    shots: Mapped[dict[str, Any]] = mapped_column(default=dict)

    scan: Mapped[Scan] = relationship(back_populates="captures")


def subject_of(website_id: int | None, domain_id: int | None) -> str:
    """The ``subject`` string of a finding or capture: ``site:<id>``, ``domain:<id>`` or ``scan``
    (unit-level findings are ``unit:<id>``, named by :class:`crawler.jobs.UnitJob`)."""
    if website_id is not None:
        return str(Subject.site(website_id))
    if domain_id is not None:
        return str(Subject.domain(domain_id))
    return "scan"


class Finding(Base):
    """A check's verdict for one subject in one scan.

    Unique on (scan_id, subject, check): ``subject`` (see :func:`subject_of`) stands in for the
    nullable website/domain/unit columns, whose NULLs a plain unique constraint would not compare.
    """

    __tablename__ = "finding"
    __table_args__ = (sa.UniqueConstraint("scan_id", "subject", "check"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scan_id: Mapped[int] = mapped_column(sa.ForeignKey("scan.id", ondelete="CASCADE"), index=True)
    website_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("website.id", ondelete="SET NULL"), index=True
    )
    domain_id: Mapped[int | None] = mapped_column(sa.ForeignKey("domain.id", ondelete="SET NULL"), index=True)
    # Set on unit-level findings only (subject ``unit:<id>``: does the unit hold a Chinese domain).
    unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("unit.id", ondelete="SET NULL"), index=True)
    subject: Mapped[str] = mapped_column(sa.String(40))
    check: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(8), index=True)  # a checks.verdict.Status value
    reason: Mapped[str] = mapped_column(sa.String(60), index=True)
    detail: Mapped[str] = mapped_column(sa.Text, default="")
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(default=1)
    # A failure is listed for an office only once confirmed: seen on visits ``confirm_interval_h``
    # apart (storage/streaks.py). ``first_seen_at`` and ``visits`` are its streak (首次发现, 连续 N 次).
    confirmed: Mapped[bool] = mapped_column(default=False)
    first_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    visits: Mapped[int] = mapped_column(default=1)
    capture_id: Mapped[int | None] = mapped_column(sa.ForeignKey("capture.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    scan: Mapped[Scan] = relationship(back_populates="findings")
    capture: Mapped[Capture | None] = relationship()


class FindingStreak(Base):
    """The consecutive visits on which one check of one subject failed, since it last passed
    (``storage/streaks.py``): what confirmation over time is decided on. One row per (subject, check)."""

    __tablename__ = "finding_streak"

    subject: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    check: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(8))  # the last decided status: pass, warn or fail
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    visits: Mapped[int] = mapped_column(default=1)
    last_visit: Mapped[str] = mapped_column(sa.String(60), default="")  # "<scan id>:<capture id>"
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConacCacheEntry(Base):
    """A CONAC resource (badge script, verification page, badge image) kept across scans and shared by
    the workers of a distributed scan (``crawler/conac_cache.py``): its body in the evidence store, the
    validators CONAC sent, and when CONAC last confirmed it (a 200, or a 304 to a conditional request).
    Only answers that look like the resource are kept: never an error, a challenge or a block page."""

    __tablename__ = "conac_cache"

    url_key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # SHA-256 of the URL
    url: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[int]
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)  # as received (Content-Type …)
    body_blob: Mapped[str] = mapped_column(sa.String(80))
    body_size: Mapped[int]
    etag: Mapped[str] = mapped_column(sa.String(300), default="")
    last_modified: Mapped[str] = mapped_column(sa.String(100), default="")
    fetched_at: Mapped[datetime]  # the body was last received (a 200)
    validated_at: Mapped[datetime]  # CONAC last confirmed it (a 200 or a 304)


# --- annual reports, notifications, users --------------------------------------------------------


class AnnualReport(Base):
    """A unit's annual report (年度报告) for one year.

    The five submitted fields: (1) ``organizer`` 开办主体名称, (2) ``site_name`` 网站名称,
    (3) ``domains_status`` 中文域名与英文域名的有效性及使用状况, (4) ``functions_reviewed``
    职能或业务范围是否经过审核, (5) ``badge_displayed`` 是否加挂网站标识. Fields 3 and 5 are also
    derived from scans: ``derived_domains`` / ``derived_badge`` hold the derived value and the ids of
    the findings it rests on (``{"value": ..., "finding_ids": [...], "scan_id": ...}``).
    """

    __tablename__ = "annual_report"
    __table_args__ = (sa.UniqueConstraint("unit_id", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id", ondelete="CASCADE"), index=True)
    year: Mapped[int]
    organizer: Mapped[str] = mapped_column(sa.String(200), default="")
    site_name: Mapped[str] = mapped_column(sa.String(200), default="")
    domains_status: Mapped[str] = mapped_column(sa.Text, default="")
    functions_reviewed: Mapped[str] = mapped_column(sa.String(40), default="")
    badge_displayed: Mapped[str] = mapped_column(sa.String(40), default="")
    derived_domains: Mapped[dict[str, Any]] = mapped_column(default=dict)
    derived_badge: Mapped[dict[str, Any]] = mapped_column(default=dict)
    derived_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(sa.String(20), default=ReportState.SUBMITTED, index=True)
    rejection_reason: Mapped[str] = mapped_column(sa.Text, default="")
    # The submitted content's version: 1 on the first submission, +1 on every changed resubmission.
    # A decision names the version it was taken on (a stale one is refused).
    version: Mapped[int] = mapped_column(default=1)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    unit: Mapped[Unit] = relationship()
    events: Mapped[list[AnnualReportEvent]] = relationship(
        back_populates="report", cascade="all, delete-orphan", order_by="AnnualReportEvent.id"
    )


class AnnualReportEvent(Base):
    """One transition of an annual report (the audit trail): who, when, from and to, and why."""

    __tablename__ = "annual_report_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("annual_report.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str] = mapped_column(sa.String(20), default="")  # "" for the first submission
    to_state: Mapped[str] = mapped_column(sa.String(20))
    actor: Mapped[str] = mapped_column(sa.String(200))  # user name, or "unit"/"import"/"system"
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # What the reviewer was shown when deciding (findings, captures, blob keys, derived values), how the
    # decision came in ("console" | "api" | "import" | "system") and from which client address.
    shown: Mapped[dict[str, Any]] = mapped_column(default=dict)
    via: Mapped[str] = mapped_column(sa.String(10), default="")
    client: Mapped[str] = mapped_column(sa.String(100), default="")

    report: Mapped[AnnualReport] = relationship(back_populates="events")
    user: Mapped[User | None] = relationship()


# --- the audit trail that lasts (storage/audit.py) ------------------------------------------------


class AuditEvent(Base):
    """One event of the lasting audit trail: a submission or a decision (who, when, from where).

    Append-only: database triggers (migration 0008) refuse UPDATE and DELETE, and each row carries the
    SHA-256 of its predecessor's hash and its own content (``prev_hash`` → ``hash``), so a row changed
    or removed behind the triggers' back breaks the chain (``badgewatch audit verify``). No foreign
    keys: the trail outlives the reports, units and accounts it names, which it copies by value.
    """

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # report.submitted | report.resubmitted | report.office_approved | report.approved | report.rejected
    kind: Mapped[str] = mapped_column(sa.String(40), index=True)
    actor: Mapped[str] = mapped_column(sa.String(200))  # user name, or "import" with the operator
    user_id: Mapped[int | None]
    role: Mapped[str] = mapped_column(sa.String(12), default="")
    via: Mapped[str] = mapped_column(sa.String(10))  # console | api | import
    client: Mapped[str] = mapped_column(sa.String(200), default="")  # address, or user@host (import)
    report_id: Mapped[int | None] = mapped_column(index=True)
    unit_id: Mapped[int | None]
    unit_name: Mapped[str] = mapped_column(sa.String(200), default="")
    office_code: Mapped[str] = mapped_column(sa.String(12), default="")
    year: Mapped[int | None]
    version: Mapped[int | None]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    hash: Mapped[str] = mapped_column(sa.String(64))


class Notification(Base):
    """One message to one recipient over one channel; ``dedupe_key`` makes sending once enforceable."""

    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    channel: Mapped[str] = mapped_column(sa.String(8))  # "email" | "sms"
    recipient: Mapped[str] = mapped_column(sa.String(200))
    office_code: Mapped[str | None] = mapped_column(sa.ForeignKey("office.code"), index=True)
    unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("unit.id", ondelete="SET NULL"), index=True)
    scan_id: Mapped[int | None] = mapped_column(sa.ForeignKey("scan.id", ondelete="SET NULL"), index=True)
    report_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("annual_report.id", ondelete="SET NULL"), index=True
    )
    subject: Mapped[str] = mapped_column(sa.String(300), default="")
    body: Mapped[str] = mapped_column(sa.Text, default="")
    attachment_name: Mapped[str] = mapped_column(sa.String(200), default="")
    attachment_blob: Mapped[str] = mapped_column(sa.String(80), default="")
    status: Mapped[str] = mapped_column(sa.String(12), default=NotificationStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(sa.Text, default="")
    # A failed message is not tried again before this moment (its backoff), across ``notify`` runs.
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class User(Base):
    """A console user: an office's staff, the domain center, or an administrator."""

    # "user" is a reserved word in PostgreSQL.
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    role: Mapped[str] = mapped_column(sa.String(12))  # a UserRole value
    office_code: Mapped[str | None] = mapped_column(sa.ForeignKey("office.code"))
    password_hash: Mapped[str] = mapped_column(sa.String(300), default="")
    email: Mapped[str] = mapped_column(sa.String(200), default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- accounts: sessions, API tokens, the authentication audit trail (review/accounts.py) -------------


class AuthSession(Base):
    """A console sign-in, kept on the server: the cookie carries a random secret whose SHA-256 is
    ``id``; logout, a password change or a deactivation end it at once (``ended_at``)."""

    __tablename__ = "auth_session"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(sa.String(64))
    client: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str] = mapped_column(sa.String(40), default="")


class ApiToken(Base):
    """An API token of a user: ``bw2.<id>.<secret>``; only the secret's SHA-256 is stored. It expires
    (``expires_at``) and can be revoked one by one or all at once."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(sa.String(100), default="")
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    created_by: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str] = mapped_column(sa.String(200), default="")


class AuthEvent(Base):
    """One authentication or account event (login success and failure, account creation, role and
    password changes, deactivation, token issue and revocation): who it was about (``user_name``), who
    did it (``actor``), from which client address, with a JSON ``detail``. Append-only: no foreign key
    (nothing cascades into it) and a database trigger refuses UPDATE and DELETE (migration 0007)."""

    __tablename__ = "auth_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(sa.String(40), index=True)
    user_name: Mapped[str] = mapped_column(sa.String(100), default="", index=True)
    actor: Mapped[str] = mapped_column(sa.String(200), default="")
    client: Mapped[str] = mapped_column(sa.String(100), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


# --- the nightly chain (scheduler.py) ----------------------------------------------------------------


class ScheduleRun(Base):
    """One firing of a schedule: claimed once by inserting ``(job_name, scheduled_for)``, whose unique
    key keeps a second daemon from running the same night; ``stage`` is where it runs or stopped."""

    __tablename__ = "schedule_run"
    __table_args__ = (sa.UniqueConstraint("job_name", "scheduled_for"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_name: Mapped[str] = mapped_column(sa.String(100))
    scheduled_for: Mapped[datetime]
    status: Mapped[str] = mapped_column(sa.String(16))  # storage.chain.RunStatus
    stage: Mapped[str] = mapped_column(sa.String(16), default="")
    scan_id: Mapped[int | None] = mapped_column(sa.ForeignKey("scan.id", ondelete="SET NULL"))
    holder: Mapped[str] = mapped_column(sa.String(200), default="")  # "host:pid" of the daemon running it
    spec: Mapped[dict[str, Any]] = mapped_column()
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    error: Mapped[str] = mapped_column(sa.Text, default="")

    stages: Mapped[list[ScheduleStage]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="ScheduleStage.id"
    )


class ScheduleStage(Base):
    """The outcome of one stage (storage.chain.Stage) of one run."""

    __tablename__ = "schedule_stage"
    __table_args__ = (sa.UniqueConstraint("run_id", "stage"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("schedule_run.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16))  # storage.chain.StageStatus (retrying too)
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    detail: Mapped[dict[str, Any]] = mapped_column()
    error: Mapped[str] = mapped_column(sa.Text, default="")

    run: Mapped[ScheduleRun] = relationship(back_populates="stages")
