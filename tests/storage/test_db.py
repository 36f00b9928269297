"""Engine, migrations and models, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlalchemy.orm import selectinload

from checks.expected import UnitKind
from storage.db import (
    current_revision,
    head_revision,
    include_object,
    make_engine,
    normalise_url,
    session_scope,
    upgrade,
)
from storage.expected import expected_for
from storage.models import (
    AnnualReport,
    AnnualReportEvent,
    Base,
    Capture,
    Domain,
    Finding,
    Notification,
    Office,
    Scan,
    ScanLock,
    ScheduleRun,
    Unit,
    User,
    Website,
    subject_of,
)
from storage.types import UtcDateTime


def test_upgrade_is_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        assert upgrade(engine) == head_revision()
        assert upgrade(engine) == head_revision()
        tables = set(sa.inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        engine.dispose()


def test_upgrade_keeps_existing_rows(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO office (code, name, level, email, mobile, former_names)"
                    " VALUES ('130600', '保定市编办', 'city', '', '', '[]')"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO unit (name, kind, office_code, email, mobile, created_at, updated_at)"
                    " VALUES ('u', '党政机关', '130600', '', '', '2026-01-01', '2026-01-01')"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO annual_report (unit_id, year, organizer, site_name, domains_status,"
                    " functions_reviewed, badge_displayed, derived_domains, derived_badge, state,"
                    " rejection_reason, submitted_at, updated_at) VALUES (1, 2026, '', '', '', '', '',"
                    " '{}', '{}', 'submitted', '', '2026-01-01', '2026-01-01')"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO annual_report_event (report_id, from_state, to_state, actor, reason, at)"
                    " VALUES (1, '', 'submitted', 'unit', '', '2026-01-01')"
                )
            )
        upgrade(engine)
        with session_scope(engine) as s:
            event = s.scalars(sa.select(AnnualReportEvent)).one()
            assert (event.shown, event.via, event.client, event.actor) == ({}, "", "", "unit")
    finally:
        engine.dispose()


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_sqlite_pragmas(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/p.db")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


def test_postgres_urls_use_psycopg3() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def _registry(engine: Engine) -> tuple[int, int]:
    with session_scope(engine) as s:
        s.add_all(
            [
                Office(code="130600", name="保定市编办", level="city", roster_count=412),
                Office(code="130602", name="竞秀区编办", parent_code="130600"),
            ]
        )
        s.flush()
        unit = Unit(
            name="保定市人民政府办公室",
            uscc="11130600000000001X",
            kind=UnitKind.PARTY_GOV,
            office_code="130602",
        )
        site = Website(
            unit=unit,
            name="保定市人民政府网",
            url="http://www.bd.gov.cn/",
            icp="冀ICP备05003092号",
            site_code="1306000001",
            is_government_site=True,
        )
        s.add_all(
            [
                unit,
                site,
                Domain(
                    unit=unit,
                    website=site,
                    name="保定市人民政府.政务",
                    ascii="xn--x.xn--zfr164b",
                    kind=".政务",
                ),
                Domain(unit=unit, website=site, name="www.bd.gov.cn", ascii="www.bd.gov.cn", kind="英文"),
            ]
        )
        s.flush()
        return unit.id, site.id


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), session_scope(engine) as s:
        s.add(Unit(name="无编办", uscc=None, kind="党政机关", office_code="999999"))


def test_expected_from_a_website_row(engine: Engine) -> None:
    _, site_id = _registry(engine)
    with session_scope(engine) as s:
        site = s.scalars(
            sa.select(Website)
            .where(Website.id == site_id)
            .options(selectinload(Website.unit), selectinload(Website.domains))
        ).one()
        exp = expected_for(site)
    assert exp.unit_kind is UnitKind.PARTY_GOV
    assert exp.division_code == "130602" and exp.province_code == "13"
    assert exp.cn_domains == ("保定市人民政府.政务",) and exp.en_domains == ("www.bd.gov.cn",)
    assert exp.icp == "冀ICP备05003092号" and exp.site_code == "1306000001" and exp.is_government_site


def test_timestamps_are_utc_aware_and_naive_ones_refused(engine: Engine) -> None:
    local = datetime(2026, 11, 28, 20, 0, tzinfo=timezone(timedelta(hours=8)))
    with session_scope(engine) as s:
        scan = Scan(scope={"office": "130600"}, started_at=local)
        s.add(scan)
    with session_scope(engine) as s:
        got = s.get(Scan, scan.id)
        assert got is not None
        assert got.started_at == local and got.started_at.tzinfo is not None
        assert got.started_at.utcoffset() == timedelta(0)
        assert got.scope == {"office": "130600"}
    with pytest.raises(sa.exc.StatementError), session_scope(engine) as s:
        s.add(Scan(started_at=datetime(2026, 1, 1)))


def test_finding_is_unique_per_scan_subject_and_check(engine: Engine) -> None:
    unit_id, site_id = _registry(engine)
    with session_scope(engine) as s:
        scan = Scan()
        s.add(scan)
        s.flush()
        cap = Capture(
            scan_id=scan.id,
            website_id=site_id,
            subject=subject_of(site_id, None),
            url="http://www.bd.gov.cn/",
            status=200,
            http_chain=[{"url": "http://www.bd.gov.cn/"}],
            subresources={"http://dcs.conac.cn/js/x.js": "sha256:abc"},
        )
        s.add(cap)
        s.flush()
        s.add(
            Finding(
                scan_id=scan.id,
                website_id=site_id,
                subject=subject_of(site_id, None),
                check="badge",
                status="fail",
                reason="badge.missing",
                capture_id=cap.id,
                evidence=[],
                data={},
            )
        )
        # The same check on a scan-level subject (no website, no domain) twice must also collide.
        s.add(
            Finding(
                scan_id=scan.id, subject=subject_of(None, None), check="coverage", status="pass", reason="x"
            )
        )
        scan_id = scan.id
    for website_id, check in ((site_id, "badge"), (None, "coverage")):
        with pytest.raises(sa.exc.IntegrityError), session_scope(engine) as s:
            s.add(
                Finding(
                    scan_id=scan_id,
                    website_id=website_id,
                    subject=subject_of(website_id, None),
                    check=check,
                    status="pass",
                    reason="badge.ok",
                )
            )
    assert subject_of(None, 5) == "domain:5" and subject_of(3, 5) == "site:3"
    del unit_id


def test_scan_lock_refuses_a_second_holder(engine: Engine) -> None:
    with session_scope(engine) as s:
        s.add(ScanLock(name="nightly", holder="host:1"))
    with pytest.raises(sa.exc.IntegrityError), session_scope(engine) as s:
        s.add(ScanLock(name="nightly", holder="host:2"))


def test_annual_report_audit_trail_and_notification(engine: Engine) -> None:
    unit_id, _ = _registry(engine)
    with session_scope(engine) as s:
        user = User(name="center1", role="center")
        report = AnnualReport(
            unit_id=unit_id,
            year=2026,
            organizer="保定市人民政府办公室",
            site_name="保定市人民政府网",
            badge_displayed="是",
            derived_badge={"value": "是", "finding_ids": [1]},
        )
        report.events.append(AnnualReportEvent(to_state="submitted", actor="unit"))
        report.events.append(
            AnnualReportEvent(
                from_state="submitted",
                to_state="rejected",
                actor="center1",
                user=user,
                reason="网站未加挂标识",
            )
        )
        s.add_all([user, report])
        s.add(
            Notification(
                dedupe_key="report:1:rejected:sms", channel="sms", recipient="13800000000", unit_id=unit_id
            )
        )
    with session_scope(engine) as s:
        r = s.scalars(sa.select(AnnualReport)).one()
        assert [(e.from_state, e.to_state) for e in r.events] == [
            ("", "submitted"),
            ("submitted", "rejected"),
        ]
        assert r.derived_badge["finding_ids"] == [1]
        assert r.events[1].user is not None and r.events[1].user.name == "center1"
    with pytest.raises(sa.exc.IntegrityError), session_scope(engine) as s:
        s.add(AnnualReport(unit_id=unit_id, year=2026))
    with pytest.raises(sa.exc.IntegrityError), session_scope(engine) as s:
        s.add(Notification(dedupe_key="report:1:rejected:sms", channel="sms", recipient="13800000000"))


def test_office_name_on_a_date() -> None:
    office = Office(
        code="130602", name="竞秀区编办", former_names=[{"name": "新市区编办", "until": "2015-04-27"}]
    )
    assert office.name_on(date(2015, 3, 31)) == "新市区编办"
    assert office.name_on(date(2015, 4, 28)) == "竞秀区编办"
    gone = Office(code="130603", name="北市区编办", valid_until=date(2015, 4, 27), successor_code="130606")
    assert gone.valid_on(date(2015, 3, 31)) and not gone.valid_on(date(2016, 1, 1))
    assert datetime.now(UTC).tzinfo is UTC


def _compare(engine: Engine, **opts: object) -> list[object]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, **opts})
        return list(compare_metadata(ctx, Base.metadata))


def test_migrations_ignore_the_apscheduler_job_table(db_url: str) -> None:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    engine = make_engine(db_url)
    try:
        upgrade(engine)
        SQLAlchemyJobStore(engine=engine, tablename="apscheduler_jobs").jobs_t.create(engine)
        # Without the hook Alembic would propose dropping APScheduler's table; with it, nothing differs.
        assert any(d[0] == "remove_table" and d[1].name == "apscheduler_jobs" for d in _compare(engine))  # type: ignore[index]
        assert _compare(engine, include_object=include_object) == []
        assert upgrade(engine) == head_revision()
        assert "apscheduler_jobs" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_upgrade_adopts_the_scheduler_tables_it_created_on_demand(db_url: str) -> None:
    """Databases from before 0003: the scheduler made its two tables itself (no key to ``scan``)."""
    engine = make_engine(db_url)
    old = sa.MetaData()
    runs = sa.Table(
        "schedule_run",
        old,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_name", sa.String(100), nullable=False),
        sa.Column("scheduled_for", UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("scan_id", sa.Integer, nullable=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("heartbeat_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("error", sa.Text, nullable=False),
        sa.UniqueConstraint("job_name", "scheduled_for", name="uq_schedule_run_job_name_scheduled_for"),
    )
    stages = sa.Table(
        "schedule_stage",
        old,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("schedule_run.id", ondelete="CASCADE"), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.UniqueConstraint("run_id", "stage", name="uq_schedule_stage_run_id_stage"),
    )
    when = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
    try:
        upgrade(engine, "0002")
        old.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                sa.insert(runs),
                [
                    {
                        "id": 1,
                        "job_name": "nightly",
                        "scheduled_for": when,
                        "status": "finished",
                        "stage": "notify",
                        "scan_id": 999,
                        "holder": "h:1",
                        "spec": {"name": "nightly"},
                        "started_at": when,
                        "heartbeat_at": when,
                        "finished_at": when,
                        "error": "",
                    },
                ],
            )
            conn.execute(
                sa.insert(stages),
                [
                    {
                        "run_id": 1,
                        "stage": "scan",
                        "status": "ok",
                        "attempts": 2,
                        "started_at": when,
                        "finished_at": when,
                        "detail": {"scan_id": 999},
                        "error": "",
                    }
                ],
            )
        assert upgrade(engine) == head_revision()
        with session_scope(engine) as s:
            run = s.scalars(sa.select(ScheduleRun)).one()
            # The scan it named does not exist: the reference goes, the run and its stages stay.
            assert (run.job_name, run.scheduled_for, run.scan_id, run.spec) == (
                "nightly",
                when,
                None,
                {"name": "nightly"},
            )
            assert [(st.stage, st.attempts, st.detail) for st in run.stages] == [
                ("scan", 2, {"scan_id": 999})
            ]
        assert _compare(engine, include_object=include_object) == []
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.update(ScheduleRun).values(scan_id=12345))
    finally:
        engine.dispose()
