"""CONAC's services as sites see them: embed code, badge scripts (dcs.conac.cn), verification pages
(bszs.conac.cn)."""

from __future__ import annotations

import html
from dataclasses import dataclass

from simnet.ident import PARTY, badge_script_path

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
