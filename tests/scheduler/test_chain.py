"""The nightly chain end to end: a daemon fires a schedule against simnet and a real SMTP server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.scheduler.helpers import Mailbox, Workspace, cron_in, offices, wait_for

OFFICE = "130603"  # one county of the catalogue: small enough for a quick scan
STAGES = ["scan", "second_pass", "confirm", "recheck", "reports", "notify"]


def _last(ws: Workspace, name: str) -> dict[str, Any] | None:
    for s in ws.schedules():
        if s["name"] == name:
            last: dict[str, Any] | None = s["last"]
            return last
    return None


def _done(ws: Workspace, name: str) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        last = _last(ws, name)
        return last if last and last["status"] in ("finished", "failed") else None

    return probe


def test_scheduled_chain_scans_reports_and_mails(
    make_ws: Callable[..., Workspace], mailbox: tuple[int, Mailbox], simnet: Any
) -> None:
    ws = make_ws()
    _, box = mailbox
    out = ws.dir / "out"
    daemon = ws.start_daemon()
    ws.wait_running()  # the daemon is up and idle; the schedule it will pick up is added now
    cron, at = cron_in(3)
    ws.add("nightly", cron, tz="UTC", office=OFFICE, limit=2, output=str(out), retries=0)
    [listed] = ws.schedules()
    assert listed["next_run_time"] == at
    last = wait_for("the chain to end", _done(ws, "nightly"), timeout=90, log=ws.daemon_log)

    assert last["status"] == "finished", (last, ws.daemon_log()[-3000:])
    assert [s["stage"] for s in last["stages"]] == STAGES
    assert all(s["status"] == "ok" for s in last["stages"]), last["stages"]
    scan_id = last["scan_id"]
    # The firing it ran for is the scheduled one, not whenever the daemon got round to it.
    assert last["scheduled_for"].startswith(at.strftime("%Y-%m-%dT%H:%M:%S")), last

    # The scan: one, finished, of the scope asked for.
    scans = ws.query("SELECT id, status, scope FROM scan")
    assert [(r.id, r.status) for r in scans] == [(scan_id, "finished")]
    scope = json.loads(scans[0].scope) if isinstance(scans[0].scope, str) else scans[0].scope
    assert scope["office_codes"] == [OFFICE] and scope["limit"] == 2
    sites = ws.query(
        "SELECT COUNT(DISTINCT subject) FROM finding WHERE scan_id = :s AND subject LIKE 'site:%'", s=scan_id
    )[0][0]
    in_scope = ws.query(
        "SELECT COUNT(*) FROM website JOIN unit ON unit.id = website.unit_id WHERE unit.office_code = :o",
        o=OFFICE,
    )[0][0]
    assert sites == min(2, in_scope)

    # The reports: written for that scan, and they say what the database says.
    report_dir = out / "nightly" / f"scan-{scan_id}"
    for name in ("coverage.xlsx", "coverage.json", "noncompliance.xlsx", "noncompliance.json"):
        assert (report_dir / name).stat().st_size > 0, name
    nc = json.loads((report_dir / "noncompliance.json").read_text(encoding="utf-8"))
    assert nc["scan_id"] == scan_id
    fails = ws.query(
        "SELECT COUNT(*) FROM finding WHERE scan_id = :s AND status = 'fail' AND confirmed", s=scan_id
    )[0][0]
    assert sum(len(o["failures"]) for o in nc["offices"]) == fails

    # The mail: the office of the scope got its list with the Excel file, the center the summary.
    office_addr = offices(simnet.offices_path)[OFFICE]["联系邮箱"]
    wait_for("the office's mail", lambda: box.to(office_addr), timeout=10)
    [msg] = box.to(office_addr)
    assert f"巡检{scan_id}" in str(msg["Subject"])
    attachments = [str(p.get_filename()) for p in msg.iter_attachments()]
    assert len(attachments) == 1 and attachments[0].endswith(".xlsx")
    assert len(box.to(ws.center)) == 1
    # Only the scope's office (and the center) hear about this scan.
    assert {str(m["To"]).lower() for m in box.messages} == {office_addr.lower(), ws.center.lower()}
    notify = next(s for s in last["stages"] if s["stage"] == "notify")
    assert notify["detail"]["sent"] == 2

    assert ws.stop_daemon(daemon) == 0
    log = ws.daemon_log()
    assert "Traceback" not in log, log[-3000:]
    assert Path(report_dir).is_dir()


def test_a_same_night_interval_runs_a_second_pass_that_confirms(
    make_ws: Callable[..., Workspace], mailbox: tuple[int, Mailbox], simnet: Any
) -> None:
    """``confirm_interval_h`` below a night: the chain waits for the interval, visits the pending
    failures again, and lists only what failed on both visits, with when it was first seen."""
    ws = make_ws()
    ws.extra["BADGEWATCH_CONFIRM_INTERVAL_H"] = "0.002"  # 7.2 s
    out = ws.dir / "out"
    daemon = ws.start_daemon()
    ws.wait_running()
    cron, _at = cron_in(3)
    ws.add("nightly", cron, tz="UTC", office=OFFICE, output=str(out), retries=0)
    last = wait_for("the chain to end", _done(ws, "nightly"), timeout=180, log=ws.daemon_log)
    ws.stop_daemon(daemon)
    assert last["status"] == "finished", (last, ws.daemon_log()[-3000:])
    second = next(s for s in last["stages"] if s["stage"] == "second_pass")
    scan_id = last["scan_id"]
    assert second["detail"]["second_pass_of"] == scan_id
    assert second["detail"]["counters"]["second_pass"]["subjects"] > 0
    rows = ws.query(
        "SELECT confirmed, visits, first_seen_at FROM finding WHERE scan_id = :s AND status = 'fail'"
        " AND \"check\" != 'domain'",
        s=scan_id,
    )
    assert rows, "the county has failures seen on the network"
    # Seen on both visits (simnet is stable), the second 7.2 s or more after the first: confirmed.
    assert all(r.confirmed and r.visits == 2 and r.first_seen_at is not None for r in rows), rows
    nc = json.loads((out / "nightly" / f"scan-{scan_id}" / "noncompliance.json").read_text(encoding="utf-8"))
    listed = [p for o in nc["offices"] for p in o["failures"]]
    assert listed and all(p["visits"] >= 2 and p["first_seen_at"] for p in listed)
