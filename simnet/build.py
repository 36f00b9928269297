"""Turn a site's description and scenario into what simnet serves, the registry row and the ground truth.

:func:`build_site` and :func:`build_unit` return a :class:`Built`: DNS entries, virtual hosts (including
the CONAC pages of its badge), registry rows, and ground-truth records. Samples feed them to a
:class:`~simnet.model.StaticUniverse` and to the registry / ground-truth writers; the generated sample
builds them on demand from a site's index.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import struct
import urllib.parse
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from simnet import scenarios as sc
from simnet import shields
from simnet.conac import BSZS_HOST, DCS_HOST, RED_PAGE_HOST, Badge, badge_script, validators, verify_page
from simnet.ident import (
    INSTITUTION,
    PARTY,
    ZH_GOV,
    ZH_PUBLIC,
    badge_code,
    make_uscc,
    stable_int,
    try_ascii,
    verify_id,
)
from simnet.model import Action, DnsBehaviour, DnsEntry, HostSite, Route, TlsMode
from simnet.pages import (
    FOOTER_URL,
    HTML_UTF8,
    JQUERY_SHIM,
    JS,
    PageParts,
    badge_fragment,
    footer_inner,
    home_page,
    icp_fragment,
    parked_page,
    police_fragment,
    red_page,
    site_code_parts,
)
from simnet.tls import AIA_HOST

# Infrastructure addresses (sites get theirs from the sample).
CONAC_ADDR = "127.60.0.2"
REDPAGE_ADDR = "127.60.0.4"
PARKING_ADDR = "127.60.0.6"
MIIT_ADDR = "127.60.0.7"
PLATFORM_ADDR = "127.60.0.20"  # a consolidation platform (集约化平台): unknown host names get its portal
TLS_ONLY_ADDR = "127.60.0.21"  # hosts that answer HTTPS only (nothing on port 80 for them)
PKI_ADDR = "127.60.0.8"  # the CA's AIA host (the intermediate certificate)
# Servers whose HTTPS port needs a listener of its own (simnet.model.LISTENER_MODES): every site of
# these shapes lives on the one address of its shape, like an old server hosting several sites.
LEGACY_TLS_ADDR = "127.60.0.9"  # TLS 1.0 only
SM2_ADDR = "127.60.0.10"  # 国密 TLCP only
DEAD_ADDR = "127.60.0.250"  # nothing listens here: connections are refused

HUGE_BYTES = 6 * 1024 * 1024 + 12345
BOMB_BYTES = 256 * 1024 * 1024
SLOW_MS = 1500

REGISTRY_HEADERS = (
    "编办代码",
    "机构名称",
    "统一社会信用代码",
    "机构类别",
    "中文域名",
    "英文域名",
    "网站名称",
    "网站地址",
    "ICP备案号",
    "公安备案号",
    "政府网站标识码",
    "政府网站",
    "网站标识代码",
    "标识状态",
    "职能审核",
    "域名到期日",
    "联系邮箱",
    "联系手机",
)
OFFICE_HEADERS = ("编办代码", "编办名称", "上级编办代码", "机构数", "联系邮箱", "联系手机")


@dataclass
class UnitSpec:
    """A unit (机构) of the registry."""

    name: str
    kind: str
    office_code: str
    seq: int
    province_char: str = "冀"
    functions_reviewed: bool = True

    @property
    def division(self) -> str:
        return self.office_code

    @property
    def uscc(self) -> str:
        return make_uscc(self.kind, self.division, self.seq)

    @property
    def email(self) -> str:
        return f"u{self.seq}@{self.office_code}.example.gov.cn"

    @property
    def mobile(self) -> str:
        return f"13{self.seq % 10**9:09d}"


@dataclass
class DomainSpec:
    """A Chinese domain of a unit and how it behaves."""

    name: str
    dns: str = "ok"
    usage: str = "own_site_redirect"
    rule: str = "ok"
    expiry: dt.date = dt.date(2099, 12, 31)

    @property
    def ascii(self) -> str | None:
        return try_ascii(self.name)


@dataclass
class SiteSpec:
    """One website of a unit, its scenario and where it lives."""

    key: str
    unit: UnitSpec
    scenario: sc.Scenario
    site_name: str
    en_host: str  # "" when the site lives on its (first) Chinese domain
    domains: list[DomainSpec]
    address: str
    serial: int
    badge_status: str = "已通过"
    badge_prefix: tuple[str, str, str] = ("05", "106", "0000")
    delay_ms: int = 0  # extra latency on every page (generated farms)


@dataclass
class Built:
    """Everything one site or unit contributes."""

    dns: list[DnsEntry] = field(default_factory=list)
    hosts: list[HostSite] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)
    sites: list[dict[str, Any]] = field(default_factory=list)
    domains: list[dict[str, Any]] = field(default_factory=list)
    units: list[dict[str, Any]] = field(default_factory=list)
    defaults: dict[str, HostSite] = field(default_factory=dict)  # address -> default virtual host


def v(status: str, reason: str, **extra: Any) -> dict[str, Any]:
    """A ground-truth verdict."""
    out: dict[str, Any] = {"status": status, "reason": reason}
    out.update(extra)
    return out


def zh_suffix(kind: str) -> str:
    return ZH_GOV if kind == PARTY else ZH_PUBLIC


@functools.lru_cache(maxsize=16384)
def domain_kind(name: str) -> str:
    ascii_name = try_ascii(name) or ""
    if ascii_name.endswith(("xn--zfr164b", "xn--zfr164b.cn")) or name.endswith(("政务", "政务.cn")):
        return ".政务"
    if ascii_name.endswith(("xn--55qw42g", "xn--55qw42g.cn")) or name.endswith(("公益", "公益.cn")):
        return ".公益"
    return "english"


# --- numbers a site shows --------------------------------------------------------------------------


def icp_numbers(spec: SiteSpec) -> tuple[str, str]:
    """(registry number, number the page shows), both canonical ``{省}ICP备{digits}号[-n]``."""
    opt, s, prov = spec.scenario.icp, spec.serial, spec.unit.province_char
    digits = f"{13 + s % 7:02d}{(s * 7919 + 1) % 10**6:06d}"
    suffix = ""
    if opt == "ten_digit":
        digits = f"{2020 + s % 4}{(s * 104729 + 7) % 10**6:06d}"
    if opt in ("suffix", "suffix_before_hao"):
        suffix = f"-{1 + s % 9}"
    if opt == "wrong_province":
        prov = "京"
    registry = f"{prov}ICP备{digits}号{suffix}"
    shown = registry
    if opt == "mismatch":
        shown = f"{prov}ICP备{(int(digits) + 1111) % 10**8:08d}号"
    if opt == "malformed":
        shown = f"{prov}ICP备{digits[:4]}号"
    if opt == "not_in_registry":
        registry = ""
    return registry, shown


def police_numbers(spec: SiteSpec) -> tuple[str, str]:
    """(registry digits, digits the page shows)."""
    opt, s = spec.scenario.police, spec.serial
    division = "110105" if opt == "region_mismatch" else spec.unit.division
    digits = f"{division}02{(s * 7 + 3) % 10**6:06d}"
    if opt == "thirteen_digit":
        digits = f"{division}{(s * 13 + 5) % 10**7:07d}"
    registry, shown = digits, digits
    if opt == "mismatch":
        shown = f"{division}02{(s * 7 + 4) % 10**6:06d}"
    if opt == "malformed":
        shown = digits[:5]
    if opt == "not_in_registry":
        registry = ""
    return registry, shown


def site_codes(spec: SiteSpec) -> tuple[str, str, str]:
    """(registry code, code the page shows, a conflicting code)."""
    opt, s = spec.scenario.site_code, spec.serial
    division = "130100" if opt == "region_mismatch" else spec.unit.division
    code = f"{division}{s % 10000:04d}"
    other = f"{division}{(s + 1) % 10000:04d}"
    shown = code
    if opt == "mismatch":
        shown = other
    if opt == "malformed":
        shown = code[:8]
    if opt == "not_in_registry":
        code = ""
    return code, shown, other


def make_badge(
    spec: SiteSpec,
    kind: str,
    unit_name: str,
    site_name: str,
    domains: tuple[str, ...],
    serial: int,
    error: bool = False,
) -> Badge:
    p2, c3, d4 = spec.badge_prefix
    code = badge_code(p2, c3, d4, serial)
    return Badge(
        code=code,
        verify_id=verify_id(code),
        kind=kind,
        unit_name=unit_name,
        site_name=site_name,
        domains=domains,
        address=f"河北省保定市（{spec.unit.office_code}）",
        functions="负责本单位职责范围内的相关工作。",
        error=error,
    )


def conac_hosts(badge: Badge) -> list[HostSite]:
    """The dcs script and bszs page of a badge (with ``ETag`` and ``Last-Modified``: CONAC answers
    conditional requests, see :class:`simnet.conac.ConacLog`)."""
    script = badge_script(badge).encode()
    page = verify_page(badge).encode()
    return [
        HostSite(
            DCS_HOST,
            CONAC_ADDR,
            {
                badge.script_path: Route(
                    body=script,
                    content_type="application/javascript; charset=utf-8",
                    headers=validators(script, badge.issued),
                )
            },
        ),
        HostSite(
            BSZS_HOST,
            CONAC_ADDR,
            {
                f"/sitename?id={badge.verify_id}": Route(
                    body=page, content_type=HTML_UTF8, headers=validators(page, badge.issued)
                )
            },
        ),
    ]


def _redirect(location: str, status: int = 302) -> Route:
    body = f'<html><body><a href="{location}">{location}</a></body></html>'.encode()
    return Route(status=status, body=body, headers=(("Location", location),))


# --- sites -------------------------------------------------------------------------------------------


def build_site(spec: SiteSpec, as_of: dt.date) -> Built:
    """Everything for one website of ``spec.unit`` (and the Chinese domains listed on its row)."""
    s, unit, out = spec.scenario, spec.unit, Built()
    party = unit.kind == PARTY
    cn_names = [d.name for d in spec.domains]
    site_host = spec.en_host or (spec.domains[0].ascii or "")
    scheme = "https" if s.https else "http"
    url = f"{scheme}://{spec.en_host or spec.domains[0].name}/"  # as the registry writes it (Unicode)
    all_domains = tuple(cn_names + ([spec.en_host] if spec.en_host else []))

    # The badge the page shows (own, or another unit's), and the one the registry knows.
    badge_kind = PARTY if s.badge == "wrong_kind" else unit.kind
    own = make_badge(
        spec, badge_kind, unit.name, spec.site_name, all_domains, spec.serial, error=s.badge == "error_image"
    )
    if s.badge == "outdated_unit_name":
        # 机构改革: the badge was issued under the unit's former name; its site and code are this one's.
        former = former_name(unit.name)
        own = replace(own, unit_name=former, site_name=former + "网")
    elif s.badge == "outdated_domain":
        # The site moved to a new host; the verification page still lists the old one.
        own = replace(own, domains=(f"www.old{spec.serial}.gov.cn",))
    shown_badge = own
    if s.badge in ("copied_badge", "copied_verify_link"):
        shown_badge = make_badge(
            spec,
            unit.kind,
            unit.name[:3] + "其他单位服务中心",  # never containing this unit's name
            "其他单位网站",
            ("www.qita.gov.cn",),
            spec.serial + 50_000_000,
        )
        out.hosts += conac_hosts(shown_badge)
    out.hosts += conac_hosts(own)

    icp_reg, icp_shown = icp_numbers(spec)
    pol_reg, pol_shown = police_numbers(spec)
    code_reg, code_shown, code_other = site_codes(spec)
    badge_opt = s.badge
    frag_badge = badge_fragment(badge_opt, shown_badge, unit.kind)
    frag_icp = icp_fragment(s.icp, icp_reg, icp_shown)
    frag_pol = police_fragment(s.police, unit.province_char, pol_shown)
    meta, jiucuo, footer_code = (
        site_code_parts(s.site_code, code_shown, code_other) if party else ("", "", "")
    )

    charset_meta = '<meta charset="utf-8">'
    encoding, content_type = "utf-8", HTML_UTF8
    if s.http == "gbk_declared":
        encoding, content_type, charset_meta = "gbk", "text/html; charset=GBK", ""
    elif s.http == "gbk_meta_only":
        encoding, content_type = "gbk", "text/html"
        charset_meta = '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">'
    elif s.http == "gb18030_undeclared":
        encoding, content_type, charset_meta = "gb18030", "text/html", ""
    parts = PageParts(
        title=spec.site_name,
        unit_name=unit.name,
        charset_meta=charset_meta,
        head_extra="\n".join(x for x in (meta, frag_badge.head) if x),
        badge=frag_badge.html,
        icp=frag_icp.html,
        police=frag_pol.html,
        site_code_text=footer_code,
        jiucuo_code=jiucuo,
        broken=s.http == "broken_html",
        padding=HUGE_BYTES if s.http == "huge" else 0,
    )
    footer_via = {"footer_load": "load", "footer_xhr": "xhr", "footer_fetch": "fetch"}.get(s.http, "")
    page = home_page(parts, footer_via).encode(encoding)
    home = Route(body=page, content_type=content_type)
    assets: dict[str, Route] = {}
    for frag in (frag_badge, frag_icp, frag_pol):
        assets.update(frag.routes)
    if footer_via:
        assets[FOOTER_URL] = Route(body=footer_inner(parts).encode(encoding), content_type=content_type)
        assets["/js/jquery.min.js"] = Route(body=JQUERY_SHIM.encode(), content_type=JS)
        page = page.replace(b"<head>", b'<head>\n<script src="/js/jquery.min.js"></script>', 1)
        home = Route(body=page, content_type=content_type)

    address = {"refused": DEAD_ADDR, "tls_legacy": LEGACY_TLS_ADDR, "tls_sm2": SM2_ADDR}.get(
        s.http, spec.address
    )
    tls = {
        "cert_expired": TlsMode.EXPIRED,
        "cert_self_signed": TlsMode.SELF_SIGNED,
        "cert_wrong_host": TlsMode.WRONG_HOST,
        "cert_chain_incomplete": TlsMode.INCOMPLETE_CHAIN,
        "tls_legacy": TlsMode.LEGACY,
        "tls_sm2": TlsMode.SM2_ONLY,
    }.get(s.http, TlsMode.OK)
    clean = {"/": home, "/index.html": home, **assets}
    final_url = url
    if spec.delay_ms:
        clean = {k: _delayed(r, spec.delay_ms) for k, r in clean.items()}
    site = HostSite(site_host, address, dict(clean), tls=tls)
    hosts = [site]
    served = [] if s.http == "refused" else hosts  # nothing listens at the dead address
    if s.http == "slow":
        site.routes["/"] = site.routes["/index.html"] = _delayed(home, SLOW_MS)
    elif s.http == "redirect_chain":
        # http://host/ -> https://host/ -> /portal/ -> /portal/index.html
        site.routes = {"/": _redirect(f"https://{site_host}/", 301), **assets}
        site.tls_routes = {
            "/": _redirect("/portal/"),
            "/portal/": _redirect("/portal/index.html"),
            "/portal/index.html": home,
            **assets,
        }
        final_url = f"https://{spec.en_host or spec.domains[0].name}/portal/index.html"
    elif s.http == "cross_host_redirect":
        new_host = f"www.new{spec.serial}.gov.cn"
        site.routes = {"/": _redirect(f"{scheme}://{new_host}/", 301)}
        hosts.append(HostSite(new_host, address, dict(clean)))
        out.dns.append(DnsEntry(new_host, a=[address]))
        final_url = f"{scheme}://{new_host}/"
    elif s.http == "redirect_loop":
        site.routes = {"/": _redirect("/a/"), "/a/": _redirect("/b/"), "/b/": _redirect("/"), **assets}
    elif s.http == "timeout":
        site.default = Route(action=Action.HANG)
    elif s.http == "reset":
        site.default = Route(action=Action.RESET)
    elif s.http == "blocked":
        site.default = Route(action=Action.BLOCK, status=200, body=page, content_type=content_type)
    elif s.http in ("server_error", "bad_gateway"):
        status = 503 if s.http == "server_error" else 502
        site.default = Route(status=status, body=f"<html><body><h1>{status}</h1></body></html>".encode())
    elif s.http == "not_found":
        site.routes["/"] = site.routes["/index.html"] = Route(status=404, body=b"<h1>404 Not Found</h1>")
    elif s.http == "endless":
        site.routes["/"] = Route(action=Action.STREAM, stream_bytes=0, body=page[:2000])
    elif s.http == "gzip_bomb":
        site.routes["/"] = Route(action=Action.GZIP_BOMB, stream_bytes=BOMB_BYTES)
    elif s.http in _SHIELDED:
        site.default = _SHIELDED[s.http]()
    elif s.http in _NOT_CONTENT:
        site.routes["/"] = site.routes["/index.html"] = _NOT_CONTENT[s.http]()
    elif s.http in _STUBS:
        stub, path = _STUBS[s.http]
        site.routes["/"] = stub(path, spec.site_name)
        site.routes.pop("/index.html", None)
        site.routes[path.split("?")[0]] = home
        if s.http == "stub_js_device_switch":
            mobile = home_page(PageParts(title=spec.site_name + "（手机版）", unit_name=unit.name))
            site.routes["/m/index.html"] = Route(body=mobile.encode())
        final_url = f"{scheme}://{spec.en_host or spec.domains[0].name}{path.split('?')[0]}"
    elif s.http == "stub_frameset_other_host":
        new_host = f"www.new{spec.serial}.gov.cn"
        site.routes["/"] = shields.frameset(f"{scheme}://{new_host}/", spec.site_name)
        hosts.append(HostSite(new_host, address, dict(clean)))
        out.dns.append(DnsEntry(new_host, a=[address]))
        final_url = f"{scheme}://{new_host}/"
    elif s.http == "spa_shell":
        body = page.decode(encoding)
        inner = body[body.index("<body>") + 6 : body.rindex("</body>")]
        shell = shields.shell_page(spec.site_name, "/static/js/app.8f3a2c.js")
        site.routes["/"] = site.routes["/index.html"] = Route(body=shell.encode())
        site.routes["/static/js/app.8f3a2c.js"] = Route(
            body=shields.dom_builder_script(inner).encode(), content_type=JS
        )
    elif s.http == "location_raw_utf8":
        # Servers write the Location as they have it: raw UTF-8 bytes (a browser percent-encodes them).
        raw = "/首页/index.html"
        site.routes["/"] = _redirect(raw.encode().decode("latin-1"))
        site.routes[urllib.parse.quote(raw)] = site.routes[raw.encode().decode("latin-1")] = home
        site.routes.pop("/index.html", None)
        final_url = f"{scheme}://{spec.en_host or spec.domains[0].name}{urllib.parse.quote(raw)}"
    elif s.http in sc.HTTP_MERGED:
        final_url = _merged(out, s.http, spec, site, scheme)
    elif s.http == "bad_location":
        site.routes["/"] = _redirect(f"http://[{site_host}/")
    elif s.http == "redirect_non_http":
        site.routes["/"] = _redirect(f"ftp://ftp.{site_host.removeprefix('www.')}/pub/")
    elif s.http == "broken_status_line":
        site.default = Route(
            action=Action.RAW, body=b"HTTP/1.1 two hundred OK\r\nContent-Type: text/html\r\n\r\n<html>"
        )
    elif s.http in ("tls_legacy", "tls_sm2"):
        # HTTPS-only servers: plain http:// sends visitors to https:// (the page is on TLS alone).
        site.routes = {"/": _redirect(f"https://{site_host}/", 301)}
        site.tls_routes = dict(clean)
    if spec.en_host:
        out.dns.append(DnsEntry(site_host, a=[address]))

    # Ground truth for the page checks.
    http_status, http_reason = sc.HTTP[s.http]
    checks: dict[str, Any] = {
        "http": v(http_status, http_reason, final_url=final_url if http_status != sc.UNKNOWN else None)
    }
    page_read = s.http in sc.HTTP_PAGE_READ
    if s.http in sc.HTTP_MERGED:
        for check in ("badge", "icp", "police"):
            checks[check] = v(*sc.MERGED_PAGE)
    elif page_read:
        checks["badge"] = _badge_truth(badge_opt, shown_badge, own, spec.badge_status == "已通过")
        st, reason = sc.ICP[s.icp]
        icp_visible = s.icp not in ("missing", "in_comment_only")
        checks["icp"] = v(st, reason, number=icp_shown if icp_visible else None)
        st, reason = sc.POLICE[s.police]
        checks["police"] = v(st, reason, number=pol_shown if s.police != "missing" else None)
    else:
        for check in ("badge", "icp", "police"):
            checks[check] = v(sc.UNKNOWN, http_reason)
    if not party:
        checks["site_code"] = v(sc.PASS, "site_code.not_required", value=None)
    elif s.http in sc.HTTP_MERGED:
        checks["site_code"] = v(*sc.MERGED_PAGE)
    elif page_read:
        st, reason = sc.SITE_CODE[s.site_code]
        checks["site_code"] = v(st, reason, value=None if s.site_code == "missing" else code_shown)
    else:
        checks["site_code"] = v(sc.UNKNOWN, http_reason)
    if s.http in sc.HTTP_RENDER_ONLY:
        # Only a browser can tell: statically the checks wait for a rendering (or the stub's target).
        for check in ("badge", "icp", "police", "site_code"):
            exp = checks[check]
            if exp["reason"] == "site_code.not_required":
                continue
            static = "badge.needs_render" if check == "badge" else f"{check}.unconfirmed"
            if s.http == "stub_js_computed":
                static = "http.landing_unresolved"
            checks[check] = v(sc.UNKNOWN, static, rendered=exp)
        if s.http == "stub_js_computed":
            checks["http"] = v(sc.UNKNOWN, "http.landing_unresolved", rendered=checks["http"])

    # Chinese domains of this row.
    for i, d in enumerate(spec.domains):
        on_site = not spec.en_host and i == 0
        _build_domain(
            out,
            d,
            unit,
            as_of,
            site=None if on_site else (f"{scheme}://{site_host}/", spec.address, clean),
            site_id=spec.key,
            serial=spec.serial * 10 + i,
            hosts_on_cn=hosts if on_site else None,
            site_readable=http_status != sc.UNKNOWN,
        )
    if not spec.en_host and spec.domains and spec.domains[0].ascii:
        site.host = spec.domains[0].ascii
    out.hosts += served
    if spec.en_host:
        usage = (
            v(sc.PASS, "usage.own_site") if http_status != sc.UNKNOWN else v(sc.UNKNOWN, "usage.unreachable")
        )
        gov_inst = not party and spec.en_host.endswith(".gov.cn")
        out.domains.append(
            {
                "domain": spec.en_host,
                "ascii": spec.en_host,
                "kind": "english",
                "unit": unit.name,
                "uscc": unit.uscc,
                "site_id": spec.key,
                "scenario": s.name,
                "checks": {
                    "domain": v(sc.WARN, "domain.gov_cn_institution")
                    if gov_inst
                    else v(sc.PASS, "domain.ok"),
                    "dns": v(sc.PASS, "dns.ok", addresses=[address]),
                    "usage": usage,
                },
            }
        )

    out.sites.append(
        {
            "id": spec.key,
            "scenario": s.name,
            "unit": {
                "name": unit.name,
                "kind": unit.kind,
                "uscc": unit.uscc,
                "office_code": unit.office_code,
            },
            "site_name": spec.site_name,
            "url": url,
            "hosts": [h.host for h in hosts],
            "address": address,
            "domains": cn_names + ([spec.en_host] if spec.en_host else []),
            "badge_status": spec.badge_status,
            "encoding": encoding,
            "checks": checks,
        }
    )
    out.rows.append(
        _row(
            unit,
            spec.domains,
            {
                "英文域名": spec.en_host,
                "网站名称": spec.site_name,
                "网站地址": url,
                "ICP备案号": icp_reg,
                "公安备案号": f"{unit.province_char}公网安备{pol_reg}号" if pol_reg else "",
                "政府网站标识码": code_reg if party else "",
                # Explicit, so a government site without a registered 标识码 is still one.
                "政府网站": "是" if party else "否",
                "网站标识代码": own.code if spec.badge_status == "已通过" else "",
                "标识状态": spec.badge_status,
            },
        )
    )
    return out


# Options of the http dimension that stand in front of every path / replace the home page.
_SHIELDED: dict[str, Callable[[], Route]] = {
    "waf_ruishu": shields.ruishu,
    "waf_ruishu_202": lambda: shields.ruishu(202),
    "waf_jiasule": shields.jiasule,
    "waf_yunsuo": shields.yunsuo,
    "challenge_unknown_vendor": shields.unknown_challenge,
    "waf_safedog": shields.safedog,
    "waf_360": shields.wangzhan360,
    "waf_chuangyu": shields.chuangyudun,
    "waf_baota": shields.baota,
    "waf_aliyun": shields.aliyun_waf,
    "waf_tencent": shields.tencent_waf,
    "rate_limited": shields.rate_limited,
    "rate_limited_429": lambda: shields.rate_limited(429),
    "maintenance": shields.maintenance,
    "maintenance_503": lambda: shields.maintenance(503),
}
_NOT_CONTENT: dict[str, Callable[[], Route]] = {
    "empty": shields.empty,
    "blank_html": shields.blank_html,
    "default_nginx": shields.default_nginx,
    "default_baota": shields.default_baota,
    "default_iis": shields.default_iis,
    "not_html": shields.not_html,
}
# stub option -> (route builder (target, title), path of the real home page)
_STUBS: dict[str, tuple[Callable[[str, str], Route], str]] = {
    "stub_meta_refresh": (lambda t, _n: shields.meta_refresh(t), "/cms/index.html"),
    "stub_refresh_header": (lambda t, _n: shields.refresh_header(t), "/portal/index.html"),
    "stub_js_location": (lambda t, _n: shields.js_location(t), "/site/index.html"),
    "stub_js_device_switch": (
        lambda t, _n: shields.js_replace_by_device(t, "/m/index.html"),
        "/pc/index.html",
    ),
    "stub_js_computed": (lambda t, _n: shields.js_computed(t), "/web/index.html"),
    "stub_frameset": (shields.frameset, "/main.html"),
    "stub_full_iframe": (shields.full_iframe, "/index_main.html"),
}


_FORWARDS: dict[str, Callable[[str, str], Route]] = {
    "forward_frameset": shields.frameset,
    "forward_meta": lambda target, _name: shields.meta_refresh(target),
    "forward_js": lambda target, _name: shields.js_location(target),
}


def former_name(name: str) -> str:
    """The name a unit had before a 机构改革 (never containing its current name)."""
    return name[:-1] + "管理所" if name.endswith(("局", "委", "办")) else "原" + name[:-1] + "管理处"


def _merged(out: Built, option: str, spec: SiteSpec, site: HostSite, scheme: str) -> str:
    """A registered site that now leads to another unit's pages (集约化, 关停并转); returns the URL the
    visitor ends on. That page shows its own unit's badge and numbers, never this site's."""
    serial = spec.serial + 50_000_000  # like a copied badge: a serial of its own, traced back by the farm
    if option == "merged_portal_column":
        host, owner = f"www.portal{spec.serial}.gov.cn", "县人民政府"
        path = f"/col/col{spec.serial}/index.html"
        site.routes = {"/": _redirect(f"{scheme}://{host}{path}", 301)}
    else:
        host, path, owner = f"www.hebing{spec.serial}.gov.cn", "/", "县政务服务中心"
        site.routes = {"/": _redirect(f"{scheme}://{host}/")}
    owner_name = f"{spec.unit.name[:3]}{owner}"
    badge = make_badge(spec, PARTY, owner_name, owner_name + "网站", (host,), serial)
    out.hosts += conac_hosts(badge)
    shape = "embed_http" if option == "merged_portal_column" else "custom_image_alt"
    frag = badge_fragment(shape, badge, PARTY)
    digits = f"{spec.unit.division}02{serial % 10**6:06d}"
    parts = PageParts(
        title=owner_name + "网站",
        unit_name=owner_name,
        head_extra=f'<meta name="SiteIDCode" content="{spec.unit.division}{(serial + 7) % 10000:04d}">',
        badge=frag.html,
        icp=f'<a href="https://beian.miit.gov.cn/">{spec.unit.province_char}ICP备{serial % 10**8:08d}号</a>',
        police=f"{spec.unit.province_char}公网安备 {digits}号",
    )
    routes = {path: Route(body=home_page(parts).encode()), **frag.routes}
    out.hosts.append(HostSite(host, site.address, routes))
    out.dns.append(DnsEntry(host, a=[site.address]))
    return f"{scheme}://{host}{path}"


def _delayed(route: Route, delay_ms: int) -> Route:
    return Route(
        status=route.status,
        body=route.body,
        content_type=route.content_type,
        headers=route.headers,
        action=Action.DELAY,
        delay_ms=delay_ms,
    )


def _badge_truth(opt: str, shown: Badge, own: Badge, approved: bool) -> dict[str, Any]:
    status, reason, rendered, shows_code, shows_id = sc.BADGE[opt]
    found = status == sc.PASS or opt in (
        "wrong_kind",
        "copied_badge",
        "copied_verify_link",
        "error_image",
        "async_wrapper",
        "mixed_content",
    )
    out = v(
        status,
        reason,
        kind=shown.kind if found or rendered else None,
        code=shown.code if shows_code and (found or rendered) else None,
        verify_id=shown.verify_id if shows_id and (found or rendered) else None,
        registered_code=own.code if approved else None,
    )
    if rendered is not None:
        out["rendered"] = v(rendered[0], rendered[1], kind=shown.kind, verify_id=shown.verify_id)
    return out


def _row(unit: UnitSpec, domains: list[DomainSpec], site: dict[str, str]) -> dict[str, str]:
    expiry = min((d.expiry for d in domains), default=None)
    row = {h: "" for h in REGISTRY_HEADERS}
    row.update(
        {
            "编办代码": unit.office_code,
            "机构名称": unit.name,
            "统一社会信用代码": unit.uscc,
            "机构类别": unit.kind,
            "中文域名": ";".join(d.name for d in domains),
            "职能审核": "是" if unit.functions_reviewed else "否",
            "域名到期日": expiry.isoformat() if expiry else "",
            "联系邮箱": unit.email,
            "联系手机": unit.mobile,
        }
    )
    row.update(site)
    return row


def _build_domain(
    out: Built,
    d: DomainSpec,
    unit: UnitSpec,
    as_of: dt.date,
    site: tuple[str, str, dict[str, Route]] | None,
    site_id: str | None,
    serial: int,
    hosts_on_cn: list[HostSite] | None,
    site_readable: bool = True,
) -> None:
    """DNS, web and ground truth of one Chinese domain. ``site`` is (url, address, routes) of the site it
    belongs to; ``hosts_on_cn`` when the site itself lives on this domain, and then ``site_readable`` says
    whether its page can be read (if not, the domain's use is as unknown as the site's)."""
    name = d.ascii
    rule_status, rule_reason = sc.DOMAIN[d.rule]
    if d.rule == "ok" and name is not None:
        expected_suffix = ".政务" if unit.kind == PARTY else ".公益"
        if domain_kind(d.name) != expected_suffix:
            rule_status, rule_reason = sc.DOMAIN["wrong_kind"]
    truth: dict[str, Any] = {
        "domain": d.name,
        "ascii": name,
        "kind": domain_kind(d.name),
        "unit": unit.name,
        "uscc": unit.uscc,
        "site_id": site_id,
        "expiry": d.expiry.isoformat(),
        "checks": {"domain": v(rule_status, rule_reason)},
    }
    out.domains.append(truth)
    if name is None:
        # Not a DNS name: nothing to resolve or fetch.
        truth["checks"]["dns"] = None
        truth["checks"]["usage"] = None
        return
    usage = (
        d.usage
        if site is not None or hosts_on_cn is not None
        else (d.usage if d.usage not in ("own_site_redirect", "own_site_same") else "not_used")
    )
    if hosts_on_cn is not None:
        usage = "own_site_same"
    address = site[1] if site is not None else REDPAGE_ADDR
    if hosts_on_cn is not None:
        address = hosts_on_cn[0].address
    if usage == "red_page":
        address = REDPAGE_ADDR
    elif usage == "parked":
        address = PARKING_ADDR
    elif usage == "not_used":
        address = DEAD_ADDR
    elif usage == "platform_default":
        address = PLATFORM_ADDR
    elif usage == "https_only" and site is not None:
        address = TLS_ONLY_ADDR

    # DNS.
    dns_status, dns_reason = sc.DNS[d.dns]
    if d.dns == "cname_chain":
        a1, a2 = f"s{serial}.cdn-a.com", f"edge{serial}.cdn-b.com"
        out.dns += [DnsEntry(name, cname=a1), DnsEntry(a1, cname=a2), DnsEntry(a2, a=[address])]
    elif d.dns == "cname_loop":
        a1 = f"loop{serial}.cdn-a.com"
        out.dns += [DnsEntry(name, cname=a1), DnsEntry(a1, cname=name)]
    elif d.dns == "nodata":
        out.dns.append(DnsEntry(name, txt=["v=spf1 -all"]))
    elif d.dns != "nxdomain":
        behaviour = {
            "truncated": DnsBehaviour.TRUNCATE,
            "slow": DnsBehaviour.SLOW,
            "servfail": DnsBehaviour.SERVFAIL,
            "refused": DnsBehaviour.REFUSED,
            "timeout": DnsBehaviour.DROP,
        }.get(d.dns, DnsBehaviour.ANSWER)
        out.dns.append(
            DnsEntry(name, a=[address], behaviour=behaviour, delay_ms=SLOW_MS if d.dns == "slow" else 0)
        )
    truth["checks"]["dns"] = v(dns_status, dns_reason, addresses=[address] if dns_status == sc.PASS else [])

    # Web.
    if dns_status == sc.FAIL:
        truth["checks"]["usage"] = v(*sc.USAGE["not_used"])
        return
    if dns_status == sc.UNKNOWN:
        truth["checks"]["usage"] = v(*sc.USAGE["unreachable"])
        return
    truth["checks"]["usage"] = v(*sc.USAGE[usage if site_readable or hosts_on_cn is None else "unreachable"])
    truth["usage_shape"] = usage
    if hosts_on_cn is not None:
        return  # the site's own host object serves this name
    if usage == "own_site_redirect" and site is not None:
        out.hosts.append(HostSite(name, address, {"/": _redirect(site[0])}))
    elif usage == "own_site_same" and site is not None:
        out.hosts.append(HostSite(name, address, dict(site[2])))
    elif usage == "red_page":
        path = f"/{name}/"
        out.hosts.append(HostSite(name, address, {"/": _redirect(f"http://{RED_PAGE_HOST}{path}")}))
        page = red_page(unit.name, unit.kind, d.name, "")
        out.hosts.append(HostSite(RED_PAGE_HOST, REDPAGE_ADDR, {path: Route(body=page.encode())}))
    elif usage == "parked":
        out.hosts.append(HostSite(name, address, default=Route(body=parked_page(d.name).encode())))
    elif usage == "other_site":
        other = f"www.qita{serial}.gov.cn"
        out.hosts.append(
            HostSite(name, site[1] if site else REDPAGE_ADDR, {"/": _redirect(f"http://{other}/")})
        )
        other_page = home_page(PageParts(title="其他单位网站", unit_name="其他单位")).encode()
        out.hosts.append(HostSite(other, site[1] if site else REDPAGE_ADDR, {"/": Route(body=other_page)}))
        out.dns.append(DnsEntry(other, a=[site[1] if site else REDPAGE_ADDR]))
    elif usage == "unreachable":
        out.hosts.append(HostSite(name, address, default=Route(action=Action.HANG)))
    elif usage in _FORWARDS and site is not None:
        # A registrar's URL forwarding (显性/隐性转发) to the unit's site.
        out.hosts.append(HostSite(name, address, {"/": _FORWARDS[usage](site[0], unit.name)}))
    elif usage == "https_only" and site is not None:
        out.hosts.append(HostSite(name, address, dict(site[2]), plain_http=False))
    elif usage == "own_site_dynamic" and site is not None:
        home = site[2]["/"]
        body = home.body.replace(b"</body>", "<p class=\"counter\">访问量：{nonce}</p></body>".encode(), 1)
        body = re.sub(rb"<title>[^<]*</title>", "<title>门户首页</title>".encode(), body, count=1)
        dynamic = Route(body=body, content_type=home.content_type, action=Action.DYNAMIC)
        out.hosts.append(HostSite(name, address, {**site[2], "/": dynamic, "/index.html": dynamic}))


def build_unit(key: str, unit: UnitSpec, domains: list[DomainSpec], as_of: dt.date) -> Built:
    """A unit without a website: one registry row with empty site columns; its domains' behaviour."""
    out = Built()
    for i, d in enumerate(domains):
        _build_domain(
            out, d, unit, as_of, site=None, site_id=None, serial=stable_int(key, i) % 10**9, hosts_on_cn=None
        )
    out.rows.append(_row(unit, domains, {}))
    out.units.append(unit_truth(key, unit, domains))
    return out


def unit_truth(key: str, unit: UnitSpec, domains: list[DomainSpec]) -> dict[str, Any]:
    """Unit-level ground truth (does the unit hold a Chinese domain at all)."""
    has = any(domain_kind(d.name) != "english" for d in domains)
    return {
        "id": key,
        "name": unit.name,
        "kind": unit.kind,
        "uscc": unit.uscc,
        "office_code": unit.office_code,
        "domains": [d.name for d in domains],
        "checks": {"domain": v(sc.PASS, "domain.ok") if has else v(sc.FAIL, "domain.no_chinese")},
    }


def cn_domain_for(unit: UnitSpec, scenario_rule: str, as_of: dt.date, second: bool = False) -> DomainSpec:
    """The Chinese domain a unit registers, shaped by a registry rule option."""
    suffix = zh_suffix(unit.kind)
    if scenario_rule == "wrong_kind":
        suffix = zh_suffix(INSTITUTION if unit.kind == PARTY else PARTY)
    base = unit.name
    if scenario_rule == "label_too_long":
        base = unit.name + "关于网上名称管理和网站标识工作领导小组办公室综合服务保障中心"
    elif scenario_rule == "invalid":
        base = unit.name[:2] + "_" + unit.name[2:]
    name = f"{base}.{suffix}.cn" if second else f"{base}.{suffix}"
    if scenario_rule not in ("label_too_long", "invalid") and try_ascii(name) is None:
        name = f"{base[:8]}{unit.seq % 1000}.{suffix}"  # keep generated names valid
    expiry = as_of + dt.timedelta(days=400 + unit.seq % 700)
    if scenario_rule == "expired":
        expiry = as_of - dt.timedelta(days=90)
    elif scenario_rule == "expiring":
        expiry = as_of + dt.timedelta(days=10)
    return DomainSpec(name=name, rule=scenario_rule, expiry=expiry)


def gzip_bomb(size: int) -> bytes:
    """A gzip stream that inflates to ``size`` bytes (rounded to MiB) of HTML-ish filler (about 1000:1).

    Built from one compressed MiB block repeated: after a full flush deflate forgets its history, so
    every further block compresses to the same bytes; CRC and length are computed for the whole."""
    block = b" " * (1 << 20)
    first_block = b"<html><body>" + block[12:]
    n = max(1, size // len(block))
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(first_block) + c.flush(zlib.Z_FULL_FLUSH)
    steady = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush(zlib.Z_FINISH)
    crc = zlib.crc32(first_block)
    for _ in range(n - 1):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, (n * len(block)) & 0xFFFFFFFF)
    return header + first + steady * (n - 1) + tail + trailer


def platform_portal(address: str, name: str) -> HostSite:
    """The portal a consolidation platform serves for any host name it does not know."""
    parts = PageParts(title=name, unit_name=name.removesuffix("集约化平台") + "管理中心")
    return HostSite(f"default.{address}", address, default=Route(body=home_page(parts).encode()))


def infrastructure(as_of: dt.date) -> Built:
    """CONAC's hosts, the red-page platform, the parking service, MIIT and MPS filing sites."""
    from simnet.pngs import BADGE_IMAGES, badge_png

    out = Built()
    images = {
        f"/image/{n}.png": Route(body=png, content_type="image/png", headers=validators(png))
        for n in BADGE_IMAGES
        for png in (badge_png(n),)
    }
    out.hosts.append(HostSite(DCS_HOST, CONAC_ADDR, images))
    out.hosts.append(HostSite(BSZS_HOST, CONAC_ADDR, {}))
    out.hosts.append(HostSite(RED_PAGE_HOST, REDPAGE_ADDR, {"/": Route(body="<h1>网络红页</h1>".encode())}))
    for h in ("recv1.conac.cn", "recv2.conac.cn"):
        out.hosts.append(
            HostSite(h, CONAC_ADDR, default=Route(status=200, body=b"", content_type="image/gif"))
        )
    miit = "<html><body><h1>ICP/IP地址/域名信息备案管理系统</h1></body></html>".encode()
    mps = "<html><body><h1>全国互联网安全管理服务平台</h1></body></html>".encode()
    for h, body in (
        ("beian.miit.gov.cn", miit),
        ("www.miitbeian.gov.cn", miit),
        ("beian.mps.gov.cn", mps),
        ("www.beian.gov.cn", mps),
    ):
        out.hosts.append(HostSite(h, MIIT_ADDR, default=Route(body=body)))
    for h in (DCS_HOST, BSZS_HOST, *("recv1.conac.cn", "recv2.conac.cn")):
        out.dns.append(DnsEntry(h, a=[CONAC_ADDR]))
    out.dns.append(DnsEntry(RED_PAGE_HOST, a=[REDPAGE_ADDR]))
    # The CA's AIA host: the runtime puts the intermediate certificate (DER) at AIA_PATH once the CA
    # of the run exists.
    out.hosts.append(HostSite(AIA_HOST, PKI_ADDR, {}))
    out.dns.append(DnsEntry(AIA_HOST, a=[PKI_ADDR]))
    for h in ("beian.miit.gov.cn", "www.miitbeian.gov.cn", "beian.mps.gov.cn", "www.beian.gov.cn"):
        out.dns.append(DnsEntry(h, a=[MIIT_ADDR]))
    for ns in range(1, 6):
        out.dns.append(DnsEntry(f"ns{ns}.conac.cn", a=[f"127.60.0.{10 + ns}"]))
    # A name with an IPv6 address, for AAAA queries.
    out.dns.append(DnsEntry("ipv6.conac.cn", a=[CONAC_ADDR], aaaa=["::1"]))
    out.hosts.append(
        HostSite("parking.simnet.com", PARKING_ADDR, default=Route(body=parked_page("").encode()))
    )
    out.dns.append(DnsEntry("parking.simnet.com", a=[PARKING_ADDR]))
    out.defaults[PLATFORM_ADDR] = platform_portal(PLATFORM_ADDR, "河北省政府网站集约化平台")
    return out
