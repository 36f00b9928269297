"""CONAC's services as sites see them: embed code, badge scripts (dcs.conac.cn), verification pages
(bszs.conac.cn)."""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import html
from collections import Counter
from dataclasses import dataclass, field

from simnet.ident import PARTY, badge_script_path
from simnet.model import Action, Route

DCS_HOST = "dcs.conac.cn"
BSZS_HOST = "bszs.conac.cn"
RECV_HOSTS = ("recv1.conac.cn", "recv2.conac.cn")
RED_PAGE_HOST = "hy.conac.cn"


@dataclass(frozen=True, slots=True)
class Badge:
    """One issued badge: its code, verification id and image, and the facts its verification page shows."""

    code: str
    verify_id: str
    kind: str  # 党政机关 / 事业单位 (the image colour follows it)
    unit_name: str
    site_name: str
    domains: tuple[str, ...]
    address: str = ""
    functions: str = ""
    issued: str = "2015-01-20"
    error: bool = False  # CONAC's own check failed: the script shows the *_error.png image

    @property
    def image(self) -> str:
        colour = "red" if self.kind == PARTY else "blue"
        return f"{colour}_error" if self.error else colour

    @property
    def script_path(self) -> str:
        return badge_script_path(self.code)

    @property
    def verify_path(self) -> str:
        return f"/sitename?method=show&id={self.verify_id}"


def bszs_href(badge: Badge, scheme: str = "//", amp: bool = False) -> str:
    """The verification link as the script writes it (``amp`` writes ``&amp;`` as copied HTML does)."""
    sep = "&amp;" if amp else "&"
    return f"{scheme}{BSZS_HOST}/sitename?method=show{sep}id={badge.verify_id}"


def expanded_markup(badge: Badge, image_src: str | None = None, attr: str = "id", amp: bool = True) -> str:
    """The markup the script produces (or a static copy of it)."""
    src = image_src if image_src is not None else f"//{DCS_HOST}/image/{badge.image}.png"
    return (
        f'<span {attr}="_ideConac"><a href="{bszs_href(badge, amp=amp)}" target="_blank">'
        f'<img id="imgConac" vspace="0" hspace="0" border="0" src="{src}" '
        f'data-bd-imgshare-binded="1"></a></span>'
    )


def embed_code(
    badge: Badge,
    scheme: str = "http:",
    trailing_space: bool = False,
    double_spaces: bool = False,
    script_attrs: str = 'type="text/javascript"',
) -> str:
    """The official one-line embed code CONAC hands out (with the quirks sites introduce)."""
    src = f"{scheme}//{DCS_HOST}{badge.script_path}" + (" " if trailing_space else "")
    gap = "  " if double_spaces else " "
    inner = (
        f"%3Cspan id='_ideConac' %3E%3C/span%3E%3Cscript{gap}src='{src}' "
        "type='text/javascript'%3E%3C/script%3E"
    )
    return f'<script {script_attrs}>document.write(unescape("{inner}"));</script>'


def badge_script(badge: Badge) -> str:
    """The script served at ``dcs.conac.cn/js/.../CA….js``: fills the span with link and image."""
    inner = (
        f'<a href="//{BSZS_HOST}/sitename?method=show&id={badge.verify_id}" target="_blank">'
        f'<img id="imgConac" vspace="0" hspace="0" border="0" src="//{DCS_HOST}/image/{badge.image}.png" '
        'data-bd-imgshare-binded="1"></a>'
    )
    inner_js = inner.replace("\\", "\\\\").replace('"', '\\"')
    return (
        "(function(){\n"
        f'var h="{inner_js}";\n'
        'var s=document.getElementById("_ideConac");\n'
        "if(s){s.innerHTML=h;}else{document.write('<span id=\"_ideConac\">'+h+'</span>');}\n"
        'try{var b=new Image();b.src="//'
        + RECV_HOSTS[0]
        + "/r?c="
        + badge.code
        + '&u="+encodeURIComponent(location.href);}catch(e){}\n'
        "})();\n"
    )


def verify_page(badge: Badge) -> str:
    """The bszs.conac.cn verification page of a badge."""
    rows = [
        ("单位名称", badge.unit_name),
        ("机构类型", badge.kind),
        ("机构地址", badge.address),
        ("机构职能", badge.functions),
        ("网站名称", badge.site_name),
        ("网站域名", "、".join(badge.domains)),
        ("证书编号", badge.code),
        ("发证日期", badge.issued),
    ]
    cells = "\n".join(
        f'<tr><th>{html.escape(k)}</th><td class="v" data-field="{html.escape(k)}">{html.escape(v)}</td></tr>'
        for k, v in rows
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>网站标识核验</title></head><body>'
        f'<h1>{html.escape(badge.kind)}网站标识核验</h1><table id="verify">\n{cells}\n</table>'
        "<p>本网站标识由中央机构编制委员会办公室事业发展中心（政务和公益机构域名注册管理中心）颁发。</p>"
        "</body></html>"
    )


# --- caching: validators and conditional requests ------------------------------------------------------

CONAC_SERVED = frozenset({DCS_HOST, BSZS_HOST})
#: When a resource without a date of its own last changed (the badge images).
DEFAULT_MODIFIED = "2015-01-20"


def validators(body: bytes, modified: str = DEFAULT_MODIFIED) -> tuple[tuple[str, str], ...]:
    """``ETag`` (a hash of the body: it changes with the body) and ``Last-Modified`` (``modified``, an
    ISO date, 08:00 GMT) as CONAC's servers send them."""
    day = dt.datetime.fromisoformat(modified).replace(hour=8, tzinfo=dt.UTC)
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    return (("ETag", etag), ("Last-Modified", email.utils.format_datetime(day, usegmt=True)))


class NotModified(Route):
    """A 304: the validators, no body and no ``Content-Length`` (RFC 9110 §15.4.5)."""

    __slots__ = ()

    def wire(self, keep_alive: bool, head: bool) -> bytes:
        lines = ["HTTP/1.1 304 Not Modified", "Server: simnet"]
        lines.extend(f"{k}: {v}" for k, v in self.headers)
        lines.append("Connection: " + ("keep-alive" if keep_alive else "close"))
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class ConacLog:
    """What CONAC's hosts were asked (per host), how many requests were conditional, how many got a 304;
    and the conditional answers themselves (:meth:`answer`, called by the web farm for every request)."""

    requests: Counter[str] = field(default_factory=Counter)
    conditional: int = 0
    not_modified: int = 0

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def answer(self, host: str, route: Route, head: bytes) -> Route:
        """``route``, or a 304 when the request's ``If-None-Match`` / ``If-Modified-Since`` (``head``:
        the request head in lower case) say the client holds the current body."""
        if host not in CONAC_SERVED:
            return route
        self.requests[host] += 1
        if b"\r\nif-" not in head:
            return route
        self.conditional += 1
        if route.action is not Action.RESPOND or route.status != 200:
            return route
        etag = next((v for k, v in route.headers if k.lower() == "etag"), "")
        modified = next((v for k, v in route.headers if k.lower() == "last-modified"), "")
        match = _request_header(head, b"if-none-match")
        since = _request_header(head, b"if-modified-since")
        fresh = False
        if match is not None:  # RFC 9110 §13.2.2: If-None-Match decides when present (weak comparison)
            tags = {t.strip().removeprefix("w/") for t in match.split(",")}
            fresh = bool(etag) and ("*" in tags or etag.lower().removeprefix("w/") in tags)
        elif since is not None and modified:
            try:
                changed = email.utils.parsedate_to_datetime(modified)
                fresh = changed <= email.utils.parsedate_to_datetime(since)
            except (TypeError, ValueError):
                fresh = False
        if not fresh:
            return route
        self.not_modified += 1
        kept = tuple((k, v) for k, v in route.headers if k.lower() in ("etag", "last-modified"))
        return NotModified(status=304, body=b"", content_type="", headers=kept)


def _request_header(head: bytes, name: bytes) -> str | None:
    i = head.find(b"\r\n" + name + b":")
    if i < 0:
        return None
    start = i + 3 + len(name)
    j = head.find(b"\r\n", start)
    return head[start : j if j >= 0 else len(head)].strip().decode("latin-1")
