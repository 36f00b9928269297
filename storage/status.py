"""The one derivation of a status an official reads, for a finding, a unit, a site and an office.

Every surface (console pages, non-compliance lists in text/CSV/XLSX/HTML, e-mails) takes its status,
its label, its colour and its legend from here, so that no two surfaces can disagree. From worst to best:

* 不合规 — a **confirmed** failure (seen on visits ``confirm_interval_h`` apart, storage/streaks.py);
* 待确认 — a failure not confirmed yet (it is never sent to anyone as non-compliance);
* 无法判定 — the scan could not decide (a timeout, a firewall, a challenge: never non-compliance);
* 提示 — advice (a warning);
* 合规 — every check passed;
* 未巡检 — the scan did not visit it (its office was outside the scan's scope, or the scan's limit
  stopped before it): never "no problems found".

A unit's (or an office's) status is the worst status of its findings in one scan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.models import Domain, Finding, Scan, ScanStatus, Unit, Website


class State(StrEnum):
    FAIL = "fail"
    PENDING = "pending"
    UNKNOWN = "unknown"
    WARN = "warn"
    PASS = "pass"
    NOT_SCANNED = "none"


# Worst first: the order of every list and of the combination.
ORDER: tuple[State, ...] = (
    State.FAIL,
    State.PENDING,
    State.UNKNOWN,
    State.WARN,
    State.PASS,
    State.NOT_SCANNED,
)
_RANK = {s: i for i, s in enumerate(ORDER)}

LABELS: dict[State, str] = {
    State.FAIL: "不合规",
    State.PENDING: "待确认",
    State.UNKNOWN: "无法判定",
    State.WARN: "提示",
    State.PASS: "合规",
    State.NOT_SCANNED: "未巡检",
}

# What each status means, in one sentence: the legend printed under every list and page.
LEGEND: dict[State, str] = {
    State.FAIL: "经间隔复查确认的问题，需要整改",
    State.PENDING: "已发现但尚未经复查确认，暂不列为不合规",
    State.UNKNOWN: "网站超时、被防火墙拦截、域名解析失败等，本次无法判定，不计为不合规",
    State.WARN: "提醒事项，建议改进",
    State.PASS: "本次巡检各项检查均通过",
    State.NOT_SCANNED: "本次巡检没有覆盖，不代表没有问题",
}

# One palette for the console (CSS classes st-<state>), the HTML lists and the XLSX fills:
# (background, text) as RRGGBB.
COLOURS: dict[State, tuple[str, str]] = {
    State.FAIL: ("F8D0CD", "8A1C14"),
    State.PENDING: ("FBE3C4", "7A4300"),
    State.UNKNOWN: ("E3E3E3", "3C3C3C"),
    State.WARN: ("FFF2B8", "5C4A00"),
    State.PASS: ("D8F0DC", "1D5B2A"),
    State.NOT_SCANNED: ("F2F2F2", "6B6B6B"),
}


def finding_state(status: str, confirmed: bool) -> State:
    """The state of one finding: a failure is 不合规 only once confirmed."""
    if status == "fail":
        return State.FAIL if confirmed else State.PENDING
    if status == "unknown":
        return State.UNKNOWN
    if status == "warn":
        return State.WARN
    if status == "pass":
        return State.PASS
    raise ValueError(f"发现记录的状态无效: {status!r}")


def worst(states: Iterable[State]) -> State:
    """The worst of ``states``; 未巡检 when there is none."""
    return min(states, key=_RANK.__getitem__, default=State.NOT_SCANNED)


def rank(state: State | str) -> int:
    """Sort key: worst first."""
    return _RANK[State(state)]


@dataclass(slots=True)
class Summary:
    """The status of a unit, a site or an office in one scan, with the count of findings per state."""

    counts: Counter[State] = field(default_factory=Counter)

    def add(self, status: str, confirmed: bool) -> None:
        self.counts[finding_state(status, confirmed)] += 1

    @property
    def state(self) -> State:
        return worst(s for s, n in self.counts.items() if n)

    @property
    def label(self) -> str:
        return LABELS[self.state]

    def count(self, state: State) -> int:
        return self.counts.get(state, 0)

    @property
    def text(self) -> str:
        """``不合规 2 项`` / ``合规`` / ``未巡检``: the state with how many findings carry it."""
        s = self.state
        if s in (State.PASS, State.NOT_SCANNED):
            return LABELS[s]
        return f"{LABELS[s]} {self.counts[s]} 项"

    @property
    def others(self) -> str:
        """The lesser problems beside the state (``另有 无法判定 3 项``), "" when none."""
        s = self.state
        parts = [
            f"{LABELS[x]} {self.counts[x]} 项"
            for x in ORDER
            if x not in (s, State.PASS, State.NOT_SCANNED) and self.counts.get(x) and rank(x) > rank(s)
        ]
        return "另有" + "，".join(parts) if parts else ""


def summarize(findings: Iterable[tuple[str, bool]]) -> Summary:
    """The summary of ``(status, confirmed)`` pairs."""
    out = Summary()
    for status, confirmed in findings:
        out.add(status, confirmed)
    return out


# --- which scan speaks for which office -----------------------------------------------------------


def scope_offices(scan: Scan) -> set[str] | None:
    """The offices a scan covered (its scope, sub-offices included), or None: every office."""
    codes = (scan.scope or {}).get("office_codes") or ()
    return {str(c) for c in codes} or None


def covers(scan: Scan, office_code: str) -> bool:
    """Whether ``scan`` was meant to visit the units of ``office_code``."""
    codes = scope_offices(scan)
    return codes is None or office_code in codes


def latest_covering(session: Session, office_codes: str | Iterable[str]) -> Scan | None:
    """The latest finished scan that visited any of ``office_codes`` (an office, or an office's whole
    area): the scan that speaks for them. Offices of the area it did not cover are 未巡检 in it."""
    wanted = {office_codes} if isinstance(office_codes, str) else set(office_codes)
    stmt = (
        sa.select(Scan)
        .where(Scan.status == ScanStatus.FINISHED.value)
        .order_by(Scan.started_at.desc(), Scan.id.desc())
    )
    for scan in session.scalars(stmt.limit(100)):
        codes = scope_offices(scan)
        if codes is None or codes & wanted:
            return scan
    return None


def unit_findings_stmt(scan_id: int, unit_ids: Iterable[int] | None = None) -> sa.Subquery:
    """``(unit id, finding)`` of one scan: the units' sites', domains' and unit-level findings."""
    site = (
        sa.select(Website.unit_id.label("uid"), Finding.id.label("fid"))
        .join(Finding, Finding.website_id == Website.id)
        .where(Finding.scan_id == scan_id)
    )
    dom = (
        sa.select(Domain.unit_id.label("uid"), Finding.id.label("fid"))
        .join(Finding, Finding.domain_id == Domain.id)
        .where(Finding.scan_id == scan_id, Finding.website_id.is_(None))
    )
    own = sa.select(Finding.unit_id.label("uid"), Finding.id.label("fid")).where(
        Finding.scan_id == scan_id,
        Finding.unit_id.is_not(None),
        Finding.website_id.is_(None),
        Finding.domain_id.is_(None),
    )
    if unit_ids is not None:
        ids = sorted(set(unit_ids))
        site = site.where(Website.unit_id.in_(ids))
        dom = dom.where(Domain.unit_id.in_(ids))
        own = own.where(Finding.unit_id.in_(ids))
    return sa.union_all(site, dom, own).subquery()


def unit_summaries(session: Session, scan: Scan | None, unit_ids: Iterable[int]) -> dict[int, Summary]:
    """Each unit's summary in ``scan`` (未巡检 for a unit the scan did not visit, or without a scan)."""
    ids = sorted(set(unit_ids))
    out = {uid: Summary() for uid in ids}
    if scan is None or not ids:
        return out
    for i in range(0, len(ids), 500):
        pairs = unit_findings_stmt(scan.id, ids[i : i + 500])
        rows = session.execute(
            sa.select(pairs.c.uid, Finding.status, Finding.confirmed).join(Finding, Finding.id == pairs.c.fid)
        )
        for uid, status, confirmed in rows:
            if uid in out:
                out[uid].add(status, bool(confirmed))
    return out


def office_units(session: Session, office_codes: Iterable[str]) -> dict[str, list[int]]:
    """The unit ids of each office."""
    codes = sorted(set(office_codes))
    out: dict[str, list[int]] = {c: [] for c in codes}
    for uid, code in session.execute(sa.select(Unit.id, Unit.office_code).where(Unit.office_code.in_(codes))):
        out[code].append(uid)
    return out
