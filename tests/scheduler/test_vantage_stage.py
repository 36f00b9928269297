"""The scheduler's scan stage when the vantage check fails: the stage fails with the check's message
(retried per policy), no scan is opened, nothing later runs, and the domain center is told why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.crawler.test_vantage import failing_sites, working_sites
from tests.scheduler.helpers import Mailbox, Workspace, cron_in, offices, wait_for


def test_scan_stage_fails_cleanly_when_most_reference_sites_fail(
    make_ws: Callable[..., Workspace], mailbox: tuple[int, Mailbox], simnet: Any
) -> None:
    ws = make_ws()
    _, box = mailbox
    office = "130603"
    bad = failing_sites(simnet)
    ws.extra = {
        "BADGEWATCH_VANTAGE_URLS": ",".join([working_sites(simnet)[0], *bad]),
        "BADGEWATCH_VANTAGE_TIMEOUT_S": "2",
    }
    daemon = ws.start_daemon()
    ws.wait_running()
    cron, _ = cron_in(2)
    ws.add("nightly", cron, tz="UTC", office=office, output=str(ws.dir / "out"), retries=1, retry_wait_s=1)

    def ended() -> dict[str, Any] | None:
        last = next((s["last"] for s in ws.schedules() if s["name"] == "nightly"), None)
        return last if last and last["status"] in ("failed", "finished") else None

    last = wait_for("the night to fail", ended, timeout=120, log=ws.daemon_log)
    assert ws.stop_daemon(daemon) == 0

    assert last["status"] == "failed" and last["stage"] == "scan"
    [stage] = last["stages"]  # nothing after the scan ran
    assert stage["status"] == "failed" and stage["attempts"] == 2  # retried once: an outage may pass
    assert "巡检未开始" in stage["error"] and "中国大陆境内" in stage["error"]
    for url in bad:
        assert url in stage["error"], (url, stage["error"])
    assert last.get("scan_id") is None
    # No scan row looks like a scan of the county with everything unknown: none was opened.
    assert ws.query("SELECT COUNT(*) FROM scan")[0][0] == 0
    assert ws.query("SELECT COUNT(*) FROM finding")[0][0] == 0
    [alert] = wait_for("the alert", lambda: box.to(ws.center), timeout=10)
    body = alert.get_body(("html",))
    assert body is not None and "巡检未开始" in body.get_content()
    assert box.to(offices(simnet.offices_path)[office]["联系邮箱"]) == []
