"""Is this the site's real home page? The page a server answered, classified before any page check
may judge it.

A crawler that takes every 200 for the site's page accuses units of missing badges on pages that are
not theirs: an anti-bot challenge, a firewall's block page, a rate-limit or maintenance notice, an
empty page, a web server's default page. :func:`assess` recognises those **at any status and in any
encoding** (it reads the decoded :class:`~checks.page.Document`, never bytes taken as UTF-8) and names
them with an ``http.*`` reason; everything it does not recognise is content.

Three kinds of evidence, strongest first (``docs/checks.md`` lists every product's signals):

1. *Vendor tokens* of the products Chinese government sites sit behind (瑞数, 加速乐, 云锁, 360/奇安信
   网站卫士, 腾讯 EdgeOne, 阿里云, Cloudflare, 长亭 SafeLine, 宝塔 …). Some of them are injected into the
   real pages too (瑞数's ``$_ts``, ``r='m'``): those count only on a page with next to no text.
2. *Words* of block, rate-limit, maintenance and default pages, read in the visible text (scripts,
   styles and comments removed: every mainland footer says 备案, a minified script says "error") and
   only on pages that are not plainly a portal (few links, little text).
3. *Shape*, for products nobody has catalogued: next to no visible text and no links, plus one of a
   cookie set before a reload, a packed script, a "请开启 JavaScript" notice, or a title such as 安全检测.

Cheap on real home pages: a page with many links is content at the cost of one regex count.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from lxml import etree

from checks.page import Document


@dataclass(frozen=True, slots=True)
class Signal:
    """Why a page is not the site's content: a reason code, a Chinese description, the evidence."""

    reason: str
    detail: str
    marker: str = ""


# A portal has dozens of links; no interstitial has more than a handful. Counting stops here.
_PORTAL_LINKS = 30
_A_TAG = re.compile(r"<a\s[^>]*?href\s*=", re.I)

# --- vendor tokens ----------------------------------------------------------------------------------
# (product, pattern, injected): ``injected`` tokens also occur on real pages behind the product, so
# they only count on a near-empty page.
_CHALLENGE_TOKENS: tuple[tuple[str, re.Pattern[str], bool], ...] = (
    ("瑞数动态防护", re.compile(r"\$_ts\s*=\s*window\[|\$_ts\.(?:nsd|cd)\s*=", re.I), True),
    (
        "加速乐",
        re.compile(
            r"__jsl_clearance|\('_'\)\s*\+\s*\('_'\)\s*\+\s*\('j'\)\s*\+\s*\('s'\)"
            r"|go\(\{\s*\"bts\"|本站开启了验证码保护|/cdn-cgi/js/captcha\.js"
        ),
        False,
    ),
    ("云锁", re.compile(r"yunsuoautojump|security_verify_(?:data|img)|yunsuologo", re.I), False),
    ("360/奇安信网站卫士", re.compile(r"wzwschallenge|WZWSREL|wzwstemplate|WZWS_CONFIRM", re.I), False),
    ("腾讯云 EdgeOne", re.compile(r"EO_Bot_Ssid|__tst_status"), False),
    ("阿里云 WAF", re.compile(r"acw_sc__v2|aliyun_waf_(?:aa|bb)|alicfw_gfver"), False),
    ("Cloudflare", re.compile(r"cf_chl_|cf-chl-|/cdn-cgi/challenge-platform/|cf-challenge-running"), True),
    ("长亭雷池", re.compile(r"/\.safeline/|sl-challenge|challenge\.rivers\.chaitin\.cn"), False),
    ("宝塔防火墙", re.compile(r"captcha-waf\.html|btwaf_|renji_[0-9a-f]{8}_|huadong_[0-9a-f]{8}_"), False),
    ("百度云加速", re.compile(r"yjs_use_ob|yunjiasu-cgi"), False),
)
# 瑞数 marks its meta and script tags with r='m'; with the $_ts bootstrap it is unmistakable.
_RUISHU_ATTR = re.compile(r"""<(?:meta|script)\b[^>]*\sr\s*=\s*['"]?m['"]?[\s>/]""", re.I)

_BLOCK_WORDS = re.compile(
    r"网站防火墙|已被网站管理员设置(?:为)?拦截|带有不合法参数|含有不合法的参数|安全狗|safedog|网站卫士|"
    r"云防护|创宇盾|玄武盾|云网盾|web\s*应用防火墙|t-sec|疑似(?:黑客)?攻击|对网站造成(?:安全)?威胁|"
    r"(?:已被|被)[^。，,.]{0,12}(?:拦截|阻断)|访问被(?:拦截|阻断|拒绝)|请求(?:已)?被(?:拒绝|阻断)|"
    r"request (?:blocked|denied)|access denied|blocked by|non-compliance icp filing|"
    r"该网站暂时无法进行访问|因该网站未(?:进行)?备案|未完成备案或未转入备案|webblock\.html|batit\.aliyun\.com",
    re.I,
)
_RATE_WORDS = re.compile(
    r"(?:访问|请求|操作|点击)(?:过于|太过|太)频繁|(?:访问|请求)频率(?:过|太)(?:快|高)|"
    r"(?:访问|请求)次数过多|访问过快|too many requests|rate limit",
    re.I,
)
_MAINTENANCE_WORDS = re.compile(
    r"维护中|正在(?:进行)?(?:系统)?维护|系统维护|网站维护|维护升级|升级维护|(?:系统|网站)?升级中|正在升级|"
    r"暂停(?:访问|服务|开放)|站点已(?:暂停|关闭)|网站已(?:暂停|关闭|停止)|已经?被管理员停止运行|"
    r"(?:临时|暂时)关闭|under maintenance",
    re.I,
)
_DEFAULT_WORDS = re.compile(
    r"welcome to (?:nginx|openresty|tengine)|if you see this page, the nginx web server|"
    r"\bit works!|default (?:web )?page|test page for (?:the )?(?:apache|nginx)|iis windows server|"
    r"welcome to iis|internet information services|successfully installed tomcat|没有找到站点|"
    r"没有找到对应的站点|站点创建成功|这是默认\s*index|网站(?:正在)?建设中|正在建设中|under construction|"
    r"phpstudy|域名(?:未|没有)绑定|未绑定(?:域名|站点)",
    re.I,
)
# Titles of default pages are decisive at any size (Tomcat's page has many links).
_DEFAULT_TITLES = re.compile(
    r"^(?:welcome to (?:nginx|openresty|tengine)!?|iis windows server|iis\d*|apache tomcat/[\d.]+|"
    r"apache2 \w+ default page.*|test page for .*|没有找到站点|恭喜[,，]\s*站点创建成功！?)$",
    re.I,
)
_CHALLENGE_TITLE = re.compile(
    r"安全验证|人机验证|访问验证|安全检测|安全检查|请稍候|请稍后|环境检测|正在验证|浏览器安全|"
    r"environment checking|just a moment|verification|checking your browser|滑动验证|验证码|ddos",
    re.I,
)
_BLOCK_TITLE = re.compile(
    r"拦截|防火墙|访问被拒绝|禁止访问|访问受限|无法访问|access denied|forbidden|^\d{3}$", re.I
)
_ERROR_TITLE = re.compile(r"^(?:40[04]|404 not found|not found)$", re.I)
_COOKIE_SET = re.compile(r"document\.cookie\s*=", re.I)
_RELOAD = re.compile(
    r"location\.reload|location(?:\.href)?\s*=|location\.(?:replace|assign)\s*\(|settimeout\s*\(", re.I
)
_PACKED = re.compile(r"eval\(function\(p,a,c,k,e,[dr]\)|_0x[0-9a-f]{4,}|_\$[a-zA-Z$]{2}\(", re.I)
_ENABLE_JS = re.compile(
    r"(?:请|需要)?(?:开启|启用|打开|允许)\s*javascript|enable\s+javascript|浏览器不支持", re.I
)
_SPACE = re.compile(r"\s+")
_VISIBLE_TEXT = etree.XPath(
    "//text()[not(ancestor::script or ancestor::style or ancestor::noscript or ancestor::title"
    " or ancestor::template)]"
)

# Statuses that only protection products send on a GET (瑞数 412, 华为 418, 网宿/法院 449/455, 云盾 461,
# 360 493, EdgeOne 567 …): never a site's own page.
_SHIELD_STATUSES = frozenset({412, 418, 449, 455, 461, 493, 494, 566, 567})


class _Features:
    """What the rules read from a page, each computed on first use."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc

    @cached_property
    def links(self) -> int:
        n = 0
        for _ in _A_TAG.finditer(self.doc.text):
            n += 1
            if n >= _PORTAL_LINKS:
                break
        return n

    @cached_property
    def portal(self) -> bool:
        """Plainly a site's page: many links (stops counting at 30)."""
        return self.links >= _PORTAL_LINKS

    @cached_property
    def title(self) -> str:
        for el in self.doc.tree.iter("title"):
            return _SPACE.sub(" ", el.text_content()).strip()[:200]
        return ""

    @cached_property
    def visible(self) -> str:
        """The text a visitor reads (scripts, styles, comments and the title left out), spaces folded."""
        parts = _VISIBLE_TEXT(self.doc.tree)
        return _SPACE.sub(" ", " ".join(str(p) for p in parts)).strip() if isinstance(parts, list) else ""

    @cached_property
    def chars(self) -> int:
        """Visible characters that carry meaning (letters, digits, CJK)."""
        return sum(1 for c in self.visible if c.isalnum())

    @cached_property
    def scripts(self) -> list[etree._Element]:
        return list(self.doc.tree.iter("script"))

    @cached_property
    def script_text(self) -> str:
        return "\n".join(el.text or "" for el in self.scripts)

    @cached_property
    def media(self) -> int:
        """Elements that show something without text: images, frames, embedded objects, drawings."""
        return sum(
            1
            for _ in self.doc.tree.iter(
                "img", "iframe", "frame", "object", "embed", "svg", "canvas", "video", "input", "form"
            )
        )

    @cached_property
    def noscript(self) -> str:
        return " ".join(el.text_content() for el in self.doc.tree.iter("noscript"))

    @cached_property
    def thin(self) -> bool:
        """Not a page anyone would call a home page: few links and little to read."""
        return not self.portal and (self.chars < 200 or (self.links < 5 and self.chars < 1500))

    @cached_property
    def bare(self) -> bool:
        """Next to nothing to read and nowhere to go."""
        return self.links <= 2 and self.chars < 120


def _excerpt(text: str, m: re.Match[str], around: int = 80) -> str:
    return text[max(0, m.start() - around) : m.end() + around]


def _header(headers: Mapping[str, str], name: str) -> str:
    low = name.lower()
    return next((v for k, v in headers.items() if k.lower() == low), "")


def is_html(content_type: str, body_start: bytes) -> bool:
    """Whether a response is a web page a browser would render: by its declared type, and when the
    type says nothing (absent, ``application/octet-stream``), by its first bytes; bytes that are
    plainly not text (an image, an archive, random bytes) are no page whatever the declared type."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if _binary(body_start):
        return False
    if "html" in ctype or "xml" in ctype:
        return True
    if ctype and ctype not in ("application/octet-stream", "unknown/unknown", "application/unknown"):
        return False  # an image, a PDF, an archive, JSON, plain text: a browser does not render markup
    return _looks_like_markup(body_start) or not body_start.strip()


_MAGIC = (
    b"\x89PNG",
    b"GIF8",
    b"\xff\xd8\xff",
    b"PK\x03\x04",
    b"%PDF",
    b"\x1f\x8b",
    b"BM",
    b"RIFF",
    b"\x00\x00\x01\x00",
)
_CONTROL = frozenset(range(0, 9)) | frozenset(range(14, 32))


def _binary(start: bytes) -> bool:
    """Whether the first bytes are not text: a known file signature, or control bytes no text in any
    encoding carries (UTF-16 text, with its NUL halves, is text)."""
    head = start[:1024]
    if not head or head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    if head.startswith(_MAGIC):
        return True
    if head.count(0) * 4 >= len(head) and (
        head[1::2].count(0) * 3 >= len(head) // 2 or head[0::2].count(0) * 3 >= len(head) // 2
    ):
        return False  # UTF-16 without a BOM: every other byte is NUL
    controls = sum(1 for b in head if b in _CONTROL)
    return controls > max(2, len(head) // 50)


def _looks_like_markup(start: bytes) -> bool:
    head = start[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    return b"\x00" not in start[:1024] and (head[:1] == b"<" or b"<html" in start[:1024].lower())


def assess(
    doc: Document, status: int, headers: Mapping[str, str] | None = None, body_size: int | None = None
) -> Signal | None:
    """The reason ``doc`` (served with ``status``) is not the site's content, or None if it is.

    ``headers`` are the response headers (``Retry-After``, ``Content-Type``); ``body_size`` the bytes
    received (an empty body is decided before parsing).
    """
    headers = headers or {}
    text = doc.text
    if (body_size == 0 or not text.strip()) and status < 400:
        return Signal("http.empty", f"首页内容为空（HTTP {status}）")
    if not text.strip():
        return _by_status(status, headers or {}, _Features(doc))
    f = _Features(doc)
    shield_status = status in _SHIELD_STATUSES
    # 1. vendor tokens
    if not f.portal or shield_status:
        for product, pattern, injected in _CHALLENGE_TOKENS:
            m = pattern.search(text)
            if m is None:
                continue
            if injected and not (f.bare or shield_status or status == 202):
                continue
            return Signal("http.challenge", f"{product}的访问验证页（HTTP {status}）", _excerpt(text, m))
        if (f.bare or shield_status) and (m := _RUISHU_ATTR.search(text)) and "$_ts" in text:
            return Signal("http.challenge", f"瑞数动态防护的访问验证页（HTTP {status}）", _excerpt(text, m))
    title = f.title
    if _DEFAULT_TITLES.match(title) and status < 400:
        return Signal("http.default_page", f"服务器默认页面“{title}”（HTTP {status}）", title)
    if f.portal:
        return _by_status(status, headers, f) if status >= 400 else None
    # 2. words, on pages that are not a portal; rate limits and blocks first (their pages often say
    #    "稍后" and "维护" too), maintenance, then default pages.
    visible = f.visible
    words = f"{title} {visible}"
    if f.thin or status >= 400:
        if m := _RATE_WORDS.search(words):
            return Signal("http.rate_limited", f"访问频率限制提示页（HTTP {status}）", _excerpt(words, m))
        if m := _BLOCK_WORDS.search(words):
            return Signal("http.blocked", f"防火墙拦截页（HTTP {status}）", _excerpt(words, m))
        if m := _MAINTENANCE_WORDS.search(words):
            return Signal("http.maintenance", f"维护或暂停访问提示页（HTTP {status}）", _excerpt(words, m))
        if m := _DEFAULT_WORDS.search(words):
            return Signal("http.default_page", f"服务器默认页面（HTTP {status}）", _excerpt(words, m))
        if status < 400 and _ERROR_TITLE.match(title) and f.chars < 200:
            return Signal("http.default_page", f"服务器错误页“{title}”却以 HTTP {status} 返回", title)
    # 3. shape: next to nothing to read and nowhere to go
    if f.bare:
        scripts = f.script_text
        m = _COOKIE_SET.search(scripts)
        if m and _RELOAD.search(scripts):
            return Signal(
                "http.challenge", f"设置 Cookie 后刷新的验证脚本页（HTTP {status}）", _excerpt(scripts, m)
            )
        if (m := _PACKED.search(scripts)) and len(f.scripts) <= 3:
            return Signal(
                "http.challenge", f"只有混淆脚本的验证页（HTTP {status}）", _excerpt(scripts, m, 40)
            )
        if m := _ENABLE_JS.search(f"{f.noscript} {visible}"):
            return Signal("http.challenge", f"要求开启 JavaScript 的验证页（HTTP {status}）", m.group(0))
        # The title first; on a page this bare, its one line of text says the same.
        if m := _CHALLENGE_TITLE.search(title) or _CHALLENGE_TITLE.search(visible):
            shown = title or m.group(0)
            return Signal("http.challenge", f"验证页“{shown}”（HTTP {status}）", title or visible)
        if m := _BLOCK_TITLE.search(title):
            return Signal("http.blocked", f"拦截页“{title}”（HTTP {status}）", title)
        if f.chars == 0 and f.media == 0 and not f.scripts:
            return Signal("http.empty", f"首页没有可显示的内容（HTTP {status}）", text[:200])
    if status >= 400 or (status == 202 and f.bare):
        return _by_status(status, headers, f)
    return None


def _by_status(status: int, headers: Mapping[str, str], f: _Features) -> Signal | None:
    """What a status says when the body did not: protection statuses, 429, 5xx, other 4xx."""
    if status == 412 or (status == 521 and _COOKIE_SET.search(f.script_text)):
        return Signal("http.challenge", f"防护产品的访问验证（HTTP {status}）")
    if status == 202:
        return Signal("http.challenge", "内容为空的 HTTP 202 应答（防护产品的验证）")
    if status == 429:
        retry = _header(headers, "retry-after")
        return Signal(
            "http.rate_limited", "HTTP 429 访问频率限制" + (f"，Retry-After {retry}" if retry else "")
        )
    if status in _SHIELD_STATUSES or status in (401, 403, 407, 451):
        return Signal("http.blocked", f"HTTP {status}")
    if status == 503 and _header(headers, "retry-after") and not f.portal:
        return Signal("http.maintenance", f"HTTP 503，Retry-After {_header(headers, 'retry-after')}")
    return None
