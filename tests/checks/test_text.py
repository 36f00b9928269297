"""Visible text with source positions (checks/reading/)."""

from __future__ import annotations

from checks.numbers import ICP_PATTERN
from checks.page import Document, Page
from checks.reading.contexts import trigger_contexts
from checks.reading.scripts import same_site, script_needs
from checks.reading.sightings import search_page
from checks.reading.visible import visible_text


def doc(html: str, url: str = "http://www.bd.gov.cn/") -> Document:
    return Document(url=url, text=html)


def test_comments_scripts_styles_templates_are_not_text() -> None:
    d = doc(
        "<html><head><title>标题</title><style>.a{}</style></head><body>"
        "<p>甲<!-- 乙 -->丙</p><script>var x='丁';</script><template><p>戊</p></template>"
        "<noscript>己</noscript><div hidden>庚</div><div style='display: none'>辛</div>"
        "<p>壬</p></body></html>"
    )
    assert visible_text(d).text.split() == ["甲丙", "壬"]


def test_inline_tags_join_blocks_and_br_separate() -> None:
    d = doc(
        "<body><p>京<span>ICP</span>备<b>1905</b><i>4529</i>号</p><div>a<br>b</div><li>c</li><li>d</li></body>"
    )
    assert visible_text(d).text.split() == ["京ICP备19054529号", "a", "b", "c", "d"]


def test_alt_and_title_are_read() -> None:
    d = doc(
        '<body><a href="/x" title="链接标题"><img src="i.png" alt="图片说明" title="图片标题"></a></body>'
    )
    assert visible_text(d).text.split() == ["链接标题", "图片说明", "图片标题"]


def test_normalised_text_maps_back_to_source() -> None:
    html = '<body>\r\n<p>冀ＩＣＰ备&nbsp;<span>1312</span>3456号</p><a href="/" title="a&amp;b">x</a></body>'
    d = doc(html)
    vt = visible_text(d)
    i = vt.text.index("冀ICP备")
    j = vt.text.index("号") + 1
    ev = vt.evidence(i, j)
    assert ev.excerpt == "冀ＩＣＰ备&nbsp;<span>1312</span>3456号"
    assert ev.start is not None and html[ev.start : ev.end] == ev.excerpt
    k = vt.text.index("a&b")
    ev2 = vt.evidence(k, k + 3)
    assert ev2.excerpt == "a&amp;b"


def test_anchor_spans_and_script_links() -> None:
    d = doc(
        '<body><p>前 <a href="https://beian.miit.gov.cn/">冀ICP备13123456号</a> '
        '<a href="javascript:;" onclick="window.open(\'http://www.beian.gov.cn/portal\')">公安</a></p></body>'
    )
    vt = visible_text(d)
    hrefs = [(vt.text[a.start : a.end], a.href) for a in vt.anchors]
    assert hrefs == [
        ("冀ICP备13123456号", "https://beian.miit.gov.cn/"),
        ("公安", "http://www.beian.gov.cn/portal"),
    ]


def test_contexts_cover_triggers_on_one_minified_line() -> None:
    parts = "".join(f"<li><a href='/n/{i}'>新闻{i}</a></li>" for i in range(200))
    html = (
        f"<html><body><ul>{parts}</ul><div id='f'><p>主办</p><p><a href='https://beian.miit.gov.cn/'>"
        "冀ICP备13123456号</a></p><p>冀公网安备 13060202000123号</p><p>网站标识码：1306000001</p></div>"
        "<script>var a=1;</script></body></html>"
    )
    ctxs = trigger_contexts(doc(html)).contexts
    joined = " ".join(c.text for c in ctxs)
    for word in ("冀ICP备13123456号", "冀公网安备 13060202000123号", "网站标识码:1306000001"):
        assert word in joined
    # The news list is not part of any context.
    assert "新闻5" not in joined


def test_trigger_only_in_comment_or_head_yields_nothing() -> None:
    html = (
        "<html><head><title>ICP</title></head><body><p>a</p><!-- 冀ICP备13123456号 --><p>b</p></body></html>"
    )
    assert trigger_contexts(doc(html)).contexts == ()


def test_deep_nesting_does_not_recurse() -> None:
    # libxml2 keeps 255 levels (deeper content is dropped by the parser): read what it kept.
    html = "<body>" + "<div>" * 200 + "冀ICP备13123456号" + "</div>" * 200 + "</body>"
    ctxs = trigger_contexts(doc(html)).contexts
    assert any("冀ICP备13123456号" in c.text for c in ctxs)
    deeper = "<body>" + "<div><span>" * 5000 + "冀ICP备13123456号" + "</span></div>" * 5000 + "</body>"
    trigger_contexts(doc(deeper))  # no RecursionError, no runaway


def test_same_site_and_script_needs() -> None:
    assert same_site("http://www.bd.gov.cn/js/a.js", "http://www.bd.gov.cn/")
    assert same_site("http://static.bd.gov.cn/js/a.js", "http://www.bd.gov.cn/")
    assert same_site("//bd.gov.cn/js/a.js", "https://www.bd.gov.cn/")
    assert not same_site("https://hm.baidu.com/hm.js", "http://www.bd.gov.cn/")
    assert not same_site("http://dcs.conac.cn/js/1.js", "http://www.bd.gov.cn/")
    html = (
        b"<html><body><script src='/js/a.js'></script><script src='js/b.js?v=1'></script>"
        b"<!-- <script src='/js/c.js'></script> --><script src='https://hm.baidu.com/hm.js'></script>"
        b"<script type='text/template' src='/js/t.js'></script></body></html>"
    )
    page = Page(url="http://www.bd.gov.cn/index.html", body=html)
    assert script_needs(page) == ("http://www.bd.gov.cn/js/a.js", "http://www.bd.gov.cn/js/b.js?v=1")
    page.scripts["http://www.bd.gov.cn/js/a.js"] = "var x = 1;"
    assert script_needs(page) == ("http://www.bd.gov.cn/js/b.js?v=1",)


def test_search_reads_script_markup_only_when_nothing_static() -> None:
    body = (
        "<html><body><p><a href='https://beian.miit.gov.cn/'>冀ICP备13123456号</a></p>"
        "<script>document.write('<p>冀ICP备99999999号</p>');</script></body></html>"
    )
    s = search_page(Page(url="http://www.bd.gov.cn/", body=body.encode()), ICP_PATTERN)
    assert [f.match.group("digits") for f in s.found] == ["13123456"]
    body2 = "<html><body><script>document.write('<p>冀ICP备99999999号</p>');</script></body></html>"
    s2 = search_page(Page(url="http://www.bd.gov.cn/", body=body2.encode()), ICP_PATTERN)
    assert [(f.match.group("digits"), f.via) for f in s2.found] == [("99999999", "script")]


def test_truncated_page_without_number_is_unknown_not_missing() -> None:
    from checks.expected import Expected, UnitKind
    from checks.icp import check_icp
    from checks.rules import Rules

    body = ("<html><body>" + "<p>政务公开</p>" * 1000).encode()  # cut before its footer
    page = Page(url="http://www.bd.gov.cn/", body=body, truncated=True)
    v = check_icp(page, Expected(UnitKind.PARTY_GOV, icp="冀ICP备13123456号"), Rules())
    assert (v.status.value, v.reason) == ("unknown", "icp.unconfirmed")
    whole = Page(url="http://www.bd.gov.cn/", body=body)
    assert check_icp(whole, Expected(UnitKind.PARTY_GOV), Rules()).reason == "icp.missing"


def test_needs_follow_the_crawler_protocol() -> None:
    from checks.expected import Expected, UnitKind
    from checks.icp import check_icp, icp_needs
    from checks.page import Need, NeedKind
    from checks.rules import Rules

    exp, rules = Expected(UnitKind.PARTY_GOV, icp="冀ICP备13123456号"), Rules()
    js = "http://www.bd.gov.cn/js/foot.js"
    body = b"<html><body><p>x</p><script src='/js/foot.js'></script></body></html>"
    page = Page(url="http://www.bd.gov.cn/", body=body)
    assert script_needs(page) == (js,)
    assert icp_needs(page, exp, rules) == [Need(NeedKind.SCRIPT, js)]
    assert check_icp(page, exp, rules).reason == "icp.unconfirmed"
    # A fetch that failed is not asked for again, and the verdict stays unknown (the footer may be there).
    page.mark_failed(Need(NeedKind.SCRIPT, js), "timeout")
    assert script_needs(page) == () and icp_needs(page, exp, rules) == []
    v = check_icp(page, exp, rules)
    assert v.reason == "icp.unconfirmed" and "获取失败" in v.detail and v.data["needs"] == []
    # Once read, the script decides.
    page.scripts[js] = "document.writeln('<a href=\"https://beian.miit.gov.cn/\">冀ICP备13123456号</a>');"
    assert check_icp(page, exp, rules).reason == "icp.ok"
    assert icp_needs(page, exp, rules) == []
    # A page whose numbers all show asks for no script at all.
    shown = (
        "<html><body><script src='/js/a.js'></script><p>冀ICP备13123456号 冀公网安备 13060202000123号 "
        "网站标识码：1306000001</p></body></html>"
    ).encode()
    assert script_needs(Page(url="http://www.bd.gov.cn/", body=shown)) == ()
