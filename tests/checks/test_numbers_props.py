"""Property tests: no input makes a number check crash or run away, and parsing round-trips."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checks.expected import Expected, UnitKind
from checks.icp import check_icp
from checks.numbers import (
    PROVINCE_CHARS,
    IcpNumber,
    PoliceNumber,
    parse_badge_code,
    parse_icp,
    parse_police,
    parse_site_code,
)
from checks.page import Page
from checks.police import check_police
from checks.reasons import REASONS
from checks.rules import Rules
from checks.sitecode import check_site_code
from checks.verdict import Verdict

EXPECTED = Expected(
    UnitKind.PARTY_GOV,
    division_code="130600",
    icp="冀ICP备13123456号",
    police_record="13060202000123",
    site_code="1306000001",
    is_government_site=True,
)
RULES = Rules()
CHECKS = (check_icp, check_police, check_site_code)

# Markup pieces that exercise every path: triggers, digits, links, comments, scripts, entities, breaks.
PIECES = st.sampled_from(
    [
        "<p>", "</p>", "<span>", "</span>", "<br>", "<div>", "</div>", "<a href='https://beian.miit.gov.cn/'>",
        "<a href=\"http://www.beian.gov.cn/portal/registerSystemInfo?recordcode=13060202000123\">", "</a>",
        "<!--", "-->", "<script>", "</script>", "document.write('", "')", "<img alt='", "'>", "&nbsp;",
        "&amp;",
        "冀", "京", "蜀", "ICP", "ＩＣＰ", "备", "证", "号", "：", "-", "1", "3", "0", "6", "13123456",
        "13060202000123", "公网安备", "网站标识码", "网站识别码", "1306000001", "bm07000001",
        "<meta name='SiteIDCode' content='", "<script id='_jiucuo_' sitecode='", "\n", " ", "\u3000",
        "\u200b", "…", "<td>", "</td>", "<table><tr>", "<textarea>", "<style>", "</style>", "\r\n",
    ]
)  # fmt: skip


def assert_sane(v: Verdict, page: Page) -> None:
    assert v.reason in REASONS
    assert REASONS[v.reason].status is v.status
    for ev in v.evidence:
        if ev.source == "home" and ev.start is not None and ev.end is not None:
            assert page.home.text[ev.start : ev.end] == ev.excerpt


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_random_bytes(body: bytes) -> None:
    page = Page(url="http://www.bd.gov.cn/", body=body)
    for check in CHECKS:
        assert_sane(check(page, EXPECTED, RULES), page)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=80), st.sampled_from(["utf-8", "gb18030", "utf-16"]))
def test_random_markup(pieces: list[str], encoding: str) -> None:
    html = "<html><body>" + "".join(pieces) + "</body></html>"
    page = Page(url="http://www.bd.gov.cn/", body=html.encode(encoding, "replace"))
    for check in CHECKS:
        assert_sane(check(page, EXPECTED, RULES), page)


def test_deep_nesting_and_huge_pages_finish() -> None:
    deep = ("<div><span>" * 20000 + "冀ICP备13123456号" + "</span></div>" * 20000).encode()
    footer = "<div class='f'><a href='https://beian.miit.gov.cn/'>冀ICP备13123456号</a></div>"
    filler = "<p>" + "政务公开信息" * 30 + " 公安 ICP 标识码 </p>\n"
    huge = (
        "<html><body>" + filler * (10_000_000 // len(filler.encode())) + footer + "</body></html>"
    ).encode()
    assert len(huge) > 9_000_000
    one_line = huge.replace(b"\n", b"")
    icp_reasons = []
    for body in (deep, huge, one_line):
        page = Page(url="http://www.bd.gov.cn/", body=body)
        t0 = time.perf_counter()
        results = [check(page, EXPECTED, RULES) for check in CHECKS]
        elapsed = time.perf_counter() - t0
        assert elapsed < 60, elapsed
        for v in results:
            assert_sane(v, page)
        icp_reasons.append(results[0].reason)
    # The footer after 10 MB of trigger-laden text is still read, formatted or minified.
    assert icp_reasons[1:] == ["icp.ok", "icp.ok"]


def test_broken_encodings() -> None:
    footer = "<p><a href='https://beian.miit.gov.cn/'>冀ICP备13123456号</a> 网站标识码：1306000001</p>"
    cases = [
        # GBK bytes declared as UTF-8: the number's ASCII digits survive, the province does not.
        ("<html><head><meta charset='utf-8'></head><body>" + footer + "</body></html>").encode("gbk"),
        # UTF-8 bytes declared as GBK.
        ("<html><head><meta charset='gbk'></head><body>" + footer + "</body></html>").encode("utf-8"),
        # Truncated in the middle of a multi-byte character.
        ("<html><body>" + footer + "</body></html>").encode("utf-8")[:-20] + b"\xe5\x86",
    ]
    for body in cases:
        page = Page(url="http://www.bd.gov.cn/", body=body)
        for check in CHECKS:
            assert_sane(check(page, EXPECTED, RULES), page)


@given(
    st.sampled_from(sorted(PROVINCE_CHARS)),
    st.sampled_from(["备", "证"]),
    st.integers(0, 10**10 - 1),
    st.one_of(st.just(""), st.integers(1, 999).map(str)),
)
def test_icp_round_trip(prov: str, kind: str, n: int, suffix: str) -> None:
    digits = f"{n % 10**6:06d}" if kind == "证" else (f"{n % 10**8:08d}" if n % 2 else f"{n:010d}")
    num = IcpNumber(prov, kind, digits, suffix)
    assert num.is_valid
    assert parse_icp(num.canonical()) == num
    # Tolerated spellings of the same number parse to it too.
    spaced = f"{prov} ICP {kind}：{digits}-{suffix}号" if suffix else f"{prov}ICP{kind} {digits}"
    assert parse_icp(spaced) == num


@given(st.sampled_from(sorted(PROVINCE_CHARS)), st.sampled_from([10, 13, 14]), st.integers(0, 10**14 - 1))
def test_police_round_trip(prov: str, length: int, n: int) -> None:
    digits = f"{n:014d}"[-length:]
    num = PoliceNumber(prov, digits)
    assert parse_police(num.canonical()) == num
    assert parse_police(f"{prov}公网安备 {digits}号") == num
    assert parse_police(digits) == PoliceNumber("", digits)


@given(st.text(max_size=200))
def test_parsers_never_raise(text: str) -> None:
    parse_icp(text)
    parse_police(text)
    parse_site_code(text)
    parse_badge_code(text)
