"""Unit tests of the identifier grammar (checks/numbers.py)."""

from __future__ import annotations

import re

import pytest

from checks.numbers import (
    BADGE_CODE_PATTERN,
    ICP_PATTERN,
    POLICE_PATTERN,
    PROVINCE_CHARS,
    SITE_CODE_LABEL_PATTERN,
    BadgeCode,
    IcpNumber,
    icp_from_match,
    normalise,
    parse_badge_code,
    parse_icp,
    parse_police,
    parse_site_code,
    police_from_match,
    province_code_of_char,
    province_label,
)

# domain.md §8: the GB province codes with their abbreviations.
GB = {
    "11": "京", "12": "津", "13": "冀", "14": "晋", "15": "蒙", "21": "辽", "22": "吉", "23": "黑",
    "31": "沪", "32": "苏", "33": "浙", "34": "皖", "35": "闽", "36": "赣", "37": "鲁", "41": "豫",
    "42": "鄂", "43": "湘", "44": "粤", "45": "桂", "46": "琼", "50": "渝", "51": "川蜀", "52": "黔贵",
    "53": "滇云", "54": "藏", "61": "陕", "62": "甘陇", "63": "青", "64": "宁", "65": "新",
}  # fmt: skip


def test_province_table_matches_domain_reference() -> None:
    for code, chars in GB.items():
        for ch in chars:
            assert province_code_of_char(ch) == code
    assert len(PROVINCE_CHARS) == sum(len(c) for c in GB.values())
    assert province_code_of_char("港") is None
    assert province_label("51") == "川/蜀（51）"


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("京ＩＣＰ备１９０５４５２９号", "京ICP备19054529号"),
        ("蜀ICP备：19007388号", "蜀ICP备:19007388号"),
        ("a\u3000\u00a0 b\n\tc", "a b c"),
        ("19\u200b054529", "19054529"),
        ("－１", "-1"),
    ],
)
def test_normalise(raw: str, want: str) -> None:
    assert normalise(raw) == want


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("京ICP备19054529号", "京ICP备19054529号"),
        ("京ICP备19054529号-1", "京ICP备19054529号-1"),
        ("滇ICP备09010050-5号", "滇ICP备09010050号-5"),  # suffix before 号
        ("蜀ICP备：19007388号", "蜀ICP备19007388号"),  # full-width colon
        ("冀ICP备13123456", "冀ICP备13123456号"),  # missing 号
        ("冀ICP13123456号", "冀ICP备13123456号"),  # missing 备
        ("冀ICP备 13123456号", "冀ICP备13123456号"),  # space before digits
        ("冀 ICP 备 2021012345 号 - 12", "冀ICP备2021012345号-12"),
        ("ICP备案号：京ICP备2021012345号-3", "京ICP备2021012345号-3"),  # a label in a registry cell
        ("京ICP证030173号", "京ICP证030173号"),  # commercial licence
        ("京ＩＣＰ备１９０５４５２９号", "京ICP备19054529号"),
    ],
)
def test_parse_icp_tolerant(raw: str, canonical: str) -> None:
    num = parse_icp(raw)
    assert num is not None, raw
    assert num.canonical() == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "粤B2-20090059",  # a telecom business licence, not an ICP number
        "京ICP备1905452号",  # 7 digits
        "京ICP备190545290号",  # 9 digits
        "京ICP证0301739号",  # licence numbers have 6 digits
        "ICP备19054529号",  # no province
        "港ICP备19054529号",  # not a province of the list
        "19054529",
        "",
        "京ICP备19054529号-1234",  # the site index has at most 3 digits
    ],
)
def test_parse_icp_refuses(raw: str) -> None:
    assert parse_icp(raw) is None


def test_icp_fields() -> None:
    num = parse_icp("蜀ICP备19007388号-2")
    assert num == IcpNumber("蜀", "备", "19007388", "2")
    assert num.province_code == "51"
    assert num.is_filing and num.is_valid
    assert num.canonical(with_suffix=False) == "蜀ICP备19007388号"
    chuan = parse_icp("川ICP备19007388号-2")
    assert chuan is not None and num.same_filing(chuan)
    other = parse_icp("川ICP备19007388号-3")
    assert other is not None
    assert not num.same_filing(other)
    assert num.same_filing(other, ignore_suffix=True)
    assert not num.same_filing(IcpNumber("川", "证", "19007388", "2"))


def test_icp_pattern_finds_malformed_and_reports_why() -> None:
    found = [icp_from_match(m) for m in ICP_PATTERN.finditer(normalise("冀ICP备1312号 ICP备13123456号"))]
    assert [f.digits for f in found] == ["1312", "13123456"]
    assert found[0].problems == ("备案号应为8位或10位数字，实为4位",)
    assert found[1].problems == ("缺少省份简称",)


def test_icp_pattern_finds_numbers_in_running_text() -> None:
    text = normalise(
        "版权所有 © 2024 保定市人民政府 京ICP证030173号 冀ICP备13123456号-1 冀公网安备 13060202000123号"
    )
    nums = [icp_from_match(m).canonical() for m in ICP_PATTERN.finditer(text)]
    assert nums == ["京ICP证030173号", "冀ICP备13123456号-1"]


@pytest.mark.parametrize(
    ("raw", "province", "digits"),
    [
        ("京公网安备 11010502030143号", "京", "11010502030143"),
        ("京公网安备11010502030143号", "京", "11010502030143"),
        ("川公网安备：51010402000123号", "川", "51010402000123"),
        ("冀公网安备1306020200012号", "冀", "1306020200012"),  # 13 digits
        ("京公网安备1101050203号", "京", "1101050203"),  # 10 digits
        ("11010502030143", "", "11010502030143"),  # bare digits as registries hold them
        ("公安机关备案号：13060202000123", "", "13060202000123"),
    ],
)
def test_parse_police(raw: str, province: str, digits: str) -> None:
    num = parse_police(raw)
    assert num is not None, raw
    assert (num.province, num.digits) == (province, digits)
    assert num.division_prefix == digits[:6]
    assert num.province_code == digits[:2]


@pytest.mark.parametrize(
    "raw",
    ["京公网安备 110105020301号", "110105020301", "110105020301433", "京公网安备", "", "京ICP备19054529号"],
)
def test_parse_police_refuses(raw: str) -> None:
    assert parse_police(raw) is None


def test_police_pattern_keeps_malformed() -> None:
    found = [police_from_match(m) for m in POLICE_PATTERN.finditer(normalise("冀公网安备 130602020001号"))]
    assert len(found) == 1 and not found[0].is_valid
    assert "实为12位" in found[0].problems[0]


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("1304000009", "1304000009"),
        ("3208310001", "3208310001"),
        ("bm07000001", "bm07000001"),
        ("BM07000001", "bm07000001"),
        ("网站标识码：1306000001", "1306000001"),
        ("１３０６０００００１", "1306000001"),
        ("130400000", None),
        ("13040000091", None),
        ("bm0700000", None),
        ("CA051070000414687680001", None),
    ],
)
def test_parse_site_code(raw: str, want: str | None) -> None:
    assert parse_site_code(raw) == want


def test_site_code_label_pattern() -> None:
    text = normalise("网站标识码：1306000001 政府网站标识码 bm07000001 网站识别码:130600001")
    assert [m.group("value") for m in SITE_CODE_LABEL_PATTERN.finditer(text)] == [
        "1306000001", "bm07000001", "130600001",
    ]  # fmt: skip
    # The CONAC badge code is labelled 网站标识代码: not a 标识码.
    assert SITE_CODE_LABEL_PATTERN.search("网站标识代码 CA051070000414687680001") is None


def test_badge_code() -> None:
    url = "http://dcs.conac.cn/js/05/107/0000/41468768/CA051070000414687680001.js"
    code = parse_badge_code(url)
    assert code == BadgeCode("05", "107", "0000", "41468768", "0001")
    assert code.canonical() == "CA051070000414687680001"
    assert code.script_path() == "/js/05/107/0000/41468768/CA051070000414687680001.js"
    assert parse_badge_code("ca051070000414687680001") == code
    assert parse_badge_code(" 051070000414687680001 ") == code
    # Directories that disagree with the file name: not this code.
    assert parse_badge_code("//dcs.conac.cn/js/05/107/0000/41468769/CA051070000414687680001.js") is None
    assert parse_badge_code("CA05107000041468768000") is None  # 20 digits
    assert parse_badge_code("CA0510700004146876800012") is None  # 22 digits
    with pytest.raises(ValueError):
        BadgeCode.from_digits("123")


def test_badge_code_pattern_boundaries() -> None:
    text = "xCA051070000414687680001 CA051070000414687680001.js CA0510700004146876800012"
    assert [m.group(1) for m in BADGE_CODE_PATTERN.finditer(text)] == ["051070000414687680001"]
    assert re.fullmatch(r"\d{21}", "051070000414687680001")
