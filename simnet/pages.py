"""HTML of the farm's sites: the footer fragments of every badge, ICP, 公安 and 标识码 shape, and the page."""

from __future__ import annotations

import html
import urllib.parse
import zlib
from dataclasses import dataclass, field

from simnet.conac import DCS_HOST, Badge, bszs_href, embed_code, expanded_markup
from simnet.ident import PARTY
from simnet.model import Route
from simnet.pngs import badge_png, custom_png

PNG = "image/png"
JS = "application/javascript; charset=utf-8"
HTML_UTF8 = "text/html; charset=utf-8"

MIIT_URL = "https://beian.miit.gov.cn/"
MIIT_OLD_URL = "http://www.miitbeian.gov.cn/"
MPS_URL = "https://beian.mps.gov.cn/#/query/webSearch?code={}"
MPS_OLD_URL = "http://www.beian.gov.cn/portal/registerSystemInfo?recordcode={}"
JIUCUO_URL = "https://zfwzgl.www.gov.cn/exposure/jiucuo.js"

# A tiny jQuery stand-in (no internet, so no CDN): enough for ``$(fn)``, ``.html()`` and ``.append()``.
JQUERY_SHIM = (
    "(function(w,d){function Q(s){this.e=typeof s==='string'?Array.prototype.slice.call("
    "d.querySelectorAll(s)):[s];}Q.prototype.html=function(h){this.e.forEach(function(n){n.innerHTML=h;});"
    "return this;};Q.prototype.load=function(u){var s=this,x=new XMLHttpRequest();x.open('GET',u,true);"
    "x.onload=function(){s.html(x.responseText);};x.send();return this;};"
    "Q.prototype.append=function(h){this.e.forEach(function(n){n.insertAdjacentHTML("
    "'beforeend',h);});return this;};w.jQuery=w.$=function(a){if(typeof a==='function'){if(d.readyState"
    "!=='loading'){a();}else{d.addEventListener('DOMContentLoaded',a);}return;}return new Q(a);};"
    "})(window,document);\n"
)


@dataclass
class Fragment:
    """A piece of footer markup and the site files it needs."""

    html: str = ""
    head: str = ""
    routes: dict[str, Route] = field(default_factory=dict)


def _png(data: bytes) -> Route:
    return Route(body=data, content_type=PNG)


# Shapes that show the official embed code over http:// (what differs is the badge or the page).
_PLAIN_EMBED = frozenset(
    {"embed_http", "wrong_kind", "copied_badge", "error_image", "mixed_content", "outdated_unit_name",
     "outdated_domain"}
)


def badge_fragment(opt: str, badge: Badge, own_kind: str) -> Fragment:
    """The badge markup of shape ``opt`` (docs/checks.md, “What counts as a badge”) for ``badge``."""
    colour = "red" if badge.kind == PARTY else "blue"
    custom = "dzjg" if badge.kind == PARTY else "sydw"
    f = Fragment()
    if opt in _PLAIN_EMBED:
        f.html = embed_code(badge, "http:")
    elif opt == "embed_https":
        f.html = embed_code(badge, "https:")
    elif opt == "embed_protocol_relative":
        f.html = embed_code(badge, "")
    elif opt == "embed_quirks":
        f.html = embed_code(badge, "http:", trailing_space=True, double_spaces=True)
    elif opt == "rendered_dom":
        # What "save page as" keeps: the embed, the expansion, and a second empty span (duplicate id).
        f.html = embed_code(badge, "http:") + expanded_markup(badge) + '<span id="_ideConac"></span>'
    elif opt == "static_copy":
        f.html = expanded_markup(badge, image_src=f"http://{DCS_HOST}/image/{badge.image}.png")
    elif opt == "static_copy_https":
        f.html = expanded_markup(badge, image_src=f"https://{DCS_HOST}/image/{badge.image}.png", amp=False)
    elif opt == "local_image_copy":
        f.html = expanded_markup(badge, image_src=f"/images/conac/{colour}.png")
        f.routes[f"/images/conac/{colour}.png"] = _png(badge_png(colour))
    elif opt == "custom_image_alt":
        f.html = (
            f'<a href="{bszs_href(badge, "https://", amp=True)}" target="_blank">'
            f'<img src="/uploads/2019/{custom}.png" alt="{badge.kind}" width="110" height="40"></a>'
        )
        f.routes[f"/uploads/2019/{custom}.png"] = _png(custom_png(custom))
    elif opt == "custom_image_wzades":
        f.html = (
            f'<a href="{bszs_href(badge, "http://")}" target="_blank">'
            f'<img src="/templates/default/images/footer-1.png" wzades="{badge.kind}"></a>'
        )
        f.routes["/templates/default/images/footer-1.png"] = _png(custom_png(custom))
    elif opt == "alt_contradicts_image":
        f.html = (
            f'<a href="{bszs_href(badge, amp=True)}"><img src="/images/{colour}.png" '
            'alt="党政机关网站标识"></a>'
        )
        f.routes[f"/images/{colour}.png"] = _png(badge_png(colour))
    elif opt == "text_link":
        f.html = f'<a href="{bszs_href(badge)}" target="_blank">{badge.kind}</a>'
    elif opt == "external_writeln":
        lines = ['<div class="conac">', embed_code(badge, "http:"), "</div>"]
        js = "".join(f"document.writeln({_js_str(line)});\n" for line in lines)
        f.html = '<script type="text/javascript" src="/js/footer.js"></script>'
        f.routes["/js/footer.js"] = Route(body=js.encode(), content_type=JS)
    elif opt == "jquery_append":
        # Pieces joined at run time: no literal in the page names the badge hosts.
        f.head = '<script src="/js/jquery.min.js"></script>'
        f.html = (
            '<div id="conac"></div><script>$(function(){var h="bszs."+"conac"+".cn",i="dcs."+"conac"+".cn";'
            "$('#conac').html(unescape('%3Cspan id=\"_ideConac\"%3E%3Ca href=\"//')+h+"
            f"'/sitename?method=show&id='+'{badge.verify_id[:16]}'+'{badge.verify_id[16:]}'+"
            "unescape('\"%3E%3Cimg id=\"imgConac\" src=\"//')+i+'/image/'+"
            f"'{colour[:2]}'+'{colour[2:]}.png'+unescape('\"%3E%3C/a%3E%3C/span%3E'));}});</script>"
        )
        f.routes["/js/jquery.min.js"] = Route(body=JQUERY_SHIM.encode(), content_type=JS)
    elif opt == "iframe":
        inner = (
            f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{embed_code(badge)}</body></html>'
        )
        f.html = (
            '<iframe src="/footer/conac.html" width="120" height="60" frameborder="0" scrolling="no">'
            "</iframe>"
        )
        f.routes["/footer/conac.html"] = Route(body=inner.encode(), content_type=HTML_UTF8)
    elif opt == "commented_out":
        f.html = f"<!-- {embed_code(badge)} -->"
    elif opt == "commented_then_copy":
        f.html = f"<!-- {embed_code(badge)} -->\n" + expanded_markup(badge)
    elif opt == "class_quirk":
        f.html = expanded_markup(badge, attr="class")
    elif opt == "async_wrapper":
        # A document.write from an async external script is ignored by browsers: never renders.
        f.html = '<script type="text/javascript" async src="/js/conac-badge.js"></script>'
        js = embed_code(badge).removeprefix('<script type="text/javascript">').removesuffix("</script>")
        f.routes["/js/conac-badge.js"] = Route(body=js.encode(), content_type=JS)
    elif opt == "copied_verify_link":
        f.html = (
            f'<a href="{bszs_href(badge)}" target="_blank"><img src="/images/{custom}.png" '
            f'alt="{badge.kind}"></a>'
        )
        f.routes[f"/images/{custom}.png"] = _png(custom_png(custom))
    elif opt == "missing":
        f.html = ""
    elif opt == "placeholder_href":
        f.html = f'<a href="#"><img src="/images/{custom}.png" alt="{own_kind}"></a>'
        f.routes[f"/images/{custom}.png"] = _png(custom_png(custom))
    elif opt == "neighbours_only":
        f.html = (
            '<a href="https://www.12377.cn/" target="_blank"><img src="/images/12377.png" alt="网络举报"></a>'
            '<a href="https://webscan.360.cn/index/checkwebsite/url/x"><img src="/images/webscan.png"></a>'
            '<script src="https://s9.cnzz.com/z_stat.php?id=1000000001"></script>'
            '<script src="https://hm.baidu.com/hm.js?0123456789abcdef"></script>'
        )
        f.routes["/images/12377.png"] = _png(custom_png("sydw"))
        f.routes["/images/webscan.png"] = _png(custom_png("sydw"))
    else:
        raise ValueError(f"unknown badge shape {opt!r}")
    return f


def _js_str(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def icp_fragment(opt: str, number: str, shown: str) -> Fragment:
    """The ICP line of shape ``opt``. ``shown`` is the number as the page shows it (canonical form)."""
    prov, _, rest = shown.partition("ICP备")
    digits, _, tail = rest.partition("号")
    link = MIIT_URL
    if opt == "split_tags":
        text = f"{prov}<span>ICP</span>备<span>{digits}</span>号{tail}"
    elif opt == "br_inside":
        text = f"{prov}ICP备<br>{digits}号{tail}"
    elif opt == "fullwidth_colon":
        text = f"{prov}ICP备：{digits}号{tail}"
    elif opt == "missing_hao":
        text = f"{prov}ICP备{digits}{tail}"
    elif opt == "missing_bei":
        text = f"{prov}ICP{digits}号{tail}"
    elif opt == "space_before_digits":
        text = f"{prov}ICP备 {digits}号{tail}"
    elif opt == "suffix_before_hao":
        text = f"{prov}ICP备{digits}{tail}号"
    elif opt == "commercial_beside":
        return Fragment(
            html=f'<a href="{MIIT_URL}">{prov}ICP证{digits[-6:]}号</a>　<a href="{MIIT_URL}" '
            f'target="_blank">{shown}</a>'
        )
    elif opt == "alt_only":
        return Fragment(
            html=f'<a href="{MIIT_URL}" target="_blank"><img src="/images/icp.png" alt="{shown}" '
            f'title="{shown}"></a>',
            routes={"/images/icp.png": _png(custom_png("sydw"))},
        )
    elif opt == "outdated_link":
        text, link = shown, MIIT_OLD_URL
    elif opt == "no_link":
        return Fragment(html=f"<span>{shown}</span>")
    elif opt == "missing":
        return Fragment()
    elif opt == "in_comment_only":
        return Fragment(html=f'<!-- <a href="{MIIT_URL}">{shown}</a> -->')
    else:  # plain, suffix, ten_digit, wrong_province, mismatch, malformed, not_in_registry
        text = shown
    return Fragment(html=f'<a href="{link}" target="_blank">{text}</a>')


def police_fragment(opt: str, prov: str, digits: str) -> Fragment:
    """The 公安 line of shape ``opt`` for number ``digits``."""
    icon = '<img src="/images/gongan.png" width="20" height="20">'
    routes = {"/images/gongan.png": _png(custom_png("dzjg"))}
    link = MPS_URL.format(digits)
    if opt == "old_link":
        link = MPS_OLD_URL.format(digits)
        text = f"{prov}公网安备 {digits}号"
    elif opt == "no_space":
        text = f"{prov}公网安备{digits}号"
    elif opt == "colon":
        text = f"{prov}公网安备：{digits}号"
    elif opt == "split_tags":
        text = f"<span>{prov}公网安备</span> <span>{digits}</span>号"
    elif opt == "no_link":
        return Fragment(html=f"{icon}<span>{prov}公网安备 {digits}号</span>", routes=routes)
    elif opt == "missing":
        return Fragment()
    else:
        text = f"{prov}公网安备 {digits}号"
    return Fragment(html=f'<a href="{html.escape(link)}" target="_blank">{icon}{text}</a>', routes=routes)


def site_code_parts(opt: str, code: str, other: str) -> tuple[str, str, str]:
    """(meta tag, jiucuo sitecode value, footer text) for shape ``opt``; ``other`` is a conflicting code."""
    meta = f'<meta name="SiteIDCode" content="{code}">'
    footer = f"网站标识码：{code}"
    if opt == "meta_only":
        return meta, "", ""
    if opt == "jiucuo_only":
        return "", code, ""
    if opt == "footer_only":
        return "", "", f"政府网站标识码 {code}"
    if opt == "label_shibiema":
        return "", "", f"网站识别码：{code}"
    if opt == "missing":
        return "", "", ""
    if opt == "conflict":
        return meta, "", f"网站标识码：{other}"
    return meta, "", footer  # meta_and_footer, mismatch, malformed, region_mismatch


@dataclass
class PageParts:
    """What a home page is made of."""

    title: str
    unit_name: str
    charset_meta: str = '<meta charset="utf-8">'
    head_extra: str = ""
    badge: str = ""
    icp: str = ""
    police: str = ""
    site_code_text: str = ""
    jiucuo_code: str = ""
    broken: bool = False
    padding: int = 0  # bytes of filler before the footer (huge pages)
    news: tuple[str, ...] = ()


def footer_inner(p: PageParts) -> str:
    """The footer's markup: 主办单位, the ICP and 公安 lines, the 标识码, the badge and the 找错 widget."""
    jiucuo = ""
    if p.jiucuo_code:
        jiucuo = f"<script id=\"_jiucuo_\" sitecode='{p.jiucuo_code}' src='{JIUCUO_URL}'></script>"
    return (
        f"<p>主办单位：{html.escape(p.unit_name)}　联系电话：0312-0000000</p>\n"
        f"<p>{p.icp}　{p.police}</p>\n"
        f"<p>{p.site_code_text}</p>\n"
        f'<div class="footer-badges">{p.badge}{jiucuo}</div>\n'
    )


# How a template fetches its footer into an empty <div> (footer_via of home_page).
FOOTER_LOADERS = {
    "load": "<script>$(function(){{$('#footer').load('{url}');}});</script>",
    "xhr": (
        "<script>(function(){{var x=new XMLHttpRequest();x.open('GET','{url}',true);x.onreadystatechange="
        "function(){{if(x.readyState==4&&x.status==200){{document.getElementById('footer').innerHTML="
        "x.responseText;}}}};x.send(null);}})();</script>"
    ),
    "fetch": (
        "<script>fetch('{url}').then(function(r){{return r.text();}}).then(function(h){{"
        "document.querySelector('#footer').innerHTML=h;}});</script>"
    ),
}
FOOTER_URL = "/inc/footer.html"


def home_page(p: PageParts, footer_via: str = "") -> str:
    """A government-style home page with the footer assembled from the fragments; with ``footer_via``
    (a key of :data:`FOOTER_LOADERS`) the footer is left empty and fetched from :data:`FOOTER_URL`."""
    t = html.escape(p.title)
    column = zlib.crc32(p.title.encode()) % 100000  # every site's articles live at addresses of its own
    items = "\n".join(
        f'<li><a href="/xwzx/{column}/{i:04d}.html">{html.escape(n)}</a>'
        f"<span>2015-03-{(i % 28) + 1:02d}</span></li>"
        for i, n in enumerate(p.news or _NEWS)
    )
    filler = ""
    if p.padding:
        unit = "<p>" + "政务公开信息" * 20 + "</p>\n"
        filler = unit * (p.padding // len(unit.encode()) + 1)
    body_open = (
        '<div class="main"><div class="news"><ul>'
        if not p.broken
        else '<div class="main"><div class=news><ul'
    )
    broken = "<table><tr><td>通知公告<td><b>重要</i></div></span><p>未闭合段落" if p.broken else ""
    footer = footer_inner(p) if not footer_via else ""
    loader = FOOTER_LOADERS[footer_via].format(url=FOOTER_URL) if footer_via else ""
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n'
        f"{p.charset_meta}\n{p.head_extra}\n<title>{t}</title>\n</head>\n<body>\n"
        f'<div class="header"><h1>{t}</h1></div>\n'
        '<div class="nav"><a href="/">首页</a> | <a href="/jggk/">机构概况</a>'
        ' | <a href="/zwgk/">政务公开</a> | <a href="/bsfw/">办事服务</a>'
        ' | <a href="/hdjl/">互动交流</a></div>\n'
        f"{body_open}\n{items}\n</ul></div>{broken}</div>\n{filler}"
        f'<div class="footer" id="footer">\n{footer}</div>\n{loader}\n</body>\n</html>\n'
    )


_NEWS = (
    "关于进一步推进党政机关网站开办审核工作的通知",
    "我单位召开网上名称管理工作推进会",
    "2015年政府信息公开工作要点",
    "关于做好网站标识管理工作的通知",
    "政务和公益机构域名注册工作情况通报",
)


def parked_page(host: str) -> str:
    """What a parking service shows for any domain it holds."""
    h = html.escape(host)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>域名停放 Domain parking</title></head><body>'
        f'<div class="parking"><h1>{h}</h1><p>此域名正在停放中（This domain is parked）。</p>'
        "<p>该域名可能正在出售，如需购买请联系域名持有人。</p></div></body></html>"
    )


def red_page(unit_name: str, kind: str, domain: str, badge_html: str) -> str:
    """A CONAC-hosted 网络红页 of a unit."""
    u = html.escape(unit_name)
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{u} - 网络红页</title></head><body>'
        f'<div class="redpage"><h1>{u}</h1><p>机构类型：{html.escape(kind)}</p>'
        f"<p>中文域名：{html.escape(domain)}</p><p>本页面为政务和公益机构域名注册管理中心提供的网络红页。</p>"
        f"<p>京ICP备08011448号</p>{badge_html}</div></body></html>"
    )


def challenge_page() -> str:
    """The JavaScript challenge a web application firewall shows to clients that are not browsers."""
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>安全验证</title></head><body>'
        "<h1>访问验证</h1><p>您的访问请求被网站防火墙拦截，请使用浏览器访问。</p>"
        '<script>document.cookie="__waf_pass=1; path=/";setTimeout(function(){location.reload();},100);'
        "</script></body></html>"
    )


def quote_path(s: str) -> str:
    return urllib.parse.quote(s, safe="/")
