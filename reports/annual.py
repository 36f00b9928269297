"""Annual reports (年度报告): the workflow, fields 3 and 5 derived from scans, and disagreements.

Workflow: ``submitted → office_approved → approved``; either review level may reject (with a
reason), and a rejected report comes back as ``submitted`` when the unit resubmits. Every transition
is an :class:`~storage.models.AnnualReportEvent` (who, when, from, to, why). The review console calls
:func:`transition`; the import calls :func:`submit`.

Fields 3 (中文域名与英文域名的有效性及使用状况) and 5 (是否加挂网站标识) are derived from the latest
*settled* finding of each of the unit's domains and websites: ``pass``, ``warn`` or a confirmed
``fail`` (an ``unknown`` or an unconfirmed failure settles nothing). The derived value keeps the ids
of the findings it rests on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from checks.errors import StateError
from checks.reasons import UnknownReasonError, describe
from checks.verdict import Status
from storage import audit
from storage.models import (
    AnnualReport,
    AnnualReportEvent,
    DomainKind,
    Finding,
    ReportState,
    Scan,
    ScanStatus,
    Unit,
)
from storage.types import utcnow

S, OA, A, R = ReportState.SUBMITTED, ReportState.OFFICE_APPROVED, ReportState.APPROVED, ReportState.REJECTED

# action → {from state: to state}
TRANSITIONS: dict[str, dict[str, ReportState]] = {
    "office_approve": {S: OA},
    "approve": {OA: A},
    "reject": {S: R, OA: R},
    "resubmit": {R: S, S: S},
}
ACTION_LABELS = {
    "office_approve": "编办审核通过",
    "approve": "域名中心审核通过",
    "reject": "退回",
    "resubmit": "重新提交",
    "submit": "提交",
}
STATE_LABELS = {S: "已提交", OA: "编办已审核", A: "审核通过", R: "未通过"}

# Values of the derived fields (and the normalised submitted values they are compared with).
VALID, PARTLY, INVALID, NO_DOMAIN = "有效", "部分无效", "无效", "无域名"
YES, NO, PARTIAL, NO_SITE = "是", "否", "部分", "无网站"
UNDECIDED = "无法判定"

SUBMITTED_FIELDS = ("organizer", "site_name", "domains_status", "functions_reviewed", "badge_displayed")


class TransitionError(StateError, ValueError):
    """A transition the workflow does not allow (says which report, from which state, which action)."""


def next_state(current: str, action: str) -> ReportState:
    """The state ``action`` leads to from ``current``; raises :class:`TransitionError` if not allowed."""
    targets = TRANSITIONS.get(action)
    if targets is None:
        raise TransitionError(f"未知的审核操作: {action}")
    try:
        return targets[ReportState(current)]
    except (KeyError, ValueError):
        allowed = "、".join(STATE_LABELS[ReportState(s)] for s in targets)
        shown = STATE_LABELS.get(ReportState(current), current) if current in STATE_LABELS else current
        raise TransitionError(
            f"年度报告当前状态为“{shown}”，不能{ACTION_LABELS.get(action, action)}（仅限{allowed}状态）"
        ) from None


def transition(
    session: Session,
    report: AnnualReport,
    action: str,
    actor: str,
    *,
    reason: str = "",
    user_id: int | None = None,
    at: dt.datetime | None = None,
) -> AnnualReportEvent:
    """Apply ``action`` to ``report`` and record it in the audit trail (not committed)."""
    try:
        target = next_state(report.state, action)
    except TransitionError as exc:
        raise TransitionError(
            f"年度报告 {report.id}（单位 {report.unit_id}，{report.year}年）：{exc}"
        ) from None
    if action == "reject" and not reason.strip():
        raise TransitionError(f"年度报告 {report.id}：退回必须填写原因")
    if not actor.strip():
        raise TransitionError(f"年度报告 {report.id}：必须记录操作人")
    event = AnnualReportEvent(
        from_state=report.state,
        to_state=target.value,
        actor=actor,
        user_id=user_id,
        reason=reason.strip(),
        at=at or utcnow(),
    )
    report.state = target.value
    report.rejection_reason = reason.strip() if target is R else ""
    # Through the collection only (it cascades the event into the session): adding it to the session
    # first made the lazy load of ``report.events`` autoflush it and then list it twice.
    report.events.append(event)
    return event


# --- what scans say --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Derived:
    """A derived field: value, a plain-Chinese explanation, and the findings it rests on."""

    value: str
    detail: str
    finding_ids: tuple[int, ...]
    scan_ids: tuple[int, ...]
    # Domains (sites) the scans found good, bad, and could not decide; what disagreements rest on.
    good: int = 0
    bad: int = 0
    undecided: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "detail": self.detail,
            "finding_ids": list(self.finding_ids),
            "scan_ids": list(self.scan_ids),
            "counts": {"good": self.good, "bad": self.bad, "undecided": self.undecided},
        }


def _value(good: int, bad: int, undecided: int, labels: tuple[str, str, str]) -> str:
    """The derived value from what was decided; undecided ones are named, never guessed."""
    all_good, mixed, all_bad = labels
    if not (good or bad):
        return UNDECIDED
    base = mixed if good and bad else (all_bad if bad else all_good)
    return f"{base}（另有{undecided}个无法判定）" if undecided else base


def _settled(f: Finding) -> bool:
    return f.status in (Status.PASS, Status.WARN) or (f.status == Status.FAIL and f.confirmed)


def _latest(findings: Iterable[tuple[Finding, Scan]], prefixes: Sequence[str]) -> tuple[Finding | None, bool]:
    """The latest settled finding among ``findings`` whose reason has one of ``prefixes``.

    Within the newest scan that settled anything, a failure wins over a pass (a domain can resolve
    and still carry the wrong suffix). Also says whether anything (settled or not) was found, to
    tell "not scanned" from "could not be decided".
    """
    seen = False
    chosen: Finding | None = None
    chosen_scan: int | None = None
    for f, scan in findings:  # newest scan first
        if not f.reason.startswith(tuple(prefixes)):
            continue
        seen = True
        if chosen_scan is not None and scan.id != chosen_scan:
            break
        better = chosen is None or (f.status == Status.FAIL and chosen.status != Status.FAIL)
        if _settled(f) and better:
            chosen, chosen_scan = f, scan.id
    return chosen, seen


def _message(code: str) -> str:
    try:
        return describe(code).message
    except UnknownReasonError:
        return code


def _findings_by_subject(
    session: Session, column: Any, ids: Sequence[int]
) -> dict[int, list[tuple[Finding, Scan]]]:
    out: dict[int, list[tuple[Finding, Scan]]] = {i: [] for i in ids}
    if not ids:
        return out
    stmt = (
        sa.select(Finding, Scan)
        .join(Scan, Scan.id == Finding.scan_id)
        .where(column.in_(ids), Scan.status == ScanStatus.FINISHED.value)
        .order_by(Scan.started_at.desc(), Scan.id.desc())
    )
    for f, scan in session.execute(stmt):
        key = getattr(f, column.key)
        if key is not None:
            out[key].append((f, scan))
    return out


def derive_domains(session: Session, unit: Unit) -> Derived:
    """Field 3 from DNS findings (validity) and usage findings (use) of each of the unit's domains."""
    domains = sorted(unit.domains, key=lambda d: (d.kind == DomainKind.ENGLISH, d.ascii))
    if not domains:
        return Derived(NO_DOMAIN, "登记信息中没有该单位的域名", (), ())
    by_dom = _findings_by_subject(session, Finding.domain_id, [d.id for d in domains])
    ids: list[int] = []
    scans: set[int] = set()
    parts: list[str] = []
    valid = invalid = undecided = 0
    for d in domains:
        label = "英文域名" if d.kind == DomainKind.ENGLISH else "中文域名"
        dns, seen = _latest(by_dom[d.id], ("dns.", "domain."))
        use, _ = _latest(by_dom[d.id], ("usage.",))
        if dns is None:
            undecided += 1
            parts.append(f"{label} {d.name}：{'巡检未能判定' if seen else '尚未巡检'}")
            continue
        ids.append(dns.id)
        scans.add(dns.scan_id)
        text = _message(dns.reason)
        if dns.status == Status.FAIL:
            invalid += 1
        else:
            valid += 1
            if use is not None:
                ids.append(use.id)
                scans.add(use.scan_id)
                text += "，" + _message(use.reason)
        parts.append(f"{label} {d.name}：{text}")
    # The unit as a whole: a 党政机关/事业单位 holding no Chinese domain of its kind at all.
    whole, _ = _latest(_findings_by_subject(session, Finding.unit_id, [unit.id])[unit.id], ("domain.",))
    if whole is not None and whole.status == Status.FAIL:
        invalid += 1
        ids.append(whole.id)
        scans.add(whole.scan_id)
        parts.insert(0, f"中文域名：{_message(whole.reason)}")
    value = _value(valid, invalid, undecided, (VALID, PARTLY, INVALID))
    return Derived(value, "；".join(parts), tuple(ids), tuple(sorted(scans)), valid, invalid, undecided)


def derive_badge(session: Session, unit: Unit) -> Derived:
    """Field 5 from the badge findings of each of the unit's self-built websites (red pages excluded)."""
    sites = sorted((w for w in unit.websites if not w.red_page), key=lambda w: w.url)
    if not sites:
        return Derived(NO_SITE, "登记信息中没有该单位的自建网站", (), ())
    by_site = _findings_by_subject(session, Finding.website_id, [w.id for w in sites])
    ids: list[int] = []
    scans: set[int] = set()
    parts: list[str] = []
    shown = missing = undecided = 0
    for w in sites:
        f, seen = _latest(by_site[w.id], ("badge.",))
        name = w.name or w.url
        if f is None:
            undecided += 1
            parts.append(f"{name}：{'巡检未能判定' if seen else '尚未巡检'}")
            continue
        ids.append(f.id)
        scans.add(f.scan_id)
        if f.status == Status.FAIL:
            missing += 1
        else:
            shown += 1
        parts.append(f"{name}：{_message(f.reason)}")
    value = _value(shown, missing, undecided, (YES, PARTIAL, NO))
    return Derived(value, "；".join(parts), tuple(ids), tuple(sorted(scans)), shown, missing, undecided)


def normalise_domains_answer(text: str) -> str:
    """A unit's free-text field 3 reduced to 有效 / 部分无效 / 无效 / 无域名 (or "" if unreadable)."""
    t = text.strip().replace(" ", "")
    if not t:
        return ""
    if t.startswith(("无域名", "未注册")):
        return NO_DOMAIN
    if t.startswith(("部分", "部分有效", "部分无效")):
        return PARTLY
    if t.startswith(("无效", "失效", "已过期", "过期")):
        return INVALID
    if t.startswith(("有效", "正常", "均有效", "全部有效")):
        return VALID
    return ""


def normalise_badge_answer(text: str) -> str:
    """A unit's field 5 reduced to 是 / 否 / 部分 / 无网站 (or "" if unreadable)."""
    t = text.strip().replace(" ", "")
    if not t:
        return ""
    if t.startswith(("无网站", "无自建网站", "不适用")):
        return NO_SITE
    if t.startswith(("部分",)):
        return PARTIAL
    if t.startswith(("否", "未加挂", "未挂", "没有")):
        return NO
    if t.startswith(("是", "已加挂", "已挂", "有")):
        return YES
    return ""


def _contradicts(claim: str, derived: dict[str, Any], labels: tuple[str, str, str, str]) -> bool:
    """Whether ``claim`` (normalised) is certainly wrong given what the scans decided.

    Only certain contradictions count (confirm before you accuse): "all good" against a confirmed
    bad one, "all bad" against a good one, "some bad" when everything was decided alike, "none"
    when the registry holds some.
    """
    all_good, mixed, all_bad, none = labels
    counts = derived.get("counts") or {}
    good, bad, undecided = (int(counts.get(k, 0)) for k in ("good", "bad", "undecided"))
    if derived.get("value") == none:
        return claim in (all_good, mixed, all_bad)
    if claim == all_good:
        return bad > 0
    if claim == all_bad:
        return good > 0
    if claim == mixed:
        return undecided == 0 and (good == 0 or bad == 0) and (good + bad) > 0
    if claim == none:
        return good + bad + undecided > 0
    return False


def fresh_derived(session: Session, report: AnnualReport) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fields 3 and 5 as the latest scans give them now, without touching ``report`` (a page that
    shows a report must not write)."""
    unit = report.unit
    return derive_domains(session, unit).to_dict(), derive_badge(session, unit).to_dict()


def disagreements(
    report: AnnualReport,
    derived_domains: dict[str, Any] | None = None,
    derived_badge: dict[str, Any] | None = None,
) -> list[str]:
    """Where what the unit submitted certainly contradicts what the scans show (plain Chinese);
    against the stored derived fields, or the ones given."""
    out: list[str] = []
    s3 = normalise_domains_answer(report.domains_status)
    d3 = (report.derived_domains if derived_domains is None else derived_domains) or {}
    if s3 and d3 and _contradicts(s3, d3, (VALID, PARTLY, INVALID, NO_DOMAIN)):
        out.append(
            f"字段3（域名有效性及使用状况）：单位填报“{report.domains_status}”，巡检结果为“{d3.get('value')}”"
        )
    elif report.domains_status.strip() and not s3:
        out.append(f"字段3：填报内容“{report.domains_status}”无法识别为有效/部分无效/无效/无域名")
    s5 = normalise_badge_answer(report.badge_displayed)
    d5 = (report.derived_badge if derived_badge is None else derived_badge) or {}
    if s5 and d5 and _contradicts(s5, d5, (YES, PARTIAL, NO, NO_SITE)):
        out.append(
            f"字段5（是否加挂网站标识）：单位填报“{report.badge_displayed}”，巡检结果为“{d5.get('value')}”"
        )
    elif report.badge_displayed.strip() and not s5:
        out.append(f"字段5：填报内容“{report.badge_displayed}”无法识别为是/否/部分/无网站")
    return out


def derive(session: Session, report: AnnualReport, at: dt.datetime | None = None) -> None:
    """(Re)compute fields 3 and 5 of ``report`` from the latest settled findings (not committed)."""
    unit = report.unit
    report.derived_domains = derive_domains(session, unit).to_dict()
    report.derived_badge = derive_badge(session, unit).to_dict()
    report.derived_at = at or utcnow()


def submit(
    session: Session,
    unit: Unit,
    year: int,
    fields: dict[str, str],
    actor: str,
    *,
    via: str = "import",
    client: str = "",
    user_id: int | None = None,
    role: str = "",
) -> tuple[AnnualReport, str]:
    """Store a unit's submitted report; returns the report and what happened.

    ``created`` (first submission), ``resubmitted`` (after a rejection, or a correction before any
    review: the version goes up), ``unchanged`` (the same fields again: importing a file twice
    changes nothing). Raises :class:`TransitionError` when a reviewed report would be overwritten.
    A submission that stores something is an event of the lasting audit trail, with its channel
    (``via``: api or import) and client (address, or operator@host for an import).
    """
    keys = SUBMITTED_FIELDS
    report = session.scalars(
        sa.select(AnnualReport).where(AnnualReport.unit_id == unit.id, AnnualReport.year == year)
    ).first()
    if report is None:
        report = AnnualReport(
            unit_id=unit.id, year=year, state=S.value, **{k: fields.get(k, "") for k in keys}
        )
        report.unit = unit
        session.add(report)
        session.flush()
        report.events.append(AnnualReportEvent(from_state="", to_state=S.value, actor=actor, user_id=user_id))
        _audit_submission(session, report, "report.submitted", actor, via, client, user_id, role, fields)
        return report, "created"
    if all(getattr(report, k) == fields.get(k, "") for k in keys):
        return report, "unchanged"
    if report.state not in (S, R):
        raise TransitionError(
            f"{unit.name}（{year}年）的年度报告已{STATE_LABELS[ReportState(report.state)]}，不能再导入修改"
        )
    for k in keys:
        setattr(report, k, fields.get(k, ""))
    report.version += 1
    transition(session, report, "resubmit", actor, reason="重新提交", user_id=user_id)
    _audit_submission(session, report, "report.resubmitted", actor, via, client, user_id, role, fields)
    return report, "resubmitted"


def _audit_submission(
    session: Session,
    report: AnnualReport,
    kind: str,
    actor: str,
    via: str,
    client: str,
    user_id: int | None,
    role: str,
    fields: dict[str, str],
) -> None:
    unit = report.unit
    audit.append(
        session,
        kind=kind,
        actor=actor,
        via=via,
        client=client,
        user_id=user_id,
        role=role,
        report_id=report.id,
        unit_id=unit.id,
        unit_name=unit.name,
        office_code=unit.office_code,
        year=report.year,
        version=report.version,
        detail={"fields": {k: fields.get(k, "") for k in SUBMITTED_FIELDS}},
    )


def reports_for(session: Session, year: int, office_codes: Iterable[str] | None = None) -> list[AnnualReport]:
    stmt = (
        sa.select(AnnualReport).join(Unit, Unit.id == AnnualReport.unit_id).where(AnnualReport.year == year)
    )
    if office_codes is not None:
        stmt = stmt.where(Unit.office_code.in_(list(office_codes)))
    return list(session.scalars(stmt.order_by(Unit.office_code, Unit.name)))
