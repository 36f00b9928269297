"""Registry import and export against SQLite and PostgreSQL, through the library, the click CLI and
a subprocess."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

import badgewatch
from storage.db import make_engine, upgrade
from storage.models import Domain, Office, Unit, Website
from storage.registry import ImportRefused, RegistryFileError, export_registry, import_registry
from storage.tables import write_xlsx
from tests.storage.helpers import HEADER, KEYS, OFFICE_HEADER, OFFICES, good_rows, row, uscc, write_registry

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("office", "unit", "website", "domain")


def snapshot(engine: Engine, *, with_ids: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the registry tables (timestamps included), in a stable order."""
    out = {}
    with engine.connect() as conn:
        for name in TABLES:
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            cols = [c for c in table.c if with_ids or c.name not in ("id", "unit_id", "website_id")]
            rows = conn.execute(sa.select(*cols)).all()
            out[name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def content(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The registry as a person reads it: ids resolved to natural keys, no timestamps."""
    o, u, w, d = (m.__table__ for m in (Office, Unit, Website, Domain))
    queries = {
        "office": sa.select(
            o.c.code, o.c.name, o.c.parent_code, o.c.level, o.c.roster_count, o.c.email, o.c.mobile
        ),
        "unit": sa.select(
            u.c.uscc, u.c.name, u.c.kind, u.c.office_code, u.c.functions_reviewed, u.c.email, u.c.mobile
        ),
        "website": sa.select(
            w.c.url,
            u.c.uscc,
            w.c.name,
            w.c.icp,
            w.c.police_record,
            w.c.site_code,
            w.c.badge_code,
            w.c.badge_verify_id,
            w.c.badge_status,
            w.c.red_page,
            w.c.is_government_site,
        ).join_from(w, u, u.c.id == w.c.unit_id),
        "domain": sa.select(d.c.ascii, d.c.name, d.c.kind, u.c.uscc, w.c.url, d.c.expiry)
        .join_from(d, u, u.c.id == d.c.unit_id)
        .outerjoin(w, w.c.id == d.c.website_id),
    }
    with engine.connect() as conn:
        return {k: sorted((tuple(r) for r in conn.execute(q)), key=repr) for k, q in queries.items()}


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def refused(engine: Engine, path: Path) -> list[tuple[int, str, str]]:
    with pytest.raises(ImportRefused) as exc:
        import_registry(engine, path)
    return [(e.line, e.column, e.code) for e in exc.value.report.errors]


# --- accepted files ------------------------------------------------------------------------------------


def test_import_writes_what_the_file_says(engine: Engine, tmp_path: Path) -> None:
    report = import_registry(engine, write_registry(tmp_path, good_rows()))
    assert report.written and report.rows == 5 and report.errors == []
    assert (
        report.offices.inserted,
        report.units.inserted,
        report.websites.inserted,
        report.domains.inserted,
    ) == (3, 4, 4, 8)
    data = content(engine)
    hospital = next(u for u in data["unit"] if u[1] == "保定市第一中心医院")
    assert hospital[2] == "事业单位" and hospital[3] == "130600" and hospital[4] is False
    urls = {w[0] for w in data["website"]}
    assert urls == {
        "http://www.bd.gov.cn/",
        "http://www.bdsdyzxyy.cn/",
        "https://www.zhuozhou.gov.cn/",
        "http://zwfw.zhuozhou.gov.cn/",
    }
    doms = {d[1]: d for d in data["domain"]}
    assert doms["涿州.政务"][4] == "https://www.zhuozhou.gov.cn/"  # linked to its row's site
    assert doms["竞秀区教育局.政务"][4] is None  # a unit without a website
    assert str(doms["保定市第一中心医院.公益"][5]) == "2027-06-30"


def test_reimport_is_idempotent_and_an_upsert(engine: Engine, tmp_path: Path) -> None:
    path = write_registry(tmp_path, good_rows())
    import_registry(engine, path)
    before = snapshot(engine)
    again = import_registry(engine, path)
    assert (again.units.inserted, again.units.updated, again.websites.updated, again.domains.updated) == (
        0,
        0,
        0,
        0,
    )
    assert snapshot(engine) == before  # not even a timestamp moved
    rows = good_rows()
    rows[0][KEYS.index("icp")] = "冀ICP备05003092号-1"
    rows[2][KEYS.index("unit_name")] = "竞秀区教育和体育局"
    rows.append(
        row(
            office_code="130602",
            unit_name="竞秀区人民医院",
            uscc=uscc("12", "130602", 5),
            unit_kind="事业单位",
            cn_domains="竞秀区人民医院.公益",
        )
    )
    changed = import_registry(engine, write_registry(tmp_path, rows, name="v2.csv"))
    assert (changed.units.inserted, changed.units.updated, changed.websites.updated) == (1, 1, 1)
    data = content(engine)
    assert {u[1] for u in data["unit"]} >= {"竞秀区教育和体育局", "竞秀区人民医院"}
    assert "竞秀区教育局" not in {u[1] for u in data["unit"]}
    assert any(w[3] == "冀ICP备05003092号-1" for w in data["website"])
    assert counts(engine)["unit"] == 5


def test_two_units_may_swap_names(engine: Engine, tmp_path: Path) -> None:
    rows = good_rows()[:2]
    rows[1] = row(
        office_code="130600", unit_name="保定市教育局", uscc=uscc("11", "130600", 8), unit_kind="党政机关"
    )
    import_registry(engine, write_registry(tmp_path, rows))
    a, b = rows[0][KEYS.index("unit_name")], rows[1][KEYS.index("unit_name")]
    rows[0][KEYS.index("unit_name")], rows[1][KEYS.index("unit_name")] = b, a
    import_registry(engine, write_registry(tmp_path, rows, name="swap.csv"))
    names = {u[0]: u[1] for u in content(engine)["unit"]}
    assert names[uscc("11", "130600", 1)] == b and names[uscc("11", "130600", 8)] == a


def test_gb18030_file(engine: Engine, tmp_path: Path) -> None:
    rows = good_rows()
    rows[0][KEYS.index("unit_name")] = (
        "保定市人民政府办公室（㐀䶵𠀀）"  # GB18030-only characters, one outside the BMP
    )
    path = write_registry(tmp_path, rows, encoding="gb18030")
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    import_registry(engine, path)
    names = {u[1] for u in content(engine)["unit"]}
    assert "保定市人民政府办公室（㐀䶵𠀀）" in names and "保定市第一中心医院" in names


def test_utf8_without_bom_and_english_headers(engine: Engine, tmp_path: Path) -> None:
    path = write_registry(tmp_path, good_rows(), encoding="utf-8", header=KEYS)
    assert not path.read_bytes().startswith(b"\xef\xbb\xbf")
    import_registry(engine, path)
    assert counts(engine)["unit"] == 4


def test_xlsx_with_office_sheet(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "registry.xlsx"
    rows: list[list[Any]] = good_rows()
    # Spreadsheet cells come typed: numbers, dates.
    rows[0][KEYS.index("office_code")] = 130600
    rows[0][KEYS.index("mobile")] = 13803120001
    import datetime as dt

    rows[0][KEYS.index("domain_expiry")] = dt.datetime(2027, 12, 12)
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "登记表"
    ws.append(HEADER)
    for r in rows:
        ws.append(r)
    wo = wb.create_sheet("编办")
    wo.append(OFFICE_HEADER)
    for o in OFFICES:
        wo.append([int(o[0]), o[1], int(o[2]) if o[2] else None, int(o[3]), o[4], o[5]])
    wb.save(path)
    report = import_registry(engine, path)
    assert report.offices.inserted == 3 and report.units.inserted == 4
    data = content(engine)
    gov = next(u for u in data["unit"] if u[1] == "保定市人民政府办公室")
    assert gov[3] == "130600" and gov[6] == "13803120001"
    assert any(str(d[5]) == "2027-12-12" for d in data["domain"] if d[1] == "保定市人民政府.政务")
    assert ("130602", "竞秀区编办", "130600", "county", 96, "", "") in data["office"]


def test_offices_from_a_separate_xlsx(engine: Engine, tmp_path: Path) -> None:
    offices = tmp_path / "offices.xlsx"
    write_xlsx(offices, [("编办", OFFICE_HEADER, OFFICES)])
    path = write_registry(tmp_path, good_rows(), offices=False)
    report = import_registry(engine, path, offices)
    assert report.offices.inserted == 3 and report.offices_file == "offices.xlsx【编办】"


def test_bundled_sample_imports_in_both_formats(engine: Engine) -> None:
    import_registry(engine, ROOT / "docs/examples/sample-registry.csv")
    first = content(engine)
    assert len(first["unit"]) == 20 and len(first["office"]) == 7
    again = import_registry(engine, ROOT / "docs/examples/sample-registry.xlsx")
    assert again.units.unchanged == 20 and again.domains.inserted == 0
    assert content(engine) == first


# --- refused files -------------------------------------------------------------------------------------


def test_every_bad_row_is_listed_with_line_column_and_reason(engine: Engine, tmp_path: Path) -> None:
    rows = good_rows()
    bad = [
        row(
            office_code="130600",
            unit_name="校验位错误",
            uscc=uscc("11", "130600", 11)[:17] + "0",
            unit_kind="党政机关",
        ),
        row(office_code="130600", unit_name="类别矛盾", uscc=uscc("12", "130600", 12), unit_kind="党政机关"),
        row(
            office_code="130600",
            unit_name="公益的机关",
            uscc=uscc("11", "130600", 13),
            unit_kind="党政机关",
            cn_domains="公益的机关.公益",
        ),
        row(
            office_code="130600",
            unit_name="长名",
            uscc=uscc("11", "130600", 14),
            unit_kind="党政机关",
            cn_domains="内蒙古自治区鄂尔多斯市恩格贝生态示范区管委.政务",
        ),
        row(
            office_code="130600",
            unit_name="ICP错",
            uscc=uscc("11", "130600", 15),
            unit_kind="党政机关",
            site_url="http://icp.example.cn/",
            icp="冀ICP备123号",
        ),
        row(office_code="139999", unit_name="无此编办", uscc=uscc("11", "139999", 16), unit_kind="党政机关"),
        row(
            office_code="130600",
            unit_name="重复网址",
            uscc=uscc("12", "130600", 17),
            unit_kind="事业单位",
            site_url="HTTPS://www.bd.gov.cn",
        ),
    ]
    path = write_registry(tmp_path, rows + bad)
    found = refused(engine, path)
    # Header is line 1, the five good rows are lines 2-6.
    assert found == [
        (7, "统一社会信用代码", "uscc.check_char"),
        (8, "统一社会信用代码", "uscc.kind_mismatch"),
        (9, "中文域名", "domain.wrong_kind"),
        (10, "中文域名", "domain.label_too_long"),
        (11, "ICP备案号", "icp.malformed"),
        (12, "编办代码", "office.unknown"),
        (13, "网站地址", "duplicate.site_url"),
    ]
    assert counts(engine) == dict.fromkeys(TABLES, 0)  # all or nothing


def test_messages_are_chinese_and_name_the_line(engine: Engine, tmp_path: Path) -> None:
    rows = good_rows()
    rows[1][KEYS.index("uscc")] = rows[1][KEYS.index("uscc")][:17] + "0"
    with pytest.raises(ImportRefused) as exc:
        import_registry(engine, write_registry(tmp_path, rows))
    text = str(exc.value.report.errors[0])
    assert text.startswith("第3行【统一社会信用代码】") and "校验位错误" in text


def test_multiline_cell_keeps_line_numbers(engine: Engine, tmp_path: Path) -> None:
    rows = good_rows()
    rows[0][KEYS.index("cn_domains")] = "保定市人民政府.政务\n保定.政务"  # line break inside a quoted cell
    rows[3][KEYS.index("icp")] = "bad"
    found = refused(engine, write_registry(tmp_path, rows))
    assert found == [(6, "ICP备案号", "icp.malformed")]  # row 4 starts on line 6 of the file


def test_empty_file(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(RegistryFileError, match="文件为空"):
        import_registry(engine, tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text(",".join(HEADER) + "\n\n", encoding="utf-8")
    with pytest.raises(RegistryFileError, match="没有数据行"):
        import_registry(engine, tmp_path / "header.csv")


def test_missing_required_columns(engine: Engine, tmp_path: Path) -> None:
    keep = [i for i, h in enumerate(HEADER) if h not in ("统一社会信用代码", "机构类别")]
    rows = [[r[i] for i in keep] for r in good_rows()]
    path = write_registry(tmp_path, rows, header=[HEADER[i] for i in keep])
    with pytest.raises(RegistryFileError) as exc:
        import_registry(engine, path)
    assert "缺少必填列" in str(exc.value) and "统一社会信用代码、机构类别" in str(exc.value)
    assert path.name in str(exc.value)


def test_unreadable_encoding(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\x81\x30\xff\xfe\x00garbage")
    with pytest.raises(RegistryFileError, match="编码无法识别"):
        import_registry(engine, path)


def test_bad_office_rows_refuse_the_file(engine: Engine, tmp_path: Path) -> None:
    path = write_registry(tmp_path, good_rows())
    offices = tmp_path / "offices.csv"
    with offices.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(OFFICE_HEADER)
        w.writerows([*OFFICES, ["130682", "定州市编办", "130000", "x", "", ""]])
    with pytest.raises(ImportRefused) as exc:
        import_registry(engine, path, offices)
    assert {(e.line, e.code) for e in exc.value.report.office_errors} == {
        (5, "office.roster_invalid"),
        (5, "office.parent_unknown"),
    }
    assert counts(engine)["office"] == 0


# --- dry run, skip invalid -----------------------------------------------------------------------------


def test_dry_run_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    report = import_registry(engine, write_registry(tmp_path, good_rows()), dry_run=True)
    assert report.dry_run and not report.written and report.rows == 5 and report.errors == []
    assert counts(engine) == dict.fromkeys(TABLES, 0)


def test_skip_invalid_imports_good_rows_and_writes_the_rejected_ones(engine: Engine, tmp_path: Path) -> None:
    rows = good_rows()
    rows[1][KEYS.index("cn_domains")] = "保定市第一中心医院.政务"  # wrong kind for 事业单位
    rows[2][KEYS.index("office_code")] = "130699"
    path = write_registry(tmp_path, rows)
    report = import_registry(engine, path, skip_invalid=True)
    assert report.bad_lines == [3, 4] and report.accepted == 3
    assert report.rejected_file == tmp_path / "registry.rejected.csv"
    with report.rejected_file.open(encoding="utf-8-sig", newline="") as f:
        rejected = list(csv.reader(f))
    assert rejected[0] == ["行号", *HEADER, "错误原因"]
    assert [r[0] for r in rejected[1:]] == ["3", "4"]
    assert rejected[1][1:-1] == rows[1] and "公益" in rejected[1][-1]
    assert "130699" in rejected[2][-1]
    assert {u[1] for u in content(engine)["unit"]} == {"保定市人民政府办公室", "涿州市人民政府"}


# --- export ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_round_trip(engine: Engine, tmp_path: Path, suffix: str) -> None:
    import_registry(engine, ROOT / "docs/examples/sample-registry.csv")
    extra = [
        # The optional columns, several domains, a unit with a site and loose domains.
        row(
            office_code="130602",
            unit_name="竞秀区红十字会",
            uscc=uscc("13", "130602", 21),
            unit_kind="社会组织",
            cn_domains="竞秀区红十字会.公益;竞秀红会.公益",
            site_url="http://hong.example.cn/x/",
            badge_verify_id="0123456789abcdef0123456789ABCDEF",
            government_site="否",
            red_page="是",
            functions_reviewed="是",
            domain_expiry="2028-01-31",
        ),
        row(
            office_code="130602",
            unit_name="竞秀区红十字会",
            uscc=uscc("13", "130602", 21),
            unit_kind="社会组织",
            cn_domains="红会备用.公益",
            en_domains="hh.example.org",
        ),
        row(
            office_code="130681",
            unit_name="涿州市气象局",
            uscc=uscc("11", "130681", 22),
            unit_kind="党政机关",
            site_url="http://qx.zhuozhou.gov.cn:8080/",
            site_code="bm07000001",
            government_site="是",
        ),
    ]
    path = tmp_path / "extra.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([HEADER, *extra])
    import_registry(engine, path)
    before = content(engine)
    assert len(before["unit"]) == 22
    out = tmp_path / f"export{suffix}"
    export_registry(engine, out)
    # Into a second, empty database: the same content.
    other = tmp_path / "other.db"
    second = make_engine(f"sqlite:///{other}")
    upgrade(second)
    try:
        import_registry(second, out)
        assert content(second) == before
        # And exporting again gives the same file content.
        out2 = tmp_path / f"again{suffix}"
        export_registry(second, out2)
        if suffix == ".csv":
            assert out2.read_bytes() == out.read_bytes()
    finally:
        second.dispose()
    # Re-importing the export into the source database changes nothing.
    snap = snapshot(engine)
    import_registry(engine, out)
    assert snapshot(engine) == snap


def test_formula_injection_is_neutralised(engine: Engine, tmp_path: Path) -> None:
    rows = good_rows()
    evil = {
        "site_name": '=HYPERLINK("http://evil.example","点我")',
        "email": "",
        "unit_name": "+保定市人民政府办公室",
    }
    for k, v in evil.items():
        rows[0][KEYS.index(k)] = v
    rows[1][KEYS.index("site_name")] = "@SUM(1+1)"
    rows[3][KEYS.index("site_name")] = "-2+3"
    import_registry(engine, write_registry(tmp_path, rows))
    names = {w[2] for w in content(engine)["website"]}
    assert {'=HYPERLINK("http://evil.example","点我")', "@SUM(1+1)", "-2+3"} <= names
    out = tmp_path / "out.csv"
    export_registry(engine, out)
    cells = [c for r in csv.reader(out.open(encoding="utf-8-sig", newline="")) for c in r]
    assert not any(c[:1] in ("=", "+", "-", "@") for c in cells)
    assert '\'=HYPERLINK("http://evil.example","点我")' in cells and "'+保定市人民政府办公室" in cells
    xlsx = tmp_path / "out.xlsx"
    export_registry(engine, xlsx)
    with zipfile.ZipFile(xlsx) as z:
        sheets = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/")]
    assert sheets and not any("<f>" in s or "<f " in s for s in sheets)
    # The values survive both round trips unchanged.
    for f in (out, xlsx):
        snap = content(engine)
        import_registry(engine, f)
        assert content(engine) == snap


def test_write_xlsx_never_writes_formulas(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    write_xlsx(path, [("s", ["a"], [["=1+1"], ["+1"]])])
    import openpyxl

    ws = openpyxl.load_workbook(path).active
    assert ws is not None
    assert [c.value for c in ws["A"]] == ["a", "=1+1", "+1"]
    assert all(c.data_type == "s" for c in ws["A"])


# --- command line ----------------------------------------------------------------------------------------


def test_cli_import_refusal_and_success(engine: Engine, tmp_path: Path) -> None:
    env = {"BADGEWATCH_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    runner = CliRunner()
    rows = good_rows()
    rows[1][KEYS.index("icp")] = "京ICP备"
    bad = write_registry(tmp_path, rows, name="bad.csv")
    result = runner.invoke(badgewatch.cli, ["registry", "import", str(bad)], env=env)
    assert result.exit_code == 1
    assert "导入被拒绝" in result.output and "第3行【ICP备案号】" in result.output
    result = runner.invoke(badgewatch.cli, ["registry", "import", str(bad), "--dry-run"], env=env)
    assert result.exit_code == 1 and "第3行" in result.output
    good = write_registry(tmp_path, good_rows(), name="good.csv")
    result = runner.invoke(badgewatch.cli, ["registry", "import", str(good), "--dry-run"], env=env)
    assert result.exit_code == 0 and "未写入数据库" in result.output
    result = runner.invoke(badgewatch.cli, ["registry", "import", str(good)], env=env)
    assert result.exit_code == 0, result.output
    assert "机构：新增 4" in result.output
    result = runner.invoke(badgewatch.cli, ["registry", "import", str(bad), "--skip-invalid"], env=env)
    assert result.exit_code == 0 and "bad.rejected.csv" in result.output
    missing = runner.invoke(badgewatch.cli, ["registry", "import", str(tmp_path / "nope.csv")], env=env)
    assert missing.exit_code == 1 and "文件不存在" in missing.output


def test_cli_in_a_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "BADGEWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'sub.db'}"}
    exe = [sys.executable, "-m", "badgewatch"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*exe, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    imp = run("registry", "import", str(ROOT / "docs/examples/sample-registry.xlsx"))
    assert imp.returncode == 0, imp.stderr
    assert "机构：新增 20" in imp.stdout
    with make_engine(env["BADGEWATCH_DATABASE_URL"]).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM unit")).scalar_one() == 20
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    bad = run("registry", "import", str(empty))
    assert bad.returncode != 0 and "文件为空" in bad.stderr


def test_garbage_collector_is_restored(engine: Engine, tmp_path: Path) -> None:
    import gc

    assert gc.isenabled()
    import_registry(engine, write_registry(tmp_path, good_rows()))
    assert gc.isenabled()
    rows = good_rows()
    rows[0][KEYS.index("icp")] = "bad"
    with pytest.raises(ImportRefused):
        import_registry(engine, write_registry(tmp_path, rows, name="bad.csv"))
    assert gc.isenabled()
