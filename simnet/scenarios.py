"""The scenario catalogue (docs/simnet.md): one named scenario per real-world shape, with what a correct
checker concludes.

A :class:`Scenario` picks one option per dimension (badge shape, ICP shape, 公安 shape, 标识码 shape, HTTP
behaviour, TLS, and the DNS / usage / registry shape of the unit's Chinese domain). The defaults are the
compliant choice, so a catalogue scenario changes one dimension and its ground truth changes in that
dimension only. Reason codes are those of ``checks/reasons.py`` (as plain strings: simnet imports nothing
of ours).
"""

from __future__ import annotations

from dataclasses import dataclass

from simnet.ident import INSTITUTION, PARTY

PASS, FAIL, WARN, UNKNOWN = "pass", "fail", "warn", "unknown"

# --- badge shapes (docs/checks.md) -------------------------------------------------------------
# option -> (static status, static reason, rendered (status, reason) or None when the same,
#            shows code (script path visible), shows verify id)
BADGE: dict[str, tuple[str, str, tuple[str, str] | None, bool, bool]] = {
    "embed_http": (PASS, "badge.ok", None, True, True),
    "embed_https": (PASS, "badge.ok", None, True, True),
    "embed_protocol_relative": (PASS, "badge.ok", None, True, True),
    "embed_quirks": (PASS, "badge.ok", None, True, True),  # trailing space in src, doubled spaces
    "rendered_dom": (PASS, "badge.ok", None, True, True),  # embed + expansion + empty duplicate span
    "static_copy": (PASS, "badge.ok", None, False, True),
    "static_copy_https": (PASS, "badge.ok", None, False, True),
    "local_image_copy": (PASS, "badge.ok", None, False, True),
    "custom_image_alt": (PASS, "badge.ok", None, False, True),
    "custom_image_wzades": (PASS, "badge.ok", None, False, True),
    "alt_contradicts_image": (PASS, "badge.ok", None, False, True),  # blue.png with alt 党政机关: image wins
    "text_link": (PASS, "badge.ok", None, False, True),
    "external_writeln": (PASS, "badge.ok", None, True, True),  # same-site footer .js of writeln lines
    # Both are settled statically: the pieces the script joins are string literals, the frame is fetched.
    "jquery_append": (PASS, "badge.ok", None, False, True),
    "iframe": (PASS, "badge.ok", None, True, True),
    "commented_out": (FAIL, "badge.missing", None, False, False),
    "commented_then_copy": (PASS, "badge.ok", None, False, True),
    "class_quirk": (PASS, "badge.ok", None, False, True),
    "async_wrapper": (FAIL, "badge.never_renders", None, True, True),
    "wrong_kind": (FAIL, "badge.wrong_kind", None, True, True),
    "copied_badge": (FAIL, "badge.code_mismatch", None, True, True),
    "copied_verify_link": (FAIL, "badge.id_mismatch", None, False, True),
    "error_image": (FAIL, "badge.error_image", None, True, True),
    "missing": (FAIL, "badge.missing", None, False, False),
    "placeholder_href": (FAIL, "badge.missing", None, False, False),
    "neighbours_only": (FAIL, "badge.missing", None, False, False),
    "mixed_content": (FAIL, "badge.mixed_content", None, True, True),  # https page, http:// badge script
    "outdated_unit_name": (WARN, "badge.registration_outdated", None, True, True),  # 机构改革
    "outdated_domain": (WARN, "badge.registration_outdated", None, True, True),  # the site moved host
}

# --- ICP shapes (§4): option -> (status, reason, number shown or None) ---------------------------
ICP: dict[str, tuple[str, str]] = {
    "plain": (PASS, "icp.ok"),
    "suffix": (PASS, "icp.ok"),
    "split_tags": (PASS, "icp.ok"),
    "br_inside": (PASS, "icp.ok"),
    "fullwidth_colon": (PASS, "icp.ok"),
    "missing_hao": (PASS, "icp.ok"),
    "missing_bei": (PASS, "icp.ok"),
    "space_before_digits": (PASS, "icp.ok"),
    "ten_digit": (PASS, "icp.ok"),
    "suffix_before_hao": (PASS, "icp.ok"),
    "commercial_beside": (PASS, "icp.ok"),
    "alt_only": (PASS, "icp.ok"),
    "wrong_province": (WARN, "icp.province_mismatch"),
    "outdated_link": (WARN, "icp.link_outdated"),
    "no_link": (FAIL, "icp.link_missing"),
    "missing": (FAIL, "icp.missing"),
    "in_comment_only": (FAIL, "icp.missing"),
    "mismatch": (FAIL, "icp.number_mismatch"),
    "malformed": (FAIL, "icp.malformed"),
    "not_in_registry": (WARN, "icp.not_in_registry"),
}

# --- 公安 shapes (§5) ------------------------------------------------------------------------------
POLICE: dict[str, tuple[str, str]] = {
    "plain": (PASS, "police.ok"),
    "old_link": (PASS, "police.ok"),
    "no_space": (PASS, "police.ok"),
    "colon": (PASS, "police.ok"),
    "thirteen_digit": (PASS, "police.ok"),
    "split_tags": (PASS, "police.ok"),
    "no_link": (WARN, "police.link_missing"),
    "missing": (FAIL, "police.missing"),
    "mismatch": (FAIL, "police.number_mismatch"),
    "region_mismatch": (WARN, "police.region_mismatch"),
    "malformed": (FAIL, "police.malformed"),
    "not_in_registry": (WARN, "police.not_in_registry"),
}

# --- 标识码 shapes (§6); for 事业单位 sites every option expects site_code.not_required ----------------
SITE_CODE: dict[str, tuple[str, str]] = {
    "meta_and_footer": (PASS, "site_code.ok"),
    "meta_only": (PASS, "site_code.ok"),
    "jiucuo_only": (PASS, "site_code.ok"),
    "footer_only": (PASS, "site_code.ok"),
    "label_shibiema": (PASS, "site_code.ok"),
    "missing": (FAIL, "site_code.missing"),
    "mismatch": (FAIL, "site_code.mismatch"),
    "malformed": (FAIL, "site_code.malformed"),
    "conflict": (WARN, "site_code.conflict"),
    "region_mismatch": (WARN, "site_code.region_mismatch"),
    "not_in_registry": (WARN, "site_code.not_in_registry"),
}

# --- HTTP behaviour (§9): option -> (status, reason). Failing options make every page check
# ``unknown`` with the same reason; certificate options still let the page be read. ---------------
HTTP: dict[str, tuple[str, str]] = {
    "ok": (PASS, "http.ok"),
    "slow": (PASS, "http.ok"),
    "redirect_chain": (PASS, "http.ok"),
    "cross_host_redirect": (PASS, "http.ok"),
    "gbk_declared": (PASS, "http.ok"),
    "gbk_meta_only": (PASS, "http.ok"),
    "gb18030_undeclared": (PASS, "http.ok"),
    "broken_html": (PASS, "http.ok"),
    "timeout": (UNKNOWN, "http.timeout"),
    "reset": (UNKNOWN, "http.reset"),
    "refused": (UNKNOWN, "http.refused"),
    "blocked": (UNKNOWN, "http.blocked"),
    "server_error": (UNKNOWN, "http.server_error"),
    "bad_gateway": (UNKNOWN, "http.server_error"),
    "not_found": (UNKNOWN, "http.client_error"),
    "redirect_loop": (UNKNOWN, "http.redirect_loop"),
    "huge": (UNKNOWN, "http.too_large"),
    "endless": (UNKNOWN, "http.too_large"),
    "gzip_bomb": (UNKNOWN, "http.too_large"),
    # --- what stands in front of the home page (docs/simnet.md; simnet/shields.py) ---
    "waf_ruishu": (UNKNOWN, "http.challenge"),  # 瑞数: 412, $_ts, <meta r='m'>
    "waf_ruishu_202": (UNKNOWN, "http.challenge"),
    "waf_jiasule": (UNKNOWN, "http.challenge"),  # 加速乐: 521, cookie built piece by piece
    "waf_yunsuo": (UNKNOWN, "http.challenge"),  # 云锁: 200, GBK, YunSuoAutoJump
    "challenge_unknown_vendor": (UNKNOWN, "http.challenge"),  # no known marker: the general rule
    "waf_safedog": (UNKNOWN, "http.blocked"),
    "waf_360": (UNKNOWN, "http.blocked"),
    "waf_chuangyu": (UNKNOWN, "http.blocked"),
    "waf_baota": (UNKNOWN, "http.blocked"),
    "waf_aliyun": (UNKNOWN, "http.blocked"),
    "waf_tencent": (UNKNOWN, "http.blocked"),
    "rate_limited": (UNKNOWN, "http.rate_limited"),  # a 200 notice
    "rate_limited_429": (UNKNOWN, "http.rate_limited"),
    "maintenance": (UNKNOWN, "http.maintenance"),  # 200, GBK, no charset
    "maintenance_503": (UNKNOWN, "http.maintenance"),
    "empty": (UNKNOWN, "http.empty"),
    "blank_html": (UNKNOWN, "http.empty"),
    "default_nginx": (UNKNOWN, "http.default_page"),
    "default_baota": (UNKNOWN, "http.default_page"),
    "default_iis": (UNKNOWN, "http.default_page"),
    "not_html": (UNKNOWN, "http.not_html"),
    # --- landing stubs: judged on the page the visitor ends up on ---
    "stub_meta_refresh": (PASS, "http.ok"),
    "stub_refresh_header": (PASS, "http.ok"),
    "stub_js_location": (PASS, "http.ok"),
    "stub_js_device_switch": (PASS, "http.ok"),
    "stub_js_computed": (PASS, "http.ok"),  # only a browser can tell where it goes
    "stub_frameset": (PASS, "http.ok"),
    "stub_frameset_other_host": (PASS, "http.ok"),  # 隐性转发 to the unit's site on another host
    "stub_full_iframe": (PASS, "http.ok"),
    "footer_load": (PASS, "http.ok"),  # $('#footer').load('/inc/footer.html')
    "footer_xhr": (PASS, "http.ok"),
    "footer_fetch": (PASS, "http.ok"),
    "spa_shell": (PASS, "http.ok"),  # everything built by a bundle: only a browser can tell
    "location_raw_utf8": (PASS, "http.ok"),  # a Location header with raw UTF-8 bytes
    # --- merged sites (集约化, 关停并转): the registered address leads to another unit's pages ---
    "merged_portal_column": (WARN, "http.merged"),
    "merged_other_unit": (WARN, "http.merged"),
    # --- what no server should send ---
    "bad_location": (UNKNOWN, "http.bad_redirect"),  # Location: http://[www.x.gov.cn/
    "redirect_non_http": (UNKNOWN, "http.bad_redirect"),
    "broken_status_line": (UNKNOWN, "http.protocol_error"),
    "cert_expired": (WARN, "http.cert_expired"),
    "cert_self_signed": (WARN, "http.cert_untrusted"),
    "cert_wrong_host": (WARN, "http.cert_hostname"),
    # The server sends its leaf without the intermediate; the leaf's AIA URL completes the chain.
    "cert_chain_incomplete": (WARN, "http.cert_incomplete_chain"),
    "tls_legacy": (WARN, "http.tls_legacy"),  # TLS 1.0 only: read with a legacy client, warned
    "tls_sm2": (UNKNOWN, "http.tls_sm2"),  # 国密 TLCP only: no TLS client can read it
}
# The page checks of a merged site are not judged: what it shows belongs to the site it joined.
HTTP_MERGED = frozenset({"merged_portal_column", "merged_other_unit"})
HTTP_PAGE_READ = {k for k, (s, _) in HTTP.items() if s != UNKNOWN and k not in HTTP_MERGED}
MERGED_PAGE = (UNKNOWN, "http.merged_page")
# Options decided on the page's content (what a server sends is a challenge, a notice, a stub, a loaded
# footer or another unit's page): simnet's own probe sees only the protocol; the crawler's catalogue
# test compares these with the truth.
HTTP_BY_CONTENT = frozenset(
    k
    for k in HTTP
    if k.startswith(("waf_", "challenge_", "rate_limited", "maintenance", "default_", "stub_", "footer_"))
    or k in ("empty", "blank_html", "not_html", "spa_shell", *HTTP_MERGED)
)
# Pages only a browser can settle: the static verdicts are unknown, the rendered ones the page's own.
HTTP_RENDER_ONLY = frozenset({"stub_js_computed", "spa_shell"})
# Options whose registered URL is https:// (the certificate and TLS shapes).
HTTP_HTTPS = {k for k in HTTP if k.startswith(("cert_", "tls_"))}
# Options whose page is served over https (a badge script there must be https too, or browsers block
# it as mixed content): the https ones and the chain that ends on https.
HTTP_HTTPS_PAGE = HTTP_HTTPS | {"redirect_chain"}

# --- DNS of a Chinese domain: option -> (status, reason) ------------------------------------------
DNS: dict[str, tuple[str, str]] = {
    "ok": (PASS, "dns.ok"),
    "cname_chain": (PASS, "dns.ok"),
    "truncated": (PASS, "dns.ok"),
    "slow": (PASS, "dns.ok"),
    "nxdomain": (FAIL, "dns.nxdomain"),
    "nodata": (FAIL, "dns.nodata"),
    "cname_loop": (FAIL, "dns.cname_loop"),
    "servfail": (UNKNOWN, "dns.servfail"),
    "refused": (UNKNOWN, "dns.refused"),
    "timeout": (UNKNOWN, "dns.timeout"),
}

# --- use of a Chinese domain (when it resolves) ----------------------------------------------------
USAGE: dict[str, tuple[str, str]] = {
    "own_site_redirect": (PASS, "usage.own_site"),
    "own_site_same": (PASS, "usage.own_site"),
    "red_page": (PASS, "usage.red_page"),
    "parked": (WARN, "usage.parked"),
    "other_site": (WARN, "usage.other_site"),
    "not_used": (WARN, "usage.not_used"),
    "unreachable": (UNKNOWN, "usage.unreachable"),
    # registrars' URL forwarding and hosts as they are: decided by where the visitor ends up
    "forward_frameset": (PASS, "usage.own_site"),  # 隐性转发
    "forward_meta": (PASS, "usage.own_site"),
    "forward_js": (PASS, "usage.own_site"),
    "https_only": (PASS, "usage.own_site"),  # nothing on port 80, the site on 443
    "own_site_dynamic": (PASS, "usage.own_site"),  # the site itself, different bytes on every visit
    "platform_default": (WARN, "usage.other_site"),  # an unbound name on a platform gets its portal
}

# --- registry rules of a domain ----------------------------------------------------------------------
DOMAIN: dict[str, tuple[str, str]] = {
    "ok": (PASS, "domain.ok"),
    "wrong_kind": (FAIL, "domain.wrong_kind"),
    "label_too_long": (FAIL, "domain.label_too_long"),
    "invalid": (FAIL, "domain.invalid"),
    "expired": (FAIL, "domain.expired"),
    "expiring": (WARN, "domain.expiring"),
}


@dataclass(frozen=True, slots=True)
class Scenario:
    """One combination of shapes; defaults are compliant."""

    name: str
    badge: str = "embed_http"
    icp: str = "plain"
    police: str = "plain"
    site_code: str = "meta_and_footer"
    http: str = "ok"
    dns: str = "ok"
    usage: str = "own_site_redirect"
    domain: str = "ok"
    kind: str = PARTY
    site_on_cn: bool = False  # the site is served on its Chinese domain (no English host)
    gov_cn_institution: bool = False
    has_site: bool = True  # False: a unit with a Chinese domain and no website
    has_cn_domain: bool = True  # False: a unit without any Chinese domain (domain.no_chinese)
    badge_status: str = "已通过"
    https: bool = False  # the registered URL is https:// (implied by the cert_* and tls_* options)


def _catalogue() -> list[Scenario]:
    out = [
        Scenario("compliant.party"),
        Scenario("compliant.institution", kind=INSTITUTION, site_code="missing"),
        Scenario("compliant.site_on_chinese_domain", site_on_cn=True),
        Scenario("compliant.https", https=True, badge="embed_https"),
    ]
    for i, opt in enumerate(BADGE):
        if opt == "embed_http":
            continue
        kind = PARTY if i % 2 == 0 else INSTITUTION
        if opt == "wrong_kind" or opt == "alt_contradicts_image":
            kind = INSTITUTION
        status = "未申请" if opt in ("missing", "neighbours_only") else "已通过"
        out.append(
            Scenario(f"badge.{opt}", badge=opt, kind=kind, badge_status=status, https=opt == "mixed_content")
        )
    out += [Scenario(f"icp.{opt}", icp=opt) for opt in ICP if opt != "plain"]
    out += [Scenario(f"police.{opt}", police=opt) for opt in POLICE if opt != "plain"]
    out += [Scenario(f"site_code.{opt}", site_code=opt) for opt in SITE_CODE if opt != "meta_and_footer"]
    for opt in HTTP:
        if opt == "ok":
            continue
        badge = "embed_https" if opt in HTTP_HTTPS_PAGE else "embed_http"
        if opt == "spa_shell":
            badge = "static_copy"  # markup a bundle inserts: a script in it would never run
        out.append(Scenario(f"http.{opt}", http=opt, https=opt in HTTP_HTTPS, badge=badge))
    out += [Scenario(f"dns.{opt}", dns=opt) for opt in DNS if opt != "ok"]
    out += [Scenario(f"usage.{opt}", usage=opt) for opt in USAGE if opt not in ("own_site_redirect",)]
    out += [
        Scenario(f"domain.{opt}", domain=opt, dns="nxdomain" if opt == "expired" else "ok")
        for opt in DOMAIN
        if opt != "ok"
    ]
    out += [
        Scenario("domain.gov_cn_institution", kind=INSTITUTION, gov_cn_institution=True),
        Scenario("domain.no_chinese", has_cn_domain=False),
        Scenario("unit.red_page_only", has_site=False, usage="red_page"),
        Scenario("unit.parked_only", has_site=False, usage="parked", kind=INSTITUTION),
        Scenario("unit.domain_not_used", has_site=False, usage="not_used"),
        Scenario("unit.no_site_no_domain", has_site=False, has_cn_domain=False, kind=INSTITUTION),
    ]
    return out


CATALOGUE: tuple[Scenario, ...] = tuple(_catalogue())
BY_NAME: dict[str, Scenario] = {s.name: s for s in CATALOGUE}
assert len(BY_NAME) == len(CATALOGUE), "duplicate scenario name"

# Scenarios a mostly compliant registry draws from (everything but the fully compliant ones).
FAILURE_SCENARIOS: tuple[Scenario, ...] = tuple(
    s for s in CATALOGUE if not s.name.startswith("compliant.") and s.has_site and s.has_cn_domain
)
