"""The JSON API over HTTP (uvicorn on loopback): submission, reading, decisions, findings, bad input."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from storage.models import AnnualReport, AnnualReportEvent, Finding, Notification

from .conftest import Served
from .world import YEAR


def _snapshot(served: Served) -> tuple[int, int, list[tuple[Any, ...]]]:
    """Reports, events and every report's fields: what bad input must leave untouched."""
    with served.world.session() as s:
        reports = s.scalar(sa.select(sa.func.count(AnnualReport.id))) or 0
        events = s.scalar(sa.select(sa.func.count(AnnualReportEvent.id))) or 0
        rows = [
            tuple(r)
            for r in s.execute(
                sa.select(
                    AnnualReport.id,
                    AnnualReport.state,
                    AnnualReport.organizer,
                    AnnualReport.domains_status,
                    AnnualReport.badge_displayed,
                ).order_by(AnnualReport.id)
            )
        ]
    return reports, events, rows


def _body(served: Served, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "unit_id": served.world.ids["unit:water"],
        "year": YEAR - 1,
        "organizer": "莲池区水利局",
        "site_name": "莲池区水利局网站",
        "domains_status": "有效",
        "functions_reviewed": "是",
        "badge_displayed": "是",
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def test_api_needs_a_valid_token(served: Served) -> None:
    with served.client() as c:
        assert c.get("/api/v1/annual-reports").status_code == 401
        assert (
            c.get("/api/v1/annual-reports", headers={"Authorization": "Bearer bw1.forged.token"}).status_code
            == 401
        )
        good = served.token("center")["Authorization"]
        tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
        assert c.get("/api/v1/annual-reports", headers={"Authorization": tampered}).status_code == 401
        r = c.get("/api/v1/annual-reports", headers=served.token("admin"))
        assert r.status_code == 403 and "管理员" in r.json()["detail"]


def test_submit_then_read_status_and_derived_fields(served: Served) -> None:
    w = served.world
    with served.client() as c:
        r = c.post("/api/v1/annual-reports", json=_body(served), headers=served.token("lianchi"))
        assert r.status_code == 201, r.text
        out = r.json()
        assert out["result"] == "created" and out["state"] == "submitted" and out["year"] == YEAR - 1
        # Derived from the stored findings: the site shows its badge and the domain resolves.
        assert out["derived"]["badge_displayed"]["value"] == "是"
        assert out["derived"]["domains_status"]["value"] == "有效"
        with w.session() as s:
            ids = set(
                s.scalars(
                    sa.select(Finding.id).where(
                        Finding.website_id == w.ids["site:water"],
                        Finding.check == "badge",
                        Finding.scan_id == w.ids["scan:2"],
                    )
                )
            )
        assert set(out["derived"]["badge_displayed"]["finding_ids"]) == ids
        again = c.get(f"/api/v1/annual-reports/{out['id']}", headers=served.token("lianchi"))
        assert again.status_code == 200 and again.json()["submitted"]["organizer"] == "莲池区水利局"
        # The same submission twice changes nothing.
        same = c.post("/api/v1/annual-reports", json=_body(served), headers=served.token("lianchi"))
        assert same.status_code == 200 and same.json()["result"] == "unchanged"
        # By USCC, for the city office above.
        with w.session() as s:
            from storage.models import Unit

            unit = s.get(Unit, w.ids["unit:finance"])
            assert unit is not None
            uscc = unit.uscc
        r2 = c.post(
            "/api/v1/annual-reports",
            json=_body(served, unit_id=None, uscc=uscc, organizer="莲池区财政局"),
            headers=served.token("baoding"),
        )
        assert r2.status_code == 201 and r2.json()["unit"]["id"] == w.ids["unit:finance"]


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        (b'{"unit_id": 1, "year": ', 400, "JSON"),
        (b"not json at all", 400, "JSON"),
        ("unknown_unit", 404, "不存在"),
        ("old_year", 422, "年度"),
        ("future_year", 422, "年度"),
        ("extra_field", 422, "surprise"),
        ("missing_field", 422, "badge_displayed"),
        ("both_ids", 422, "unit_id"),
        ("too_long", 422, "organizer"),
        ("oversized", 413, "过大"),
        ("other_office", 404, "不在您的管辖范围"),
    ],
)
def test_bad_submissions_are_refused_and_store_nothing(
    served: Served, payload: Any, status: int, words: str
) -> None:
    w = served.world
    bodies: dict[str, Any] = {
        "unknown_unit": _body(served, unit_id=999_999),
        "old_year": _body(served, year=1999),
        "future_year": _body(served, year=YEAR + 5),
        "extra_field": {**_body(served), "surprise": 1},
        "missing_field": {k: v for k, v in _body(served).items() if k != "badge_displayed"},
        "both_ids": _body(served, uscc="12130606000000101X"),
        "too_long": _body(served, organizer="局" * 201),
        "oversized": _body(served, domains_status="有效" * 200_000),
        "other_office": _body(served, unit_id=w.ids["unit:edu"], year=YEAR - 2),
    }
    raw = payload if isinstance(payload, bytes) else json.dumps(bodies[payload], ensure_ascii=False).encode()
    before = _snapshot(served)
    with served.client() as c:
        r = c.post(
            "/api/v1/annual-reports",
            content=raw,
            headers={**served.token("lianchi"), "Content-Type": "application/json"},
        )
    assert r.status_code == status, r.text
    assert words in r.json()["detail"] or words in json.dumps(r.json(), ensure_ascii=False)
    assert _snapshot(served) == before


def test_office_cannot_reach_another_office_through_the_api(served: Served) -> None:
    w = served.world
    other = w.ids["report:finance"]  # 莲池区
    own = w.ids["report:health"]  # 涿州市
    before = _snapshot(served)
    with served.client() as c:
        h = served.token("zhuozhou")
        assert c.get(f"/api/v1/annual-reports/{other}", headers=h).status_code == 404
        r = c.post(
            f"/api/v1/annual-reports/{other}/decision",
            json={"decision": "reject", "reason": "x", "version": 1},
            headers=h,
        )
        assert r.status_code == 404
        assert c.get(f"/api/v1/websites/{w.ids['site:finance']}/findings", headers=h).status_code == 404
        listed = {
            r["unit"]["office_code"] for r in c.get("/api/v1/annual-reports", headers=h).json()["reports"]
        }
        assert listed == {"130681"}
        assert c.get(f"/api/v1/annual-reports/{own}", headers=h).status_code == 200
        # The city office above both counties sees both.
        city = {
            r["unit"]["office_code"]
            for r in c.get("/api/v1/annual-reports", headers=served.token("baoding")).json()["reports"]
        }
        assert city == {"130681", "130606"}
    assert _snapshot(served) == before


def test_two_levels_in_order_and_never_twice(served: Served) -> None:
    w = served.world
    rid = w.ids["report:health"]
    with served.client() as c:
        office, center = served.token("zhuozhou"), served.token("center")
        url = f"/api/v1/annual-reports/{rid}/decision"
        # The center cannot skip the office level.
        # Field 5 disagrees with the scans: approving says so explicitly (confirm_disagreements).
        ok = {"version": 1, "confirm_disagreements": True}
        r = c.post(url, json={"decision": "approve", **ok}, headers=center)
        assert r.status_code == 409 and "越级" in r.json()["detail"]
        r = c.post(url, json={"decision": "approve", **ok}, headers=office)
        assert r.status_code == 200 and r.json()["state"] == "office_approved"
        r = c.post(url, json={"decision": "approve", **ok}, headers=office)
        assert r.status_code == 409
        r = c.post(url, json={"decision": "reject", "version": 1}, headers=center)
        assert r.status_code == 400 and "原因" in r.json()["detail"]
        r = c.post(url, json={"decision": "maybe", "version": 1}, headers=center)
        assert r.status_code == 422
        r = c.post(url, json={"decision": "approve", **ok}, headers=center)
        assert r.status_code == 200 and r.json()["state"] == "approved"
        assert (
            c.post(
                url, json={"decision": "reject", "reason": "迟来的退回", "version": 1}, headers=center
            ).status_code
            == 409
        )
    with w.session() as s:
        events = list(
            s.scalars(
                sa.select(AnnualReportEvent)
                .where(AnnualReportEvent.report_id == rid)
                .order_by(AnnualReportEvent.id)
            )
        )
        assert [(e.from_state, e.to_state, e.actor) for e in events] == [
            ("", "submitted", "import"),
            ("submitted", "office_approved", "zhuozhou"),
            ("office_approved", "approved", "center"),
        ]
        decisions = {e.id: e for e in events if e.via}
        assert set(decisions) == {events[1].id, events[2].id}
        assert events[0].via == "" and events[0].shown == {}
        shown = decisions[events[1].id].shown
        badge_findings = set(
            s.scalars(
                sa.select(Finding.id).where(
                    Finding.website_id == w.ids["site:health"], Finding.scan_id == w.ids["scan:2"]
                )
            )
        )
        assert badge_findings <= set(shown["finding_ids"])
        assert decisions[events[1].id].via == "api"
        # The evidence lives in the migrated schema; the console keeps no table of its own.
        assert "review_decision" not in sa.inspect(s.get_bind()).get_table_names()


def test_rejection_queues_email_and_sms_with_the_reason(served: Served) -> None:
    w = served.world
    rid = w.ids["report:water"]
    with served.client() as c:
        r = c.post(
            f"/api/v1/annual-reports/{rid}/decision",
            json={"decision": "reject", "reason": "字段2网站名称有误", "version": 1},
            headers=served.token("lianchi"),
        )
        assert r.status_code == 200 and r.json()["state"] == "rejected"
        assert r.json()["rejection_reason"] == "字段2网站名称有误"
    with w.session() as s:
        notes = list(s.scalars(sa.select(Notification).where(Notification.report_id == rid)))
    assert sorted((n.channel, n.recipient) for n in notes) == [
        ("email", "water@unit.example"),
        ("sms", "13800000004"),
    ]
    assert all("字段2网站名称有误" in n.body for n in notes)


def test_two_reviewers_deciding_at_once_only_one_wins(served: Served) -> None:
    w = served.world
    rid = w.ids["report:edu"]
    with w.session() as s:
        r = s.get(AnnualReport, rid)
        assert r is not None
        if r.state != "submitted":
            pytest.skip("report already decided by another test in this module")
    results: list[int] = []
    barrier = threading.Barrier(2)

    def go(token: dict[str, str]) -> None:
        with httpx.Client(base_url=served.base, timeout=30) as c:
            barrier.wait()
            results.append(
                c.post(
                    f"/api/v1/annual-reports/{rid}/decision",
                    json={"decision": "approve", "version": 1, "confirm_disagreements": True},
                    headers=token,
                ).status_code
            )

    threads = [threading.Thread(target=go, args=(served.token(n),)) for n in ("zhuozhou", "baoding")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409]
    with w.session() as s:
        n = s.scalar(
            sa.select(sa.func.count(AnnualReportEvent.id)).where(
                AnnualReportEvent.report_id == rid, AnnualReportEvent.to_state == "office_approved"
            )
        )
    assert n == 1


def test_site_findings_match_the_database(served: Served) -> None:
    w = served.world
    site = w.ids["site:health"]
    with served.client() as c:
        r = c.get(
            f"/api/v1/websites/{site}/findings",
            params={"scan_id": w.ids["scan:2"]},
            headers=served.token("zhuozhou"),
        )
    assert r.status_code == 200
    got = {(f["check"], f["status"], f["reason"]) for f in r.json()["findings"]}
    with w.session() as s:
        want = {
            (f.check, f.status, f.reason)
            for f in s.scalars(
                sa.select(Finding).where(Finding.website_id == site, Finding.scan_id == w.ids["scan:2"])
            )
        }
    assert got == want and ("badge", "fail", "badge.missing") in got


def test_openapi_is_published_to_signed_in_users_and_tokens(served: Served) -> None:
    with served.client() as c:
        anonymous = c.get("/openapi.json")
        assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthorized"
        assert c.get("/docs").status_code == 303  # to the login page
        spec = c.get("/openapi.json", headers=served.token("center")).json()
        assert "/api/v1/annual-reports" in spec["paths"]
        assert "post" in spec["paths"]["/api/v1/annual-reports/{report_id}/decision"]
    c = served.login("center")
    assert "/api/v1/annual-reports" in c.get("/openapi.json").json()["paths"]
    page = c.get("/docs")
    assert page.status_code == 200 and "/api/v1/websites/{website_id}/findings" in page.text
    c.close()


def test_streamed_oversized_body_is_refused(served: Served) -> None:
    """Without Content-Length (chunked), the limit holds while the body streams in."""
    piece = json.dumps(_body(served, domains_status="有效" * 100_000), ensure_ascii=False).encode()

    def chunks() -> Any:
        for i in range(0, len(piece), 8192):
            yield piece[i : i + 8192]

    before = _snapshot(served)
    with served.client() as c:
        r = c.post(
            "/api/v1/annual-reports",
            content=chunks(),
            headers={**served.token("lianchi"), "Content-Type": "application/json"},
        )
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"
    assert _snapshot(served) == before


def test_resubmission_after_rejection_and_refusal_once_reviewed(served: Served) -> None:
    w = served.world
    h = served.token("lianchi")
    with served.client() as c:
        # 莲池区财政局's report passed the office level: the unit can no longer change it.
        before = _snapshot(served)
        r = c.post(
            "/api/v1/annual-reports",
            json=_body(served, unit_id=w.ids["unit:finance"], year=YEAR, organizer="改过的名称"),
            headers=h,
        )
        assert r.status_code == 409 and r.json()["error"] == "already_reviewed"
        assert _snapshot(served) == before
        # A rejected report comes back as submitted when the unit sends corrected fields.
        rid = w.ids["report:water"]
        state = c.get(f"/api/v1/annual-reports/{rid}", headers=h).json()["state"]
        if state != "rejected":
            r = c.post(
                f"/api/v1/annual-reports/{rid}/decision",
                json={"decision": "reject", "reason": "请更正", "version": 1},
                headers=h,
            )
            assert r.status_code == 200
        r = c.post(
            "/api/v1/annual-reports",
            json=_body(served, year=YEAR, site_name="莲池区水利局门户网站"),
            headers=h,
        )
        assert r.status_code == 200 and r.json()["result"] == "resubmitted"
        assert r.json()["state"] == "submitted" and r.json()["rejection_reason"] == ""
        assert r.json()["submitted"]["site_name"] == "莲池区水利局门户网站"
        assert r.json()["events"][-1]["from"] == "rejected" and r.json()["events"][-1]["to"] == "submitted"
