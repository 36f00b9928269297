"""Annual reports: import (CSV/XLSX, all-or-nothing), derived fields 3 and 5, disagreements, workflow."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import Workbook
from sqlalchemy.orm import Session

from checks.reasons import describe
from reports.annual import TransitionError, derive, disagreements, next_state, transition
from reports.annual_import import AnnualImportError, import_annual
from reports.annual_report import annual_document, annual_listing
from reports.render import render_xlsx
from storage.models import AnnualReport, ReportState, Scan, Unit

from .dbdata import add_scan, new_engine, small_world

HEADER = [
    "年度",
    "统一社会信用代码",
    "1、开办主体名称",
    "2、网站名称",
    "3、中文域名与英文域名的有效性及使用状况",
    "4、职能或业务范围是否经过审核",
    "5、是否加挂网站标识",
]


def _usccs(engine: sa.Engine) -> dict[str, str]:
    with Session(engine) as s:
        return {u.office_code: str(u.uscc) for u in s.scalars(sa.select(Unit))}


def _write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    import csv

    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


@pytest.fixture
def world(tmp_path: Path) -> sa.Engine:
    engine = new_engine(f"sqlite:///{tmp_path / 'bw.db'}")
    small_world(engine)
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    add_scan(
        engine,
        t0,
        [
            ("130600", "badge.missing", "fail", True),
            ("130600", "dns.ok", "pass", False),
            ("130621", "badge.ok", "pass", False),
            ("130621", "dns.nxdomain", "fail", True),
            ("130633", "badge.ok", "pass", False),
            ("130633", "dns.ok", "pass", False),
            ("130633", "usage.parked", "warn", False),
        ],
    )
    # A later scan that settles nothing new: unknowns and an unconfirmed failure.
    add_scan(
        engine,
        t0 + dt.timedelta(days=1),
        [
            ("130600", "http.timeout", "unknown", False),
            ("130621", "dns.timeout", "unknown", False),
            ("130633", "badge.missing", "fail", False),
        ],
    )
    return engine  # type: ignore[no-any-return]


def test_import_derives_fields_and_marks_disagreements(world: sa.Engine, tmp_path: Path) -> None:
    u = _usccs(world)
    path = _write_csv(
        tmp_path / "annual.csv",
        [
            [
                "2026",
                u["130600"],
                "单位130600",
                "网站130600",
                "有效，正常使用",
                "是",
                "是",
            ],  # badge says missing
            ["2026", u["130621"], "单位130621", "网站130621", "有效", "是", "是"],  # domain is NXDOMAIN
            ["2026", u["130633"], "单位130633", "网站130633", "有效，已指向停放页", "否", "是"],  # agrees
        ],
    )
    with Session(world) as s:
        result = import_annual(s, path)
        s.commit()
    assert (result.created, result.resubmitted, result.unchanged) == (3, 0, 0)
    with Session(world) as s:
        reports = {r.unit.office_code: r for r in s.scalars(sa.select(AnnualReport))}
        city, man, yi = reports["130600"], reports["130621"], reports["130633"]
        assert city.derived_badge["value"] == "否" and city.derived_domains["value"] == "有效"
        assert man.derived_domains["value"] == "无效" and man.derived_badge["value"] == "是"
        assert yi.derived_domains["value"] == "有效" and yi.derived_badge["value"] == "是"
        # The derived values rest on the confirmed findings of the first scan, not the later unknowns.
        first_scan = s.scalar(sa.select(sa.func.min(Scan.id)))
        assert city.derived_badge["scan_ids"] == [first_scan] and len(city.derived_badge["finding_ids"]) == 1
        assert "停放" in yi.derived_domains["detail"]
        assert [d[:3] for d in disagreements(city)] == ["字段5"]
        assert [d[:3] for d in disagreements(man)] == ["字段3"]
        assert disagreements(yi) == []
        assert [e.to_state for e in city.events] == ["submitted"]
        listing = annual_listing(s, 2026, "130600")
        doc = annual_document(listing)
        assert listing.to_dict()["reports"][0]["disagreements"]
    assert [sh.name for sh in doc.sheets] == ["保定市", "满城县", "易县"]
    assert doc.sheets[0].highlight == {0} and doc.sheets[2].highlight == set()
    assert render_xlsx(doc)[:2] == b"PK"
    # The same file again changes nothing.
    with Session(world) as s:
        again = import_annual(s, path)
        s.commit()
    assert (again.created, again.unchanged) == (0, 3)


def test_bad_rows_are_all_listed_and_nothing_is_stored(world: sa.Engine, tmp_path: Path) -> None:
    u = _usccs(world)
    path = _write_csv(
        tmp_path / "bad.csv",
        [
            ["2026", u["130600"], "单位130600", "网站", "有效", "是", "是"],
            ["20x6", u["130621"], "单位130621", "网站", "有效", "是", "是"],
            ["2026", "12345678901234567X", "某单位", "网站", "有效", "是", "是"],
            ["2026", u["130633"], "", "网站", "很好", "也许", "大概"],
            ["2026", u["130600"], "单位130600", "网站", "有效", "是", "是"],
        ],
        encoding="gb18030",
    )
    with Session(world) as s, pytest.raises(AnnualImportError) as err:
        import_annual(s, path)
    text = str(err.value)
    lines = {i.line for i in err.value.issues}
    assert lines == {3, 4, 5, 6}
    assert "第3行" in text and "20x6" in text and "12345678901234567X" in text
    assert "开办主体名称" in text and "很好" in text and "也许" in text and "大概" in text
    assert "与第2行重复" in text
    with Session(world) as s:
        assert s.scalar(sa.select(sa.func.count(AnnualReport.id))) == 0


def test_xlsx_import_with_title_row_and_english_headers(world: sa.Engine, tmp_path: Path) -> None:
    u = _usccs(world)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["2026年度网上名称年度报告"])
    ws.append(["uscc", "organizer", "site_name", "domains_status", "functions_reviewed", "badge_displayed"])
    ws.append([u["130621"], "单位130621", "网站130621", "无效", "是", "是"])
    path = tmp_path / "annual.xlsx"
    wb.save(path)
    with Session(world) as s:
        with pytest.raises(AnnualImportError, match="年度"):
            import_annual(s, path)
        result = import_annual(s, path, year=2026)
        s.commit()
    assert result.created == 1 and all(v == [] for v in result.disagreements.values())


def test_workflow_transitions_and_audit_trail(world: sa.Engine, tmp_path: Path) -> None:
    u = _usccs(world)
    path = _write_csv(tmp_path / "a.csv", [["2026", u["130600"], "单位130600", "网站", "有效", "是", "是"]])
    with Session(world) as s:
        import_annual(s, path)
        s.commit()
        r = s.scalars(sa.select(AnnualReport)).one()
        with pytest.raises(TransitionError, match="不能域名中心审核通过"):
            transition(s, r, "approve", "center")
        with pytest.raises(TransitionError, match="原因"):
            transition(s, r, "reject", "office", reason="  ")
        transition(s, r, "office_approve", "office-user")
        transition(s, r, "reject", "center-user", reason="网站未加挂网站标识")
        s.commit()
        assert r.state == ReportState.REJECTED and r.rejection_reason == "网站未加挂网站标识"
        # Resubmission through a corrected import.
        path2 = _write_csv(
            tmp_path / "b.csv", [["2026", u["130600"], "单位130600", "网站", "有效", "是", "否"]]
        )
        import_annual(s, path2)
        s.commit()
        assert r.state == ReportState.SUBMITTED and r.rejection_reason == ""
        transition(s, r, "office_approve", "office-user")
        transition(s, r, "approve", "center-user")
        s.commit()
        trail = [(e.from_state, e.to_state, e.actor) for e in r.events]
        derive(s, r)
        assert disagreements(r) == []
    assert trail == [
        ("", "submitted", "import"),
        ("submitted", "office_approved", "office-user"),
        ("office_approved", "rejected", "center-user"),
        ("rejected", "submitted", "import"),
        ("submitted", "office_approved", "office-user"),
        ("office_approved", "approved", "center-user"),
    ]
    # An approved report cannot be overwritten by an import.
    with Session(world) as s, pytest.raises(AnnualImportError, match="审核通过"):
        import_annual(s, path)


def test_next_state_table() -> None:
    assert next_state("submitted", "office_approve") == ReportState.OFFICE_APPROVED
    assert next_state("office_approved", "approve") == ReportState.APPROVED
    assert next_state("office_approved", "reject") == ReportState.REJECTED
    for state, action in [("approved", "reject"), ("rejected", "approve"), ("submitted", "approve")]:
        with pytest.raises(TransitionError):
            next_state(state, action)
    with pytest.raises(TransitionError, match="未知"):
        next_state("submitted", "delete")


def test_a_failure_in_the_same_scan_outweighs_a_pass(tmp_path: Path) -> None:
    from reports.annual import derive_domains

    engine = new_engine(f"sqlite:///{tmp_path / 'bw.db'}")
    small_world(engine)
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    add_scan(engine, t0, [("130600", "dns.nxdomain", "fail", True)])
    add_scan(
        engine,
        t0 + dt.timedelta(days=1),
        [("130600", "dns.ok", "pass", False), ("130600", "domain.wrong_kind", "fail", True)],
    )
    with Session(engine) as s:
        unit = s.scalars(sa.select(Unit).where(Unit.office_code == "130600")).one()
        derived = derive_domains(s, unit)
    assert derived.value == "无效" and len(derived.scan_ids) == 1
    assert "域名后缀与单位类别不符" in derived.detail


def _derived(value: str, good: int, bad: int, undecided: int) -> dict[str, object]:
    return {"value": value, "counts": {"good": good, "bad": bad, "undecided": undecided}}


@pytest.mark.parametrize(
    ("claim", "derived", "contradiction"),
    [
        ("有效", _derived("有效", 2, 0, 0), False),
        ("有效", _derived("部分无效", 1, 1, 0), True),
        ("有效", _derived("有效（另有1个无法判定）", 1, 0, 1), False),
        ("无效", _derived("有效（另有1个无法判定）", 1, 0, 1), True),
        ("无效", _derived("无效（另有1个无法判定）", 0, 1, 1), False),
        ("部分无效", _derived("无效（另有1个无法判定）", 0, 1, 1), False),  # the undecided one may be valid
        ("部分无效", _derived("无效", 0, 2, 0), True),
        ("无域名", _derived("有效", 1, 0, 0), True),
        ("有效", _derived("无域名", 0, 0, 0), True),
        ("有效", _derived("无法判定", 0, 0, 2), False),
    ],
)
def test_only_certain_contradictions_are_marked(
    claim: str, derived: dict[str, object], contradiction: bool
) -> None:
    report = AnnualReport(domains_status=claim, badge_displayed="", derived_domains=derived, derived_badge={})
    assert bool(disagreements(report)) is contradiction


def test_badge_claims() -> None:
    r = AnnualReport(
        domains_status="",
        badge_displayed="已加挂",
        derived_domains={},
        derived_badge=_derived("部分", 1, 1, 0),
    )
    assert [d[:3] for d in disagreements(r)] == ["字段5"]
    r.badge_displayed = "部分网站已加挂"
    assert disagreements(r) == []
    r.badge_displayed = "不知道"
    assert "无法识别" in disagreements(r)[0]


def test_a_unit_without_a_chinese_domain_shows_in_field_3_and_in_the_office_list(tmp_path: Path) -> None:
    """The scan's unit-level finding (``unit:<id>``, domain.no_chinese) reaches annual field 3 and the
    office's non-compliance list, even though the unit's remaining domains are fine."""
    from reports.annual import derive_domains
    from reports.noncompliance import UNIT_TARGET
    from reports.source import noncompliance_from_db
    from storage.models import Domain, Finding

    engine = new_engine(f"sqlite:///{tmp_path / 'bw.db'}")
    small_world(engine)
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    scan_id = add_scan(engine, t0, [("130621", "dns.ok", "pass", True)])
    with Session(engine) as s:
        unit = s.scalars(sa.select(Unit).where(Unit.office_code == "130621")).one()
        # The unit's Chinese domain was dropped from the registry; an English one remains.
        dom = unit.domains[0]
        dom.name, dom.ascii, dom.kind = "www130621.example.gov.cn", "www130621.example.gov.cn", "english"
        s.add(
            Finding(
                scan_id=scan_id,
                unit_id=unit.id,
                subject=f"unit:{unit.id}",
                check="domain",
                status="fail",
                reason="domain.no_chinese",
                confirmed=True,
                detail="党政机关应注册 .政务 中文域名",
                data={"chinese": [], "registered": ["www130621.example.gov.cn"]},
            )
        )
        s.commit()
        derived = derive_domains(s, unit)
        assert s.scalars(sa.select(Domain).where(Domain.unit_id == unit.id)).one().kind == "english"
    assert derived.value == "部分无效", derived
    assert derived.detail.startswith("中文域名：" + describe("domain.no_chinese").message), derived.detail
    with Session(engine) as s:
        report = noncompliance_from_db(s, scan_id, "130600")
    county = next(o for o in report.offices if o.office_code == "130621")
    assert [(p.record.reason, p.record.target) for p in county.failures] == [
        ("domain.no_chinese", UNIT_TARGET)
    ]
    others = [p for o in report.offices if o.office_code != "130621" for p in o.failures]
    assert others == []
