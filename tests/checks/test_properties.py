"""No input makes a check crash or run away: random bytes, random markup soup, deep nesting, 10 MB pages,
broken encodings, random JavaScript and random images — over ALL checks of the suite."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checks.badge_image import image_signature
from checks.badge_js import inserted_markup
from checks.expected import Expected, UnitKind
from checks.page import Document, Need, NeedKind, Page
from checks.suite import run_checks

EXPECTED = Expected(
    UnitKind.PARTY_GOV,
    unit_name="保定市人民政府",
    site_url="http://www.bd.gov.cn/",
    badge_code="CA051060000123456780001",
    icp="冀ICP备05007325号",
    division_code="130600",
    police_record="冀公网安备13060202000101号",
    site_code="1306000001",
    is_government_site=True,
)
URL = "http://www.bd.gov.cn/"

FRAGMENTS = [
    "<div>",
    "</div>",
    "<p>",
    "<span id='_ideConac'>",
    "</span>",
    "<a href='#'>",
    "</a>",
    "<table><tr><td>",
    '<a href="//bszs.conac.cn/sitename?method=show&amp;id=3F2A9C1B7D4E8F60A1B2C3D4E5F60718">',
    "<img src='//dcs.conac.cn/image/red.png' alt='党政机关'>",
    "<img src='/x.png' wzades='事业单位'>",
    "<script>document.write(unescape('%3Cspan id=_ideConac%3E'));</script>",
    "<script src='http://dcs.conac.cn/js/05/106/0000/12345678/CA051060000123456780001.js'></script>",
    "<script async src='/js/f.js'></script>",
    "<script>var s='';s+='<a href=\"//bszs.conac.cn/\">';</script>",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<iframe src='/f.html'></iframe>",
    "<noscript>",
    "<template>",
    "冀ICP备05007325号",
    "冀公网安备 13060202000101号",
    "网站标识码：1306000001",
    "<br>",
    "＜",
    "\x00",
    "<meta charset='gbk'>",
    "<meta name='SiteIDCode' content='1306000001'>",
    "&amp;",
    "&#x4e2d;",
    "&bogus;",
    "<script id='_jiucuo_' sitecode='1306000001' src='https://zfwzgl.www.gov.cn/exposure/jiucuo.js'></script>",
    "<a href='https://beian.miit.gov.cn/'>",
    "<style>a{}</style>",
    "<title>",
    "</html>",
    "<?xml?>",
    "\r\n",
]


def _run(page: Page, budget_s: float) -> None:
    start = time.perf_counter()
    result = run_checks(page, EXPECTED)
    # Feed every need back as failed: a second pass must settle without asking again.
    for need in result.needs:
        page.mark_failed(need, "test")
    again = run_checks(page, EXPECTED)
    elapsed = time.perf_counter() - start
    assert not result.errors and not again.errors, (result.errors, again.errors)
    assert not set(again.needs) & set(result.needs), "asked again for a sub-resource that failed"
    for v in (*result.verdicts.values(), *again.verdicts.values()):
        assert v.reason  # every verdict names its reason
    assert elapsed < budget_s, f"checks took {elapsed:.1f}s"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=20_000),
    charset=st.sampled_from(["", "utf-8", "gbk", "gb2312", "big5", "bogus", "utf-16", "latin-1"]),
)
def test_random_bytes(body: bytes, charset: str) -> None:
    ctype = f"text/html; charset={charset}" if charset else "text/html"
    _run(Page(url=URL, body=body, headers={"Content-Type": ctype}), budget_s=5)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=30)), max_size=200),
    encoding=st.sampled_from(["utf-8", "gb18030", "utf-16"]),
)
def test_markup_soup(parts: list[str], encoding: str) -> None:
    body = "".join(parts).encode(encoding, "replace")
    page = Page(url=URL, body=body, headers={"Content-Type": "text/html"})
    _run(page, budget_s=5)


@settings(max_examples=40, deadline=None)
@given(parts=st.lists(st.sampled_from(FRAGMENTS), max_size=60))
def test_soup_in_every_subresource(parts: list[str]) -> None:
    """The same soup as a script, a frame, a verification page, an image and a rendered DOM."""
    soup = "".join(parts)
    page = Page(
        url=URL, body=("<script src='/js/f.js'></script><iframe src='/f.html'></iframe>" + soup).encode()
    )
    page.scripts[URL + "js/f.js"] = soup
    page.frames[URL + "f.html"] = Document(URL + "f.html", soup)
    page.badge_scripts["http://dcs.conac.cn/js/05/106/0000/12345678/CA051060000123456780001.js"] = soup
    page.bszs["http://bszs.conac.cn/sitename?method=show&id=3F2A9C1B7D4E8F60A1B2C3D4E5F60718"] = Document(
        "http://bszs.conac.cn/", soup
    )
    page.images[URL + "x.png"] = soup.encode()
    page.rendered = Document(URL, soup)
    _run(page, budget_s=5)


def test_deep_nesting() -> None:
    for tag in ("div", "span", "a", "table", "font"):
        depth = 20_000
        html = (
            f"<html><body>{f'<{tag}>' * depth}<a href='//bszs.conac.cn/sitename?id=1'>党政机关</a>"
            f"{f'</{tag}>' * depth}</body></html>"
        )
        _run(
            Page(url=URL, body=html.encode(), headers={"Content-Type": "text/html; charset=utf-8"}),
            budget_s=10,
        )


def test_ten_megabyte_page() -> None:
    row = "<tr><td><a href='/art/1.html'>关于推进网站开办审核工作的通知</a></td><td>2015-03-31</td></tr>\n"
    filler = row * (10 * 1024 * 1024 // len(row.encode()))
    html = (
        "<html><head><meta charset='utf-8'></head><body><table>" + filler + "</table><div id='footer'>"
        "<a href='https://beian.miit.gov.cn/'>冀ICP备05007325号</a>"
        "<a href='//bszs.conac.cn/sitename?method=show&id=3F2A9C1B7D4E8F60A1B2C3D4E5F60718'>"
        "<img src='//dcs.conac.cn/image/red.png'></a></div></body></html>"
    )
    page = Page(url=URL, body=html.encode(), headers={"Content-Type": "text/html"})
    assert len(page.body) > 10_000_000
    _run(page, budget_s=60)
    badge = run_checks(page, EXPECTED, only=["badge"]).verdicts["badge"]
    assert badge.data["shape"] == "static_copy"  # the footer after 10 MB is still read


def test_huge_inline_script_and_endless_writes() -> None:
    js = "document.write('<a href=\"//bszs.conac.cn/\">');" * 50_000 + "var s='x';" + "s+=s;" * 60
    page = Page(url=URL, body=f"<html><body><script>{js}</script></body></html>".encode())
    _run(page, budget_s=30)


def test_broken_encodings() -> None:
    good = "<html><head><meta charset='gbk'></head><body>冀ICP备05007325号 党政机关</body></html>"
    variants = [
        good.encode("utf-8"),  # says gbk, is utf-8
        good.encode("gbk")[:-7] + b"\x81",  # truncated multibyte
        b"\xef\xbb\xbf" + good.encode("gbk"),  # BOM lies
        good.replace("gbk", "x-no-such-charset").encode("gbk"),
        good.encode("utf-16"),
        b"\x00" * 1000 + good.encode(),
    ]
    for body in variants:
        _run(Page(url=URL, body=body, headers={"Content-Type": "text/html; charset=gb2312"}), budget_s=5)


@settings(max_examples=200, deadline=None)
@given(
    src=st.text(
        alphabet=st.sampled_from(list("document.write(unescape'\"`+%3C$[]){}=;,/*\\xu0a<>-!\n ")),
        max_size=400,
    )
)
def test_js_evaluator_never_crashes(src: str) -> None:
    out = inserted_markup(src)
    assert out.dynamic <= out.sinks


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=4000))
def test_image_signature_never_crashes(data: bytes) -> None:
    image_signature(b"\x89PNG\r\n\x1a\n" + data)
    image_signature(data)


def test_needs_terminate_when_everything_fails() -> None:
    """The crawler loop ends even when every sub-resource fails."""
    body = (
        b"<script src='/a.js'></script><script src='/b.js'></script><iframe src='/c.html'></iframe>"
        b"<script>var u=window.x;document.write('<img src=\"//dcs.conac.cn/image/'+u+'\">')</script>"
    )
    page = Page(url=URL, body=body)
    for _ in range(6):
        result = run_checks(page, EXPECTED)
        if result.final:
            break
        for need in result.needs:
            page.mark_failed(need, "HTTP 404")
    assert result.final
    assert str(result.verdicts["badge"].status) == "unknown"
    assert Need(NeedKind.RENDER, URL).key in page.failed
