"""What `badgewatch notify` sends: each office its list after a scan, each rejected unit its reason.

Planning is separate from sending: :func:`plan` says what would go where (``--dry-run`` prints it),
:func:`run` records the messages in the outbox (once per key) and sends what is pending.

Keys (one message per (scan or report event, recipient, channel)):

* ``scan:<scan>:office:<code>:email:<address>`` an office's list of one scan,
* ``scan:<scan>:center:email:<address>`` the whole list to the domain center (``center_email``),
* ``report:<report>:rejected:<event>:<channel>:<address or mobile>`` a rejection.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

import sqlalchemy as sa
from sqlalchemy.orm import Session

from reports.delivery.mail import SmtpSettings, build_email, html_to_text, send_email
from reports.delivery.outbox import (
    DEFAULT_POLICY,
    XLSX_MIME,
    DispatchResult,
    Outgoing,
    RetryPolicy,
    Sender,
    dispatch,
    enqueue,
)
from reports.delivery.outbox import pending as pending_rows
from reports.delivery.sms import SmsSettings, send_sms
from reports.documents import noncompliance_document
from reports.letter import ListNotice, center_letter, office_letter
from reports.noncompliance import NoncomplianceReport
from reports.render import render_xlsx
from reports.source import OfficeTree, ReportInputError, get_scan, noncompliance_from_db
from storage.config import Config
from storage.evidence import EvidenceStore
from storage.models import AnnualReport, AnnualReportEvent, Notification, Office, ReportState, Scan, Unit
from storage.status import LABELS, State, scope_offices
from storage.timefmt import DEFAULT_TIMEZONE, fmt_date, fmt_time
from storage.types import utcnow

_SPLIT = re.compile(r"[;,，；、\s]+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_MOBILE = re.compile(r"^\+?\d{6,15}$")


@dataclass(slots=True)
class Plan:
    messages: list[Outgoing] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # who cannot be reached, and why


def addresses(raw: str) -> list[str]:
    return [a for a in _SPLIT.split(raw or "") if a]


def _xlsx_name(label: str, report: NoncomplianceReport) -> str:
    safe = re.sub(r"[\\/:*?\"<>|\s]+", "_", label)
    day = fmt_date(report.started_at, report.tz) if report.started_at else f"巡检{report.scan_id}"
    return f"不合规清单_{safe}_{day}.xlsx"


def scan_report(
    session: Session, scan: Scan, office: str | None = None, base_url: str = "", tz: str = DEFAULT_TIMEZONE
) -> NoncomplianceReport:
    """The lists of ``scan`` for the offices it covered (and, with ``office``, only that office and
    its sub-offices): an office the scan did not visit gets no list, not a falsely clean one."""
    report = noncompliance_from_db(session, scan.id, office, base_url=base_url, tz=tz)
    if scope_offices(scan) is None:
        return report
    lists = [ol for ol in report.offices if ol.scanned]
    if office and report.offices and not lists:
        raise ReportInputError(f"巡检 {scan.id} 没有覆盖编办 {office} 及其下级编办，无法发送其清单")
    return NoncomplianceReport(
        report.scan_id, report.previous_scan_id, lists, report.started_at, report.scope, report.tz
    )


def list_subject(report: NoncomplianceReport, office_name: str, failures: int, unknown: int) -> str:
    """``【网标巡检】保定市网站标识及域名不合规清单（2026年12月4日，巡检7）：不合规1项，无法判定0项``."""
    day = f"{fmt_date(report.started_at, report.tz)}，" if report.started_at else ""
    return (
        f"【网标巡检】{office_name}网站标识及域名不合规清单（{day}巡检{report.scan_id}）："
        f"{LABELS[State.FAIL]}{failures}项，{LABELS[State.UNKNOWN]}{unknown}项"
    )


def plan_scan(session: Session, report: NoncomplianceReport, cfg: Config, *, center: bool = True) -> Plan:
    """Each office of ``report`` gets its own list (even a clean one); with ``center``, the domain
    center gets the whole list."""
    plan = Plan()
    notice = ListNotice.from_config(cfg)
    offices = {o.code: o for o in session.scalars(sa.select(Office))}
    sid = report.scan_id
    # Messages already recorded are not rendered again (a province's lists are large).
    known = set(session.scalars(sa.select(Notification.dedupe_key).where(Notification.scan_id == sid)))
    for ol in report.offices:
        office = offices.get(ol.office_code)
        emails = addresses(office.email if office else "")
        if not emails:
            plan.skipped.append(f"{ol.office_name}（{ol.office_code}）未登记联系邮箱，清单无法发送")
            continue
        invalid = [e for e in emails if not _EMAIL.match(e)]
        for e in invalid:
            plan.skipped.append(f"{ol.office_name}（{ol.office_code}）的联系邮箱“{e}”无效")
        keys = {
            e: f"scan:{sid}:office:{ol.office_code}:email:{e.lower()}" for e in emails if e not in invalid
        }
        html, xlsx = "", None
        if not set(keys.values()) <= known:
            one = NoncomplianceReport(
                report.scan_id, report.previous_scan_id, [ol], report.started_at, report.scope, report.tz
            )
            html = office_letter(ol, one, notice)
            xlsx = render_xlsx(noncompliance_document(one, notice.footer(one)))
        subject = list_subject(report, ol.office_name, len(ol.failures), len(ol.unverified))
        for e, key in keys.items():
            plan.messages.append(
                Outgoing(
                    key,
                    "email",
                    e,
                    subject,
                    html,
                    _xlsx_name(ol.office_name, report),
                    xlsx,
                    office_code=ol.office_code,
                    scan_id=sid,
                )
            )
    centers = [e for e in addresses(cfg.center_email) if _EMAIL.match(e)] if center else []
    if centers:
        html, xlsx = "", None
        if not {f"scan:{sid}:center:email:{e.lower()}" for e in centers} <= known:
            html = center_letter(report, notice)
            xlsx = render_xlsx(noncompliance_document(report, notice.footer(report)))
        total = sum(len(o.failures) for o in report.offices)
        subject = (
            f"【网标巡检】不合规清单汇总（{report.scan_label}，巡检{sid}）：{len(report.offices)}个编办，"
            f"{LABELS[State.FAIL]}{total}项"
        )
        for e in centers:
            plan.messages.append(
                Outgoing(
                    f"scan:{sid}:center:email:{e.lower()}",
                    "email",
                    e,
                    subject,
                    html,
                    _xlsx_name("汇总", report),
                    xlsx,
                    scan_id=sid,
                )
            )
    return plan


def _rejection_html(report: AnnualReport, reason: str) -> str:
    unit = escape(report.unit.name)
    return (
        f"<html><body><p>{unit}：</p><p>贵单位{report.year}年度网上名称年度报告未通过审核。</p>"
        f"<p><b>未通过原因：</b>{escape(reason)}</p><p>请按要求修改后重新提交。</p>"
        "<p>—— badgewatch 网标巡检</p></body></html>"
    )


def plan_rejections(session: Session, cfg: Config, offices: Collection[str] | None = None) -> Plan:
    """The unit of every report whose latest transition is a rejection gets the reason by e-mail and SMS
    (with ``offices``, only units of those offices)."""
    plan = Plan()
    sms = SmsSettings.from_config(cfg)
    stmt = (
        sa.select(AnnualReport)
        .join(Unit, Unit.id == AnnualReport.unit_id)
        .where(AnnualReport.state == ReportState.REJECTED.value)
        .order_by(AnnualReport.id)
    )
    if offices is not None:
        stmt = stmt.where(Unit.office_code.in_(sorted(offices)))
    rows = session.scalars(stmt)
    for report in rows:
        events = [e for e in report.events if e.to_state == ReportState.REJECTED.value]
        if not events:
            continue
        event: AnnualReportEvent = events[-1]
        reason = event.reason or report.rejection_reason
        unit = report.unit
        label = f"{unit.name}（{report.year}年度报告）"
        base = f"report:{report.id}:rejected:{event.id}"
        emails = [e for e in addresses(unit.email) if _EMAIL.match(e)]
        mobiles = [m for m in addresses(unit.mobile) if _MOBILE.match(m)]
        if not emails:
            plan.skipped.append(f"{label} 未登记有效的联系邮箱，退回原因无法邮件通知")
        if not mobiles:
            plan.skipped.append(f"{label} 未登记有效的联系手机，退回原因无法短信通知")
        subject = f"【网标巡检】{report.year}年度网上名称年度报告未通过审核：{unit.name}"
        for e in emails:
            plan.messages.append(
                Outgoing(
                    f"{base}:email:{e.lower()}",
                    "email",
                    e,
                    subject,
                    _rejection_html(report, reason),
                    unit_id=unit.id,
                    report_id=report.id,
                )
            )
        message = f"贵单位{report.year}年度网上名称年度报告未通过审核，原因：{reason}。请修改后重新提交。"
        for m in mobiles:
            plan.messages.append(
                Outgoing(
                    f"{base}:sms:{m}",
                    "sms",
                    m,
                    subject,
                    sms.text(unit.name, message),
                    unit_id=unit.id,
                    report_id=report.id,
                )
            )
    return plan


def plan_for_scan(
    session: Session, cfg: Config, scan: Scan, office: str | None = None, base_url: str = ""
) -> Plan:
    """The lists of ``scan`` to the offices it covered (with ``office``: to that office and its
    sub-offices only, and no center summary, which covers the whole scan)."""
    report = scan_report(session, scan, office, base_url or cfg.console_url, cfg.timezone)
    return plan_scan(session, report, cfg, center=office is None)


def office_scope(session: Session, office: str | None) -> set[str] | None:
    """``office`` and its sub-offices (an unknown code is refused by name); None for all offices."""
    if not office:
        return None
    tree = OfficeTree.load(session)
    tree.get(office)
    return set(tree.subtree(office))


def plan(
    session: Session, cfg: Config, scan_id: int | None = None, base_url: str = "", office: str | None = None
) -> Plan:
    """Everything ``notify`` would send now: the lists of one scan (latest finished) to the offices it
    covered, and rejections. With ``office``, only what concerns that office and its sub-offices (the
    center's summary, which covers the whole scan, is then left for an unrestricted run)."""
    out = Plan()
    scope = office_scope(session, office)
    scan = get_scan(session, scan_id)
    if scan is None and scan_id is None:
        out.skipped.append("还没有完成的巡检：本次只发送年度报告退回通知")
    elif scan is not None:
        part = plan_for_scan(session, cfg, scan, office, base_url)
        out.messages += part.messages
        out.skipped += part.skipped
    part = plan_rejections(session, cfg, scope)
    out.messages += part.messages
    out.skipped += part.skipped
    return out


def default_senders(cfg: Config) -> dict[str, Sender]:
    smtp = SmtpSettings.from_config(cfg)
    sms = SmsSettings.from_config(cfg)

    def email(row: Notification, data: bytes | None) -> None:
        attachment = (row.attachment_name, data, XLSX_MIME) if data is not None else None
        msg = build_email(
            smtp.sender, row.recipient, row.subject, row.body, html_to_text(row.body), attachment
        )
        send_email(smtp, msg)

    def sms_send(row: Notification, _data: bytes | None) -> None:
        send_sms(sms, row.recipient, row.body)

    return {"email": email, "sms": sms_send}


@dataclass(slots=True)
class RunResult:
    plan: Plan
    recorded: int
    already: int
    dispatch: DispatchResult


def run(
    session: Session,
    cfg: Config,
    *,
    scan_id: int | None = None,
    base_url: str = "",
    senders: dict[str, Sender] | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    office: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = utcnow,
) -> RunResult:
    """Record what is new (once per key), then send everything pending whose backoff is over,
    including earlier failures (``sleep``/``now`` are the clock the backoff is measured with)."""
    p = plan(session, cfg, scan_id, base_url, office)
    store = EvidenceStore(cfg.evidence_dir)
    recorded = already = 0
    for out in p.messages:
        _, created = enqueue(session, out, store)
        recorded += created
        already += not created
    session.commit()
    rows = pending_rows(session)
    scope = office_scope(session, office)
    if scope is not None:
        # Earlier failures are retried too, but only those addressed to the office's scope.
        units = set(session.scalars(sa.select(Unit.id).where(Unit.office_code.in_(sorted(scope)))))
        rows = [n for n in rows if n.office_code in scope or n.unit_id in units]
    result = dispatch(session, rows, senders or default_senders(cfg), store, policy, sleep=sleep, now=now)
    return RunResult(p, recorded, already, result)


def _not_before(n: Notification, tz: str) -> str:
    if n.next_attempt_at is None:
        return ""
    return f"，{fmt_time(n.next_attempt_at, tz, seconds=True, label=True)}之后重试"


def describe_plan(session: Session, p: Plan, tz: str = DEFAULT_TIMEZONE) -> str:
    """The dry-run listing: channel, recipient, subject, attachment, and whether it was sent before."""
    keys = [m.dedupe_key for m in p.messages]
    known = (
        {
            n.dedupe_key: n
            for n in session.scalars(sa.select(Notification).where(Notification.dedupe_key.in_(keys)))
        }
        if keys
        else {}
    )
    lines = []
    for m in p.messages:
        n = known.get(m.dedupe_key)
        state = (
            "新"
            if n is None
            else {
                "sent": "已发送，不再发送",
                "pending": f"待重试（已尝试{n.attempts}次{_not_before(n, tz)}）",
                "failed": "已放弃",
            }.get(n.status, n.status)
        )
        size = f"（{len(m.attachment)}字节）" if m.attachment is not None else ""
        att = f" 附件 {m.attachment_name}{size}" if m.attachment_name else ""
        lines.append(f"[{state}] {m.channel} → {m.recipient}：{m.subject}{att}")
    for s in p.skipped:
        lines.append(f"[无法发送] {s}")
    if not lines:
        lines.append("没有需要发送的消息。")
    return "\n".join(lines)
