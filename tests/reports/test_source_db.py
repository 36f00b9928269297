"""Coverage and lists read from a real database (SQLite file, and PostgreSQL where it runs)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from reports.source import ReportInputError, coverage_from_db, noncompliance_from_db

from .dbdata import add_scan, build_baoding, new_engine, small_world
from .seed import seed_table

AS_OF = dt.date(2015, 3, 31)


def _check_baoding(url: str) -> None:
    engine = new_engine(url)
    build_baoding(engine)
    published = seed_table()
    with Session(engine) as s:
        table = coverage_from_db(s, "130600", AS_OF, published=published)
    assert table.rows[0].name == "市直"
    assert {r.name for r in table.rows} == set(published.rows)
    for row in table.rows:
        for key, value in published.rows[row.name].items():
            assert row.value(key) == value, (row.name, key)
    rows = {r.name: r for r in table.rows}
    assert rows["满城县"].coverage_pct == 0
    assert rows["北市区"].coverage_pct == 53
    assert rows["易县"].coverage_pct == 103 and "coverage_over_100" in [f.code for f in rows["易县"].flags]
    assert table.total.coverage_pct == 62
    assert any("63%" in n and "62%" in n for n in table.notes)
    # Districts (区) come before county-level cities (市) and counties (县).
    names = [r.name for r in table.rows]
    assert names.index("新市区") < names.index("安国市") < names.index("满城县")
    engine.dispose()


def test_baoding_registry_reproduces_fujian1_sqlite(tmp_path: Path) -> None:
    _check_baoding(f"sqlite:///{tmp_path / 'bw.db'}")


@pytest.mark.postgres
def test_baoding_registry_reproduces_fujian1_postgres(pg_fresh: str) -> None:
    _check_baoding(pg_fresh)


def test_scan_columns_and_lists_from_db(tmp_path: Path) -> None:
    engine = new_engine(f"sqlite:///{tmp_path / 'bw.db'}")
    small_world(engine)
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    first = add_scan(
        engine,
        t0,
        [
            ("130600", "badge.missing", "fail", True),
            ("130621", "icp.missing", "fail", True),
            ("130633", "badge.ok", "pass", False),
        ],
    )
    second = add_scan(
        engine,
        t0 + dt.timedelta(days=1),
        [
            ("130600", "badge.missing", "fail", True),  # persisting
            ("130621", "icp.ok", "pass", False),  # fixed
            ("130621", "badge.ok", "pass", False),
            ("130621", "dns.ok", "pass", False),
            ("130633", "http.timeout", "unknown", False),  # could not be verified
            ("130633", "police.missing", "fail", False),  # not confirmed: not listed
            ("130633", "dns.nxdomain", "fail", True),  # new
            ("130600", "icp.province_mismatch", "warn", False),
        ],
    )
    with Session(engine) as s:
        table = coverage_from_db(s, "130600", dt.date(2026, 11, 30))
        report = noncompliance_from_db(s, None, "130600", base_url="http://127.0.0.1:8000")
        with pytest.raises(ReportInputError, match="999"):
            noncompliance_from_db(s, 999)
        with pytest.raises(ReportInputError, match="130999"):
            coverage_from_db(s, "130999", dt.date(2026, 11, 30))
    assert table.scan_id == str(second)
    rows = {r.code: r.counts for r in table.rows}
    assert rows["130600"].badge_verified == 0 and rows["130621"].badge_verified == 1
    assert rows["130633"].unverifiable == 1 and rows["130600"].unverifiable == 0
    assert rows["130621"].cn_domains_resolving == 1 and rows["130633"].cn_domains_checked == 1
    assert rows["130633"].cn_domains_resolving == 0
    assert report.scan_id == second and report.previous_scan_id == first
    lists = {o.office_code: o for o in report.offices}
    city, mancheng, yi = lists["130600"], lists["130621"], lists["130633"]
    assert [(p.record.reason, p.change) for p in city.failures] == [("badge.missing", "持续")]
    assert city.failures[0].evidence_url.endswith(f"/findings/{city.failures[0].record.finding_id}")
    assert [p.record.reason for p in city.advice] == ["icp.province_mismatch"]
    assert mancheng.failures == [] and [p.record.reason for p in mancheng.fixed] == ["icp.missing"]
    assert [(p.record.reason, p.change) for p in yi.failures] == [("dns.nxdomain", "新增")]
    assert [p.record.reason for p in yi.unverified] == ["http.timeout"] and yi.pending == 1
    assert yi.failures[0].record.domain == "单位130633.政务"
    # Scoped to a county: only its own list.
    with Session(engine) as s:
        only = noncompliance_from_db(s, second, "130621")
    assert [o.office_code for o in only.offices] == ["130621"]


def test_offices_and_names_valid_on_the_reporting_date(tmp_path: Path) -> None:
    from storage.models import Office, Unit

    engine = new_engine(f"sqlite:///{tmp_path / 'bw.db'}")
    april28 = dt.date(2015, 4, 28)
    with Session(engine) as s:
        s.add(Office(code="130600", name="保定市", level="city", roster_count=10))
        s.flush()
        s.add_all(
            [
                Office(
                    code="130603",
                    name="北市区",
                    parent_code="130600",
                    roster_count=5,
                    valid_until=april28 - dt.timedelta(days=1),
                    successor_code="130606",
                ),
                Office(
                    code="130606", name="莲池区", parent_code="130600", roster_count=9, valid_from=april28
                ),
                Office(
                    code="130602",
                    name="竞秀区",
                    parent_code="130600",
                    roster_count=7,
                    former_names=[{"name": "新市区", "until": "2015-04-27"}],
                ),
            ]
        )
        s.flush()
        s.add(Unit(name="某局", kind="党政机关", office_code="130602"))
        s.commit()
        before = coverage_from_db(s, "130600", AS_OF)
        after = coverage_from_db(s, "130600", dt.date(2016, 1, 1))
    assert [(r.code, r.name) for r in before.rows] == [
        ("130600", "市直"),
        ("130602", "新市区"),
        ("130603", "北市区"),
    ]
    assert [(r.code, r.name) for r in after.rows] == [
        ("130600", "市直"),
        ("130602", "竞秀区"),
        ("130606", "莲池区"),
    ]
    assert before.total.counts.institutions == 10 + 7 + 5 and after.total.counts.institutions == 10 + 7 + 9
