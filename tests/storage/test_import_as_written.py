"""Registry files written the way officials write them (issue #16, item 6), against SQLite and PostgreSQL.

Real XLSX written with openpyxl (a merged title row and a blank row above the header, synonym headers,
codes typed into General cells that Excel stores as numbers) and CSV in UTF-8 with BOM and GB18030, as
Excel and WPS save them. Every expectation comes from the rows the test writes.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

import badgewatch
from checks.uscc import check_char
from storage.db import describe_database, make_engine, upgrade
from storage.models import Domain, Office, Unit, Website
from storage.registry import ImportRefused, RegistryFileError, export_registry, import_registry

TITLE = "保定市2026年度网站及域名登记表"
# The header as a city office's template writes it: a running number, synonyms for four columns.
OFFICIAL_HEADER = [
    "序号",
    "编办代码",
    "单位名称",
    "统一信用代码",
    "单位性质",
    "中文域名",
    "网站名称",
    "网址",
    "ICP备案编号",
    "标识状态",
    "联系人手机",
]
OFFICES_SHEET = [
    ["编办代码", "编办名称", "上级编办代码", "机构数", "级别"],
    [130600, "保定市编办", None, 412, "市"],
    [130602, "竞秀区编办", 130600, 96, "县"],
    [130681, "涿州市编办", 130600, 142, "县级"],
]


def digit_uscc(prefix: str, division: str, start: int) -> str:
    """A valid USCC of digits only (one a spreadsheet takes for a number), serial from ``start`` on."""
    for serial in range(start, start + 1000):
        body = f"{prefix}{division}{serial:09d}"
        if check_char(body).isdigit():
            return body + check_char(body)
    raise AssertionError("no all-digit code")


GOV = digit_uscc("11", "130600", 1)
HOSPITAL = digit_uscc("12", "130600", 100)
BUREAU = digit_uscc("11", "130602", 200)
ZHUOZHOU = digit_uscc("11", "130681", 300)


def official_rows() -> list[list[Any]]:
    """Four units as an office writes them: 行政机关 / 公益一类事业单位 for the kinds, ``无`` for the
    site of a unit without one and ``未申请`` for its badge."""
    return [
        [1, 130600, "保定市人民政府办公室", GOV, "行政机关", "保定市人民政府.政务", "保定市人民政府网",
         "www.bd.gov.cn", "冀ICP备05003092号", "已通过", "13803120001"],
        [2, 130600, "保定市第一中心医院", HOSPITAL, "公益一类事业单位", "保定市第一中心医院.公益",
         "保定市第一中心医院", "http://www.bdsdyzxyy.cn/", "冀ICP备12004512号-1", "审核中", ""],
        [3, 130602, "竞秀区教育局", BUREAU, "行政机关", "竞秀区教育局.政务", "无", "无", "无", "未申请",
         ""],
        [4, 130681, "涿州市人民政府", ZHUOZHOU, "行政机关", "涿州市人民政府.政务", "涿州市人民政府网",
         "https://www.zhuozhou.gov.cn/", "冀ICP备05009911号", "已通过", "13903120004"],
    ]  # fmt: skip


def write_official_xlsx(path: Path, rows: list[list[Any]], *, as_numbers: bool = False) -> Path:
    """The registry as a workbook: a merged title over the header, a blank row, the header on row 3,
    and a 编办 sheet. ``as_numbers``: the USCC cells hold what Excel stores when an 18-digit code is
    typed into a General cell (a double: 15 significant digits)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "登记表"
    ws.append([TITLE])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(OFFICIAL_HEADER))
    ws.append([])
    ws.append(OFFICIAL_HEADER)
    for r in rows:
        cells = list(r)
        if as_numbers:
            cells[3] = float(cells[3])
        ws.append(cells)
    if as_numbers:
        for (cell,) in ws.iter_rows(min_row=4, min_col=4, max_col=4):
            cell.number_format = "0"  # what an official sets to "see all the digits"
    wo = wb.create_sheet("编办")
    for r in OFFICES_SHEET:
        wo.append(r)
    wb.save(path)
    return path


def write_official_csv(path: Path, rows: list[list[Any]], encoding: str) -> Path:
    """The same registry saved by Excel/WPS as CSV: the title row, a blank row, then the header."""
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow([TITLE] + [""] * (len(OFFICIAL_HEADER) - 1))
        w.writerow([""] * len(OFFICIAL_HEADER))
        w.writerow(OFFICIAL_HEADER)
        w.writerows([["" if c is None else str(c) for c in r] for r in rows])
    offices = path.with_name(f"{path.stem}.编办.csv")
    with offices.open("w", encoding=encoding, newline="") as f:
        csv.writer(f).writerows([["" if c is None else str(c) for c in r] for r in OFFICES_SHEET])
    return path


def units(engine: Engine) -> dict[str, tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Unit.uscc, Unit.name, Unit.kind, Unit.office_code))
        return {r.uscc: (r.name, r.kind, r.office_code) for r in rows}


def sites(engine: Engine) -> dict[str, tuple[str, str, str]]:
    with engine.connect() as conn:
        q = sa.select(Website.url, Website.icp, Website.badge_status, Unit.uscc).join(
            Unit, Unit.id == Website.unit_id
        )
        return {r.url: (r.uscc, r.icp, r.badge_status) for r in conn.execute(q)}


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            m.__tablename__: conn.execute(sa.select(sa.func.count()).select_from(m)).scalar_one()
            for m in (Office, Unit, Website, Domain)
        }


EXPECTED_UNITS = {
    GOV: ("保定市人民政府办公室", "党政机关", "130600"),
    HOSPITAL: ("保定市第一中心医院", "事业单位", "130600"),
    BUREAU: ("竞秀区教育局", "党政机关", "130602"),
    ZHUOZHOU: ("涿州市人民政府", "党政机关", "130681"),
}
EXPECTED_SITES = {
    "http://www.bd.gov.cn/": (GOV, "冀ICP备05003092号", "已通过"),
    "http://www.bdsdyzxyy.cn/": (HOSPITAL, "冀ICP备12004512号-1", "审核中"),
    "https://www.zhuozhou.gov.cn/": (ZHUOZHOU, "冀ICP备05009911号", "已通过"),
}


# --- title rows, synonyms, "无" and 未申请 ----------------------------------------------------------------


def test_xlsx_with_a_title_synonyms_and_a_unit_without_a_site(engine: Engine, tmp_path: Path) -> None:
    path = write_official_xlsx(tmp_path / "登记表.xlsx", official_rows())
    report = import_registry(engine, path)
    assert report.errors == [] and report.office_errors == [] and report.rows == 4
    assert report.header_line == 3 and report.title_rows == [(1, TITLE)]
    assert report.ignored_columns == []  # 序号 is expected, not "unknown"
    assert units(engine) == EXPECTED_UNITS
    # The unit without a website (``无`` in the site columns, 标识状态 未申请) has no site row.
    assert sites(engine) == EXPECTED_SITES
    with engine.connect() as conn:
        mobile = conn.execute(sa.select(Unit.mobile).where(Unit.uscc == GOV)).scalar_one()
        levels = dict(conn.execute(sa.select(Office.code, Office.level)).all())
    assert mobile == "13803120001"
    assert levels == {"130600": "city", "130602": "county", "130681": "county"}


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_csv_with_a_title_row_in_both_encodings(engine: Engine, tmp_path: Path, encoding: str) -> None:
    rows = official_rows()
    rows[1][2] = "保定市第一中心医院（㐀𠀀）"  # GB18030-only characters, one outside the BMP
    path = write_official_csv(tmp_path / "registry.csv", rows, encoding)
    if encoding == "gb18030":
        with pytest.raises(UnicodeDecodeError):
            path.read_bytes().decode("utf-8")
    report = import_registry(engine, path)
    assert report.header_line == 3 and report.title_rows == [(1, TITLE)] and report.rows == 4
    expected = dict(EXPECTED_UNITS)
    expected[HOSPITAL] = ("保定市第一中心医院（㐀𠀀）", "事业单位", "130600")
    assert units(engine) == expected


def test_errors_below_a_title_name_the_physical_line(engine: Engine, tmp_path: Path) -> None:
    rows = official_rows()
    rows[3][8] = "冀ICP备123号"  # the fourth data row: sheet row 3 (header) + 4 = 7
    with pytest.raises(ImportRefused) as exc:
        import_registry(engine, write_official_xlsx(tmp_path / "r.xlsx", rows))
    assert [(e.line, e.column, e.code) for e in exc.value.report.errors] == [
        (7, "ICP备案号", "icp.malformed")
    ]
    assert counts(engine) == {"office": 0, "unit": 0, "website": 0, "domain": 0}


def test_badge_status_claimed_without_a_site_is_refused_with_the_way_out(
    engine: Engine, tmp_path: Path
) -> None:
    rows = official_rows()
    rows[2][9] = "已通过"  # a badge without a website
    with pytest.raises(ImportRefused) as exc:
        import_registry(engine, write_official_xlsx(tmp_path / "r.xlsx", rows))
    (error,) = exc.value.report.errors
    assert (error.line, error.column, error.code) == (6, "网站地址", "site_url.missing")
    assert "标识状态" in error.message and "未申请" in error.message


# --- headers that are not the standard ones --------------------------------------------------------------


def test_a_misspelt_required_header_is_refused_with_a_suggestion(engine: Engine, tmp_path: Path) -> None:
    path = write_official_xlsx(tmp_path / "r.xlsx", official_rows())
    wb = openpyxl.load_workbook(path)
    wb["登记表"]["D3"] = "统一社会信用码"
    wb.save(path)
    with pytest.raises(RegistryFileError) as exc:
        import_registry(engine, path)
    text = str(exc.value)
    assert "第3行的表头" in text and "缺少必填列：统一社会信用代码" in text
    assert "表头中的“统一社会信用码”是否就是此列" in text
    assert counts(engine)["unit"] == 0


def test_a_misspelt_optional_header_refuses_rather_than_drops_the_column(
    engine: Engine, tmp_path: Path
) -> None:
    path = write_official_xlsx(tmp_path / "r.xlsx", official_rows())
    wb = openpyxl.load_workbook(path)
    wb["登记表"]["I3"] = "ICP备按号"
    wb.save(path)
    with pytest.raises(RegistryFileError) as exc:
        import_registry(engine, path)
    assert "“ICP备按号”（是否应为“ICP备案号”？）" in str(exc.value)
    assert counts(engine)["unit"] == 0


def test_other_unknown_headers_are_ignored_and_named_with_a_suggestion(
    engine: Engine, tmp_path: Path
) -> None:
    path = write_official_xlsx(tmp_path / "r.xlsx", official_rows())
    wb = openpyxl.load_workbook(path)
    ws = wb["登记表"]
    ws["L3"], ws["M3"] = "联系电话", "备注"
    ws["L4"], ws["M4"] = "0312-5012345", "市政府门户"
    wb.save(path)
    report = import_registry(engine, path)
    assert report.ignored_columns == ["“联系电话”（是否应为“联系手机”？）", "备注"]
    assert units(engine) == EXPECTED_UNITS


# --- codes Excel stored as numbers -----------------------------------------------------------------------


def test_uscc_cells_stored_as_numbers_are_named_as_such(engine: Engine, tmp_path: Path) -> None:
    path = write_official_xlsx(tmp_path / "numbers.xlsx", official_rows(), as_numbers=True)
    with pytest.raises(ImportRefused) as exc:
        import_registry(engine, path)
    errors = exc.value.report.errors
    assert [(e.line, e.column, e.code) for e in errors] == [
        (line, "统一社会信用代码", "uscc.stored_as_number") for line in (4, 5, 6, 7)
    ]
    for e in errors:
        assert "该单元格被 Excel 存成了数字" in e.message and "文本" in e.message
        assert "校验位" not in str(e)  # not a check-digit error on a value the official never typed


def test_uscc_mangled_by_a_csv_round_trip_through_excel(engine: Engine, tmp_path: Path) -> None:
    rows = official_rows()
    rows[0][3] = f"{float(GOV):.6G}"  # what Excel writes to CSV for a General cell: 1.11306E+17
    rows[1][3] = HOSPITAL[:15] + "000"  # what WPS writes: 15 digits kept, the rest zeros
    assert check_char(rows[1][3][:17]) != rows[1][3][17], "pick a code whose rounding breaks the check"
    path = write_official_csv(tmp_path / "r.csv", rows, "utf-8-sig")
    with pytest.raises(ImportRefused) as exc:
        import_registry(engine, path)
    found = [(e.line, e.code) for e in exc.value.report.errors]
    assert found == [(4, "uscc.stored_as_number"), (5, "uscc.stored_as_number")]
    assert "显示为 1.11306E+17" in exc.value.report.errors[0].message


# --- rejected rows in the input's format ------------------------------------------------------------------


def test_rejected_rows_of_an_xlsx_come_back_as_xlsx_with_text_codes(engine: Engine, tmp_path: Path) -> None:
    rows = official_rows()
    rows[1][3] = float(HOSPITAL)  # stored as a number
    rows[3][7] = "http://"  # no host
    path = write_official_xlsx(tmp_path / "登记表.xlsx", rows)
    wb = openpyxl.load_workbook(path)
    wb["编办"].append([130699, "", 130600, "x", "县"])  # an office row without a name, a bad count
    wb.save(path)
    report = import_registry(engine, path, skip_invalid=True)
    assert report.bad_lines == [5, 7] and report.accepted == 2
    assert report.rejected_file == tmp_path / "登记表.rejected.xlsx"
    assert report.rejected_offices_file is None  # the 编办 sheet's rejects are in the same workbook
    assert set(units(engine)) == {GOV, BUREAU}

    out = openpyxl.load_workbook(report.rejected_file)
    assert out.sheetnames == ["登记表", "编办"]
    ws = out["登记表"]
    header = [c.value for c in ws[1]]
    assert header == ["行号", *OFFICIAL_HEADER, "错误原因"]
    body = list(ws.iter_rows(min_row=2))
    assert [r[0].value for r in body] == ["5", "7"]
    assert [r[3].value for r in body] == ["保定市第一中心医院", "涿州市人民政府"]
    # Code columns are text cells in text format, so Excel keeps what is typed into them as typed.
    for r in body:
        for col in ("编办代码", "统一信用代码", "ICP备案编号", "联系人手机"):
            cell = r[header.index(col)]
            assert cell.number_format == "@", (col, cell.number_format)
            assert cell.value is None or cell.data_type == "s", (col, cell.value)
    uscc_col = header.index("统一信用代码") + 1
    assert ws.column_dimensions[openpyxl.utils.get_column_letter(uscc_col)].number_format == "@"
    assert ws.column_dimensions["C"].width >= len("130600")  # columns as wide as their values
    assert "被 Excel 存成了数字" in body[0][-1].value and "网站地址" in body[1][-1].value
    assert body[1][header.index("编办代码")].value == "130681"
    offices = [[c.value for c in r] for r in out["编办"].iter_rows()]
    assert offices[0][0] == "行号" and offices[1][:2] == ["5", "130699"]
    assert "编办名称不能为空" in offices[1][-1] and "机构数" in offices[1][-1]

    # The official corrects the two rows and the office in the rejected workbook and imports it as is.
    ws[f"E{2}"] = HOSPITAL
    ws[f"I{3}"] = "https://www.zhuozhou.gov.cn/"
    out["编办"]["C2"] = "定兴县编办"
    out["编办"]["E2"] = "85"
    out.save(report.rejected_file)
    again = import_registry(engine, report.rejected_file)
    assert again.errors == [] and again.ignored_columns == []  # 行号 and 错误原因 are ignored quietly
    assert units(engine) == EXPECTED_UNITS and sites(engine) == EXPECTED_SITES


def test_rejected_rows_of_a_csv_come_back_as_csv_with_bom(engine: Engine, tmp_path: Path) -> None:
    rows = official_rows()
    rows[2][4] = "企业"  # not a unit kind
    path = write_official_csv(tmp_path / "registry.csv", rows, "gb18030")
    report = import_registry(engine, path, skip_invalid=True)
    assert report.rejected_file == tmp_path / "registry.rejected.csv"
    raw = report.rejected_file.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, whatever the input's encoding
    rejected = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rejected[0] == ["行号", *OFFICIAL_HEADER, "错误原因"]
    assert rejected[1][0] == "6" and rejected[1][3] == "竞秀区教育局" and "机构类别" in rejected[1][-1]


# --- export keeps what was imported -----------------------------------------------------------------------


def test_export_keeps_levels_in_chinese_with_widths_and_round_trips(engine: Engine, tmp_path: Path) -> None:
    import_registry(engine, write_official_xlsx(tmp_path / "in.xlsx", official_rows()))
    out = tmp_path / "export.xlsx"
    export_registry(engine, out)
    wb = openpyxl.load_workbook(out)
    offices = [[c.value for c in r] for r in wb["编办"].iter_rows()]
    level = offices[0].index("级别")
    assert {r[0]: r[level] for r in offices[1:]} == {"130600": "市", "130602": "县", "130681": "县"}
    ws = wb["登记表"]
    header = [c.value for c in ws[1]]
    assert ws.freeze_panes == "A2"
    for i, name in enumerate(header, start=1):
        dim = ws.column_dimensions[openpyxl.utils.get_column_letter(i)]
        assert dim.number_format == "@" and dim.width >= 2 * len(name), name
    uscc_width = ws.column_dimensions[openpyxl.utils.get_column_letter(header.index("统一社会信用代码") + 1)]
    assert uscc_width.width >= 18
    unit_kinds = {r[header.index("机构类别")].value for r in ws.iter_rows(min_row=2)}
    assert unit_kinds == {"党政机关", "事业单位"}
    csv_out = tmp_path / "export.csv"
    export_registry(engine, csv_out)
    with csv_out.with_name("export.编办.csv").open(encoding="utf-8-sig", newline="") as f:
        assert {r["编办代码"]: r["级别"] for r in csv.DictReader(f)}["130600"] == "市"
    # Into an empty database and back: the same offices, units and sites.
    second = make_engine(f"sqlite:///{tmp_path / 'second.db'}")
    upgrade(second)
    try:
        import_registry(second, out)
        assert units(second) == units(engine) and sites(second) == sites(engine)
        with second.connect() as conn:
            assert dict(conn.execute(sa.select(Office.code, Office.level)).all()) == {
                "130600": "city",
                "130602": "county",
                "130681": "county",
            }
    finally:
        second.dispose()


# --- the command line ------------------------------------------------------------------------------------


def test_cli_says_which_database_and_marks_a_dry_run(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    env = {"BADGEWATCH_DATABASE_URL": url}
    runner = CliRunner()
    path = write_official_xlsx(tmp_path / "r.xlsx", official_rows())
    dry = runner.invoke(badgewatch.cli, ["registry", "import", str(path), "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    lines = dry.output.splitlines()
    assert lines[0].startswith("【仅检查】") and f"数据库：{describe_database(url)}" in lines
    assert "表头在第3行" in dry.output and TITLE in dry.output
    assert any(line.startswith("【仅检查】检查完成，未写入数据库") for line in lines)
    assert counts(engine)["unit"] == 0
    bad_rows = official_rows()
    bad_rows[0][3] = float(GOV)
    bad = write_official_xlsx(tmp_path / "bad.xlsx", bad_rows)
    refused = runner.invoke(badgewatch.cli, ["registry", "import", str(bad), "--dry-run"], env=env)
    assert refused.exit_code == 1
    assert (
        "【仅检查】bad.xlsx 中有 1 行错误" in refused.output and "第4行【统一社会信用代码】" in refused.output
    )
    done = runner.invoke(badgewatch.cli, ["registry", "import", str(path)], env=env)
    assert done.exit_code == 0 and "【仅检查】" not in done.output and "机构：新增 4" in done.output
    assert f"数据库：{describe_database(url)}" in done.output
    exported = runner.invoke(badgewatch.cli, ["registry", "export", str(tmp_path / "e.xlsx")], env=env)
    assert exported.exit_code == 0 and f"数据库：{describe_database(url)}" in exported.output
    init = runner.invoke(badgewatch.cli, ["init"], env=env)
    assert init.exit_code == 0 and describe_database(url) in init.output


def test_database_descriptions_never_show_a_password(tmp_path: Path) -> None:
    assert describe_database(f"sqlite:///{tmp_path / 'x.db'}") == (
        f"SQLite 数据库文件 {tmp_path / 'x.db'}（尚不存在，将新建空库）"
    )
    (tmp_path / "x.db").touch()
    assert describe_database(f"sqlite:///{tmp_path / 'x.db'}") == f"SQLite 数据库文件 {tmp_path / 'x.db'}"
    text = describe_database("postgresql://bw:s3cret@db.example:5433/badgewatch")
    assert text == "PostgreSQL 数据库 badgewatch（db.example:5433，用户 bw）" and "s3cret" not in text


def test_a_missing_file_or_a_dry_run_leaves_no_new_database(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    env = {"BADGEWATCH_DATABASE_URL": f"sqlite:///{db}"}
    runner = CliRunner()
    missing = runner.invoke(badgewatch.cli, ["registry", "import", str(tmp_path / "登记表.xlsx")], env=env)
    assert missing.exit_code == 1 and "文件不存在" in missing.output
    assert "Error" not in missing.output  # refusals read in Chinese only
    path = write_official_xlsx(tmp_path / "r.xlsx", official_rows())
    dry = runner.invoke(badgewatch.cli, ["registry", "import", str(path), "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "仅检查时不新建：按空库检查" in dry.output and "有效 4 行" in dry.output
    assert not db.exists()
