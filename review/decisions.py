"""Two-level approval of annual reports, as the console and the API take it.

An office reviewer decides a ``submitted`` report (approve → ``office_approved``, or reject); a
center reviewer decides an ``office_approved`` one (approve → ``approved``, or reject). The state
change itself is :func:`reports.annual.transition`; this module adds who may do what and on what:

- separation of duties: a submitter account only submits, and nobody decides on a report they
  submitted or resubmitted;
- a decision names the report version it was taken on (and, from the console, the digest of the
  scan results shown): a report resubmitted — or re-derived from a newer scan — since the reviewer
  opened it is refused with 409, and so is a second decision (the state and version are
  compared-and-set, also when two reviewers click at once);
- approving a report that disagrees with the scans needs an explicit confirmation;
- what the reviewer was shown (submitted fields, derived fields, the findings and captures) is
  stored with the decision, in the workflow's event and in the lasting audit trail;
- a rejection queues the notice to the unit (e-mail and SMS), whose delivery the page reports.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from checks.errors import StateError
from reports.annual import (
    STATE_LABELS,
    SUBMITTED_FIELDS,
    TransitionError,
    disagreements,
    fresh_derived,
    transition,
)
from reports.delivery.outbox import RetryPolicy, dispatch, enqueue
from reports.notify import default_senders, plan_rejections
from review.accounts import Principal
from review.audit import record_decision
from review.evidence import CaptureView, FindingView, group_by_capture, report_findings, shown_record
from storage import audit
from storage.config import Config
from storage.evidence import EvidenceStore
from storage.models import (
    AnnualReport,
    AnnualReportEvent,
    Notification,
    NotificationStatus,
    ReportState,
    Unit,
)
from storage.types import utcnow

log = logging.getLogger(__name__)

MAX_REASON = 2000


class DecisionError(StateError):
    """A decision that cannot be taken; ``status`` is the HTTP status to answer with, ``code`` the
    API's error code."""

    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or {
            400: "invalid_decision",
            403: "forbidden",
            404: "not_found",
            409: "conflict",
            422: "confirmation_required",
        }.get(status, "error")


@dataclass(frozen=True, slots=True)
class Outcome:
    event: AnnualReportEvent
    notifications: list[int]  # ids of the notices queued for the unit


def load_report(session: Session, who: Principal, report_id: int) -> AnnualReport:
    """The report if ``who`` may see it; otherwise 404 (an office does not learn what exists elsewhere)."""
    report = session.get(AnnualReport, report_id)
    if report is None or not who.sees_office(report.unit.office_code):
        raise DecisionError(404, f"年度报告 {report_id} 不存在或不在您的管辖范围内")
    return report


def workflow_action(who: Principal, decision: str) -> tuple[str, ReportState]:
    """The workflow action a reviewer's approve/reject means at their level, and the state it needs."""
    if decision not in ("approve", "reject"):
        raise DecisionError(400, f"未知的审核决定: {decision}（应为 approve 或 reject）")
    if who.is_office:
        return ("office_approve" if decision == "approve" else "reject"), ReportState.SUBMITTED
    if who.is_center:
        return ("approve" if decision == "approve" else "reject"), ReportState.OFFICE_APPROVED
    raise DecisionError(403, "只有编办审核员和域名中心审核员可以审核年度报告")


def submitted_by(report: AnnualReport, who: Principal) -> bool:
    """Whether ``who`` submitted or resubmitted ``report`` (then they may not decide on it)."""
    # Submissions name their user; those recorded before that did, through the API, their actor.
    legacy = f"api:{who.name}"
    return any(
        e.to_state == ReportState.SUBMITTED.value and (e.user_id == who.user_id or e.actor == legacy)
        for e in report.events
    )


def can_decide(who: Principal, report: AnnualReport) -> bool:
    if not (who.is_office or who.is_center) or not who.sees_office(report.unit.office_code):
        return False
    _, needed = workflow_action(who, "approve")
    return report.state == needed.value and not submitted_by(report, who)


# --- what the reviewer is shown ---------------------------------------------------------------------


@dataclass(slots=True)
class ReviewView:
    """A report as its review page shows it: fields 3 and 5 as the latest scans give them (computed,
    never written by a page), the evidence, the disagreements and their suggested rejection reasons,
    and the digest (``basis``) of the scan results shown, which a decision must name."""

    report: AnnualReport
    derived_domains: dict[str, Any]
    derived_badge: dict[str, Any]
    captures: list[CaptureView]
    loose: list[FindingView]
    issues: list[str]
    basis: str
    suggestions: list[str] = field(default_factory=list)

    @property
    def finding_ids(self) -> list[int]:
        return sorted(
            {fv.finding.id for cv in self.captures for fv in cv.findings}
            | {fv.finding.id for fv in self.loose}
        )


def basis_of(derived_domains: dict[str, Any], derived_badge: dict[str, Any], finding_ids: list[int]) -> str:
    """A short digest of the scan results a reviewer is shown (values and the findings they rest on)."""
    text = json.dumps(
        [
            derived_domains.get("value"),
            derived_domains.get("finding_ids"),
            derived_badge.get("value"),
            derived_badge.get("finding_ids"),
            finding_ids,
        ],
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def suggested_reasons(issues: list[str]) -> list[str]:
    """Rejection reasons a reviewer can pick, one per disagreement, in words a unit acts on."""
    return [f"{issue}。请核实后更正该字段并重新提交。" for issue in issues]


def review_view(session: Session, store: EvidenceStore, report: AnnualReport) -> ReviewView:
    """What the review page of ``report`` shows (reads only; the report is not changed)."""
    d3, d5 = current_derived(session, report)
    findings = report_findings(session, report, derived=(d3, d5))
    captures, loose = group_by_capture(session, store, findings)
    issues = disagreements(report, d3, d5)
    basis = basis_of(d3, d5, sorted(f.id for f in findings))
    return ReviewView(report, d3, d5, captures, loose, issues, basis, suggested_reasons(issues))


def current_derived(session: Session, report: AnnualReport) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fields 3 and 5 a review of ``report`` is about: as the latest scans give them while it waits
    for a decision, as they were decided on afterwards."""
    if report.state in (ReportState.SUBMITTED.value, ReportState.OFFICE_APPROVED.value):
        return fresh_derived(session, report)
    return dict(report.derived_domains), dict(report.derived_badge)


def basis_now(session: Session, report: AnnualReport) -> str:
    """The ``basis`` a decision on ``report`` must name now (as :func:`review_view`, without the
    evidence blobs)."""
    d3, d5 = current_derived(session, report)
    return basis_of(d3, d5, sorted(f.id for f in report_findings(session, report, derived=(d3, d5))))


def _shown(view: ReviewView, offered: set[int] | None) -> dict[str, Any]:
    r = view.report
    record = shown_record(view.captures, view.loose, r, view.issues)
    record.update(
        version=r.version,
        basis=view.basis,
        submitted={k: getattr(r, k) for k in SUBMITTED_FIELDS},
        derived={"domains_status": view.derived_domains, "badge_displayed": view.derived_badge},
    )
    if offered is not None:
        record["finding_ids_on_page"] = sorted(offered & set(record["finding_ids"]))
    return record


# --- deciding ---------------------------------------------------------------------------------------


def decide(
    session: Session,
    who: Principal,
    report_id: int,
    decision: str,
    reason: str,
    *,
    version: int | None,
    via: str,
    store: EvidenceStore,
    client: str = "",
    cfg: Config | None = None,
    basis: str | None = None,
    confirmed: bool = False,
    offered: set[int] | None = None,
    picked: list[int] | None = None,
) -> Outcome:
    """Take one decision and commit it with its audit records (and queued notices on rejection).

    ``picked`` are indexes into the suggested rejection reasons the page offered; they come before
    the reviewer's own words in the reason."""
    report = load_report(session, who, report_id)
    action, needed = workflow_action(who, decision)
    if submitted_by(report, who):
        raise DecisionError(
            403, "您提交（或重新提交）过这份年度报告，不能审核自己提交的报告", "own_submission"
        )
    if report.state != needed.value:
        shown_state = STATE_LABELS.get(ReportState(report.state), report.state)
        raise DecisionError(
            409,
            f"年度报告 {report.id}（{report.unit.name}，{report.year}年）当前状态为“{shown_state}”，"
            f"{'编办' if who.is_office else '域名中心'}不能审核（不能越级或重复审核）",
        )
    if version is None:
        raise DecisionError(400, "审核决定必须注明所审核的报告版本（version）", "version_required")
    if version != report.version:
        raise DecisionError(
            409,
            f"您审核的是第{version}版，单位已重新提交为第{report.version}版，请刷新页面查看新内容后再审核",
            "version_changed",
        )
    view = review_view(session, store, report)
    if basis is not None and basis != view.basis:
        raise DecisionError(
            409, "您打开页面后巡检结果有更新，请刷新页面查看最新结果后再审核", "evidence_changed"
        )
    chosen = [view.suggestions[i] for i in sorted(set(picked or [])) if 0 <= i < len(view.suggestions)]
    reason = "\n".join([*chosen, reason.strip()]).strip() if decision == "reject" else reason.strip()
    if decision == "reject" and not reason:
        raise DecisionError(400, "退回必须填写原因（可勾选建议的原因，或自行填写）")
    if len(reason) > MAX_REASON:
        raise DecisionError(400, f"原因过长（最多{MAX_REASON}个字符）")
    if decision == "approve" and view.issues and not confirmed:
        raise DecisionError(
            422,
            f"填报内容与巡检结果有{len(view.issues)}处不一致：审核通过前请勾选"
            "“我已核对不一致之处，确认审核通过”",
        )
    before, seen_version = report.state, report.version
    shown = _shown(view, offered)
    # Compare-and-set: of two reviewers deciding at once (or a resubmission racing a decision), only
    # the first changes the row.
    with session.no_autoflush:
        report.derived_domains, report.derived_badge = view.derived_domains, view.derived_badge
        report.derived_at = utcnow()
        try:
            event = transition(session, report, action, who.name, reason=reason, user_id=who.user_id)
        except TransitionError as exc:
            raise DecisionError(409, str(exc)) from None
        changed = session.execute(
            sa.update(AnnualReport)
            .where(
                AnnualReport.id == report.id,
                AnnualReport.state == before,
                AnnualReport.version == seen_version,
            )
            .values(state=report.state)
            .execution_options(synchronize_session=False)
        )
    if getattr(changed, "rowcount", 0) != 1:
        session.rollback()
        raise DecisionError(409, f"年度报告 {report_id} 已被其他审核员处理或被重新提交，请刷新页面")
    record_decision(event, shown=shown, via=via, client=client)
    unit: Unit = report.unit
    audit.append(
        session,
        kind=f"report.{event.to_state}",
        actor=who.name,
        via=via,
        client=client,
        user_id=who.user_id,
        role=who.role.value,
        report_id=report.id,
        unit_id=unit.id,
        unit_name=unit.name,
        office_code=unit.office_code,
        year=report.year,
        version=report.version,
        detail={
            "from": before,
            "to": event.to_state,
            "reason": reason,
            "confirmed_disagreements": bool(confirmed and view.issues),
            "shown": shown,
        },
    )
    notices: list[int] = []
    if action == "reject" and cfg is not None:
        notices = _queue_rejection(session, cfg, store, report)
    session.commit()
    return Outcome(event, notices)


def _queue_rejection(session: Session, cfg: Config, store: EvidenceStore, report: AnnualReport) -> list[int]:
    """Record the unit's rejection notices (sent by the outbox: now in the background, or by notify)."""
    session.flush()
    plan = plan_rejections(session, cfg)
    for line in plan.skipped:
        if line.startswith(report.unit.name):
            log.warning("report %s: %s", report.id, line)
    ids = []
    for out in plan.messages:
        if out.report_id != report.id:
            continue
        row, _created = enqueue(session, out, store)
        session.flush()
        ids.append(row.id)
    return ids


def send_notices(engine: Engine, cfg: Config, store: EvidenceStore, ids: list[int]) -> None:
    """One attempt per queued notice, after the response; what fails stays pending for ``notify``."""
    if not ids:
        return
    with Session(engine, expire_on_commit=False) as session:
        rows = list(session.scalars(sa.select(Notification).where(Notification.id.in_(ids))))
        try:
            dispatch(session, rows, default_senders(cfg), store, RetryPolicy(attempts_per_run=1))
        except Exception:  # delivery trouble must never turn a recorded decision into an error
            log.exception("sending rejection notices %s failed; badgewatch notify will retry", ids)


# --- whether the unit was told ------------------------------------------------------------------------

CHANNEL_LABELS = {"email": "邮件", "sms": "短信"}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One channel's notice of the latest rejection, as the outbox has it."""

    channel: str  # email | sms
    recipient: str
    state: str  # sent | retrying | failed | pending | not_sent
    text: str  # what the page says, in plain Chinese

    @property
    def label(self) -> str:
        return CHANNEL_LABELS.get(self.channel, self.channel)


def local_time(at: dt.datetime | None, cfg: Config | None) -> str:
    if at is None:
        return ""
    # Beijing time unless the configuration names another zone (a ``timezone`` setting).
    zone = ZoneInfo(str(getattr(cfg, "timezone", "") or "Asia/Shanghai"))
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def delivery_of(session: Session, report: AnnualReport, cfg: Config | None = None) -> list[Delivery]:
    """Whether the unit was told of the latest rejection, per channel (empty if never rejected)."""
    rejected = [e for e in report.events if e.to_state == ReportState.REJECTED.value]
    if not rejected:
        return []
    prefix = f"report:{report.id}:rejected:{rejected[-1].id}:"
    rows = list(
        session.scalars(
            sa.select(Notification)
            .where(Notification.report_id == report.id, Notification.dedupe_key.startswith(prefix))
            .order_by(Notification.channel, Notification.id)
        )
    )
    max_attempts = RetryPolicy().max_attempts
    out: list[Delivery] = []
    for row in rows:
        if row.status == NotificationStatus.SENT.value:
            state, text = "sent", f"已发送（{local_time(row.sent_at, cfg)}，第{row.attempts}次尝试）"
        elif row.status == NotificationStatus.FAILED.value:
            state, text = "failed", f"发送失败：已尝试{row.attempts}次，不再自动重试，请电话联系单位"
        elif row.attempts == 0:
            state, text = "pending", "等待发送"
        else:
            when = local_time(row.next_attempt_at, cfg)
            state = "retrying"
            text = f"尚未送达：已尝试{row.attempts}次（最多{max_attempts}次）" + (
                f"，将于 {when} 后再次尝试" if when else "，等待下次发送"
            )
        out.append(Delivery(row.channel, row.recipient, state, text))
    for channel, what in (("email", "联系邮箱"), ("sms", "联系手机")):
        if not any(d.channel == channel for d in out):
            out.append(Delivery(channel, "", "not_sent", f"未发送：单位未登记有效的{what}"))
    return out


def reports_in_scope(
    session: Session, who: Principal, year: int | None = None, state: str | None = None
) -> list[AnnualReport]:
    stmt = sa.select(AnnualReport).join(Unit, Unit.id == AnnualReport.unit_id)
    if who.offices is not None:
        stmt = stmt.where(Unit.office_code.in_(sorted(who.offices)))
    if not who.reviews:
        return []
    if year is not None:
        stmt = stmt.where(AnnualReport.year == year)
    if state:
        stmt = stmt.where(AnnualReport.state == state)
    return list(session.scalars(stmt.order_by(AnnualReport.year.desc(), Unit.office_code, Unit.name)))
