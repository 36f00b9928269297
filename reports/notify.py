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
from dataclasses import dataclass, field
from html import escape

import sqlalchemy as sa
from sqlalchemy.orm import Session

from reports.delivery.mail import SmtpSettings, build_email, send_email
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
from reports.noncompliance import NoncomplianceReport
from reports.render import render_html, render_xlsx
from reports.source import get_scan, noncompliance_from_db
from storage.config import Config
from storage.evidence import EvidenceStore
from storage.models import AnnualReport, AnnualReportEvent, Notification, Office, ReportState, Unit

_SPLIT = re.compile(r"[;,，；、\s]+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_MOBILE = re.compile(r"^\+?\d{6,15}$")


@dataclass(slots=True)
class Plan:
    messages: list[Outgoing] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # who cannot be reached, and why


def addresses(raw: str) -> list[str]:
    return [a for a in _SPLIT.split(raw or "") if a]


def _xlsx_name(label: str, scan_id: int) -> str:
    safe = re.sub(r"[\\/:*?\"<>|\s]+", "_", label)
    return f"不合规清单_{safe}_巡检{scan_id}.xlsx"


def plan_scan(session: Session, report: NoncomplianceReport, cfg: Config) -> Plan:
    """Each office with units gets its own list (even a clean one); the center gets the whole list."""
    plan = Plan()
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
            doc = noncompliance_document(NoncomplianceReport(report.scan_id, report.previous_scan_id, [ol]))
            html, xlsx = render_html(doc), render_xlsx(doc)
        subject = (
            f"【网标巡检】{ol.office_name}网站标识及域名不合规清单（巡检{sid}）："
            f"不合规{len(ol.failures)}项，无法核实{len(ol.unverified)}项"
        )
        for e, key in keys.items():
            plan.messages.append(
                Outgoing(
                    key,
                    "email",
                    e,
                    subject,
                    html,
                    _xlsx_name(ol.office_name, sid),
                    xlsx,
                    office_code=ol.office_code,
                    scan_id=sid,
                )
            )
    centers = [e for e in addresses(cfg.center_email) if _EMAIL.match(e)]
    if centers:
        html, xlsx = "", None
        if not {f"scan:{sid}:center:email:{e.lower()}" for e in centers} <= known:
            doc = noncompliance_document(report)
            html, xlsx = render_html(doc), render_xlsx(doc)
        total = sum(len(o.failures) for o in report.offices)
        subject = f"【网标巡检】巡检{sid}不合规清单汇总：{len(report.offices)}个编办，不合规{total}项"
        for e in centers:
            plan.messages.append(
                Outgoing(
                    f"scan:{sid}:center:email:{e.lower()}",
                    "email",
                    e,
                    subject,
                    html,
                    _xlsx_name("汇总", sid),
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


def plan_rejections(session: Session, cfg: Config) -> Plan:
    """The unit of every report whose latest transition is a rejection gets the reason by e-mail and SMS."""
    plan = Plan()
    sms = SmsSettings.from_config(cfg)
    rows = session.scalars(
        sa.select(AnnualReport)
        .join(Unit, Unit.id == AnnualReport.unit_id)
        .where(AnnualReport.state == ReportState.REJECTED.value)
        .order_by(AnnualReport.id)
    )
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


def plan(session: Session, cfg: Config, scan_id: int | None = None, base_url: str = "") -> Plan:
    """Everything ``notify`` would send now: the lists of one scan (latest finished) and rejections."""
    out = Plan()
    scan = get_scan(session, scan_id)
    if scan is None and scan_id is None:
        out.skipped.append("还没有完成的巡检：本次只发送年度报告退回通知")
    elif scan is not None:
        report = noncompliance_from_db(session, scan.id, None, base_url=base_url)
        part = plan_scan(session, report, cfg)
        out.messages += part.messages
        out.skipped += part.skipped
    part = plan_rejections(session, cfg)
    out.messages += part.messages
    out.skipped += part.skipped
    return out


def default_senders(cfg: Config) -> dict[str, Sender]:
    smtp = SmtpSettings.from_config(cfg)
    sms = SmsSettings.from_config(cfg)

    def email(row: Notification, data: bytes | None) -> None:
        attachment = (row.attachment_name, data, XLSX_MIME) if data is not None else None
        text = re.sub(r"<[^>]+>", "", row.body) if row.channel == "email" else row.body
        msg = build_email(
            smtp.sender,
            row.recipient,
            row.subject,
            row.body,
            re.sub(r"\n\s*\n+", "\n", text).strip(),
            attachment,
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
) -> RunResult:
    """Record what is new (once per key), then send everything pending, including earlier failures."""
    p = plan(session, cfg, scan_id, base_url)
    store = EvidenceStore(cfg.evidence_dir)
    recorded = already = 0
    for out in p.messages:
        _, created = enqueue(session, out, store)
        recorded += created
        already += not created
    session.commit()
    result = dispatch(session, pending_rows(session), senders or default_senders(cfg), store, policy)
    return RunResult(p, recorded, already, result)


def describe_plan(session: Session, p: Plan) -> str:
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
                "pending": f"待重试（已尝试{n.attempts}次）",
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
