"""Pure validation of registry rows (checks.registry): one rule at a time, with line and column."""

from __future__ import annotations

from datetime import date

import idna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.registry import (
    REGISTRY_COLUMNS,
    RegistryValidator,
    match_headers,
    parse_date,
    parse_site_url,
    validate_offices,
    validate_row,
)
from storage.registry import site_key_of_stored
from tests.storage.helpers import KEYS, good_rows, uscc

KNOWN = {"130600", "130602", "130681"}


def raw(**changes: str) -> dict[str, str]:
    base = dict(zip(KEYS, good_rows()[0], strict=True))
    base.update(changes)
    return base


def errors_of(**changes: str) -> list[tuple[str, str]]:
    _, errors, _ = validate_row(raw(**changes), 7, KNOWN)
    assert all(e.line == 7 for e in errors)
    return [(e.column, e.code) for e in errors]


def test_good_row_is_normalised() -> None:
    row, errors, warnings = validate_row(
        raw(icp=" 冀ICP备 05003092号 ", police_record="13060202000101", site_url="WWW.BD.GOV.CN"), 2, KNOWN
    )
    assert errors == [] and warnings == []
    assert row is not None
    assert row.icp == "冀ICP备05003092号"
    assert row.police_record == "公网安备13060202000101号"
    assert row.site_url == "http://www.bd.gov.cn/"
    assert row.cn_domains[0].unicode == "保定市人民政府.政务"
    assert row.cn_domains[0].ascii == idna.encode("保定市人民政府.政务").decode()
    assert row.government_site  # it has a 标识码
    assert row.functions_reviewed is True
    assert row.domain_expiry == date(2027, 12, 12)


@pytest.mark.parametrize(
    ("changes", "column", "code"),
    [
        ({"uscc": uscc("11", "130600", 1)[:17] + "X"}, "统一社会信用代码", "uscc.check_char"),
        ({"uscc": uscc("12", "130600", 1)}, "统一社会信用代码", "uscc.kind_mismatch"),
        ({"cn_domains": "保定市人民政府.公益"}, "中文域名", "domain.wrong_kind"),
        (
            {"cn_domains": "内蒙古自治区鄂尔多斯市恩格贝生态示范区管委.政务"},
            "中文域名",
            "domain.label_too_long",
        ),
        ({"cn_domains": "www.bd.gov.cn"}, "中文域名", "domain.not_chinese"),
        ({"en_domains": "保定.政务"}, "英文域名", "domain.not_english"),
        ({"icp": "冀ICP备0500309号"}, "ICP备案号", "icp.malformed"),
        ({"icp": "ICP备05003092号"}, "ICP备案号", "icp.malformed"),
        ({"police_record": "冀公网安备 1306号"}, "公安备案号", "police.malformed"),
        ({"site_code": "13060001"}, "政府网站标识码", "site_code.malformed"),
        ({"badge_code": "CA0500600004130600100"}, "网站标识代码", "badge_code.malformed"),
        ({"office_code": "139999"}, "编办代码", "office.unknown"),
        ({"office_code": ""}, "编办代码", "required"),
        ({"unit_kind": "企业"}, "机构类别", "unit_kind.invalid"),
        ({"site_url": "ftp://www.bd.gov.cn/"}, "网站地址", "site_url.invalid"),
        ({"site_url": "", "site_name": "x"}, "网站地址", "site_url.missing"),
        ({"badge_status": "通过了"}, "标识状态", "badge_status.invalid"),
        ({"functions_reviewed": "也许"}, "职能审核", "functions_reviewed.invalid"),
        ({"domain_expiry": "明年"}, "域名到期日", "domain_expiry.invalid"),
        ({"mobile": "12345"}, "联系手机", "mobile.invalid"),
        ({"email": "not-an-address"}, "联系邮箱", "email.invalid"),
        ({"site_name": "网" * 201}, "网站名称", "site_name.too_long"),
    ],
)
def test_each_rule_names_its_column(changes: dict[str, str], column: str, code: str) -> None:
    assert (column, code) in errors_of(**changes)


def test_every_error_is_reported_not_only_the_first() -> None:
    found = errors_of(office_code="139999", icp="bad", uscc="123")
    assert {c for _, c in found} >= {"office.unknown", "icp.malformed", "uscc.length"}


def test_gov_cn_for_an_institution_is_a_warning_not_an_error() -> None:
    r = raw(
        unit_kind="事业单位",
        uscc=uscc("12", "130600", 9),
        cn_domains="保定医院.公益",
        en_domains="www.bdyy.gov.cn",
        site_code="",
    )
    row, errors, warnings = validate_row(r, 3, KNOWN)
    assert errors == [] and row is not None
    assert [w.code for w in warnings] == ["domain.gov_cn_institution"]


def test_whole_file_rules() -> None:
    rows = good_rows()
    v = RegistryValidator(KNOWN)
    for i, r in enumerate(rows, start=2):
        assert v.add(dict(zip(KEYS, r, strict=True)), i) == []
    dup_site = dict(zip(KEYS, rows[1], strict=True))
    dup_site.update(
        uscc=uscc("12", "130600", 77),
        unit_name="另一医院",
        site_url="https://WWW.bdsdyzxyy.cn",
        cn_domains="",
        en_domains="",
    )
    assert [e.code for e in v.add(dup_site, 10)] == ["duplicate.site_url"]
    dup_domain = dict(zip(KEYS, rows[2], strict=True))
    dup_domain.update(uscc=uscc("11", "130602", 78), unit_name="另一局", cn_domains="保定市人民政府。政务")
    errs = v.add(dup_domain, 11)
    assert [e.code for e in errs] == ["duplicate.domain"] and "第2行" in errs[0].message
    conflict = dict(zip(KEYS, rows[2], strict=True))
    conflict.update(unit_kind="事业单位", uscc=rows[2][KEYS.index("uscc")], cn_domains="")
    # USCC 11… says 党政机关, so the kind contradicts the code itself first.
    assert "uscc.kind_mismatch" in [e.code for e in v.add(conflict, 12)]
    renamed = dict(zip(KEYS, rows[2], strict=True))
    renamed.update(unit_name="竞秀区教育和体育局", cn_domains="")
    assert [e.code for e in v.add(renamed, 13)] == ["duplicate.uscc_conflict"]
    same_name = dict(zip(KEYS, rows[2], strict=True))
    same_name.update(uscc=uscc("11", "130602", 79), cn_domains="")
    assert [e.code for e in v.add(same_name, 14)] == ["duplicate.unit_name"]
    assert v.rejected_lines == [10, 11, 12, 13, 14]
    assert len(v.rows) == 5


def test_headers_chinese_english_and_decorated() -> None:
    cells = [
        "\ufeff编办代码",
        "unit_name",
        " 统一社会信用代码* ",
        "机构类别（党政机关/事业单位）",
        "UNKNOWN",
        "USCC",
    ]
    hm = match_headers(cells, REGISTRY_COLUMNS)
    assert hm.positions["office_code"] == 0 and hm.positions["unit_name"] == 1
    assert hm.positions["uscc"] == 2 and hm.positions["unit_kind"] == 3
    assert hm.unknown == ("UNKNOWN",)
    assert hm.repeated == ("统一社会信用代码",)
    assert hm.missing == ()
    assert match_headers(["机构名称"], REGISTRY_COLUMNS).missing == (
        "编办代码",
        "统一社会信用代码",
        "机构类别",
    )


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2027-12-12", date(2027, 12, 12)),
        ("2027/6/3", date(2027, 6, 3)),
        ("2027.06.03", date(2027, 6, 3)),
        ("2027年6月3日", date(2027, 6, 3)),
        ("20270603", date(2027, 6, 3)),
        ("2027-06-03 00:00:00", date(2027, 6, 3)),
        ("", None),
    ],
)
def test_dates(text: str, want: date | None) -> None:
    assert parse_date(text) == want


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("www.bd.gov.cn", "http://www.bd.gov.cn/"),
        ("HTTPS://WWW.BD.GOV.CN:443", "https://www.bd.gov.cn/"),
        ("http://www.bd.gov.cn:8080/index.html", "http://www.bd.gov.cn:8080/index.html"),
        ("//www.bd.gov.cn/a/", "http://www.bd.gov.cn/a/"),
        ("http://保定市人民政府。政务/", "http://" + idna.encode("保定市人民政府.政务").decode() + "/"),
        ("http://10.1.2.3/", "http://10.1.2.3/"),
    ],
)
def test_site_url_normalisation(text: str, url: str) -> None:
    assert parse_site_url(text).url == url


def test_same_site_under_both_schemes_has_one_key() -> None:
    assert parse_site_url("http://www.bd.gov.cn/").key == parse_site_url("https://www.bd.gov.cn").key


HOSTS = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){1,3}", fullmatch=True)
PATHS = st.from_regex(r"(/[A-Za-z0-9._~-]{0,6}){0,3}/?", fullmatch=True)


@settings(deadline=None)  # the test machine is shared: no per-example deadline
@given(
    st.sampled_from(["http", "https", "HTTP"]),
    HOSTS,
    st.sampled_from(["", ":80", ":443", ":8080"]),
    PATHS,
    st.sampled_from(["", "?a=1"]),
)
def test_stored_url_key_matches_the_parser(scheme: str, host: str, port: str, path: str, query: str) -> None:
    parsed = parse_site_url(f"{scheme}://{host}{port}{path}{query}")
    assert site_key_of_stored(parsed.url) == parsed.key
    assert parse_site_url(parsed.url) == parsed  # normalising is idempotent


def test_offices() -> None:
    rows = [
        (2, {"code": "130600", "name": "保定市编办", "parent_code": "", "roster_count": "412"}),
        (3, {"code": "130602", "name": "竞秀区编办", "parent_code": "130600", "roster_count": "96.0"}),
        (4, {"code": "130602", "name": "重复", "parent_code": "130600"}),
        (5, {"code": "13068", "name": "短码"}),
        (6, {"code": "130681", "name": "涿州市编办", "parent_code": "139900"}),
        (7, {"code": "130682", "name": "", "roster_count": "-1"}),
    ]
    good, errors = validate_offices(rows)
    assert [o.code for o in good] == ["130600", "130602"]
    assert good[0].level == "city" and good[1].level == "county" and good[1].roster_count == 96
    codes = {(e.line, e.code) for e in errors}
    assert codes == {
        (4, "duplicate.office"),
        (5, "office.code_invalid"),
        (6, "office.parent_unknown"),
        (7, "required"),
        (7, "office.roster_invalid"),
    }
