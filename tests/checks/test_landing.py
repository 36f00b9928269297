"""checks.landing: where a page sends its visitor, and the fragments it loads into itself; checks.merge:
a registered address that leads to another unit's pages."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest

from checks.expected import Expected, UnitKind
from checks.landing import find_includes, find_landing, parse_refresh
from checks.merge import settle_merged
from checks.page import Document
from checks.verdict import Status, Verdict

URL = "http://www.example.gov.cn/index.html"


def _land(html: str, headers: dict[str, str] | None = None, url: str = URL) -> tuple[str, str | None] | None:
    got = find_landing(Document(url, html), headers or {})
    return (got.kind, got.target) if got is not None else None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0; url=/cms/", (0.0, "/cms/")),
        ("0;URL='http://a.gov.cn/'", (0.0, "http://a.gov.cn/")),
        ('3;url="b.html"', (3.0, "b.html")),
        ("5,URL=/x", (5.0, "/x")),
        ("0; http://c.gov.cn/", (0.0, "http://c.gov.cn/")),
        ("300", None),  # reloads itself: not a stub
        ("", None),
    ],
)
def test_parse_refresh(value: str, expected: tuple[float, str] | None) -> None:
    assert parse_refresh(value) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ('<meta http-equiv="refresh" content="0;url=/cms/index.html">', ("meta_refresh", "/cms/index.html")),
        ("<META HTTP-EQUIV='Refresh' CONTENT='2; URL=http://www.new.gov.cn/'>",
         ("meta_refresh", "http://www.new.gov.cn/")),
        ('<meta http-equiv="refresh" content="60;url=/other.html"><p>正文</p>', None),  # read first
        ('<meta http-equiv="refresh" content="600">', None),
        ("<!-- <meta http-equiv='refresh' content='0;url=/old/'> -->", None),  # commented out
        ('<script>window.location.href = "/site/";</script>', ("script", "/site/")),
        ("<script>self.location='/a.html'</script>", ("script", "/a.html")),
        ("<script>top.location.replace('http://x.gov.cn/')</script>", ("script", "http://x.gov.cn/")),
        ("<script>document.location = '/d/';</script>", ("script", "/d/")),
        ("<script>location.assign(\"/e/\")</script>", ("script", "/e/")),
        ("<body onload=\"location.href='/f/'\"></body>", ("script", "/f/")),
        ("<script>window.location.href='/'+lang+'/index.html'</script>", ("script", None)),  # computed
        ("<script>if(/iPhone|Android/i.test(navigator.userAgent)){location.href='/m/';}"
         "else{location.href='/pc/';}</script>", ("script", "/pc/")),  # the desktop branch
        ("<script>location.reload()</script>", None),
        ("<script>// location.href='/old/'\n</script>", None),
        ("<script>setTimeout(\"location.href='/later/'\", 0)</script>", ("script", "/later/")),
        ('<frameset rows="80,*"><frame src="/top.html"><frame name="main" src="/main.html"></frameset>',
         ("frameset", "/main.html")),
        ('<frameset rows="20%,80%"><frame src="/head.html"><frame src="/body.html"></frameset>',
         ("frameset", "/body.html")),
        ('<frameset rows="100%,*"><frame src="http://www.real.gov.cn/"></frameset>',
         ("frameset", "http://www.real.gov.cn/")),
        ('<body style="margin:0"><iframe src="/portal/" width="100%" height="100%"></iframe></body>',
         ("iframe", "/portal/")),
        ('<body><h1>某局</h1><iframe src="/foot.html"></iframe></body>', None),  # a footer frame
    ],
)  # fmt: skip
def test_landings(html: str, expected: tuple[str, str | None] | None) -> None:
    got = _land(f"<html><head></head>{html}</html>" if "<body" not in html else f"<html>{html}</html>")
    if expected is None:
        assert got is None
    else:
        kind, target = expected
        assert got == (kind, None if target is None else urljoin(URL, target))


def test_refresh_header() -> None:
    assert _land("<html></html>", {"Refresh": "0;URL='/portal/'"}) == (
        "refresh_header",
        "http://www.example.gov.cn/portal/",
    )
    assert _land("<html></html>", {"refresh": "0; url=/index.html"}) is None  # itself


def _portal(script: str) -> str:
    links = "".join(f'<a href="/n/{i}.html">新闻{i}</a>' for i in range(40))
    body = f"<h1>某市人民政府</h1>{links}<p>{'政务公开' * 100}</p><script>{script}</script>"
    return f"<html><body>{body}</body></html>"


def test_a_portal_moves_its_visitor_only_unconditionally_at_top_level() -> None:
    assert _land(_portal("location.href='/new/';")) == ("script", "http://www.example.gov.cn/new/")
    assert _land(_portal("function go(q){location.href='/search?q='+q}")) is None
    assert _land(_portal("$('#btn').click(function(){window.location.href='/login/'});")) is None
    assert _land(_portal("if(isMobile()) location.href='/m/';")) is None
    assert _land(_portal("var s = x ? '/a/' : '/b/'; // location.href='/c/'")) is None
    assert _land(_portal("var msg = \"location.href='/d/'\";")) is None  # a string, not code


def test_includes_are_literal_markup_fragments() -> None:
    html = (
        "<div id=footer></div><script>$('#footer').load('/inc/footer.html #f');"
        "$.ajax({url:'/inc/head.shtml',success:function(d){$('#h').html(d)}});"
        "var x=new XMLHttpRequest();x.open('GET','/inc/f2.htm',true);"
        "fetch('/api/list.json').then(r=>r.json());$.get('/js/x.js');"
        "fetch(base+'/inc/f3.html')</script>"
        "<!-- <script>$('#a').load('/old.html')</script> -->"
    )
    got = find_includes(Document(URL, html))
    assert got == [
        "http://www.example.gov.cn/inc/footer.html",
        "http://www.example.gov.cn/inc/head.shtml",
        "http://www.example.gov.cn/inc/f2.htm",
    ]


def _v(check: str, status: Status, reason: str) -> Verdict:
    return Verdict(check, status, reason, "detail")


EXPECTED = Expected(
    UnitKind.PARTY_GOV,
    unit_name="某县发展和改革局",
    site_url="http://fgj.county.gov.cn/",
    cn_domains=("某县发展和改革局.政务",),
    en_domains=("fgj.county.gov.cn",),
)
HTTP = _v("http", Status.PASS, "http.ok")


def test_a_site_that_leads_to_another_units_page_is_merged() -> None:
    page = [
        _v("badge", Status.FAIL, "badge.code_mismatch"),
        _v("icp", Status.FAIL, "icp.number_mismatch"),
        _v("police", Status.PASS, "police.ok"),
        _v("site_code", Status.FAIL, "site_code.mismatch"),
    ]
    got = settle_merged(
        "http://fgj.county.gov.cn/", "http://www.county.gov.cn/col/col12/index.html", HTTP, page, EXPECTED
    )
    assert got is not None
    http, checks = got
    assert (http.status, http.reason) == (Status.WARN, "http.merged")
    assert [(v.status, v.reason) for v in checks] == [(Status.UNKNOWN, "http.merged_page")] * 4
    assert http.data["merged_into"] == "http://www.county.gov.cn/col/col12/index.html"


@pytest.mark.parametrize(
    "final",
    [
        "http://fgj.county.gov.cn/portal/index.html",  # the same host
        "http://www.fgj.county.gov.cn/",  # www. of it
        "http://xn--fiq06l2rdsvs4q9c0ehtw.xn--zfr164b/",  # one of the unit's own names
    ],
)
def test_a_site_on_its_own_names_is_not_merged(final: str) -> None:
    page = [_v("badge", Status.FAIL, "badge.code_mismatch")]
    expected = Expected(
        UnitKind.PARTY_GOV,
        site_url="http://fgj.county.gov.cn/",
        cn_domains=("某县发展改革局.政务",),
        en_domains=("fgj.county.gov.cn",),
    )
    from checks.domains import encode_domain

    own_cn = encode_domain("某县发展改革局.政务").ascii
    final = final.replace("xn--fiq06l2rdsvs4q9c0ehtw.xn--zfr164b", own_cn)
    assert settle_merged("http://fgj.county.gov.cn/", final, HTTP, page, expected) is None


def test_moving_away_with_own_badge_and_numbers_is_not_merged() -> None:
    page = [_v("badge", Status.PASS, "badge.ok"), _v("icp", Status.FAIL, "icp.missing")]
    assert settle_merged("http://fgj.county.gov.cn/", "http://www.new.gov.cn/", HTTP, page, EXPECTED) is None
