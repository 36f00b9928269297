"""Two-level approval of annual reports, as the console and the API take it.

An office reviewer decides a ``submitted`` report (approve → ``office_approved``, or reject); a
center reviewer decides an ``office_approved`` one (approve → ``approved``, or reject). The state
change itself is :func:`reports.annual.transition`; this module adds who may do what, refuses a
second decision (also when two reviewers click at once: the state is compared-and-set), records what
the reviewer was shown, and queues the rejection notice to the unit (e-mail and SMS).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from checks.errors import StateError
from reports.annual import STATE_LABELS, TransitionError, transition
from reports.delivery.outbox import RetryPolicy, dispatch, enqueue
from reports.notify import default_senders, plan_rejections
from review.accounts import Principal
from review.audit import record_decision
from storage.config import Config
from storage.evidence import EvidenceStore
from storage.models import AnnualReport, AnnualReportEvent, Notification, ReportState, Unit

log = logging.getLogger(__name__)

MAX_REASON = 2000


class DecisionError(StateError):
    """A decision that cannot be taken; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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


def can_decide(who: Principal, report: AnnualReport) -> bool:
    if not (who.is_office or who.is_center) or not who.sees_office(report.unit.office_code):
        return False
    _, needed = workflow_action(who, "approve")
    return report.state == needed.value


def decide(
    session: Session,
    who: Principal,
    report_id: int,
    decision: str,
    reason: str,
    *,
    shown: dict[str, Any],
    via: str,
    client: str = "",
    cfg: Config | None = None,
) -> Outcome:
    """Take one decision and commit it with its audit records (and queued notices on rejection)."""
    report = load_report(session, who, report_id)
    action, needed = workflow_action(who, decision)
    reason = reason.strip()
    if decision == "reject" and not reason:
        raise DecisionError(400, "退回必须填写原因")
    if len(reason) > MAX_REASON:
        raise DecisionError(400, f"原因过长（最多{MAX_REASON}个字符）")
    if report.state != needed.value:
        shown_state = STATE_LABELS.get(ReportState(report.state), report.state)
        raise DecisionError(
            409,
            f"年度报告 {report.id}（{report.unit.name}，{report.year}年）当前状态为“{shown_state}”，"
            f"{'编办' if who.is_office else '域名中心'}不能审核（不能越级或重复审核）",
        )
    before = report.state
    # Compare-and-set: of two reviewers deciding at once, only the first changes the row.
    with session.no_autoflush:
        try:
            event = transition(session, report, action, who.name, reason=reason, user_id=who.user_id)
        except TransitionError as exc:
            raise DecisionError(409, str(exc)) from None
        changed = session.execute(
            sa.update(AnnualReport)
            .where(AnnualReport.id == report.id, AnnualReport.state == before)
            .values(state=report.state)
            .execution_options(synchronize_session=False)
        )
    if getattr(changed, "rowcount", 0) != 1:
        session.rollback()
        raise DecisionError(409, f"年度报告 {report_id} 已被其他审核员处理，请刷新页面")
    record_decision(event, shown=shown, via=via, client=client)
    session.flush()
    notices: list[int] = []
    if action == "reject" and cfg is not None:
        notices = _queue_rejection(session, cfg, report)
    session.commit()
    return Outcome(event, notices)


def _queue_rejection(session: Session, cfg: Config, report: AnnualReport) -> list[int]:
    """Record the unit's rejection notices (sent by the outbox: now in the background, or by notify)."""
    session.flush()
    plan = plan_rejections(session, cfg)
    for line in plan.skipped:
        if line.startswith(report.unit.name):
            log.warning("report %s: %s", report.id, line)
    store = EvidenceStore(cfg.evidence_dir)
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
