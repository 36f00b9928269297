"""The console in a real browser (Debian's chromium, headless): review, reject, approve, and proof that a
captured page's scripts cannot run inside the console."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from storage.models import AnnualReport, AnnualReportEvent, Capture, Notification

from .conftest import Served, browser_login
from .world import HANDLER_MARK, SCRIPT_MARK

pytestmark = pytest.mark.browser


def _login(browser: Any, served: Served, name: str) -> Any:
    return browser_login(browser, served.base, name)


def _unfold(page: object, cap_id: int) -> None:
    """Open the folds (技术细节) around a visit's technical record, by clicking as a reviewer does."""
    outer = page.locator(f"#passing-captures:has(#capture-{cap_id}) > summary")  # type: ignore[attr-defined]
    if outer.count():
        outer.click()
    page.click(f"#tech-{cap_id} > summary")  # type: ignore[attr-defined]


def _state(served: Served, report_id: int) -> str:
    with served.world.session() as s:
        r = s.get(AnnualReport, report_id)
        assert r is not None
        return r.state


def test_office_reviewer_sees_evidence_and_rejects(
    browser: object, served: Served, artifacts_dir: Path
) -> None:
    w = served.world
    rid = w.ids["report:edu"]
    with w.session() as s:
        cap_id = s.scalar(
            sa.select(Capture.id).where(
                Capture.website_id == w.ids["site:edu"], Capture.scan_id == w.ids["scan:2"]
            )
        )
    page = _login(browser, served, "zhuozhou")
    page.goto(f"{served.base}/reports/{rid}")  # type: ignore[attr-defined]
    # The disagreement of field 5 is highlighted; the submitted and derived values sit side by side.
    assert "differs" in (page.get_attribute("#field-5", "class") or "")
    assert "否" in page.inner_text("#field-5") and "是" in page.inner_text("#field-5")
    assert "字段5" in page.inner_text("#disagreements")
    # Evidence: the badge snippet and the ICP line are marked in the captured source, as stored (in the
    # visit's technical record, folded: opened as a reviewer opens it).
    _unfold(page, cap_id)
    source = page.locator(f"#source-{cap_id}")
    assert "CA051060001414687610001" in source.locator("mark.hl-badge").first.inner_text()
    assert source.locator("mark.hl-icp").first.inner_text() == "冀ICP备12345671号-1"
    assert "127.0.0.21" in page.inner_text(f"#capture-{cap_id} table.dns")
    assert "301" in page.inner_text(f"#capture-{cap_id} table.http")
    assert page.locator(f"#capture-{cap_id} img.screenshot").evaluate("i => i.naturalWidth") == 80
    # The captured page is shown, but none of its scripts or handlers ran.
    frame = page.frame_locator(f"#frame-{cap_id}")
    assert frame.locator("#m").inner_text() == "页面原文"
    assert frame.locator("#m2").inner_text() == "图片原文"
    assert page.title() != "PWNED" and "PWNED" not in page.title()
    page.screenshot(path=str(artifacts_dir / "review-office-report.png"), full_page=True)
    # Full-page shots leave out the sandboxed (out-of-process) frame: keep the frame on its own too.
    page.locator(f"#frame-{cap_id}").screenshot(path=str(artifacts_dir / "review-captured-frame.png"))
    # Reject with a reason.
    page.fill("#reason", "网站已加挂标识，填报“否”与事实不符，请更正字段5")
    page.click("#reject")
    page.wait_for_load_state()
    assert page.get_attribute("#report-state", "data-state") == "rejected"
    assert "请更正字段5" in page.inner_text("#rejection-reason")
    assert "zhuozhou" in page.inner_text("#audit")
    page.screenshot(path=str(artifacts_dir / "review-office-rejected.png"), full_page=True)
    assert _state(served, rid) == "rejected"
    with w.session() as s:
        event = s.scalars(
            sa.select(AnnualReportEvent)
            .where(AnnualReportEvent.report_id == rid)
            .order_by(AnnualReportEvent.id.desc())
        ).first()
        assert event is not None and event.actor == "zhuozhou" and event.to_state == "rejected"
        channels = sorted(
            n.channel for n in s.scalars(sa.select(Notification).where(Notification.report_id == rid))
        )
        assert channels == ["email", "sms"]
    page.context.close()


def test_center_reviewer_approves_second_level(browser: object, served: Served, artifacts_dir: Path) -> None:
    rid = served.world.ids["report:finance"]
    assert _state(served, rid) == "office_approved"
    page = _login(browser, served, "center")
    page.goto(f"{served.base}/")  # type: ignore[attr-defined]
    assert "莲池区财政局" in page.inner_text("main")  # waiting for the center's decision
    page.screenshot(path=str(artifacts_dir / "review-center-dashboard.png"), full_page=True)
    page.goto(f"{served.base}/reports/{rid}")
    page.click("#approve")
    page.wait_for_load_state()
    assert page.get_attribute("#report-state", "data-state") == "approved"
    assert page.locator("#decide").count() == 0  # decided: no second decision offered
    page.screenshot(path=str(artifacts_dir / "review-center-approved.png"), full_page=True)
    assert _state(served, rid) == "approved"
    page.context.close()


class _Hostile(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_args: object) -> None:
        pass


def test_hostile_capture_runs_outside_console_but_not_inside(browser: object, served: Served) -> None:
    """Control: the same captured page opened directly runs its script (so the marker works); the
    console refuses to open the frame URL on its own."""
    w = served.world
    with w.session() as s:
        cap = s.scalars(sa.select(Capture).where(Capture.website_id == w.ids["site:edu"])).first()
        assert cap is not None
        from review.evidence import decoded_body

        text, _ = decoded_body(w.store, cap)
    _Hostile.body = text.encode("utf-8")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        page = _login(browser, served, "zhuozhou")
        page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/")  # type: ignore[attr-defined]
        assert page.inner_text("#m") == SCRIPT_MARK
        assert page.inner_text("#m2") == HANDLER_MARK
        # Opened on its own (a top-level navigation), the capture is refused: it is never a page of
        # the console's origin (test_signoff_browser.py shows it inside its frame).
        answer = page.goto(f"{served.base}/captures/{cap.id}/page")
        assert answer is not None and answer.status == 403
        assert page.locator("#m").count() == 0 and "涿州市教育局" not in page.title()
        page.context.close()
    finally:
        httpd.shutdown()
