"""What stands in front of a real government home page: anti-bot challenges, firewall block pages,
rate-limit and maintenance notices, empty and default pages, landing stubs and registrar forwarding.

Each function returns the response a crawler gets instead of (or on the way to) the site's own page,
modelled on what the products Chinese government sites sit behind actually send (``docs/simnet.md``
lists the public evidence for each). Bodies are served in the encoding the real ones use (several are
GBK without any declaration), so a checker must decide on the decoded page, not on bytes read as UTF-8.
"""

from __future__ import annotations

import html
import json

from simnet.model import Route

HTML_UTF8 = "text/html; charset=utf-8"


def _route(
    status: int,
    body: str,
    encoding: str = "utf-8",
    content_type: str = HTML_UTF8,
    headers: tuple[tuple[str, str], ...] = (),
) -> Route:
    return Route(status=status, body=body.encode(encoding), content_type=content_type, headers=headers)


# --- anti-bot challenges: a browser passes them by running a script; a crawler sees only this --------


def ruishu(status: int = 412) -> Route:
    """瑞数 (Rivers Security) dynamic protection: 412 (some versions 202 or 200), an obfuscated
    ``$_ts`` bootstrap, ``<meta … r='m'>`` and a same-site script with a random path; the page itself
    appears only once the cookie the script computes comes back."""
    cd = "qhGrqqAlEGtaZsr0r1glxk" * 40
    body = (
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        '<meta http-equiv="Expires" content="0"><meta http-equiv="Cache-Control" content="no-cache">'
        '<meta http-equiv="Pragma" content="no-cache">'
        f'<meta id="FbkwzLN5XOx0" content="{cd[:300]}" r=\'m\'>'
        f"<script type=\"text/javascript\" r='m'>$_ts=window['$_ts'];if(!$_ts)$_ts={{}};$_ts.nsd=84722;"
        f'$_ts.cd="{cd}";$_ts.lcd=$_ts.cd;</script>'
        '<script type="text/javascript" charset="utf-8" src="/4QbVtADbnLVIc/d.FxJzG50F.dfe1675.js" '
        "r='m'></script></head><body></body></html>"
    )
    return _route(
        status,
        body,
        headers=(
            (
                "Set-Cookie",
                "FSSBBIl1UgzbN7N80S=x3rGqPIVb0ES0bH4; Path=/; expires=Fri, 01 Jan 2027 "
                "00:00:00 GMT; HttpOnly",
            ),
        ),
    )


def jiasule() -> Route:
    """加速乐 (Knownsec): 521 and a one-line script that builds the ``__jsl_clearance_s`` cookie out of
    one-character pieces (the cookie name is never written whole) and reloads."""
    name = "+".join(f"('{c}')" for c in "__jsl_clearance_s")
    body = (
        f"<script>document.cookie={name}+('=')+(+!+[]+'7'+(1+1)+[]+(+!+[])+'.'+'0'+(+!+[]))+"
        "('|-1|')+(-~[]+[]+[])+('|')+(3+[])+('|')+('a')+('%')+('2')+('F')+(-~[]+[])+(';max-age=3600;"
        "path=/');location.href=location.pathname+location.search</script>"
    )
    return _route(
        521,
        body,
        headers=(("Set-Cookie", "__jsluid_h=1a7c40d4e64b4b2a; max-age=31536000; path=/; HttpOnly"),),
    )


def yunsuo() -> Route:
    """云锁: a 200 page of JavaScript that stores the URL in a cookie and jumps to
    ``?security_verify_data=…``; GBK, no charset anywhere."""
    body = (
        '<html><head><meta http-equiv="pragma" content="no-cache"/><meta http-equiv="cache-control" '
        'content="no-store"/></head><body><script type="text/javascript">function stringToHex(str){var '
        'val="";for(var i = 0; i < str.length; i++){if(val == "")val = str.charCodeAt(i).toString(16);'
        "else val += str.charCodeAt(i).toString(16);}return val;}function YunSuoAutoJump(){ var width "
        '=screen.width; var height=screen.height; var screendate = width + "," + height;var curlocation '
        '= window.location.href;if(-1 == curlocation.indexOf("security_verify_")){ document.cookie='
        '"srcurl=" + stringToHex(window.location.href) + ";path=/;";}self.location = '
        '"/?security_verify_data=" + stringToHex(screendate);}</script><script>setTimeout('
        '"YunSuoAutoJump()", 50);</script><noscript>请开启浏览器的JavaScript功能后刷新本页面</noscript>'
        "</body></html>"
    )
    return _route(
        200,
        body,
        "gbk",
        "text/html",
        (
            (
                "Set-Cookie",
                "yunsuo_session_verify=6b7f8e3c0d9a; expires=Mon, 07-Dec-26 05:00:00 GMT; path=/; HttpOnly",
            ),
        ),
    )


def unknown_challenge() -> Route:
    """A challenge of a product nobody has catalogued: a title like 安全检测, a line of text, one script
    that sets a cookie and reloads. The general rule, not a vendor marker, must recognise it."""
    body = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>安全检测中，请稍候……</title>'
        "<style>body{font:14px sans-serif;text-align:center;padding-top:120px;color:#666}</style></head>"
        "<body><p>正在进行浏览器安全检测，请稍候……</p><script>var _t=(new Date()).getTime()%9973;"
        "document.cookie='__gvs_chk='+(_t*7+3)+';path=/';setTimeout(function(){location.reload()},800);"
        "</script></body></html>"
    )
    return _route(200, body)


# --- firewall block pages -------------------------------------------------------------------------


def _block_page(title: str, lines: tuple[str, ...], footer: str) -> str:
    items = "".join(f"<p>{html.escape(x)}</p>" for x in lines)
    return (
        f'<!DOCTYPE html><html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        f'<title>{html.escape(title)}</title></head><body><div class="wrap"><h2>{html.escape(title)}</h2>'
        f'{items}<div class="foot">{footer}</div></div></body></html>'
    )


def safedog() -> Route:
    """安全狗 (SafeDog) 网站防火墙: a 200 page that says the request carried illegal parameters."""
    body = _block_page(
        "网站防火墙",
        (
            "您的请求带有不合法参数，已被网站管理员设置拦截！",
            "可能原因：您提交的内容包含危险的攻击请求",
            "如何解决：1）检查提交内容；2）如网站托管，请联系空间提供商；3）普通网站访客，请联系网站管理员",
        ),
        '<a href="http://www.safedog.cn/" target="_blank">网站安全狗</a>',
    )
    return _route(200, body, headers=(("X-Powered-By", "WAF/2.0"),))


def wangzhan360() -> Route:
    """360 网站卫士: the request was taken for an attack."""
    body = _block_page(
        "360网站卫士 - 访问拦截",
        ("当前访问疑似黑客攻击，已被网站管理员设置为拦截", "如果您是网站管理员，请登录网站卫士查看"),
        '<a href="http://wangzhan.360.cn/">360网站卫士</a>',
    )
    return _route(493, body)


def chuangyudun() -> Route:
    """创宇盾 (Knownsec): a block page in GBK naming the event id."""
    body = _block_page(
        "创宇盾 - 访问被拦截",
        ("您的访问请求可能对网站造成安全威胁，请求已被拦截。", "事件ID：5f7a3c2e9b1d4e06"),
        "由 创宇盾 提供安全防护",
    ).replace("charset=utf-8", "charset=gbk")
    return _route(403, body, "gbk", "text/html; charset=gbk")


def baota() -> Route:
    """宝塔 (BT panel) nginx firewall: its own block page."""
    body = _block_page(
        "宝塔防火墙 - 拦截提示",
        (
            "您的请求带有不合法参数，已被网站管理员设置拦截！",
            "如果您是网站管理员，请登录宝塔面板查看拦截日志",
        ),
        "Powered by 宝塔Linux面板 nginx防火墙",
    )
    return _route(200, body)


def aliyun_waf() -> Route:
    """阿里云 WAF: 405 with the '访问被阻断' page."""
    body = _block_page(
        "405",
        (
            "很抱歉，由于您访问的URL有可能对网站造成安全威胁，您的访问被阻断。",
            "您的请求ID是：0bc1fc8e17331234567890123e",
        ),
        '<img src="https://errors.aliyun.com/images/TB1TpamHpXXXXaJXXXXeB7nYVXX-104-162.png">',
    )
    return _route(405, body, headers=(("Server", "Tengine"),))


def tencent_waf() -> Route:
    """腾讯云 Web 应用防火墙: 403 and its block page."""
    body = _block_page(
        "501",
        ("抱歉，您的请求已被拦截", "您提交的请求可能对网站造成威胁，请求已被管理员设置的策略阻断"),
        "腾讯T-Sec Web应用防火墙(WAF)",
    )
    return _route(403, body)


# --- notices that are not the site --------------------------------------------------------------------


def rate_limited(status: int = 200) -> Route:
    """A CC-protection notice (ngx_lua_waf style): served as 200 by many, as 429 by some."""
    body = (
        "<html><head><title>提示</title></head><body><h3>访问过于频繁，请稍后再试！</h3>"
        "<p>您的IP在短时间内访问次数过多，已被临时限制访问。</p></body></html>"
    )
    headers: tuple[tuple[str, str], ...] = (("Retry-After", "120"),) if status == 429 else ()
    return _route(status, body, headers=headers)


def maintenance(status: int = 200) -> Route:
    """A nightly publishing window: 系统维护中, in GBK without any charset declaration (the 200 form), or
    a 503 with ``Retry-After``."""
    body = (
        '<html><head><title>系统维护中</title></head><body><div style="margin:100px auto;width:600px">'
        "<h2>系统维护中</h2><p>尊敬的用户：为了给您提供更好的服务，本网站正在进行系统维护升级，预计于 "
        "06:00 恢复访问。给您带来的不便，敬请谅解！</p><p>主办单位：本单位办公室</p>"
        "<p>冀ICP备05012345号</p></div></body></html>"
    )
    if status == 200:
        return _route(200, body, "gbk", "text/html")
    return _route(status, body, headers=(("Retry-After", "3600"),))


def empty() -> Route:
    return Route(status=200, body=b"", content_type="text/html")


def blank_html() -> Route:
    return _route(200, "<html>\n<head>\n<title></title>\n</head>\n<body>\n\n</body>\n</html>\n")


def default_nginx() -> Route:
    body = (
        "<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n<style>\nhtml { color-scheme: "
        "light dark; }\nbody { width: 35em; margin: 0 auto;\nfont-family: Tahoma, Verdana, Arial, "
        "sans-serif; }\n</style>\n</head>\n<body>\n<h1>Welcome to nginx!</h1>\n<p>If you see this page, "
        "the nginx web server is successfully installed and\nworking. Further configuration is "
        'required.</p>\n\n<p>For online documentation and support please refer to\n<a href="http://'
        'nginx.org/">nginx.org</a>.<br/>\nCommercial support is available at\n<a href="http://nginx.com/">'
        "nginx.com</a>.</p>\n\n<p><em>Thank you for using nginx.</em></p>\n</body>\n</html>\n"
    )
    return _route(200, body, content_type="text/html", headers=(("Server", "nginx/1.22.1"),))


def default_baota() -> Route:
    """宝塔: the host name is not bound to any site on this server."""
    body = (
        '<!doctype html><html><head><meta charset="utf-8"><title>没有找到站点</title></head><body>'
        '<div class="container"><h1>没有找到站点</h1><h3>您的请求在Web服务器中没有找到对应的站点！</h3>'
        "<ul><li>您没有将此域名或IP绑定到对应站点!</li><li>配置文件未生效!</li></ul>"
        "<h3>如何解决:</h3><ul><li>检查是否已经绑定到对应站点，若确认已绑定，请尝试重载Web服务；</li>"
        "<li>检查端口是否正确；</li><li>若您使用了CDN产品，请尝试清除CDN缓存；</li>"
        "<li>普通网站访客，请联系网站管理员；</li></ul></div></body></html>"
    )
    return _route(200, body)


def default_iis() -> Route:
    body = (
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/'
        'xhtml1-strict.dtd">\n<html xmlns="http://www.w3.org/1999/xhtml">\n<head>\n<meta http-equiv='
        '"Content-Type" content="text/html; charset=iso-8859-1" />\n<title>IIS Windows Server</title>\n'
        '</head>\n<body>\n<div id="container">\n<a href="http://go.microsoft.com/fwlink/?linkid=66138&amp;'
        'clcid=0x409"><img src="iisstart.png" alt="IIS" width="960" height="600" /></a>\n</div>\n'
        "</body>\n</html>"
    )
    return _route(200, body, content_type="text/html", headers=(("Server", "Microsoft-IIS/10.0"),))


def not_html() -> Route:
    """A home page that is a download (a misconfigured default document)."""
    return Route(
        status=200,
        body=b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 8,
        content_type="application/octet-stream",
    )


# --- landing stubs -------------------------------------------------------------------------------------


def meta_refresh(target: str) -> Route:
    body = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">'
        f'<meta http-equiv="refresh" content="0; url={target}"></head><body></body></html>'
    )
    return _route(200, body, "gbk", "text/html")


def refresh_header(target: str) -> Route:
    return _route(200, "<html><body></body></html>", headers=(("Refresh", f"0;URL='{target}'"),))


def js_location(target: str) -> Route:
    body = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title></title>'
        f'<script type="text/javascript">window.location.href = "{target}";</script></head>'
        "<body></body></html>"
    )
    return _route(200, body)


def js_replace_by_device(desktop: str, mobile: str) -> Route:
    """A device switch: phones to the mobile site, everyone else to the portal (what a desktop browser
    sees is the second)."""
    body = (
        '<html><head><meta charset="utf-8"><script>if(/Android|webOS|iPhone|iPod|BlackBerry/i.test('
        f"navigator.userAgent)){{location.replace('{mobile}');}}else{{location.replace('{desktop}');}}"
        "</script></head><body></body></html>"
    )
    return _route(200, body)


def js_computed(path: str) -> Route:
    """A stub whose target only a browser can compute."""
    body = (
        '<html><head><meta charset="utf-8"></head><body><script>var d=new Date();var p=["'
        + '","'.join(path.strip("/").split("/"))
        + '"];window.location.href="/"+p.join("/")+"?t="+d.getTime();</script></body></html>'
    )
    return _route(200, body)


def frameset(target: str, title: str) -> Route:
    """A registrar's 隐性转发 page (or an old site's frameset): the address bar keeps the name, the whole
    window is the frame."""
    body = (
        f'<html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f'<frameset rows="100%,*" frameborder="no" border="0" framespacing="0">'
        f'<frame name="main" src="{target}" scrolling="auto" noresize></frameset>'
        "<noframes><body>您的浏览器不支持框架</body></noframes></html>"
    )
    return _route(200, body)


def full_iframe(target: str, title: str) -> Route:
    body = (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        "<style>html,body{margin:0;height:100%;overflow:hidden}</style></head><body>"
        f'<iframe src="{target}" width="100%" height="100%" frameborder="0" '
        'style="border:0;width:100%;height:100%"></iframe></body></html>'
    )
    return _route(200, body)


def shell_page(title: str, loader: str) -> str:
    """A single-page-app shell: an empty mount point and a bundle that builds everything."""
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<script defer src="{loader}"></script></head><body><div id="app"></div></body></html>'
    )


def dom_builder_script(markup: str, mount: str = "#app") -> str:
    """A bundle-like script that builds the page with DOM calls (no innerHTML string a static reader could
    evaluate): the markup is split into pieces and parsed at run time."""
    pieces = [markup[i : i + 37] for i in range(0, len(markup), 37)]
    arr = ",".join(json.dumps(p, ensure_ascii=False) for p in pieces)
    return (
        "(function(){var parts=[" + arr + "];var tpl=document.createElement('template');"
        "tpl.innerHTML=parts.map(function(p){return p}).reduce(function(a,b){return a+b},'');"
        f"var root=document.querySelector('{mount}');root.appendChild(tpl.content);}})();\n"
    )
