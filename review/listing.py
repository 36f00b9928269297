"""The non-compliance list inside the console: one scan, one office and its area, every unit with its
status (problems first), filters, counts, and each line's evidence number.

The lines and their texts are those of the e-mailed and exported lists (:mod:`reports.noncompliance`,
:mod:`reports.source`); the states those of :mod:`storage.status`. Unlike the e-mailed list, the console
also shows what is 待确认 (failures awaiting a second visit) and the units that are 合规 or 未巡检, so that
a reviewer sees the whole area and not only what was sent.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from checks.reasons import CHECK_LABELS
from reports.documents import problem_checks
from reports.noncompliance import FindingRecord, Problem, merge_unverified, problem, seen
from reports.source import OfficeTree, finding_records, scope_label
from storage.models import Office, Scan, Unit
from storage.status import LABELS, ORDER, State, covers, rank, summarize
from storage.timefmt import DEFAULT_TIMEZONE, local_date


@dataclass(frozen=True, slots=True)
class Line:
    """One row of the console list: a problem of a unit, or a unit's whole status (合规 / 未巡检)."""

    state: State
    unit_id: int
    unit_name: str
    office_name: str
    target: str = ""
    checks: str = ""
    message: str = ""
    advice: str = ""
    detail: str = ""
    first_seen: str = ""
    visits: str = ""
    evidence_id: str = ""
    finding_id: int | None = None

    @property
    def label(self) -> str:
        return LABELS[self.state]


@dataclass(slots=True)
class ConsoleList:
    scan: Scan
    office: Office
    scope: str
    lines: list[Line] = field(default_factory=list)
    units_by_state: Counter[State] = field(default_factory=Counter)
    lines_by_state: Counter[State] = field(default_factory=Counter)
    checks: list[tuple[str, str]] = field(default_factory=list)  # (check, label) present in the scan
    counties: list[Office] = field(default_factory=list)  # the office's direct sub-offices
    units: int = 0

    @property
    def problem_units(self) -> int:
        return sum(n for s, n in self.units_by_state.items() if s not in (State.PASS, State.NOT_SCANNED))

    def counts(self) -> list[tuple[State, int, int]]:
        """(state, units, lines) worst first, for the figures at the top of the page."""
        return [(s, self.units_by_state.get(s, 0), self.lines_by_state.get(s, 0)) for s in ORDER]


def _line(p: Problem, state: State, tz: str) -> Line:
    r = p.record
    first, visits = seen(p, tz) if state is State.FAIL or state is State.PENDING else ("", "")
    return Line(
        state,
        r.unit_id,
        r.unit_name,
        r.office_name,
        r.target,
        problem_checks(p),
        p.message,
        p.advice,
        r.detail,
        first,
        visits,
        p.evidence_id,
        r.finding_id,
    )


def _matches(r: FindingRecord, check: str) -> bool:
    return not check or r.check == check or r.reason.split(".", 1)[0] == check


def build_list(
    session: Session,
    scan: Scan,
    office_code: str,
    *,
    only_problems: bool = False,
    check: str = "",
    county: str = "",
    tz: str = DEFAULT_TIMEZONE,
) -> ConsoleList:
    """The list of ``scan`` for ``office_code`` and its area (or only ``county``'s area within it)."""
    tree = OfficeTree.load(session)
    office = tree.get(office_code)
    area = tree.subtree(office_code)
    if county:
        if county not in area or county == office_code:
            raise LookupError(county)
        area = tree.subtree(county)
    day = local_date(scan.started_at, tz)
    names = {c: tree.offices[c].name_on(day) for c in area}
    out = ConsoleList(scan, office, scope_label(tree, scan, day, county or office_code))
    out.counties = [tree.offices[c] for c in sorted(tree.children.get(office_code, ()))]
    records = finding_records(session, scan.id, area, day)
    present = {r.reason.split(".", 1)[0] if r.check not in CHECK_LABELS else r.check for r in records}
    out.checks = [(c, label) for c, label in CHECK_LABELS.items() if c in present]
    by_unit: dict[int, list[FindingRecord]] = defaultdict(list)
    for r in records:
        if _matches(r, check):
            by_unit[r.unit_id].append(r)
    units = session.execute(
        sa.select(Unit.id, Unit.name, Unit.office_code).where(Unit.office_code.in_(area)).order_by(Unit.name)
    ).all()
    out.units = len(units)
    for uid, name, code in units:
        mine = by_unit.get(uid, [])
        state = (
            summarize((r.status, r.confirmed) for r in mine).state
            if covers(scan, code)
            else State.NOT_SCANNED
        )
        out.units_by_state[state] += 1
        if state is State.NOT_SCANNED:
            if not only_problems:
                out.lines.append(Line(state, uid, name, names[code], message="本次巡检没有覆盖该单位"))
            continue
        problems = [r for r in mine if r.status != "pass"]
        if not problems:
            if not only_problems:
                out.lines.append(Line(state, uid, name, names[code], message="各项检查均通过"))
            continue
        unknown = [problem(r, "") for r in problems if r.state is State.UNKNOWN]
        lines = [_line(problem(r, ""), r.state, tz) for r in problems if r.state is not State.UNKNOWN]
        lines += [_line(p, State.UNKNOWN, tz) for p in merge_unverified(unknown)]
        out.lines.extend(lines)
    out.lines.sort(key=lambda ln: (rank(ln.state), ln.unit_name, ln.target, ln.checks))
    out.lines_by_state = Counter(ln.state for ln in out.lines if ln.finding_id is not None)
    return out
