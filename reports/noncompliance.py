"""Non-compliance lists: per office, confirmed failures, advice, what could not be verified, and changes.

Pure: the findings come in as :class:`FindingRecord` (read from the database by
:mod:`reports.source`). Rules (docs/reports.md, “Non-compliance lists”):

* only a **confirmed** ``fail`` is non-compliance; an unconfirmed ``fail`` waits for confirmation;
* ``warn`` is advice, listed apart;
* ``unknown`` (timeout, blocked, DNS failure…) goes to the list of what could not be judged;
* an office outside the scan's scope gets no "clean" list: it is marked 未巡检;
* texts come from the reason catalogue (:func:`checks.reasons.describe`), never rewritten here; states
  and their labels from :mod:`storage.status`, times through :mod:`storage.timefmt`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from checks.reasons import UnknownReasonError, describe
from checks.verdict import Status
from storage.status import LABELS, State, finding_state
from storage.timefmt import DEFAULT_TIMEZONE, fmt_date, fmt_time

# What a unit-level finding (e.g. no Chinese domain at all) is about, as users read it.
UNIT_TARGET = "单位（全部域名）"
# How a domain's kind (Domain.kind) is named beside it: every domain line says which kind it is.
DOMAIN_KIND_LABELS = {".政务": "中文域名（.政务）", ".公益": "中文域名（.公益）", "英文": "英文域名"}


@dataclass(frozen=True, slots=True)
class FindingRecord:
    """One finding with the registry context a list needs."""

    finding_id: int
    scan_id: int
    office_code: str
    office_name: str
    unit_id: int
    unit_name: str
    unit_kind: str
    subject: str  # "site:<id>", "domain:<id>" or "unit:<id>" (the unit as a whole)
    check: str
    status: str
    reason: str
    detail: str = ""
    confirmed: bool = False
    site_name: str = ""
    site_url: str = ""
    domain: str = ""
    capture_id: int | None = None
    first_seen_at: datetime | None = None  # the first visit of the failing streak (首次发现)
    visits: int = 1  # visits of the streak (连续 N 次)
    domain_kind: str = ""  # ".政务", ".公益" or "英文" for a domain's finding

    @property
    def state(self) -> State:
        """不合规 / 待确认 / 无法判定 / 提示 / 合规 (:func:`storage.status.finding_state`)."""
        return finding_state(self.status, self.confirmed)

    @property
    def key(self) -> tuple[str, str]:
        """What a change is tracked by: the same check on the same site or domain."""
        return (self.subject, self.check)

    @property
    def target(self) -> str:
        """The site or domain the problem is about, as users read it."""
        if self.site_url:
            return f"{self.site_name}（{self.site_url}）" if self.site_name else self.site_url
        if self.domain:
            kind = DOMAIN_KIND_LABELS.get(self.domain_kind, "域名")
            return f"{kind} {self.domain}"
        return UNIT_TARGET


@dataclass(frozen=True, slots=True)
class Problem:
    """One line of a list: a finding with its catalogue message, advice and evidence reference."""

    record: FindingRecord
    message: str
    advice: str
    evidence_id: str
    evidence_url: str = ""
    change: str = ""  # 新增 / 持续 (failures only)
    checks: tuple[str, ...] = ()  # every check a merged "could not be verified" line stands for

    def to_dict(self) -> dict[str, Any]:
        r = self.record
        return {
            "finding_id": r.finding_id,
            "unit": r.unit_name,
            "unit_kind": r.unit_kind,
            "site_name": r.site_name,
            "site_url": r.site_url,
            "domain": r.domain,
            "check": r.check,
            "status": r.status,
            "reason": r.reason,
            "message": self.message,
            "advice": self.advice,
            "detail": r.detail,
            "evidence_id": self.evidence_id,
            "evidence_url": self.evidence_url,
            "change": self.change,
            "checks": list(self.checks or (r.check,)),
            "first_seen_at": r.first_seen_at.isoformat() if r.first_seen_at else None,
            "visits": r.visits,
            "state": str(r.state),
            "state_label": LABELS[r.state],
        }

    @property
    def state(self) -> State:
        return self.record.state


@dataclass(slots=True)
class OfficeList:
    office_code: str
    office_name: str
    failures: list[Problem] = field(default_factory=list)
    advice: list[Problem] = field(default_factory=list)
    unverified: list[Problem] = field(default_factory=list)
    fixed: list[Problem] = field(default_factory=list)  # failures of the previous scan now passing
    pending: int = 0  # failures not confirmed yet
    scanned: bool = True  # False: the office was outside the scan's scope (未巡检)
    units: int = 0  # units of the office in the registry (0: unknown)

    @property
    def state(self) -> State:
        """The office's status in the scan (the worst of its lines), 未巡检 outside the scan."""
        if not self.scanned:
            return State.NOT_SCANNED
        if self.failures:
            return State.FAIL
        if self.pending:
            return State.PENDING
        if self.unverified:
            return State.UNKNOWN
        if self.advice:
            return State.WARN
        return State.PASS

    @property
    def new(self) -> list[Problem]:
        return [p for p in self.failures if p.change == "新增"]

    @property
    def persisting(self) -> list[Problem]:
        return [p for p in self.failures if p.change == "持续"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "office": {"code": self.office_code, "name": self.office_name},
            "failures": [p.to_dict() for p in self.failures],
            "advice": [p.to_dict() for p in self.advice],
            "unverified": [p.to_dict() for p in self.unverified],
            "changes": {
                "new": [p.record.finding_id for p in self.new],
                "persisting": [p.record.finding_id for p in self.persisting],
                "fixed": [p.to_dict() for p in self.fixed],
            },
            "pending_confirmation": self.pending,
            "scanned": self.scanned,
            "state": str(self.state),
        }


@dataclass(slots=True)
class NoncomplianceReport:
    scan_id: int
    previous_scan_id: int | None
    offices: list[OfficeList]
    started_at: datetime | None = None  # when the scan ran (the list's date)
    scope: str = ""  # what the scan covered, as users read it ("保定市及下级编办")
    tz: str = DEFAULT_TIMEZONE  # the zone times are shown in (the ``timezone`` setting)

    @property
    def title(self) -> str:
        return "网站标识及域名不合规清单"

    @property
    def scan_label(self) -> str:
        """``2026年12月4日巡检`` (the scan's day in the configured zone), or ``巡检 N`` without a date."""
        return f"{fmt_date(self.started_at, self.tz)}巡检" if self.started_at else f"巡检 {self.scan_id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "scan_id": self.scan_id,
            "previous_scan_id": self.previous_scan_id,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "scope": self.scope,
            "offices": [o.to_dict() for o in self.offices],
        }


def evidence_id(record: FindingRecord) -> str:
    """A short reference a reviewer can look up: finding id and, when kept, the capture id."""
    ref = f"F{record.finding_id}"
    return f"{ref}/C{record.capture_id}" if record.capture_id is not None else ref


def problem(record: FindingRecord, base_url: str, change: str = "") -> Problem:
    """One line of a list for ``record``: the catalogue's message and advice, the evidence reference."""
    try:
        reason = describe(record.reason)
        message, advice = reason.message, reason.advice
    except UnknownReasonError:
        # A code the catalogue does not know must not hide the finding; say so plainly.
        message, advice = "未收录的检查结果（请联系技术人员核实）", ""
    url = f"{base_url.rstrip('/')}/findings/{record.finding_id}" if base_url else ""
    return Problem(record, message, advice, evidence_id(record), url, change)


def _sort_key(p: Problem) -> tuple[str, str, str, int]:
    r = p.record
    return (r.unit_name, r.target, r.check, r.finding_id)


def build_noncompliance(
    scan_id: int,
    current: Iterable[FindingRecord],
    previous: Iterable[FindingRecord] = (),
    *,
    previous_scan_id: int | None = None,
    offices: Mapping[str, str] | None = None,
    not_scanned: Mapping[str, str] | None = None,
    base_url: str = "",
    started_at: datetime | None = None,
    scope: str = "",
    tz: str = DEFAULT_TIMEZONE,
) -> NoncomplianceReport:
    """Sort one scan's findings into per-office lists and compare with the previous scan.

    ``offices`` (code → name) lists offices that get a list even when they have nothing on it
    (an office with a clean scan still hears that it is clean); ``not_scanned`` (code → name) the
    offices outside the scan's scope: they are listed as 未巡检, never as clean.
    """
    cur = list(current)
    prev_fail = {r.key: r for r in previous if r.status == Status.FAIL and r.confirmed}
    cur_status: dict[tuple[str, str], str] = {r.key: r.status for r in cur}
    lists: dict[str, OfficeList] = {}

    def office(code: str, name: str) -> OfficeList:
        if code not in lists:
            lists[code] = OfficeList(code, name)
        return lists[code]

    for code, name in (offices or {}).items():
        office(code, name)
    for code, name in (not_scanned or {}).items():
        office(code, name).scanned = False
    for r in cur:
        if r.scan_id != scan_id:
            raise ValueError(f"发现记录 F{r.finding_id} 属于巡检 {r.scan_id}，不属于巡检 {scan_id}")
        ol = office(r.office_code, r.office_name)
        if r.status == Status.FAIL:
            if r.confirmed:
                ol.failures.append(problem(r, base_url, "持续" if r.key in prev_fail else "新增"))
            else:
                ol.pending += 1
        elif r.status == Status.WARN:
            ol.advice.append(problem(r, base_url))
        elif r.status == Status.UNKNOWN:
            ol.unverified.append(problem(r, base_url))
        elif r.status != Status.PASS:
            raise ValueError(f"发现记录 F{r.finding_id} 的状态无效: {r.status!r}")
    for key, old in prev_fail.items():
        # Fixed only when this scan shows the check passing (or merely advising); a site that
        # could not be reached this time is not "fixed".
        if cur_status.get(key) in (Status.PASS, Status.WARN):
            office(old.office_code, old.office_name).fixed.append(problem(old, base_url, "已整改"))
    for ol in lists.values():
        ol.unverified = merge_unverified(ol.unverified)
        for items in (ol.failures, ol.advice, ol.unverified, ol.fixed):
            items.sort(key=_sort_key)
    # The offices the scan visited first; those outside it (未巡检) after them.
    ordered = sorted(lists.values(), key=lambda o: (not o.scanned, o.office_code))
    return NoncomplianceReport(scan_id, previous_scan_id, ordered, started_at, scope, tz)


def merge_unverified(problems: list[Problem]) -> list[Problem]:
    """One line per site or domain: a timeout makes every check of the site unknown at once.

    The line leads with the reason that explains the others (the HTTP or DNS failure) and names
    every check it stands for.
    """
    groups: dict[str, list[Problem]] = {}
    for p in problems:
        groups.setdefault(p.record.subject, []).append(p)
    out = []
    for items in groups.values():
        items.sort(key=lambda p: (not p.record.reason.startswith(("http.", "dns.")), p.record.finding_id))
        lead = items[0]
        messages = list(dict.fromkeys(p.message for p in items))
        checks = tuple(dict.fromkeys(p.record.check for p in items))
        out.append(
            Problem(
                lead.record,
                "；".join(messages),
                lead.advice,
                lead.evidence_id,
                lead.evidence_url,
                lead.change,
                checks,
            )
        )
    return out


def seen(p: Problem, tz: str = DEFAULT_TIMEZONE) -> tuple[str, str]:
    """(首次发现, 连续发现) of a failure: when its streak began (in the zone ``tz``), and on how many
    visits it was seen."""
    r = p.record
    return fmt_time(r.first_seen_at, tz), f"连续{r.visits}次" if r.first_seen_at else ""


def summary_line(ol: OfficeList) -> str:
    """One sentence for an e-mail body or a terminal summary."""
    if not ol.scanned:
        return f"{ol.office_name}：本次巡检没有覆盖该编办（未巡检），不代表没有问题。"
    units = len({p.record.unit_id for p in ol.failures})
    pending = f"，另有{ol.pending}项问题{LABELS[State.PENDING]}" if ol.pending else ""
    return (
        f"{ol.office_name}：{LABELS[State.FAIL]}问题{len(ol.failures)}项（涉及{units}个单位；新增{len(ol.new)}项，"
        f"持续{len(ol.persisting)}项），已整改{len(ol.fixed)}项，{LABELS[State.UNKNOWN]}{len(ol.unverified)}项，"
        f"{LABELS[State.WARN]}{len(ol.advice)}项{pending}。"
    )
