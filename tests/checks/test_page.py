"""The page model: charset decision (header → meta → detection, GB2312/GBK as GB18030), one shared tree,
and the bookkeeping of sub-resources (have / failed / exhausted)."""

from __future__ import annotations

import codecs

import pytest

from checks.page import Document, Need, NeedKind, Page, decode_body, normalise_charset

# 镕 and 堃 are outside GB2312 but inside GBK: decoding a "gb2312" page strictly would fail on them.
CHINESE = "主办单位：保定市机构编制委员会办公室 朱镕基 王堃 冀ICP备05007325号"


def _html(meta: str = "") -> str:
    return f"<html><head>{meta}<title>测试</title></head><body><p>{CHINESE}</p></body></html>"


@pytest.mark.parametrize(
    ("body", "ctype", "encoding"),
    [
        (_html().encode("utf-8"), "text/html; charset=utf-8", "utf-8"),
        (_html().encode("gbk"), "text/html; charset=GBK", "gb18030"),
        (_html().encode("gbk"), 'text/html; charset="gb2312"', "gb18030"),
        (
            _html('<meta http-equiv="Content-Type" content="text/html; charset=gb2312">').encode("gbk"),
            "text/html",
            "gb18030",
        ),
        (_html('<meta charset="GBK" />').encode("gbk"), "", "gb18030"),
        (codecs.BOM_UTF8 + _html().encode("utf-8"), "text/html; charset=gbk", "utf-8"),  # BOM wins
        (_html().encode("utf-8"), "", "utf-8"),  # undeclared UTF-8
    ],
)
def test_decoding_order(body: bytes, ctype: str, encoding: str) -> None:
    text, used = decode_body(body, ctype)
    assert used == encoding
    assert CHINESE in text


def test_header_wrong_falls_back_to_meta() -> None:
    """A server that says UTF-8 for a GBK page: the strict UTF-8 decode fails, the meta is right."""
    body = _html('<meta charset="gbk">').encode("gbk")
    text, used = decode_body(body, "text/html; charset=utf-8")
    assert used == "gb18030" and CHINESE in text


def test_undeclared_gbk_is_detected() -> None:
    body = (_html() * 20).encode("gb18030")
    text, used = decode_body(body, "text/html")
    assert used == "gb18030"
    assert CHINESE in text


def test_broken_bytes_never_refuse_a_page() -> None:
    body = _html().encode("utf-8")[:40] + b"\xff\xfe\x80" + _html().encode("utf-8")
    text, _ = decode_body(body, "text/html; charset=utf-8")
    assert "测试" in text


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("GB2312", "gb18030"),
        ("x-gbk", "gb18030"),
        ("UTF8", "utf-8"),
        ("latin1", "iso8859-1"),
        ("no-such", None),
        ("", None),
    ],
)
def test_normalise_charset(name: str, codec: str | None) -> None:
    assert normalise_charset(name) == codec


def test_tree_is_built_once_and_shared() -> None:
    page = Page(url="http://www.example.gov.cn/", body=_html().encode())
    assert page.home is page.home
    assert page.home.tree is page.home.tree
    assert page.home.tree.findtext(".//title") == "测试"


@pytest.mark.parametrize(
    "text", ["", "   ", "<?xml version='1.0' encoding='utf-8'?><html><body>x</body></html>"]
)
def test_odd_documents_parse(text: str) -> None:
    tree = Document("http://x/", text).tree
    assert tree.tag == "html"


def test_needs_bookkeeping() -> None:
    page = Page(url="http://www.example.gov.cn/", body=b"<html></html>")
    script = Need(NeedKind.SCRIPT, "http://www.example.gov.cn/js/f.js")
    render = Need(NeedKind.RENDER, page.url)
    assert render.key == "render:http://www.example.gov.cn/" and script.key == script.url
    assert not page.have(script) and not page.settled(script)
    page.scripts[script.url] = "document.write('x')"
    assert page.have(script) and page.settled(script)
    page.mark_failed(render, "timeout")
    assert not page.have(render) and page.settled(render)
    other = Need(NeedKind.BSZS, "http://bszs.conac.cn/sitename?id=1")
    assert not page.settled(other)
    page.exhausted = True
    assert page.settled(other)
