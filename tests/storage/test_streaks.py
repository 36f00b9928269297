"""Confirmation over time (storage/streaks.py): a failure is confirmed only when seen on visits at least
``confirm_interval_h`` apart; one that clears before is never confirmed; unknown visits neither extend
nor break a streak; running the confirmation twice counts nothing twice."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage.models import Capture, Finding, FindingStreak, Scan
from storage.streaks import confirm_scan, due_at, pending_subjects

NIGHT = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # 01:00 Beijing time
DAY = timedelta(days=1)
INTERVAL = timedelta(hours=20)


def _scan(engine: Engine, at: datetime, results: dict[tuple[str, str], str], attempts: int = 2) -> int:
    """A finished scan at ``at`` whose findings are ``{(subject, check): status}``, one capture each."""
    with engine.begin() as conn:
        scan_id = conn.execute(
            sa.insert(Scan).values(status="finished", started_at=at, finished_at=at, scope={}, counters={})
        ).inserted_primary_key[0]
        for (subject, check), status in results.items():
            cap = conn.execute(
                sa.insert(Capture).values(scan_id=scan_id, subject=subject, url="http://x/", started=at)
            ).inserted_primary_key[0]
            conn.execute(
                sa.insert(Finding).values(
                    scan_id=scan_id, subject=subject, check=check, status=status, reason=f"{check}.x",
                    attempts=attempts, capture_id=cap if check != "domain" else None, created_at=at,
                )
            )  # fmt: skip
    return int(scan_id)


def _state(engine: Engine, scan_id: int) -> dict[tuple[str, str], tuple[bool, int, datetime | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                Finding.subject, Finding.check, Finding.confirmed, Finding.visits, Finding.first_seen_at
            ).where(Finding.scan_id == scan_id, Finding.status == "fail")
        ).all()
    return {(r.subject, r.check): (r.confirmed, r.visits, r.first_seen_at) for r in rows}


BADGE = ("site:1", "badge")
ICP = ("site:1", "icp")
OTHER = ("site:2", "badge")


def test_a_failure_seen_once_is_pending(engine: Engine) -> None:
    s1 = _scan(engine, NIGHT, {BADGE: "fail", OTHER: "pass"})
    summary = confirm_scan(engine, s1, INTERVAL)
    assert (summary.failures, summary.confirmed, summary.pending) == (1, 0, 1)
    assert _state(engine, s1)[BADGE] == (False, 1, NIGHT)
    assert pending_subjects(engine, s1) == ["site:1"]
    assert due_at(engine, s1, INTERVAL) == NIGHT + INTERVAL


def test_confirmed_the_next_night_and_counted(engine: Engine) -> None:
    s1 = _scan(engine, NIGHT, {BADGE: "fail"})
    confirm_scan(engine, s1, INTERVAL)
    s2 = _scan(engine, NIGHT + DAY, {BADGE: "fail"})
    confirm_scan(engine, s2, INTERVAL)
    assert _state(engine, s2)[BADGE] == (True, 2, NIGHT)  # 首次发现 the first night, 连续 2 次
    s3 = _scan(engine, NIGHT + 2 * DAY, {BADGE: "fail"})
    confirm_scan(engine, s3, INTERVAL)
    assert _state(engine, s3)[BADGE] == (True, 3, NIGHT)


def test_a_failure_that_clears_is_never_confirmed(engine: Engine) -> None:
    s1 = _scan(engine, NIGHT, {BADGE: "fail"})
    confirm_scan(engine, s1, INTERVAL)
    s2 = _scan(engine, NIGHT + DAY, {BADGE: "pass"})
    confirm_scan(engine, s2, INTERVAL)
    s3 = _scan(engine, NIGHT + 2 * DAY, {BADGE: "fail"})  # a new streak starts
    confirm_scan(engine, s3, INTERVAL)
    assert _state(engine, s3)[BADGE] == (False, 1, NIGHT + 2 * DAY)


def test_two_visits_too_close_do_not_confirm(engine: Engine) -> None:
    s1 = _scan(engine, NIGHT, {BADGE: "fail"})
    confirm_scan(engine, s1, INTERVAL)
    s2 = _scan(engine, NIGHT + timedelta(hours=2), {BADGE: "fail"})
    confirm_scan(engine, s2, INTERVAL)
    assert _state(engine, s2)[BADGE] == (False, 2, NIGHT)
    # The center's policy may be a second pass 2 hours later: then the same visits confirm.
    s3 = _scan(engine, NIGHT + timedelta(hours=4), {BADGE: "fail"})
    confirm_scan(engine, s3, timedelta(hours=4))
    assert _state(engine, s3)[BADGE] == (True, 3, NIGHT)


def test_unknown_visits_neither_extend_nor_break_a_streak(engine: Engine) -> None:
    s1 = _scan(engine, NIGHT, {BADGE: "fail"})
    confirm_scan(engine, s1, INTERVAL)
    s2 = _scan(engine, NIGHT + DAY, {BADGE: "unknown"})  # the site timed out that night
    confirm_scan(engine, s2, INTERVAL)
    s3 = _scan(engine, NIGHT + 2 * DAY, {BADGE: "fail"})
    confirm_scan(engine, s3, INTERVAL)
    assert _state(engine, s3)[BADGE] == (True, 2, NIGHT)


def test_checks_have_streaks_of_their_own(engine: Engine) -> None:
    s1 = _scan(engine, NIGHT, {BADGE: "fail", ICP: "pass"})
    confirm_scan(engine, s1, INTERVAL)
    s2 = _scan(engine, NIGHT + DAY, {BADGE: "fail", ICP: "fail"})
    confirm_scan(engine, s2, INTERVAL)
    state = _state(engine, s2)
    assert state[BADGE][:2] == (True, 2) and state[ICP][:2] == (False, 1)


def test_confirming_twice_counts_nothing_twice(engine: Engine) -> None:
    s1 = _scan(engine, NIGHT, {BADGE: "fail"})
    confirm_scan(engine, s1, INTERVAL)
    confirm_scan(engine, s1, INTERVAL)
    s2 = _scan(engine, NIGHT + DAY, {BADGE: "fail"})
    confirm_scan(engine, s2, INTERVAL)
    confirm_scan(engine, s2, INTERVAL)
    assert _state(engine, s2)[BADGE] == (True, 2, NIGHT)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(FindingStreak)).scalar_one() == 1


def test_registry_failures_are_final_at_once(engine: Engine) -> None:
    s1 = _scan(engine, NIGHT, {("unit:7", "domain"): "fail", BADGE: "fail"})
    summary = confirm_scan(engine, s1, INTERVAL)
    assert summary.confirmed == 1
    assert _state(engine, s1)[("unit:7", "domain")][0] is True


def test_interval_zero_lets_the_quick_retry_confirm(engine: Engine) -> None:
    s1 = _scan(engine, NIGHT, {BADGE: "fail", OTHER: "fail"}, attempts=2)
    assert confirm_scan(engine, s1, timedelta(0), confirm_attempts=2).confirmed == 2
    s2 = _scan(engine, NIGHT + DAY, {BADGE: "fail"}, attempts=1)  # the retry did not agree
    assert confirm_scan(engine, s2, timedelta(0), confirm_attempts=2).confirmed == 0


def test_random_histories_match_a_reference(engine: Engine) -> None:
    """Random nights of pass / fail / unknown / not visited; after each night the confirmed flags and
    streaks equal those of a straightforward reference implementation of the rule."""
    rng = random.Random(11)
    keys = [(f"site:{i}", c) for i in range(30) for c in ("badge", "icp")]
    reference: dict[tuple[str, str], tuple[int, datetime] | None] = {k: None for k in keys}
    for night in range(6):
        at = NIGHT + night * DAY
        results = {k: st for k in keys if (st := rng.choice(("pass", "fail", "fail", "unknown", None)))}
        scan_id = _scan(engine, at, results)
        confirm_scan(engine, scan_id, INTERVAL)
        want: dict[tuple[str, str], tuple[bool, int, datetime]] = {}
        for k, st in results.items():
            streak = reference[k]
            if st == "unknown":
                continue
            if st != "fail":
                reference[k] = None
                continue
            visits, first = (streak[0] + 1, streak[1]) if streak else (1, at)
            reference[k] = (visits, first)
            want[k] = (visits >= 2 and at - first >= INTERVAL, visits, first)
        assert _state(engine, scan_id) == want, night
