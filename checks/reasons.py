"""The one catalogue of reason codes.

Every verdict's ``reason`` is a key of :data:`REASONS`. Codes are stable: scripts, stored findings and
reports depend on them. ``message`` is what users read (plain Chinese), ``advice`` what the unit should
do. ``transient`` marks ``unknown`` outcomes that a later attempt may settle (they are retried before
a scan is final). ``docs/reasons.md`` is generated from this table (``python -m checks.reasons``).
"""

from __future__ import annotations

from dataclasses import dataclass

from checks.errors import StateError
from checks.status import Status

P, F, W, U = Status.PASS, Status.FAIL, Status.WARN, Status.UNKNOWN


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    status: Status
    message: str
    advice: str = ""
    transient: bool = False


_TABLE: tuple[Reason, ...] = (
    # --- badge (网站标识) -----------------------------------------------------------------------
    Reason("badge.ok", P, "网站已加挂网站标识，类型与单位类别一致"),
    Reason("badge.displayed", P, "网站已加挂网站标识；未指定单位类别，标识类型只报告、未与单位类别比对"),
    Reason("badge.missing", F, "网站首页未加挂网站标识", "在网站首页底部加挂域名中心提供的网站标识代码"),
    Reason("badge.wrong_kind", F, "网站标识类型与单位类别不符（党政机关应为红色标识，事业单位应为蓝色标识）",
           "向域名中心申请与单位类别相符的网站标识并替换"),
    Reason("badge.code_mismatch", F, "网站标识代码与登记的标识代码不一致（可能复制了其他网站的标识）",
           "使用本网站自己的网站标识代码"),
    Reason("badge.id_mismatch", F, "网站标识的核验页面不属于本单位或本网站（可能复制了其他单位的标识）",
           "使用本单位本网站的网站标识代码"),
    Reason("badge.error_image", F, "网站标识显示为异常图标，域名中心核验未通过", "联系域名中心核实网站标识信息"),
    Reason("badge.never_renders", F, "网站标识代码被异步加载（async），浏览器中不会显示",
           "去掉标识代码外层 script 标签上的 async 属性"),
    Reason("badge.kind_unknown", U, "已发现网站标识，但无法确定其类型"),
    Reason("badge.needs_render", U, "网站标识可能由脚本生成，静态页面无法判定，需浏览器渲染后确认", transient=True),
    Reason("badge.script_unavailable", U, "网站标识脚本或核验页面无法获取，暂无法判定", transient=True),
    Reason("badge.page_truncated", U, "首页超过巡检读取上限，只读取了前面部分，其中没有网站标识，暂无法判定"),
    Reason("badge.mixed_content", F, "HTTPS 网页用 http:// 地址加载网站标识脚本，浏览器会拦截这种“混合内容”，标识不会显示",
           "把标识代码中的 http://dcs.conac.cn 改为 https://dcs.conac.cn"),
    Reason("badge.registration_outdated", W, "网站标识核验页面登记的单位名称或网站域名已过时（机构改革或网站迁移后未更新）",
           "向域名中心申请更新网站标识的登记信息（单位名称、网站域名）"),
    # --- ICP 备案号 ------------------------------------------------------------------------------
    Reason("icp.ok", P, "ICP备案号显示正确并链接到工信部备案系统"),
    Reason("icp.missing", F, "网站首页未显示ICP备案号", "在首页底部显示ICP备案号并链接到 https://beian.miit.gov.cn/"),
    Reason("icp.malformed", F, "ICP备案号格式不正确", "按“省简称ICP备+数字+号”的格式显示备案号"),
    Reason("icp.number_mismatch", F, "网站显示的ICP备案号与登记的不一致", "核对并更正网站显示或登记的ICP备案号"),
    Reason("icp.province_mismatch", W, "ICP备案号的省份简称与单位所在省份不一致（可能为集中托管）"),
    Reason("icp.link_missing", F, "ICP备案号未链接到工信部备案系统", "将备案号链接到 https://beian.miit.gov.cn/"),
    Reason("icp.link_outdated", W, "ICP备案号链接的是已停用的旧备案系统地址", "将链接改为 https://beian.miit.gov.cn/"),
    Reason("icp.not_in_registry", W, "登记信息中没有该网站的ICP备案号，无法核对", "补充登记ICP备案号"),
    Reason("icp.lookup_unavailable", U, "工信部备案系统查询失败或受限，暂无法核验", transient=True),
    Reason("icp.unconfirmed", U, "首页静态内容中未找到ICP备案号，页脚可能由脚本生成，需读取脚本或浏览器渲染后确认", transient=True),
    # --- 公安机关备案号 ----------------------------------------------------------------------------
    Reason("police.ok", P, "公安机关备案号显示正确"),
    Reason("police.missing", F, "网站首页未显示公安机关备案号", "在首页底部显示公安机关备案号及备案图标链接"),
    Reason("police.malformed", F, "公安机关备案号格式不正确", "按“省简称公网安备+14位数字+号”的格式显示"),
    Reason("police.number_mismatch", F, "网站显示的公安机关备案号与登记的不一致", "核对并更正公安机关备案号"),
    Reason("police.region_mismatch", W, "公安机关备案号的地区代码与单位所在地区不一致"),
    Reason("police.link_missing", W, "公安机关备案号未链接到全国互联网安全管理服务平台",
           "将备案号链接到 https://beian.mps.gov.cn/ 的查询页面"),
    Reason("police.not_in_registry", W, "登记信息中没有该网站的公安机关备案号，无法核对"),
    Reason("police.unconfirmed", U, "首页静态内容中未找到公安机关备案号，页脚可能由脚本生成，需读取脚本或浏览器渲染后确认", transient=True),
    # --- 政府网站标识码 ----------------------------------------------------------------------------
    Reason("site_code.ok", P, "政府网站标识码显示正确"),
    Reason("site_code.not_required", P, "非政府网站，不要求政府网站标识码"),
    Reason("site_code.not_judged", U, "不知道是否为政府网站（没有登记信息），未判定是否要求政府网站标识码"),
    Reason("site_code.missing", F, "政府网站首页未显示政府网站标识码", "在首页底部显示政府网站标识码"),
    Reason("site_code.malformed", F, "政府网站标识码格式不正确", "标识码应为10位数字或 bm 加8位数字"),
    Reason("site_code.mismatch", F, "网站显示的政府网站标识码与登记的不一致", "核对并更正政府网站标识码"),
    Reason("site_code.region_mismatch", W, "政府网站标识码的地区代码与单位所在地区不一致"),
    Reason("site_code.conflict", W, "网页中出现多个互相矛盾的政府网站标识码"),
    Reason("site_code.not_in_registry", W, "登记信息中没有该政府网站的标识码，无法核对", "补充登记政府网站标识码"),
    Reason("site_code.unconfirmed", U, "首页静态内容中未找到政府网站标识码，可能由脚本生成，需读取脚本或浏览器渲染后确认", transient=True),
    # --- domains (registry-level rules) ----------------------------------------------------------
    Reason("domain.ok", P, "域名有效，类型与单位类别一致"),
    Reason("domain.invalid", F, "登记的域名不是有效的域名（含有不允许的字符或无法编码）", "核对并更正登记的域名"),
    Reason("domain.label_too_long", F, "域名过长：某一级编码后超过63字节，不是有效域名", "使用较短的名称（如规范简称）注册"),
    Reason("domain.wrong_kind", F, "中文域名后缀与单位类别不符（党政机关用 .政务，事业单位用 .公益）",
           "注册与单位类别相符的中文域名"),
    Reason("domain.gov_cn_institution", W, "事业单位使用 .gov.cn 英文域名（不承担行政职能的事业单位不应使用）"),
    Reason("domain.no_chinese", F, "单位没有登记 .政务 或 .公益 中文域名", "注册与单位类别相符的中文域名"),
    Reason("domain.expired", F, "域名已过期（按登记的到期日）", "及时续费并更新登记的到期日"),
    Reason("domain.expiring", W, "域名将在30天内到期（按登记的到期日）", "及时续费"),
    # --- DNS --------------------------------------------------------------------------------------
    Reason("dns.ok", P, "域名解析正常"),
    Reason("dns.nxdomain", F, "域名不存在：域名服务器答复查无此域名", "检查域名是否已注册、是否过期"),
    Reason("dns.nodata", F, "域名已注册，但没有解析到任何网站地址", "为域名添加解析记录"),
    Reason("dns.cname_loop", F, "域名的别名记录（CNAME）互相指向，形成循环，无法解析", "修正域名解析记录"),
    Reason("dns.servfail", U, "域名服务器答复出错，暂无法判定", transient=True),
    Reason("dns.refused", U, "域名服务器拒绝了查询，暂无法判定", transient=True),
    Reason("dns.timeout", U, "域名解析超时，暂无法判定", transient=True),
    Reason("dns.error", U, "域名解析出错，暂无法判定", transient=True),
    # --- use of a Chinese domain ------------------------------------------------------------------
    Reason("usage.own_site", P, "域名已指向本单位网站"),
    Reason("usage.red_page", P, "域名指向网络红页（域名中心提供的托管页面）"),
    Reason("usage.parked", W, "域名指向停放或出售页面，未实际使用", "将域名指向本单位网站或网络红页"),
    Reason("usage.other_site", W, "域名指向的不是本单位网站", "将域名指向本单位网站"),
    Reason("usage.not_used", W, "域名未实际使用：不能解析，或没有提供本单位的网页", "为域名配置解析，指向本单位网站或网络红页"),
    Reason("usage.unreachable", U, "域名的网页暂时无法访问，暂无法判定", transient=True),
    # --- HTTP (why a page could not be read; never non-compliance on its own) ------------------------
    Reason("http.ok", P, "网站可以正常访问"),
    Reason("http.timeout", U, "网站访问超时，暂无法判定", transient=True),
    Reason("http.refused", U, "网站拒绝连接，暂无法判定", transient=True),
    Reason("http.reset", U, "网站连接被中断，暂无法判定", transient=True),
    Reason("http.tls_error", U, "网站加密连接（HTTPS）建立失败，暂无法判定", transient=True),
    Reason("http.dns_error", U, "网站地址中的域名暂时无法解析，暂无法判定", transient=True),
    Reason("http.blocked", U, "网站防火墙拦截了巡检程序，暂无法判定", transient=True),
    Reason("http.challenge", U, "网站开启了访问验证（浏览器检测或人机验证），巡检程序看不到网页内容，暂无法判定", transient=True),
    Reason("http.rate_limited", U, "网站提示访问过于频繁（限流），暂无法判定", transient=True),
    Reason("http.maintenance", U, "网站显示维护或暂停访问的提示页，暂无法判定", transient=True),
    Reason("http.empty", U, "网站首页没有内容（空白页），暂无法判定", transient=True),
    Reason("http.default_page", U, "网站首页是服务器的默认页面（网站未部署或服务器配置有误），暂无法判定"),
    Reason("http.not_html", U, "网站首页不是网页（返回了文件、图片或其他数据），暂无法判定"),
    Reason("http.landing_unresolved", U, "网站首页是跳转页或框架页，未能确定访问者最终看到的页面，暂无法判定", transient=True),
    Reason("http.bad_redirect", U, "网站的跳转地址无效（格式错误或不是网页地址），无法打开首页"),
    Reason("http.protocol_error", U, "网站服务器的应答不符合 HTTP 协议，无法读取首页", transient=True),
    Reason("http.bad_url", U, "登记的网站地址无效，无法访问", "核对并更正登记的网站地址"),
    Reason("http.merged", W, "网站已并入其他网站（跳转到其他单位的网站或门户网站的栏目），登记信息需要更新",
           "核实该网站是否已关停或整合，更新登记的网站地址或注销该网站"),
    Reason("http.merged_page", U, "网站已并入其他网站，页面上的标识和备案号属于并入后的网站，不作判定"),
    Reason("http.server_error", U, "网站服务器出错（5xx），暂无法判定", transient=True),
    Reason("http.client_error", U, "网站首页返回错误状态（4xx），暂无法判定"),
    Reason("http.redirect_loop", U, "网站跳转形成循环或跳转次数过多，无法打开首页"),
    Reason("http.too_large", U, "网站首页过大（超过巡检读取上限）或压缩后异常膨胀，暂无法判定"),
    Reason("http.address_refused", U, "网站地址指向内部或保留地址，按安全策略未访问"),
    Reason("http.error", U, "网站访问出错，暂无法判定", transient=True),
    Reason("http.cert_expired", W, "网站 HTTPS 证书已过期", "更新网站证书"),
    Reason("http.cert_hostname", W, "网站 HTTPS 证书与域名不符", "为网站域名申请正确的证书"),
    Reason("http.cert_untrusted", W, "网站 HTTPS 证书不受信任（自签名或签发机构不受信任）", "使用受信任机构签发的证书"),
    Reason("http.cert_incomplete_chain", W, "网站 HTTPS 证书链不完整（服务器没有发送中间证书），部分浏览器和设备会提示不安全",
           "在服务器上配置完整的证书链（网站证书加中间证书）"),
    Reason("http.tls_legacy", W, "网站只支持已淘汰的 TLS 1.0/1.1 加密协议，新版浏览器会拒绝访问",
           "升级服务器的加密配置，启用 TLS 1.2 或以上版本"),
    Reason("http.tls_sm2", U, "网站只支持国密（SM2）加密连接，巡检程序暂不支持，暂无法判定"),
    # --- any subject ------------------------------------------------------------------------------
    Reason("internal_error", U, "巡检程序处理该对象时出错，暂无法判定（已记录，由技术人员处理）"),
)

REASONS: dict[str, Reason] = {r.code: r for r in _TABLE}

# Checks by the names officials read (a reason code's prefix is its check's name). Every surface — the
# console, the lists, e-mails, spreadsheets, screenshot captions — takes its check names from here.
CHECK_LABELS: dict[str, str] = {
    "badge": "网站标识",
    "icp": "ICP备案号",
    "police": "公安机关备案号",
    "site_code": "政府网站标识码",
    "domain": "域名登记",
    "dns": "域名解析",
    "usage": "域名使用",
    "http": "网站访问",
}
assert len(REASONS) == len(_TABLE), "duplicate reason code"


class UnknownReasonError(StateError, KeyError):
    """A reason code that is not in the catalogue."""


def describe(code: str) -> Reason:
    """The catalogue entry of ``code``; raises :class:`UnknownReasonError` for an unknown code."""
    try:
        return REASONS[code]
    except KeyError:
        raise UnknownReasonError(code) from None


def is_transient(code: str) -> bool:
    return describe(code).transient


def render_markdown() -> str:
    """The catalogue as a Markdown table, for ``docs/reasons.md``."""
    lines = [
        "# Reason codes",
        "",
        "Generated from `checks/reasons.py` (`python -m checks.reasons > docs/reasons.md`). "
        "`unknown` is never non-compliance; *transient* codes are retried before a scan is final.",
        "",
        "| code | status | transient | 说明 | 整改建议 |",
        "|---|---|---|---|---|",
    ]
    for r in _TABLE:
        lines.append(
            f"| `{r.code}` | {r.status} | {'yes' if r.transient else ''} | {r.message} | {r.advice} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
