"""The audit trail as reviewers and operators read it.

Two records are kept of a decision. The workflow's ``AnnualReportEvent`` (storage) says who moved the
report from which state to which, when and why, and — in ``shown``/``via``/``client`` — the evidence
the reviewer had in front of them, how the decision came in and from which address; the report page
shows it. The lasting trail is ``audit_event`` (:mod:`storage.audit`): submissions (with channel and
client) and decisions, append-only and hash-chained, without foreign keys so that it outlives the
reports, units and accounts it names. Account events (logins, account and role changes, tokens) are
kept by the console's login code in ``auth_event`` (:mod:`review.auth_events`); :func:`list_events`
reads both, so ``badgewatch audit`` shows one timeline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.models import AnnualReport, AnnualReportEvent, AuditEvent, AuthEvent

# How a reviewer's decision comes in; other events ("import", "system", "") are not review decisions.
REVIEW_CHANNELS = ("console", "api")

KIND_LABELS = {
    "report.submitted": "提交年度报告",
    "report.resubmitted": "重新提交年度报告",
    "report.office_approved": "编办审核通过",
    "report.approved": "域名中心审核通过",
    "report.rejected": "退回年度报告",
    # Account events (review.auth_events.KINDS).
    "login_success": "登录成功",
    "login_failure": "登录失败",
    "logout": "退出登录",
    "user_created": "创建账号",
    "role_changed": "修改角色",
    "password_changed": "修改密码",
    "user_deactivated": "停用账号",
    "user_activated": "启用账号",
    "token_issued": "签发 API 令牌",
    "token_revoked": "吊销 API 令牌",
    "sessions_ended": "结束全部登录与令牌",
    "login_unlocked": "解除登录限制",
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


def _auth_events(session: Session, f: Filters) -> list[Entry]:
    """The console's account events (``auth_event``, :mod:`review.auth_events`) as timeline entries."""
    if f.report_id is not None:
        return []
    stmt = sa.select(AuthEvent).order_by(AuthEvent.at, AuthEvent.id)
    if f.since is not None:
        stmt = stmt.where(AuthEvent.at >= f.since)
    if f.until is not None:
        stmt = stmt.where(AuthEvent.at < f.until)
    if f.user:
        stmt = stmt.where(sa.or_(AuthEvent.user_name == f.user, AuthEvent.actor == f.user))
    out = []
    for row in session.scalars(stmt):
        if not f.kind_ok(row.kind):
            continue
        out.append(
            Entry(
                "auth_event",
                row.id,
                row.at,
                row.kind,
                row.actor or row.user_name,
                row.user_name,
                "",
                row.client,
                f"账号 {row.user_name}" if row.user_name else "",
                detail=dict(row.detail or {}),
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
