"""The audit trail as reviewers and operators read it.

Two records are kept of a decision. The workflow's ``AnnualReportEvent`` (storage) says who moved the
report from which state to which, when and why, and — in ``shown``/``via``/``client`` — the evidence
the reviewer had in front of them, how the decision came in and from which address; the report page
shows it. The lasting trail is ``audit_event`` (:mod:`storage.audit`): submissions (with channel and
client) and decisions, append-only and hash-chained, without foreign keys so that it outlives the
reports, units and accounts it names. Account events (logins, account and role changes, tokens) are
kept by the console's login code in ``auth_event``; :func:`list_events` reads that table too when the
database has it, so ``badgewatch audit`` shows one timeline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.models import AnnualReport, AnnualReportEvent, AuditEvent

# How a reviewer's decision comes in; other events ("import", "system", "") are not review decisions.
REVIEW_CHANNELS = ("console", "api")

KIND_LABELS = {
    "report.submitted": "提交年度报告",
    "report.resubmitted": "重新提交年度报告",
    "report.office_approved": "编办审核通过",
    "report.approved": "域名中心审核通过",
    "report.rejected": "退回年度报告",
}
VIA_LABELS = {"console": "审核台", "api": "API", "import": "文件导入"}


def record_decision(event: AnnualReportEvent, *, shown: dict[str, Any], via: str, client: str) -> None:
    """Attach what the reviewer was shown, the channel and the client address to ``event``."""
    if via not in REVIEW_CHANNELS:
        raise ValueError(f"unknown review channel {via!r} (expected one of {REVIEW_CHANNELS})")
    event.shown = shown
    event.via = via
    event.client = client[:100]


def decisions_of(report: AnnualReport) -> dict[int, AnnualReportEvent]:
    """The report's review decisions (events taken in the console or through the API), by event id."""
    return {e.id: e for e in report.events if e.via in REVIEW_CHANNELS}


# --- one timeline for ``badgewatch audit`` -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filters:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    user: str | None = None  # the acting user's name (or the account an auth event is about)
    kinds: tuple[str, ...] = ()  # exact kinds, or prefixes ending in "." ("report.", "login.")
    report_id: int | None = None
    limit: int | None = None

    def kind_ok(self, kind: str) -> bool:
        return not self.kinds or any(
            kind == k or (k.endswith(".") and kind.startswith(k)) for k in self.kinds
        )


@dataclass(frozen=True, slots=True)
class Entry:
    """One event of either table, in the shape every output uses."""

    source: str  # "audit_event" | "auth_event"
    id: int
    at: dt.datetime
    kind: str
    actor: str
    user: str  # for auth events the account concerned; for report events the actor
    via: str
    client: str
    subject: str  # what it is about, in words ("涿州市教育局 2025年度报告 第2版")
    report_id: int | None = None
    version: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    hash: str = ""

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    def summary(self) -> str:
        """The detail in plain words (reason of a rejection, confirmation of a disagreement)."""
        d = self.detail
        parts = []
        if d.get("reason"):
            parts.append(f"原因：{d['reason']}")
        if d.get("confirmed_disagreements"):
            parts.append("已确认填报与巡检结果不一致后通过")
        shown = d.get("shown")
        if isinstance(shown, dict):
            parts.append(
                f"审核时所见：巡检发现{len(shown.get('finding_ids') or [])}项，"
                f"访问记录{len(shown.get('captures') or [])}次"
            )
        if not parts and d:
            parts.append(
                "；".join(f"{k}={v}" for k, v in sorted(d.items()) if not isinstance(v, (dict, list)))
            )
        return "；".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "id": self.id,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "actor": self.actor,
            "user": self.user,
            "via": self.via,
            "client": self.client,
            "subject": self.subject,
            "report_id": self.report_id,
            "version": self.version,
            "detail": self.detail,
            "hash": self.hash,
        }


def _report_events(session: Session, f: Filters) -> list[Entry]:
    stmt = sa.select(AuditEvent)
    if f.since is not None:
        stmt = stmt.where(AuditEvent.at >= f.since)
    if f.until is not None:
        stmt = stmt.where(AuditEvent.at < f.until)
    if f.user:
        stmt = stmt.where(AuditEvent.actor == f.user)
    if f.report_id is not None:
        stmt = stmt.where(AuditEvent.report_id == f.report_id)
    out = []
    for e in session.scalars(stmt.order_by(AuditEvent.at, AuditEvent.id)):
        if not f.kind_ok(e.kind):
            continue
        subject = f"{e.unit_name} {e.year}年度报告" + (f" 第{e.version}版" if e.version else "")
        out.append(
            Entry(
                "audit_event",
                e.id,
                e.at,
                e.kind,
                e.actor,
                e.actor,
                e.via,
                e.client,
                subject,
                e.report_id,
                e.version,
                dict(e.detail),
                e.hash,
            )
        )
    return out


def _pick(columns: set[str], *names: str) -> str | None:
    return next((n for n in names if n in columns), None)


def auth_table(session: Session) -> sa.Table | None:
    """The login code's ``auth_event`` table, reflected, if this database has it (it comes with the
    account-security migration; a database without it simply has no account events to list)."""
    bind = session.get_bind()
    if not sa.inspect(bind).has_table("auth_event"):
        return None
    return sa.Table("auth_event", sa.MetaData(), autoload_with=bind)


def _auth_events(session: Session, f: Filters) -> list[Entry]:
    table = auth_table(session)
    if table is None or f.report_id is not None:
        return []
    cols = {c.name for c in table.columns}
    at_c = _pick(cols, "at", "created_at", "time")
    kind_c = _pick(cols, "kind", "event", "type")
    if at_c is None or kind_c is None:
        return []
    user_c = _pick(cols, "user_name", "username", "user", "name", "account")
    actor_c = _pick(cols, "actor", "by")
    client_c = _pick(cols, "client", "client_ip", "client_address", "address", "ip")
    detail_c = _pick(cols, "detail", "details", "data")
    stmt = sa.select(table)
    # A reflected SQLite table has plain timestamps: compare with naive UTC there.
    naive = session.get_bind().dialect.name == "sqlite"
    if f.since is not None:
        stmt = stmt.where(table.c[at_c] >= (f.since.replace(tzinfo=None) if naive else f.since))
    if f.until is not None:
        stmt = stmt.where(table.c[at_c] < (f.until.replace(tzinfo=None) if naive else f.until))
    out = []
    for row in session.execute(stmt.order_by(table.c[at_c])).mappings():
        kind = str(row[kind_c])
        user = str(row[user_c] or "") if user_c else ""
        actor = str(row[actor_c] or "") if actor_c else user
        if f.user and f.user not in (user, actor):
            continue
        if not f.kind_ok(kind):
            continue
        at = row[at_c]
        if isinstance(at, str):
            at = dt.datetime.fromisoformat(at)
        if isinstance(at, dt.datetime) and at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        detail = row[detail_c] if detail_c else {}
        out.append(
            Entry(
                "auth_event",
                int(row["id"]) if "id" in cols else 0,
                at,
                kind,
                actor or user,
                user,
                "",
                str(row[client_c] or "") if client_c else "",
                f"账号 {user}" if user else "",
                detail=detail if isinstance(detail, dict) else {"detail": str(detail)},
            )
        )
    return out


def list_events(session: Session, f: Filters) -> list[Entry]:
    """Report events and account events in one timeline, oldest first (the newest ``limit``)."""
    events = sorted(
        _report_events(session, f) + _auth_events(session, f), key=lambda e: (e.at, e.source, e.id)
    )
    if f.limit is not None:
        events = events[-f.limit :]
    return events
