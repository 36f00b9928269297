"""Confirmation over time: a failure reaches an office only once it has been seen on visits at least
``confirm_interval_h`` apart.

A page that is wrong for a few minutes — a publishing job rewriting the footer at 01:00, a maintenance
window, a platform rolling out a template — must not become an accusation. Every (subject, check) has a
**streak** (table ``finding_streak``): the consecutive visits on which it failed, since it last passed.
A visit is one scan's final attempt at the subject (the quick retry within a scan separates transient
from stable failures and counts as one visit); ``unknown`` visits (timeouts, challenges) neither extend
nor break a streak; a ``pass`` or ``warn`` ends it.

:func:`confirm_scan` runs when a scan (or its second pass) is done: it adds the scan's visits to the
streaks and marks each ``fail`` of the scan ``confirmed`` when its streak holds at least two visits whose
first and last are ``confirm_interval_h`` apart; ``first_seen_at`` and ``visits`` (首次发现, 连续 N 次)
are stored on the finding for the lists. Failures read from the registry alone (a domain's syntax, no
Chinese domain) need no second look: another visit would read the same rows. With an interval of 0 the
quick retry within one scan confirms, as before this module existed.

Idempotent: a visit is identified by its capture, so running it twice on a scan counts nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from storage.config import Config
from storage.models import Capture, Finding, FindingStreak
from storage.types import utcnow

BATCH = 500
# Checks decided from the registry alone: final at once (crawler.checking.REGISTRY_CHECKS).
REGISTRY_CHECKS = frozenset({"domain"})


@dataclass(frozen=True, slots=True)
class ConfirmSummary:
    scan_id: int
    failures: int = 0
    confirmed: int = 0
    pending: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "scan_id": self.scan_id,
            "failures": self.failures,
            "confirmed": self.confirmed,
            "pending": self.pending,
        }


def confirm_scan(
    engine: Engine, scan_id: int, interval: timedelta, confirm_attempts: int = 2
) -> ConfirmSummary:
    """Add the visits of ``scan_id`` to the streaks and settle which of its failures are confirmed."""
    failures = confirmed = 0
    last_id = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                sa.select(
                    Finding.id,
                    Finding.subject,
                    Finding.check,
                    Finding.status,
                    Finding.attempts,
                    Finding.capture_id,
                    Finding.created_at,
                    Capture.started,
                )
                .outerjoin(Capture, Capture.id == Finding.capture_id)
                .where(Finding.scan_id == scan_id, Finding.id > last_id)
                .order_by(Finding.id)
                .limit(BATCH)
            ).all()
            if not rows:
                break
            last_id = rows[-1].id
            streaks = _load(conn, {(r.subject, r.check) for r in rows})
            updates: list[dict[str, object]] = []
            for r in rows:
                key = (r.subject, r.check)
                seen_at = r.started or r.created_at
                visit = f"{scan_id}:{r.capture_id or r.id}"
                streak = _advance(streaks.get(key), r.status, seen_at, visit)
                if streak is not None:
                    streaks[key] = streak
                if r.status != "fail":
                    continue
                failures += 1
                assert streak is not None
                ok = (
                    r.check in REGISTRY_CHECKS
                    or (interval <= timedelta(0) and r.attempts >= confirm_attempts)
                    or (
                        interval > timedelta(0)
                        and streak.visits >= 2
                        and streak.last_seen - streak.first_seen >= interval
                    )
                )
                confirmed += ok
                updates.append(
                    {
                        "fid": r.id,
                        "confirmed": ok,
                        "first_seen_at": streak.first_seen,
                        "visits": streak.visits,
                    }
                )
            _store(conn, streaks.values())
            if updates:
                conn.execute(
                    sa.update(Finding)
                    .where(Finding.id == sa.bindparam("fid"))
                    .values(
                        confirmed=sa.bindparam("confirmed"),
                        first_seen_at=sa.bindparam("first_seen_at"),
                        visits=sa.bindparam("visits"),
                    ),
                    updates,
                )
    return ConfirmSummary(scan_id, failures, confirmed, failures - confirmed)


@dataclass(slots=True)
class _Streak:
    subject: str
    check: str
    status: str  # the last decided status: pass, warn or fail
    first_seen: datetime
    last_seen: datetime
    visits: int
    last_visit: str  # "<scan id>:<capture or finding id>": what was counted last
    stored: bool = False
    dirty: bool = False


def _advance(s: _Streak | None, status: str, at: datetime, visit: str) -> _Streak | None:
    """The streak after one visit (None: nothing is known yet and this visit decided nothing)."""
    if status == "unknown":
        return s  # a timeout or a challenge says nothing either way
    if s is not None and s.last_visit == visit:
        return s  # counted already (confirm ran twice)
    if s is not None and status == "fail" and s.status == "fail":
        s.visits += 1
        s.last_seen = max(s.last_seen, at)
    elif s is not None:
        s.status, s.first_seen, s.last_seen, s.visits = status, at, at, 1
    else:
        return _Streak("", "", status, at, at, 1, visit, dirty=True)
    s.last_visit = visit
    s.dirty = True
    return s


def _load(conn: Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], _Streak]:
    out: dict[tuple[str, str], _Streak] = {}
    subjects = sorted({k[0] for k in keys})
    for i in range(0, len(subjects), BATCH):
        for r in conn.execute(
            sa.select(
                FindingStreak.subject,
                FindingStreak.check,
                FindingStreak.status,
                FindingStreak.first_seen_at,
                FindingStreak.last_seen_at,
                FindingStreak.visits,
                FindingStreak.last_visit,
            ).where(FindingStreak.subject.in_(subjects[i : i + BATCH]))
        ):
            if (r.subject, r.check) in keys:
                out[(r.subject, r.check)] = _Streak(
                    r.subject, r.check, r.status, r.first_seen_at, r.last_seen_at, r.visits, r.last_visit,
                    stored=True,
                )  # fmt: skip
    # New keys get their names when first advanced (``_advance`` returns an anonymous streak).
    return _Named(out)


class _Named(dict[tuple[str, str], _Streak]):
    """Streaks by key; a streak stored under a key takes that key's subject and check."""

    def __setitem__(self, key: tuple[str, str], value: _Streak) -> None:
        value.subject, value.check = key
        super().__setitem__(key, value)


def _store(conn: Connection, streaks: Iterable[_Streak]) -> None:
    now = utcnow()
    new = [s for s in streaks if s.dirty and not s.stored]
    changed = [s for s in streaks if s.dirty and s.stored]
    if new:
        conn.execute(
            sa.insert(FindingStreak),
            [
                {
                    "subject": s.subject,
                    "check": s.check,
                    "status": s.status,
                    "first_seen_at": s.first_seen,
                    "last_seen_at": s.last_seen,
                    "visits": s.visits,
                    "last_visit": s.last_visit,
                    "updated_at": now,
                }
                for s in new
            ],
        )
    if changed:
        conn.execute(
            sa.update(FindingStreak)
            .where(FindingStreak.subject == sa.bindparam("s"), FindingStreak.check == sa.bindparam("c"))
            .values(
                status=sa.bindparam("status"),
                first_seen_at=sa.bindparam("first"),
                last_seen_at=sa.bindparam("last"),
                visits=sa.bindparam("visits"),
                last_visit=sa.bindparam("visit"),
                updated_at=now,
            ),
            [
                {
                    "s": s.subject,
                    "c": s.check,
                    "status": s.status,
                    "first": s.first_seen,
                    "last": s.last_seen,
                    "visits": s.visits,
                    "visit": s.last_visit,
                }
                for s in changed
            ],
        )
    for s in (*new, *changed):
        s.stored, s.dirty = True, False


def confirm(engine: Engine, scan_id: int, config: Config) -> ConfirmSummary:
    """Settle which failures of a finished scan are confirmed (``confirm_interval_h`` apart): the
    scan does it when it closes, the scheduler's ``confirm`` stage again (idempotent)."""
    interval = timedelta(hours=max(0.0, config.confirm_interval_h))
    return confirm_scan(engine, scan_id, interval, max(1, int(config.confirm_attempts)))


def pending_subjects(engine: Engine, scan_id: int) -> list[str]:
    """Subjects of ``scan_id`` with a failure not confirmed yet (what a second pass visits again)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(Finding.subject)
            .where(Finding.scan_id == scan_id, Finding.status == "fail", Finding.confirmed.is_(False))
            .distinct()
        ).scalars()
        return sorted(rows)


def due_at(engine: Engine, scan_id: int, interval: timedelta) -> datetime | None:
    """When the earliest pending failure of ``scan_id`` can be confirmed by another visit (None: none
    is pending)."""
    with engine.connect() as conn:
        first = conn.execute(
            sa.select(sa.func.min(Finding.first_seen_at)).where(
                Finding.scan_id == scan_id, Finding.status == "fail", Finding.confirmed.is_(False)
            )
        ).scalar_one_or_none()
    return first + interval if first is not None else None
