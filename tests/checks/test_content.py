"""checks.content: pages that are not the site's content are named, at any status and in any encoding;
real pages (every HTML fixture of the suite) are content."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from checks.content import assess, is_html
from checks.http import FetchOutcome, classify_http
from checks.page import Document
from simnet import shields
from simnet.model import Route

FIXTURES = Path(__file__).parents[1]
URL = "http://www.example.gov.cn/"


def _doc(route: Route, content_type: str | None = None) -> Document:
    return Document.from_bytes(URL, route.body, route.content_type if content_type is None else content_type)


def _headers(route: Route) -> dict[str, str]:
    return {k: v for k, v in route.headers}


# What each product sends (simnet/shields.py, modelled on their public evidence) and its reason.
SHAPES: dict[str, tuple[Callable[[], Route], str]] = {
    "瑞数 412": (shields.ruishu, "http.challenge"),
    "瑞数 202": (lambda: shields.ruishu(202), "http.challenge"),
    "瑞数 200": (lambda: shields.ruishu(200), "http.challenge"),
    "加速乐 521": (shields.jiasule, "http.challenge"),
    "云锁 GBK": (shields.yunsuo, "http.challenge"),
    "unknown vendor": (shields.unknown_challenge, "http.challenge"),
    "安全狗": (shields.safedog, "http.blocked"),
    "360 网站卫士 493": (shields.wangzhan360, "http.blocked"),
    "创宇盾 GBK 403": (shields.chuangyudun, "http.blocked"),
    "宝塔防火墙": (shields.baota, "http.blocked"),
    "阿里云 WAF 405": (shields.aliyun_waf, "http.blocked"),
    "腾讯云 WAF 403": (shields.tencent_waf, "http.blocked"),
    "rate limit 200": (shields.rate_limited, "http.rate_limited"),
    "rate limit 429": (lambda: shields.rate_limited(429), "http.rate_limited"),
    "maintenance GBK no charset": (shields.maintenance, "http.maintenance"),
    "maintenance 503": (lambda: shields.maintenance(503), "http.maintenance"),
    "empty body": (shields.empty, "http.empty"),
    "blank html": (shields.blank_html, "http.empty"),
    "nginx default": (shields.default_nginx, "http.default_page"),
    "宝塔 没有找到站点": (shields.default_baota, "http.default_page"),
    "IIS default": (shields.default_iis, "http.default_page"),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_each_product_is_named(name: str) -> None:
    make, reason = SHAPES[name]
    route = make()
    signal = assess(_doc(route), route.status, _headers(route), len(route.body))
    assert signal is not None and signal.reason == reason, (name, signal)
    # The same through the http verdict, with the bytes as they came (never read as UTF-8 first).
    v = classify_http(
        FetchOutcome(URL, URL, route.status, headers={"Content-Type": route.content_type, **_headers(route)},
                     body_size=len(route.body), body_head=route.body[:1024]),
        _doc(route),
    )  # fmt: skip
    assert (str(v.status), v.reason) == ("unknown", reason)


BLOCKS_AND_NOTICES = ("安全狗", "宝塔防火墙", "rate limit 200", "maintenance 503", "unknown vendor")


@pytest.mark.parametrize("name", BLOCKS_AND_NOTICES)
@pytest.mark.parametrize("status", [200, 202, 403, 412, 418, 429, 503, 521])
@pytest.mark.parametrize("encoding", ["utf-8", "gbk", "gb18030"])
@pytest.mark.parametrize("declared", [True, False])
def test_any_status_any_encoding(name: str, status: int, encoding: str, declared: bool) -> None:
    """A page is never judged: whatever the status, the encoding and whether it is declared."""
    make, reason = SHAPES[name]
    text = make().body.decode("utf-8").replace("charset=utf-8", f"charset={encoding}" if declared else "")
    body = text.encode(encoding)
    ctype = f"text/html; charset={encoding}" if declared else "text/html"
    signal = assess(Document.from_bytes(URL, body, ctype), status, {}, len(body))
    assert signal is not None, (name, status, encoding)
    # Rate limits and challenges can be called "blocked" by their status; none is ever content.
    assert signal.reason in (reason, "http.blocked", "http.challenge", "http.rate_limited"), signal


def test_a_wrong_declared_charset_still_decides_on_decoded_text() -> None:
    route = shields.maintenance()
    body = route.body  # GBK bytes
    signal = assess(Document.from_bytes(URL, body, "text/html; charset=utf-8"), 200, {}, len(body))
    assert signal is not None and signal.reason == "http.maintenance"


@pytest.mark.parametrize("path", sorted(p for p in FIXTURES.rglob("*.htm*") if "res" not in p.parts))
def test_real_pages_are_content(path: Path) -> None:
    """Every page fixture of the suite (real CMS templates, saved pages, number and badge shapes) is a
    page to judge: nothing in them looks like a challenge, a notice or a default page."""
    body = path.read_bytes()
    assert assess(Document.from_bytes(URL, body, ""), 200, {}, len(body)) is None


def _portal(extra: str = "", links: int = 40) -> str:
    items = "".join(f'<li><a href="/art/{i}.html">政务公开信息第{i}条</a></li>' for i in range(links))
    return (
        "<html><head><title>保定市人民政府</title></head><body><h1>保定市人民政府</h1>"
        f"<ul>{items}</ul>{extra}<div id='footer'>冀ICP备05007325号</div></body></html>"
    )


@pytest.mark.parametrize(
    "extra",
    [
        # 瑞数 injects its bootstrap into the real pages too
        "<meta content='abc' r='m'><script r='m'>$_ts=window['$_ts'];if(!$_ts)$_ts={};$_ts.nsd=1;</script>",
        "<p>关于系统维护期间暂停网上办事服务的公告</p>",  # a headline, not a maintenance page
        "<p>防火墙拦截了一起网络攻击</p><p>访问过于频繁的处理办法</p>",
        "<script>document.cookie='lang=zh';setTimeout(function(){},10)</script>",
    ],
)
def test_portals_mentioning_the_words_are_content(extra: str) -> None:
    page = _portal(extra)
    assert assess(Document(URL, page), 200, {}, len(page.encode())) is None


def test_a_small_real_page_is_content() -> None:
    page = (
        "<html><head><title>某县档案馆</title></head><body><h1>某县档案馆</h1><p>地址：某县人民路1号</p>"
        "<p><a href='/jj.html'>本馆简介</a> <a href='/lx.html'>联系我们</a></p>"
        "<p>冀ICP备05007325号 冀公网安备13060202000101号</p></body></html>"
    )
    assert assess(Document(URL, page), 200, {}, len(page.encode())) is None


def test_statuses_speak_when_the_body_does_not() -> None:
    page = "<html><body><p>Forbidden</p></body></html>"
    for status, reason in ((403, "http.blocked"), (412, "http.challenge"), (429, "http.rate_limited"),
                           (493, "http.blocked")):  # fmt: skip
        signal = assess(Document(URL, page), status, {}, len(page))
        assert signal is not None and signal.reason == reason, status
    plain = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    assert assess(Document(URL, plain), 502, {}, len(plain)) is None  # the caller's server_error


def test_an_error_page_served_as_200_is_a_default_page() -> None:
    page = "<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1>nginx</body></html>"
    signal = assess(Document(URL, page), 200, {}, len(page))
    assert signal is not None and signal.reason == "http.default_page"


def test_cookie_then_reload_is_a_challenge_whatever_the_vendor() -> None:
    script = "var a=1;document.cookie='x='+a;location.reload();"
    page = f"<html><head></head><body><script>{script}</script></body></html>"
    signal = assess(Document(URL, page), 200, {}, len(page))
    assert signal is not None and signal.reason == "http.challenge"


def test_a_page_of_only_an_image_is_content() -> None:
    page = "<html><body><img src='/banner.jpg'></body></html>"
    assert assess(Document(URL, page), 200, {}, len(page)) is None


@pytest.mark.parametrize(
    ("ctype", "body", "html"),
    [
        ("text/html; charset=gbk", b"<html>", True),
        ("application/xhtml+xml", b"<html>", True),
        ("image/png", b"\x89PNG\r\n", False),
        ("application/pdf", b"%PDF-1.4", False),
        ("text/plain", b"<html><body>x</body></html>", False),
        ("application/octet-stream", b"<!DOCTYPE html><html>", True),
        ("application/octet-stream", b"PK\x03\x04\x00\x00", False),
        ("", b"\xef\xbb\xbf<html>", True),
    ],
)
def test_is_html(ctype: str, body: bytes, html: bool) -> None:
    assert is_html(ctype, body) is html


def test_not_html_home_page() -> None:
    route = shields.not_html()
    v = classify_http(
        FetchOutcome(URL, URL, 200, headers={"Content-Type": route.content_type}, body_size=len(route.body),
                     body_head=route.body[:1024])
    )  # fmt: skip
    assert v.reason == "http.not_html"
