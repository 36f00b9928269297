"""Daemons: two on one PostgreSQL database run a firing once; a restart keeps the schedule; missed
nights run once; SIGTERM during a scan checkpoints it and the next daemon finishes the chain."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.scheduler.helpers import Mailbox, Workspace, cron_in, offices, wait_for

OFFICE = "130603"


def _last(ws: Workspace, name: str = "nightly") -> dict[str, Any] | None:
    for s in ws.schedules():
        if s["name"] == name:
            last: dict[str, Any] | None = s["last"]
            return last
    return None


def _ended(ws: Workspace, name: str = "nightly") -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        last = _last(ws, name)
        return last if last and last["status"] in ("finished", "failed") else None

    return probe


@pytest.mark.postgres
def test_two_daemons_on_postgres_scan_once(
    make_ws: Callable[..., Workspace], postgres_url: str, mailbox: tuple[int, Mailbox], simnet: Any
) -> None:
    ws = make_ws(postgres_url)
    _, box = mailbox
    first, second = ws.start_daemon("a"), ws.start_daemon("b")
    # Both daemons are up (they log when they are) before the schedule exists: both will see it fire.
    wait_for(
        "both daemons", lambda: ws.daemon_log().count("scheduler running") == 2, timeout=60, log=ws.daemon_log
    )
    cron, at = cron_in(4)
    ws.add("nightly", cron, tz="UTC", office=OFFICE, limit=1, output=str(ws.dir / "out"), retries=0)
    last = wait_for("the chain to end", _ended(ws), timeout=90, log=ws.daemon_log)
    assert last["status"] == "finished", ws.daemon_log()[-3000:]
    time.sleep(3)  # give the slower daemon every chance to run it a second time

    scans = ws.query("SELECT id, status FROM scan")
    assert [(r.id, r.status) for r in scans] == [(last["scan_id"], "finished")]
    runs = ws.runs()
    assert len(runs) == 1 and runs[0].scheduled_for == at
    log = ws.daemon_log()
    # Both fired it; one ran it, the other found the firing claimed.
    # (The run's id need not be 1: on PostgreSQL the losing daemon's refused claim may have drawn a value
    # from the id sequence first.)
    assert log.count(f"run #{runs[0].id} started") == 1, log[-3000:]
    assert "already claimed by another daemon" in log, log[-3000:]
    office_addr = offices(simnet.offices_path)[OFFICE]["联系邮箱"]
    assert len(box.to(office_addr)) == 1 and len(box.to(ws.center)) == 1
    assert ws.stop_daemon(first) == 0 and ws.stop_daemon(second) == 0


def test_restart_keeps_schedule_and_next_run_time(make_ws: Callable[..., Workspace]) -> None:
    ws = make_ws(registry=False)
    ws.run("schedule", "add", "nightly", "--cron", "0 1 * * *", "--tz", "Asia/Shanghai")
    # Ground truth: the next 01:00 in Beijing time after now.
    now = dt.datetime.now(ZoneInfo("Asia/Shanghai"))
    expected = now.replace(hour=1, minute=0, second=0, microsecond=0)
    if expected <= now:
        expected += dt.timedelta(days=1)
    [before] = ws.schedules()
    assert before["next_run_time"] == expected
    for n in (1, 2):  # start, stop, start again, stop again
        daemon = ws.start_daemon()
        ws.wait_running(n)
        assert ws.stop_daemon(daemon) == 0
        [after] = ws.schedules()
        assert after["name"] == "nightly" and after["next_run_time"] == expected
    assert ws.daemon_log().count("scheduler stopped") == 2


def test_missed_firings_run_once_on_start(
    make_ws: Callable[..., Workspace], mailbox: tuple[int, Mailbox]
) -> None:
    ws = make_ws()
    # Every 2 seconds, and no daemon running: several firings are missed.
    ws.add("often", "*/2 * * * * *", tz="UTC", office=OFFICE, limit=0, output=str(ws.dir / "out"), retries=0)
    time.sleep(4)  # with firings every 2 s, at least two are missed before the daemon is up
    started = dt.datetime.now(dt.UTC)
    daemon = ws.start_daemon()
    wait_for("the catch-up run", _ended(ws, "often"), timeout=90, log=ws.daemon_log)
    assert ws.stop_daemon(daemon) == 0
    runs = ws.runs()
    first = runs[0]
    # Several firings were missed before the daemon came up: it ran one, for the latest of them
    # (firings are 2 s apart, so the latest is at most 2 s before `started`, or after it when the
    # daemon takes seconds to start) ...
    assert first.status == "finished", ws.daemon_log()[-3000:]
    assert started - dt.timedelta(seconds=2) <= first.scheduled_for <= first.started_at
    assert first.started_at - first.scheduled_for < dt.timedelta(seconds=2.5)
    # ... and none for the earlier ones, nor a second run of its own firing.
    assert [r for r in runs if r.scheduled_for <= first.scheduled_for] == [first]
