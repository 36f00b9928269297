"""The registry header as officials write it, and USCC cells a spreadsheet turned into numbers (pure)."""

from __future__ import annotations

import pytest

from checks.registry import (
    OFFICE_COLUMNS,
    REGISTRY_COLUMNS,
    closest_column,
    find_header_row,
    match_headers,
    parse_badge_status,
    parse_unit_kind,
)
from checks.uscc import check_char, number_problem, uscc_problem

STANDARD = [c.header for c in REGISTRY_COLUMNS]


def test_the_header_is_found_below_a_title_and_a_note() -> None:
    rows = [
        ["保定市2026年度网站及域名登记表", "", ""],
        ["填报单位：保定市委编办（盖章）", "", "填报日期：2026年3月"],
        ["序号", "编办代码", "单位名称", "统一信用代码", "单位性质", "网址"],
        ["1", "130600", "保定市人民政府办公室", "11130600000000001X", "行政机关", "www.bd.gov.cn"],
    ]
    assert find_header_row(rows, REGISTRY_COLUMNS) == 2
    # A file whose first row is the header.
    assert find_header_row([STANDARD, ["130600"] * len(STANDARD)], REGISTRY_COLUMNS) == 0
    # Nothing looks like a header: the first row is reported as one (and found lacking).
    assert find_header_row([["a", "b"], ["c", "d"]], REGISTRY_COLUMNS) == 0


def test_synonyms_officials_use_are_columns() -> None:
    hm = match_headers(
        [
            "序号",
            "编办代码",
            "单位名称",
            "统一信用代码",
            "单位性质",
            "网站首页地址",
            "3、ICP备案编号",
            "电子邮箱",
        ],
        REGISTRY_COLUMNS,
    )
    assert hm.missing == () and hm.unknown == ()  # 序号 is ignored without a remark
    assert hm.positions == {
        "office_code": 1,
        "unit_name": 2,
        "uscc": 3,
        "unit_kind": 4,
        "site_url": 5,
        "icp": 6,
        "email": 7,
    }


@pytest.mark.parametrize(
    ("cell", "suggested"),
    [
        ("统一社会信用码", "统一社会信用代码"),
        ("机构名陈", "机构名称"),
        ("ICP备按号", "ICP备案号"),
        ("政府网站标识吗", "政府网站标识码"),
        ("联系电话", "联系手机"),
    ],
)
def test_an_unknown_header_gets_the_closest_column(cell: str, suggested: str) -> None:
    s = closest_column(cell, REGISTRY_COLUMNS)
    assert s is not None and s.header == suggested


def test_typos_of_absent_columns_are_told_apart_from_extra_columns() -> None:
    header = [
        "编办代码",
        "机构名称",
        "统一社会信用码",
        "机构类别",
        "ICP备按号",
        "联系电话",
        "备注",
        "网站名称",
        "网站名称2",
        "联系人姓名",
    ]
    hm = match_headers(header, REGISTRY_COLUMNS)
    assert hm.missing == ("统一社会信用代码",)
    assert "表头中的“统一社会信用码”是否就是此列" in hm.missing_text()
    # Surely typos of columns the file lacks (their values would be lost if ignored).
    assert {(t.cell, t.header) for t in hm.typos} == {
        ("统一社会信用码", "统一社会信用代码"),
        ("ICP备按号", "ICP备案号"),
    }
    # Merely similar, or similar to a column the file has: ignored, with the suggestion shown.
    shown = hm.ignored_text()
    assert "“联系电话”（是否应为“联系手机”？）" in shown
    assert "备注" in shown
    assert "“网站名称2”（是否应为“网站名称”？）" in shown
    # Close to 联系人手机 and 联系人邮箱 (synonyms of absent columns) but two characters away from each:
    # a column of its own, listed, not refused.
    assert any(x.startswith("“联系人姓名”（是否应为") for x in shown)
    assert closest_column("备注", REGISTRY_COLUMNS) is None


def test_office_sheet_headers() -> None:
    hm = match_headers(["行政区划代码", "编办名称", "上级编办编码", "层级", "机构数"], OFFICE_COLUMNS)
    assert hm.missing == () and set(hm.positions) == {"code", "name", "parent_code", "level", "roster_count"}


def test_unit_kinds_and_badge_statuses_as_written() -> None:
    assert str(parse_unit_kind("行政机关")) == "党政机关"
    assert str(parse_unit_kind("公益一类事业单位")) == "事业单位"
    assert str(parse_unit_kind("参照公务员法管理事业单位")) == "事业单位"
    assert str(parse_unit_kind("民办非企业单位")) == "社会组织"
    assert parse_unit_kind("企业") is None
    assert parse_badge_status("暂未申请") == "未申请"
    assert parse_badge_status("已申请") == "审核中"
    assert parse_badge_status("不知道") is None


def _digit_uscc(prefix: str = "11", division: str = "130600") -> str:
    """A valid USCC of digits only (a code a spreadsheet can take for a number)."""
    for serial in range(1, 1000):
        body = f"{prefix}{division}{serial:09d}"
        if check_char(body).isdigit():
            return body + check_char(body)
    raise AssertionError("no all-digit code")


def test_a_code_stored_as_a_number_is_named_as_such() -> None:
    code = _digit_uscc()
    assert uscc_problem(code) is None and number_problem(code) is None
    as_excel_shows = f"{float(code):.6G}"  # 1.11306E+17
    p = number_problem(as_excel_shows)
    assert p is not None and p.code == "stored_as_number" and "被 Excel 存成了数字" in p.message
    assert "校验位" not in p.message
    full = f"{float(code):.15G}"  # 1.11306000000001E+17
    assert number_problem(full) is not None
    # The digits Excel keeps (15) followed by 000: the check character no longer holds.
    rounded = code[:15] + "000"
    if uscc_problem(rounded) is not None:
        p = number_problem(rounded)
        assert p is not None and p.code == "stored_as_number" and "000" in p.message
    # A code with letters cannot have been a number; a wrong code is not blamed on Excel.
    assert number_problem("91130600MA0ABCDE1X") is None
    assert number_problem(code[:17] + str((int(code[17]) + 1) % 10)) is None
