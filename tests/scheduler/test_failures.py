"""When a night goes wrong: a scope held by another scan, and a daemon stopped in the middle of a scan."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from storage.db import make_engine
from storage.models import ScanLock
from storage.types import utcnow
from tests.scheduler.helpers import Mailbox, Workspace, cron_in, offices, wait_for


def _last(ws: Workspace, name: str = "nightly") -> dict[str, Any] | None:
    for s in ws.schedules():
        if s["name"] == name:
            last: dict[str, Any] | None = s["last"]
            return last
    return None


def _status(ws: Workspace, *wanted: str) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        last = _last(ws)
        return last if last and last["status"] in wanted else None

    return probe


def test_scope_held_by_a_manual_scan_fails_the_night_and_tells_the_center(
    make_ws: Callable[..., Workspace], mailbox: tuple[int, Mailbox], simnet: Any
) -> None:
    ws = make_ws()
    _, box = mailbox
    office = "130603"
    # A manual `badgewatch scan` of the county is running (this live process holds its lock row, just as
    # the scan command takes it): the nightly scan of the same scope must not run beside it.
    engine = make_engine(ws.db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(ScanLock),
            {
                "name": f"office:{office}",
                "scan_id": None,
                "holder": f"{socket.gethostname()}:{os.getpid()}",
                "acquired_at": utcnow(),
                "heartbeat_at": utcnow(),
            },
        )
    engine.dispose()
    daemon = ws.start_daemon()
    ws.wait_running()
    cron, _ = cron_in(2)
    ws.add("nightly", cron, tz="UTC", office=office, output=str(ws.dir / "out"), retries=1, retry_wait_s=1)
    last = wait_for("the night to fail", _status(ws, "failed", "finished"), timeout=90, log=ws.daemon_log)
    assert ws.stop_daemon(daemon) == 0

    assert last["status"] == "failed" and last["stage"] == "scan"
    [scan_stage] = last["stages"]  # no later stage ran on a scan that never happened
    assert scan_stage["stage"] == "scan" and scan_stage["status"] == "failed"
    assert scan_stage["attempts"] == 2  # tried, then retried once as the policy says
    assert office in scan_stage["error"]
    assert ws.query("SELECT COUNT(*) FROM scan WHERE status = 'finished'")[0][0] == 0
    # The domain center hears about it, once; the office gets no list from a scan that did not happen.
    [alert] = wait_for("the alert", lambda: box.to(ws.center), timeout=10)
    assert "失败" in str(alert["Subject"]) and "巡检" in str(alert["Subject"])
    body = alert.get_body(("html",))
    assert body is not None and office in body.get_content()
    assert box.to(offices(simnet.offices_path)[office]["联系邮箱"]) == []


def test_sigterm_during_scan_checkpoints_and_next_daemon_finishes(
    make_ws: Callable[..., Workspace], mailbox: tuple[int, Mailbox], simnet: Any
) -> None:
    ws = make_ws()
    _, box = mailbox
    office = "130683"  # has a site that never answers: the scan is still busy when the daemon is stopped
    ws.extra["BADGEWATCH_TIMEOUT_S"] = "12"
    daemon = ws.start_daemon()
    ws.wait_running()
    cron, _ = cron_in(2)
    ws.add("nightly", cron, tz="UTC", office=office, output=str(ws.dir / "out"), retries=0)

    def scanning() -> bool:
        return bool(ws.query("SELECT COUNT(*) FROM finding")[0][0])

    wait_for("the scan to write findings", scanning, timeout=60, every=0.2, log=ws.daemon_log)
    assert ws.stop_daemon(daemon, timeout=60) == 0

    last = _last(ws)
    assert last is not None and last["status"] == "interrupted", (last, ws.daemon_log()[-3000:])
    assert last["stage"] == "scan" and [s["stage"] for s in last["stages"]] == ["scan"]
    scan_id = last["scan_id"]
    [(status,)] = ws.query("SELECT status FROM scan WHERE id = :s", s=scan_id)
    assert status != "finished"
    kept = ws.query("SELECT COUNT(DISTINCT subject) FROM finding WHERE scan_id = :s", s=scan_id)[0][0]
    assert kept >= 1
    assert box.messages == []  # nothing reported from a scan that did not finish

    # The next daemon takes the run up where it stopped: the same scan, resumed, then the rest.
    ws.extra["BADGEWATCH_TIMEOUT_S"] = "3"
    daemon = ws.start_daemon()
    last = wait_for("the chain to finish", _status(ws, "finished", "failed"), timeout=120, log=ws.daemon_log)
    assert ws.stop_daemon(daemon) == 0
    assert last["status"] == "finished", ws.daemon_log()[-3000:]
    assert last["scan_id"] == scan_id
    stages = ["scan", "second_pass", "confirm", "recheck", "reports", "notify"]
    assert [s["stage"] for s in last["stages"]] == stages
    assert ws.query("SELECT id, status FROM scan") == [(scan_id, "finished")]
    # Every subject of the scope was scanned once, across the two daemons.
    sites = ws.query(
        "SELECT COUNT(*) FROM website JOIN unit ON unit.id = website.unit_id WHERE unit.office_code = :o",
        o=office,
    )[0][0]
    domains = ws.query(
        "SELECT COUNT(*) FROM domain JOIN unit ON unit.id = domain.unit_id WHERE unit.office_code = :o",
        o=office,
    )[0][0]
    units = ws.query("SELECT COUNT(*) FROM unit WHERE office_code = :o", o=office)[0][0]
    done = ws.query("SELECT COUNT(DISTINCT subject) FROM finding WHERE scan_id = :s", s=scan_id)[0][0]
    assert done == sites + domains + units
    office_addr = offices(simnet.offices_path)[office]["联系邮箱"]
    assert len(box.to(office_addr)) == 1
