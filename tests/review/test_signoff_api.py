"""Trustworthy sign-off over HTTP (uvicorn on loopback): separation of duties, versioned decisions,
the record of what a reviewer was shown, confirmation of a disagreeing approval, GETs that write
nothing (issue #15 items 4 and 7, #16 item 5)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa

from storage.models import AnnualReport, AnnualReportEvent, AuditEvent, User

from .conftest import Served, csrf_of
from .world import YEAR


@pytest.fixture(scope="module", autouse=True)
def portal(served: Served) -> str:
    """A submitter account: the portal through which units submit (shares the reviewers' password)."""
    with served.world.session() as s:
        hashed = s.scalars(sa.select(User.password_hash).where(User.name == "zhuozhou")).one()
        s.add(User(name="portal", role="submitter", office_code=None, password_hash=hashed))
        s.add(User(name="portal-lianchi", role="submitter", office_code="130606", password_hash=hashed))
        s.commit()
    return "portal"


def _fields(unit_id: int, year: int = YEAR, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "unit_id": unit_id,
        "year": year,
        "organizer": "单位",
        "site_name": "单位网站",
        "domains_status": "有效",
        "functions_reviewed": "是",
        "badge_displayed": "是",
    }
    body.update(over)
    return body


def _report(served: Served, rid: int) -> AnnualReport:
    with served.world.session() as s:
        r = s.get(AnnualReport, rid)
        assert r is not None
        r.events  # noqa: B018 - loaded before the session closes
        return r


def _decisions(served: Served, rid: int) -> list[AnnualReportEvent]:
    with served.world.session() as s:
        return list(
            s.scalars(
                sa.select(AnnualReportEvent)
                .where(AnnualReportEvent.report_id == rid, AnnualReportEvent.via != "")
                .order_by(AnnualReportEvent.id)
            )
        )


def test_submitter_can_only_submit(served: Served) -> None:
    w = served.world
    h = served.token("portal")
    with served.client() as c:
        assert c.get("/api/v1/me", headers=h).json()["role"] == "submitter"
        r = c.post("/api/v1/annual-reports", json=_fields(w.ids["unit:water"], YEAR - 3), headers=h)
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        # Nothing else: no reading, no listing, no findings, no decisions.
        for path in ("/api/v1/annual-reports", f"/api/v1/annual-reports/{rid}"):
            assert c.get(path, headers=h).status_code == 403, path
        assert c.get(f"/api/v1/websites/{w.ids['site:water']}/findings", headers=h).status_code == 403
        r = c.post(
            f"/api/v1/annual-reports/{rid}/decision",
            json={"decision": "approve", "version": 1},
            headers=h,
        )
        assert r.status_code == 403
        # A submitter of one office submits for that office only.
        scoped = served.token("portal-lianchi")
        r = c.post("/api/v1/annual-reports", json=_fields(w.ids["unit:edu"], YEAR - 3), headers=scoped)
        assert r.status_code == 404
    assert _report(served, rid).state == "submitted"
    # The console's pages are closed to it too.
    page = served.login("portal", fresh=True)
    for path in ("/", "/reports", f"/reports/{rid}", "/scans", "/lists", "/lookup?ref=F1"):
        r = page.get(path)
        assert r.status_code == 403 and "只能通过 API 提交" in r.text, path


def test_nobody_decides_on_a_report_they_submitted(served: Served) -> None:
    w = served.world
    rid = w.ids["report:edu"]
    with served.client() as c:
        # The 涿州市 reviewer resubmits the unit's report (corrected field 5) through the API ...
        r = c.post(
            "/api/v1/annual-reports",
            json=_fields(w.ids["unit:edu"], organizer="涿州市教育局", badge_displayed="是"),
            headers=served.token("zhuozhou"),
        )
        assert r.status_code == 200 and r.json()["result"] == "resubmitted"
        version = r.json()["version"]
        assert version == 2
        # ... and may not approve it: neither through the API nor in the console.
        r = c.post(
            f"/api/v1/annual-reports/{rid}/decision",
            json={"decision": "approve", "version": version},
            headers=served.token("zhuozhou"),
        )
        assert r.status_code == 403 and r.json()["error"] == "own_submission"
    page = served.login("zhuozhou")
    html = page.get(f"/reports/{rid}").text
    assert 'id="decide"' not in html and 'id="own-submission"' in html
    r = page.post(
        f"/reports/{rid}/decision",
        data={"decision": "approve", "version": str(version), "csrf_token": csrf_of(html)},
        headers={"Origin": served.base},
    )
    assert r.status_code == 403 and "不能审核自己提交的报告" in r.text
    assert _report(served, rid).state == "submitted" and _decisions(served, rid) == []
    # The city office above decides it.
    with served.client() as c:
        r = c.post(
            f"/api/v1/annual-reports/{rid}/decision",
            json={"decision": "approve", "version": version},
            headers=served.token("baoding"),
        )
        assert r.status_code == 200 and r.json()["state"] == "office_approved"


def test_a_decision_on_a_changed_version_is_refused(served: Served) -> None:
    w = served.world
    rid = w.ids["report:health"]
    reviewer = served.token("zhuozhou")
    with served.client() as c:
        seen = c.get(f"/api/v1/annual-reports/{rid}", headers=reviewer).json()
        assert seen["version"] == 1 and seen["submitted"]["badge_displayed"] == "是"
        # The console form carries the version it shows.
        page = served.login("zhuozhou")
        html = page.get(f"/reports/{rid}").text
        assert 'name="version" value="1"' in html
        # Between opening and deciding, the unit resubmits with other content.
        r = c.post(
            "/api/v1/annual-reports",
            json=_fields(w.ids["unit:health"], organizer="涿州市卫生健康局", badge_displayed="否"),
            headers=served.token("portal"),
        )
        assert r.status_code == 200 and r.json()["version"] == 2
        # The approval names version 1: refused, through the API and the console alike.
        r = c.post(
            f"/api/v1/annual-reports/{rid}/decision",
            json={"decision": "approve", "version": 1, "basis": seen["basis"], "confirm_disagreements": True},
            headers=reviewer,
        )
        assert r.status_code == 409 and r.json()["error"] == "version_changed"
        r = page.post(
            f"/reports/{rid}/decision",
            data={"decision": "approve", "version": "1", "confirm": "1", "csrf_token": csrf_of(html)},
            headers={"Origin": served.base},
        )
        assert r.status_code == 409 and "第2版" in r.text and 'name="version" value="2"' in r.text
        assert _report(served, rid).state == "submitted" and _decisions(served, rid) == []
        # A made-up digest of the scan results is refused as well (the results "changed").
        r = c.post(
            f"/api/v1/annual-reports/{rid}/decision",
            json={"decision": "approve", "version": 2, "basis": "0" * 16},
            headers=reviewer,
        )
        assert r.status_code == 409 and r.json()["error"] == "evidence_changed"
        # On what is there now, the decision lands, and records what it was taken on.
        now = c.get(f"/api/v1/annual-reports/{rid}", headers=reviewer).json()
        assert now["disagreements"] == []  # "否" is what the scans found
        r = c.post(
            f"/api/v1/annual-reports/{rid}/decision",
            json={"decision": "approve", "version": 2, "basis": now["basis"]},
            headers=reviewer,
        )
        assert r.status_code == 200 and r.json()["state"] == "office_approved"
    (event,) = _decisions(served, rid)
    shown = event.shown
    assert shown["version"] == 2 and shown["basis"] == now["basis"]
    assert shown["submitted"]["badge_displayed"] == "否"
    assert shown["derived"]["badge_displayed"]["value"] == now["derived"]["badge_displayed"]["value"]
    assert set(now["derived"]["badge_displayed"]["finding_ids"]) <= set(shown["finding_ids"])
    site_caps = [cap for cap in shown["captures"] if cap["url"] == "http://www.health.gov.cn/"]
    assert site_caps and all(cap["body_blob"] and cap["headers_blob"] for cap in site_caps)
    with served.world.session() as s:
        trail = s.scalars(sa.select(AuditEvent).where(AuditEvent.report_id == rid).order_by(AuditEvent.id))
        assert [(a.kind, a.version, a.via, a.actor) for a in trail] == [
            ("report.submitted", 1, "import", "import"),
            ("report.resubmitted", 2, "api", "portal"),
            ("report.office_approved", 2, "api", "zhuozhou"),
        ]


def test_approving_a_disagreeing_report_needs_a_confirmation(served: Served) -> None:
    w = served.world
    reviewer = served.token("lianchi")
    with served.client() as c:
        # The unit says "否" while the scans find the badge on its site.
        r = c.post(
            "/api/v1/annual-reports",
            json=_fields(w.ids["unit:water"], YEAR - 1, organizer="莲池区水利局", badge_displayed="否"),
            headers=served.token("portal"),
        )
        assert r.status_code == 201
        # The creation event is listed once (it was listed twice).
        assert [(e["from"], e["to"]) for e in r.json()["events"]] == [("", "submitted")]
        rid = r.json()["id"]
        got = c.get(f"/api/v1/annual-reports/{rid}", headers=reviewer).json()
        assert [d[:3] for d in got["disagreements"]] == ["字段5"]
        assert got["suggested_reasons"][0].startswith(got["disagreements"][0])
        url = f"/api/v1/annual-reports/{rid}/decision"
        r = c.post(url, json={"decision": "approve", "version": 1}, headers=reviewer)
        assert r.status_code == 422 and r.json()["error"] == "confirmation_required"
        assert _report(served, rid).state == "submitted" and _decisions(served, rid) == []
        r = c.post(
            url, json={"decision": "approve", "version": 1, "confirm_disagreements": True}, headers=reviewer
        )
        assert r.status_code == 200 and r.json()["state"] == "office_approved"
    with served.world.session() as s:
        decided = s.scalars(
            sa.select(AuditEvent).where(
                AuditEvent.report_id == rid, AuditEvent.kind == "report.office_approved"
            )
        ).one()
        assert decided.detail["confirmed_disagreements"] is True and decided.client == "127.0.0.1"


def _data_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA data_version").fetchone()[0])


def test_opening_a_report_writes_nothing(served: Served) -> None:
    w = served.world
    rid = w.ids["report:finance"]  # waiting for the center
    # The stored derived fields are stale (as after a scan since the submission): a page that
    # re-derived and committed (as it did) would change them.
    with w.session() as s:
        r = s.get(AnnualReport, rid)
        assert r is not None
        r.derived_badge = {}
        r.derived_domains = {}
        s.commit()
    page = served.login("center")  # signing in may write (account events); opening a report may not
    tokens = served.token("center")
    path = w.cfg.database_url.removeprefix("sqlite:///")
    probe = sqlite3.connect(path)
    try:
        before = _data_version(probe)
        html = page.get(f"/reports/{rid}").text
        with served.client() as c:
            api = c.get(f"/api/v1/annual-reports/{rid}", headers=tokens).json()
            listed = c.get("/api/v1/annual-reports", headers=tokens)
        assert listed.status_code == 200
        assert page.get("/reports", params={"year": ""}).status_code == 200  # the empty filter (was 400)
        # What the page and the API show comes from the latest scans ...
        fields = html[html.index('id="field-5"') :]
        assert "<strong>是</strong>" in fields[: fields.index("</tr>")]
        assert api["derived"]["badge_displayed"]["value"] == "是"
        # ... and no other connection committed anything meanwhile (SQLite's data_version).
        assert _data_version(probe) == before
    finally:
        probe.close()
    with w.session() as s:
        r = s.get(AnnualReport, rid)
        assert r is not None and r.derived_badge == {} and r.derived_domains == {}
