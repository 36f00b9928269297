"""The audit trail that lasts (issue #15 item 5): a report's whole life cycle through the API and the
console, every event with who, when and from where; nothing in it can be changed or deleted through
SQL, nor goes with the unit; tampering behind the triggers' back shows; retention keeps the evidence
decisions rest on; ``badgewatch audit`` lists, filters and exports it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from openpyxl import load_workbook

from review.auth_events import record_auth_event
from storage import audit
from storage.evidence import prune_captures
from storage.models import AnnualReport, AuditEvent, Capture, Unit, User

from .conftest import Served, csrf_of
from .world import YEAR, build_world

ORIGIN: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def portal(served: Served) -> None:
    with served.world.session() as s:
        hashed = s.scalars(sa.select(User.password_hash).where(User.name == "lianchi")).one()
        s.add(User(name="portal", role="submitter", password_hash=hashed))
        s.commit()
    ORIGIN["Origin"] = served.base


def _fields(served: Served, **over: Any) -> dict[str, Any]:
    body = {
        "unit_id": served.world.ids["unit:water"],
        "year": YEAR - 1,
        "organizer": "莲池区水利局",
        "site_name": "莲池区水利局网站",
        "domains_status": "有效",
        "functions_reviewed": "是",
        "badge_displayed": "否",  # the scans find the badge: field 5 disagrees
    }
    body.update(over)
    return body


def _console_decide(served: Served, user: str, rid: int, **form: str) -> str:
    c = served.login(user)
    page = c.get(f"/reports/{rid}")
    assert page.status_code == 200
    html = page.text
    version = html.split('name="version" value="', 1)[1].split('"', 1)[0]
    basis = html.split('name="basis" value="', 1)[1].split('"', 1)[0]
    r = c.post(
        f"/reports/{rid}/decision",
        data={"csrf_token": csrf_of(html), "version": version, "basis": basis, **form},
        headers=ORIGIN,
    )
    assert r.status_code == 303, r.text
    return c.get(r.headers["location"]).text


@pytest.fixture(scope="module")
def life(served: Served) -> int:
    """One report from submission to final approval; returns its id."""
    portal = served.token("portal")
    with served.client() as c:
        r = c.post("/api/v1/annual-reports", json=_fields(served), headers=portal)
        assert r.status_code == 201
        rid = int(r.json()["id"])
        # The office rejects in the console, picking the suggested reason.
        html = _console_decide(served, "lianchi", rid, decision="reject", suggested="0", reason="")
        assert "字段5" in html.split('id="rejection-reason">', 1)[1].split("</span>", 1)[0]
        # The unit corrects field 5 through the portal.
        r = c.post("/api/v1/annual-reports", json=_fields(served, badge_displayed="是"), headers=portal)
        assert r.status_code == 200 and r.json()["version"] == 2
        # The office approves through the API, the center in the console.
        h = served.token("lianchi")
        got = c.get(f"/api/v1/annual-reports/{rid}", headers=h).json()
        r = c.post(
            f"/api/v1/annual-reports/{rid}/decision",
            json={"decision": "approve", "version": got["version"], "basis": got["basis"]},
            headers=h,
        )
        assert r.status_code == 200
    html = _console_decide(served, "center", rid, decision="approve")
    assert 'data-state="approved"' in html
    return rid


def _trail(served: Served, **where: Any) -> list[AuditEvent]:
    with served.world.session() as s:
        stmt = sa.select(AuditEvent).order_by(AuditEvent.id)
        for k, v in where.items():
            stmt = stmt.where(getattr(AuditEvent, k) == v)
        return list(s.scalars(stmt))


def test_a_full_life_cycle_is_in_the_trail(served: Served, life: int) -> None:
    w = served.world
    events = _trail(served, report_id=life)
    assert [(e.kind, e.version, e.actor, e.role, e.via) for e in events] == [
        ("report.submitted", 1, "portal", "submitter", "api"),
        ("report.rejected", 1, "lianchi", "office", "console"),
        ("report.resubmitted", 2, "portal", "submitter", "api"),
        ("report.office_approved", 2, "lianchi", "office", "api"),
        ("report.approved", 2, "center", "center", "console"),
    ]
    assert {e.client for e in events} == {"127.0.0.1"}
    assert all(
        e.unit_name == "莲池区水利局" and e.office_code == "130606" and e.year == YEAR - 1 for e in events
    )
    times = [e.at for e in events]
    assert times == sorted(times) and all(
        dt.datetime.now(dt.UTC) - t < dt.timedelta(minutes=5) for t in times
    )
    assert events[0].detail["fields"]["badge_displayed"] == "否"
    assert events[2].detail["fields"]["badge_displayed"] == "是"
    rejected = events[1].detail
    assert "字段5" in rejected["reason"] and rejected["shown"]["version"] == 1
    assert rejected["shown"]["submitted"]["badge_displayed"] == "否"
    for decision in events[1], events[3], events[4]:
        shown = decision.detail["shown"]
        assert (
            shown["finding_ids"]
            and shown["captures"]
            and shown["derived"]["badge_displayed"]["value"] == "是"
        )
    with w.session() as s:
        check = audit.verify(s)
    assert check.ok and check.count == len(_trail(served))


def test_nothing_in_the_trail_can_be_changed_or_deleted(served: Served, life: int) -> None:
    w = served.world
    before = [(e.id, e.hash) for e in _trail(served)]
    first = before[0][0]
    for statement in (
        f"UPDATE audit_event SET actor = 'someone else' WHERE id = {first}",
        "UPDATE audit_event SET detail = '{}'",
        f"DELETE FROM audit_event WHERE id = {first}",
        "DELETE FROM audit_event",
    ):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), w.engine.begin() as conn:
            conn.execute(sa.text(statement))
    # The unit goes (and with it, by cascade, its reports and their workflow events): the trail stays.
    with w.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM unit WHERE id = :u"), {"u": w.ids["unit:water"]})
    with w.session() as s:
        assert s.get(AnnualReport, life) is None
        assert audit.verify(s).ok
    assert [(e.id, e.hash) for e in _trail(served)] == before
    assert len(_trail(served, report_id=life)) == 5


def test_retention_keeps_the_evidence_decisions_rest_on(served: Served, life: int) -> None:
    """The report and its unit are gone (previous test): only the trail says which captures the
    decisions were taken on, and retention keeps exactly those (and what other reports rest on)."""
    w = served.world
    shown: set[int] = set()
    for e in _trail(served, report_id=life):
        shown |= {c["id"] for c in (e.detail.get("shown") or {}).get("captures", [])}
    with w.session() as s:
        water_caps = {
            c.id: c.scan_id for c in s.scalars(sa.select(Capture).where(Capture.url.like("%water%")))
        }
    assert shown and shown <= set(water_caps)
    unshown = set(water_caps) - shown
    assert unshown  # the first scan's captures of the unit: nothing rests on them any more
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=1000)
    summary = prune_captures(w.engine, w.store, retention_days=30, now=far)
    assert summary.captures_deleted >= len(unshown)
    with w.session() as s:
        left = {c.id: c for c in s.scalars(sa.select(Capture).where(Capture.id.in_(water_caps)))}
        assert set(left) == shown
        for cap in left.values():
            if cap.body_blob:
                assert w.store.get(cap.body_blob)  # the page itself, not only its row


def _cli(served: Served, *args: str) -> tuple[int, str]:
    from badgewatch import cli

    env = {
        "BADGEWATCH_DATABASE_URL": served.world.cfg.database_url,
        "BADGEWATCH_EVIDENCE_DIR": served.world.cfg.evidence_dir,
    }
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_badgewatch_audit_lists_filters_and_exports(served: Served, life: int, tmp_path: Path) -> None:
    code, out = _cli(served, "audit", "list", "--report", str(life), "--format", "json")
    assert code == 0
    events = json.loads(out[: out.rindex("}") + 1])["events"]
    assert [e["kind"] for e in events] == [e.kind for e in _trail(served, report_id=life)]
    assert {e["client"] for e in events} == {"127.0.0.1"}
    # By user and kind (a prefix ends with "."), and by time.
    code, out = _cli(served, "audit", "list", "--user", "lianchi", "--kind", "report.", "--format", "json")
    mine = json.loads(out[: out.rindex("}") + 1])["events"]
    assert {e["actor"] for e in mine} == {"lianchi"} and len(mine) == 2
    # Without a kind, the user's account events (the console's auth_event: lianchi signed in) join the
    # timeline.
    code, out = _cli(served, "audit", "list", "--user", "lianchi", "--format", "json")
    every = json.loads(out[: out.rindex("}") + 1])["events"]
    assert len(every) > len(mine) and "login_success" in {e["kind"] for e in every}
    code, out = _cli(served, "audit", "list", "--kind", "report.rejected", "--format", "json")
    assert {e["kind"] for e in json.loads(out[: out.rindex("}") + 1])["events"]} == {"report.rejected"}
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).date().isoformat()
    code, out = _cli(served, "audit", "list", "--since", tomorrow, "--format", "json")
    assert json.loads(out[: out.rindex("}") + 1])["events"] == []
    # The terminal table is in Chinese and Beijing time, without codes.
    code, out = _cli(served, "audit", "list", "--report", str(life))
    assert code == 0 and "退回年度报告" in out and "北京时间" in out and "report.rejected" not in out
    # Exports an official opens: XLSX and CSV (with the BOM Excel needs).
    xlsx = tmp_path / "audit.xlsx"
    code, _ = _cli(served, "audit", "export", "-o", str(xlsx), "--report", str(life))
    assert code == 0
    ws = load_workbook(xlsx).worksheets[0]
    cells = [[c for c in row if c is not None] for row in ws.iter_rows(values_only=True)]
    assert sum(1 for row in cells if "莲池区水利局" in " ".join(map(str, row))) == 5
    out_csv = tmp_path / "audit.csv"
    code, _ = _cli(served, "audit", "export", "-o", str(out_csv))
    raw = out_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert sum(1 for row in rows if any(c == "域名中心审核通过" for c in row)) >= 1
    code, out = _cli(served, "audit", "verify")
    assert code == 0 and "哈希链无断裂" in out


def test_tampering_behind_the_triggers_is_found(tmp_path: Path) -> None:
    """Someone with the database owner's rights drops the triggers and edits a decision: the hash
    chain names the row."""
    w = build_world(tmp_path)
    with w.session() as s:
        assert audit.verify(s).ok
        victim = s.scalars(sa.select(AuditEvent.id).order_by(AuditEvent.id).offset(1).limit(1)).one()
        count = s.scalar(sa.select(sa.func.count(AuditEvent.id)))
    with w.engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER audit_event_no_update"))
        conn.execute(sa.text("DROP TRIGGER audit_event_no_delete"))
        conn.execute(sa.text("UPDATE audit_event SET actor = 'nobody' WHERE id = :i"), {"i": victim})
    with w.session() as s:
        check = audit.verify(s)
    assert not check.ok and check.broken_at == victim and "改动" in check.problem
    # Deleting a row instead breaks the link of the next one.
    with w.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_event SET actor = 'import' WHERE id = :i"), {"i": victim})
        conn.execute(sa.text("DELETE FROM audit_event WHERE id = :i"), {"i": victim})
    with w.session() as s:
        check = audit.verify(s)
    assert not check.ok and check.broken_at is not None and check.broken_at > victim and check.count <= count
    from badgewatch import cli

    result = CliRunner().invoke(
        cli, ["audit", "verify"], env={"BADGEWATCH_DATABASE_URL": w.cfg.database_url}, catch_exceptions=False
    )
    assert result.exit_code == 1 and "被删除或改动" in result.output
    w.engine.dispose()


def test_account_events_join_the_report_events_in_one_timeline(tmp_path: Path) -> None:
    """``badgewatch audit`` lists the console's account events (``auth_event``) with the report trail."""
    w = build_world(tmp_path)
    with w.session() as s:
        record_auth_event(
            s, "login_failure", "zhuozhou", "zhuozhou", "127.0.0.9", {"reason": "wrong_password"}
        )
        record_auth_event(s, "login_success", "zhuozhou", "zhuozhou", "127.0.0.9")
        s.commit()
    from badgewatch import cli

    env = {"BADGEWATCH_DATABASE_URL": w.cfg.database_url}
    result = CliRunner().invoke(cli, ["audit", "list", "--format", "json"], env=env, catch_exceptions=False)
    events = json.loads(result.output[: result.output.rindex("}") + 1])["events"]
    logins = [e["kind"] for e in events if e["source"] == "auth_event" and e["kind"].startswith("login")]
    assert logins == ["login_failure", "login_success"]
    assert any(e["source"] == "audit_event" for e in events)
    result = CliRunner().invoke(
        cli,
        [
            "audit",
            "list",
            "--format",
            "json",
            "--kind",
            "login_failure",
            "--kind",
            "login_success",
            "--user",
            "zhuozhou",
        ],
        env=env,
    )
    only = json.loads(result.output[: result.output.rindex("}") + 1])["events"]
    assert {(e["source"], e["client"]) for e in only} == {("auth_event", "127.0.0.9")} and len(only) == 2
    # The terminal table names them in Chinese.
    result = CliRunner().invoke(cli, ["audit", "list", "--user", "zhuozhou"], env=env)
    assert "登录失败" in result.output and "login_failure" not in result.output
    w.engine.dispose()


def test_concurrent_appends_make_one_chain_on_sqlite(tmp_path: Path) -> None:
    import threading

    from sqlalchemy.orm import Session

    w = build_world(tmp_path)
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            barrier.wait()
            for i in range(5):
                with Session(w.engine) as s:
                    audit.append(s, kind="report.submitted", actor=f"writer-{n}", via="api", detail={"i": i})
                    s.commit()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with w.session() as s:
        check = audit.verify(s)
    assert check.ok and check.count == 4 + 6 * 5
    w.engine.dispose()


def test_an_imported_submission_names_its_channel_and_operator(tmp_path: Path) -> None:
    """``badgewatch annual import``: the trail says the file came in by import, from whom and where."""
    import getpass
    import socket

    w = build_world(tmp_path)
    with w.session() as s:
        unit = s.get(Unit, w.ids["unit:water"])
        assert unit is not None
        uscc = unit.uscc
    path = tmp_path / "年报.csv"
    path.write_text(
        "年度,统一社会信用代码,开办主体名称,网站名称,中文域名与英文域名的有效性及使用状况,"
        "职能或业务范围是否经过审核,是否加挂网站标识\n"
        f"{YEAR - 1},{uscc},莲池区水利局,莲池区水利局网站,有效,是,是\n",
        encoding="utf-8",
    )
    from badgewatch import cli

    env = {"BADGEWATCH_DATABASE_URL": w.cfg.database_url, "BADGEWATCH_EVIDENCE_DIR": w.cfg.evidence_dir}
    result = CliRunner().invoke(cli, ["annual", "import", str(path)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with w.session() as s:
        event = s.scalars(sa.select(AuditEvent).where(AuditEvent.year == YEAR - 1)).one()
    assert (event.kind, event.via, event.actor, event.version) == ("report.submitted", "import", "import", 1)
    assert event.client == f"{getpass.getuser()}@{socket.gethostname()}:年报.csv"
    assert event.detail["fields"]["organizer"] == "莲池区水利局"
    w.engine.dispose()
