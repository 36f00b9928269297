"""A reviewer's decision is deliberate, in a real browser (Debian's chromium, headless): primary and
secondary buttons, a confirmation before approving a report that disagrees with the scans, suggested
rejection reasons, the delivery of the notice as the outbox has it (a real SMTP server that accepts,
an SMS gateway that fails), the 409 of a changed version, self-approval refused, and the capture
shown only inside its sandboxed frame (issue #15 items 4 and 6, #16 item 5)."""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from review.decisions import send_notices
from storage.models import AnnualReport, AuditEvent, Capture, Notification, User

from .conftest import Served, browser_login, serve
from .world import YEAR, build_world

pytestmark = pytest.mark.browser


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[list[str]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(list(envelope.rcpt_tos))
        return "250 OK"


class _BrokenGateway(http.server.BaseHTTPRequestHandler):
    """An SMS gateway that is down for maintenance."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(503)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    inbox = _Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=_port())
    smtp.start()
    gateway = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BrokenGateway)
    threading.Thread(target=gateway.serve_forever, daemon=True).start()
    world = build_world(tmp_path_factory.mktemp("signoff-browser"))
    world.cfg.smtp_port = smtp.port
    world.cfg.sms_url = f"http://127.0.0.1:{gateway.server_address[1]}/sms"
    with world.session() as s:
        hashed = s.scalars(sa.select(User.password_hash).where(User.name == "lianchi")).one()
        s.add(User(name="portal", role="submitter", password_hash=hashed))
        s.commit()
    try:
        for base in serve(world):
            yield Served(world, base)
    finally:
        gateway.shutdown()
        smtp.stop()


def _login(browser: Any, served: Served, name: str) -> Any:
    return browser_login(browser, served.base, name)


def _report(served: Served, rid: int) -> AnnualReport:
    with served.world.session() as s:
        r = s.get(AnnualReport, rid)
        assert r is not None
        return r


def test_approving_a_disagreeing_report_needs_the_confirmation(
    browser: Any, served: Served, artifacts_dir: Path
) -> None:
    rid = served.world.ids["report:health"]  # field 5: the unit says 是, the scans find no badge
    page = _login(browser, served, "zhuozhou")
    page.goto(f"{served.base}/reports/{rid}")
    # The disagreement makes 退回 the primary action and 审核通过 the secondary one.
    assert page.get_attribute("#reject", "class") == "primary"
    assert page.get_attribute("#approve", "class") == "secondary"
    assert not page.is_checked("#confirm-approve")
    page.screenshot(path=str(artifacts_dir / "signoff-confirm-needed.png"), full_page=True)
    with page.expect_navigation() as nav:
        page.click("#approve")
    assert nav.value.status == 422
    assert "请勾选" in page.inner_text("#message")
    assert _report(served, rid).state == "submitted"
    page.check("#confirm-approve")
    page.click("#approve")
    page.wait_for_load_state()
    assert page.get_attribute("#report-state", "data-state") == "office_approved"
    assert "审核通过" in page.inner_text("#message")
    with served.world.session() as s:
        event = s.scalars(
            sa.select(AuditEvent).where(
                AuditEvent.report_id == rid, AuditEvent.kind == "report.office_approved"
            )
        ).one()
        assert event.detail["confirmed_disagreements"] is True and event.via == "console"
    page.context.close()


def _rows(page: Any) -> dict[str, tuple[str, str]]:
    out = {}
    for row in page.locator("#delivery tbody tr").all():
        out[row.get_attribute("data-channel")] = (row.get_attribute("data-state"), row.inner_text())
    return out


def _wait_for_attempts(served: Served, rid: int) -> list[Notification]:
    """The report's notices once each has had its first attempt (sent in the background)."""
    deadline = time.monotonic() + 30
    while True:
        with served.world.session() as s:
            rows = list(s.scalars(sa.select(Notification).where(Notification.report_id == rid)))
        if (len(rows) == 2 and all(r.attempts >= 1 for r in rows)) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_rejection_picks_a_suggested_reason_and_tells_the_truth_about_delivery(
    browser: Any, served: Served, artifacts_dir: Path
) -> None:
    w = served.world
    rid = w.ids["report:edu"]  # field 5: the unit says 否, the scans find the badge
    page = _login(browser, served, "zhuozhou")
    page.goto(f"{served.base}/reports/{rid}")
    suggestion = page.inner_text("#suggestions label")
    assert "字段5" in suggestion and "请核实后更正" in suggestion
    page.check("#suggested-0")
    page.fill("#reason", "如有疑问请联系涿州市编办。")
    page.click("#reject")
    page.wait_for_load_state()
    assert page.get_attribute("#report-state", "data-state") == "rejected"
    reason = page.inner_text("#rejection-reason")
    assert suggestion.strip() in reason and "如有疑问请联系涿州市编办" in reason
    # The page promises nothing: it says what the outbox has (after the first attempt of each).
    rows = _wait_for_attempts(served, rid)
    page.reload()
    shown = _rows(page)
    by_channel = {r.channel: r for r in rows}
    assert by_channel["email"].status == "sent" and by_channel["sms"].status == "pending"
    assert shown["email"][0] == "sent" and "已发送" in shown["email"][1]
    assert shown["sms"][0] == "retrying"
    assert f"已尝试{by_channel['sms'].attempts}次" in shown["sms"][1] and "将于" in shown["sms"][1]
    page.screenshot(path=str(artifacts_dir / "signoff-delivery.png"), full_page=True)
    # The outbox retries (notify, after the backoff): the page shows the new attempt.
    sms = by_channel["sms"]
    assert sms.next_attempt_at is not None
    time.sleep(max(0.0, (sms.next_attempt_at - dt.datetime.now(dt.UTC)).total_seconds()) + 0.3)
    send_notices(w.engine, w.cfg, w.store, [sms.id])
    with w.session() as s:
        again = s.get(Notification, sms.id)
        assert again is not None and again.attempts == sms.attempts + 1 and again.status == "pending"
    page.reload()
    assert f"已尝试{again.attempts}次" in _rows(page)["sms"][1]
    # Nothing about the technical failure reaches the official.
    assert "503" not in page.inner_text("#delivery") and "Error" not in page.inner_text("#delivery")
    page.context.close()


def test_a_reviewer_cannot_decide_what_they_resubmitted(browser: Any, served: Served) -> None:
    w = served.world
    rid = w.ids["report:edu"]
    body = {
        "unit_id": w.ids["unit:edu"],
        "year": YEAR,
        "organizer": "涿州市教育局",
        "site_name": "涿州市教育局网站",
        "domains_status": "有效",
        "functions_reviewed": "是",
        "badge_displayed": "是",
    }
    with httpx.Client(base_url=served.base) as c:
        r = c.post("/api/v1/annual-reports", json=body, headers=served.token("zhuozhou"))
        assert r.status_code == 200 and r.json()["result"] == "resubmitted"
    page = _login(browser, served, "zhuozhou")
    page.goto(f"{served.base}/reports/{rid}")
    assert page.locator("#decide").count() == 0
    assert "您不能审核它" in page.inner_text("#own-submission")
    page.context.close()
    other = _login(browser, served, "baoding")
    other.goto(f"{served.base}/reports/{rid}")
    assert other.locator("#decide").count() == 1
    other.context.close()


def test_a_resubmission_while_the_page_is_open_is_refused_with_409(
    browser: Any, served: Served, artifacts_dir: Path
) -> None:
    w = served.world
    rid = w.ids["report:water"]
    page = _login(browser, served, "lianchi")
    page.goto(f"{served.base}/reports/{rid}")
    assert "第1版" in page.inner_text("#report-version")
    body = {
        "unit_id": w.ids["unit:water"],
        "year": YEAR,
        "organizer": "莲池区水利局（更名）",
        "site_name": "莲池区水利局网站",
        "domains_status": "有效",
        "functions_reviewed": "是",
        "badge_displayed": "是",
    }
    with httpx.Client(base_url=served.base) as c:
        r = c.post("/api/v1/annual-reports", json=body, headers=served.token("portal"))
        assert r.status_code == 200 and r.json()["version"] == 2
    with page.expect_navigation() as nav:
        page.click("#approve")
    assert nav.value.status == 409
    assert "第2版" in page.inner_text("#message") and "第2版" in page.inner_text("#report-version")
    assert "莲池区水利局（更名）" in page.inner_text("#fields")
    assert _report(served, rid).state == "submitted"
    page.screenshot(path=str(artifacts_dir / "signoff-version-changed.png"), full_page=True)
    # The page now carries version 2: approving it lands on what the reviewer sees.
    page.click("#approve")
    page.wait_for_load_state()
    assert page.get_attribute("#report-state", "data-state") == "office_approved"
    page.context.close()


def test_the_capture_is_shown_only_inside_its_frame(browser: Any, served: Served) -> None:
    w = served.world
    with w.session() as s:
        cap = s.scalars(
            sa.select(Capture.id).where(
                Capture.website_id == w.ids["site:edu"], Capture.scan_id == w.ids["scan:2"]
            )
        ).one()
    page = _login(browser, served, "zhuozhou")
    page.goto(f"{served.base}/reports/{w.ids['report:edu']}")
    frame = page.frame_locator(f"#frame-{cap}")
    assert frame.locator("#m").inner_text() == "页面原文"  # inside the sandboxed frame: shown, inert
    # Opened as a page of its own (typed, bookmarked, or a link followed): refused, nothing of it shown.
    answer = page.goto(f"{served.base}/captures/{cap}/page")
    assert answer is not None and answer.status == 403
    assert "隔离框内查看" in page.inner_text("body") and page.locator("#m").count() == 0
    page.context.close()
    # The refusal rests on what the request is for (Sec-Fetch-Dest): a client naming no frame, or a
    # frame of another site, is refused alike.
    c = served.login("zhuozhou")
    url = f"/captures/{cap}/page"
    for headers, status in (
        ({}, 403),
        ({"Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "same-origin"}, 403),
        ({"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "same-origin"}, 200),
    ):
        r = c.get(url, headers=headers)
        assert r.status_code == status, headers
        assert ("页面原文" in r.text) == (status == 200)
        assert r.headers["content-security-policy"].startswith("sandbox;")
    c.close()
