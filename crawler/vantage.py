"""The vantage check: can this machine see the web as a visitor in mainland China sees it?

A scan run from the wrong place (a machine abroad or in a datacenter that government sites and their
CDNs/WAFs geo-fence, a host without a route, a resolver that does not know ``.政务`` / ``.公益``) does not
fail: every site comes back ``unknown`` (timeouts, 403s, block pages, DNS errors) and the night's scan
looks like a scan of the province where nothing could be judged. So before anything is opened, a scan
fetches a few configured reference sites (``vantage_urls``: normal working sites such as www.gov.cn,
the provincial portal, a few hosting platforms) concurrently, with a short timeout
(``vantage_timeout_s``), through the scan's own resolver, address guard, port map and HTTP client
(:class:`crawler.inspect.AiohttpFetcher`, the one ``badgewatch inspect`` uses). When fewer than
``vantage_min_ok`` of them (a fraction, default one half) answer with their page, the scan stops before
opening or touching any scan record (:class:`VantageError`, exit status :data:`EXIT_VANTAGE` of
``badgewatch scan``), telling the operator which reference sites failed, why, and what to do.

A reference site *answers* when a response arrives (redirects followed) that is the site's content or an
anti-bot challenge (the site was reached; its WAF only wants a browser). It fails on a DNS error
(NXDOMAIN, SERVFAIL, no answer), a timeout, a refused or reset connection, no route, a TLS failure, a
refused (internal) address, a block or geo-blocking page, HTTP 4xx/5xx, or a page that is no content
(maintenance, empty, default page).
"""

from __future__ import annotations

import asyncio
import errno
import math
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from checks.content import assess
from checks.page import Document
from crawler.context import build_context
from crawler.errors import AddressRefusedError, DnsFailedError, classify_exception
from crawler.inspect import AiohttpFetcher
from crawler.scanlocks import ScanError
from storage.config import Config

#: Exit status of ``badgewatch scan`` / ``worker`` when the vantage check fails (documented in
#: ``docs/crawler.md``, *Exit status*): 0 finished, 1 error or scan not finished, 2 usage error.
EXIT_VANTAGE = 3
#: The machine-readable code of the failure in ``--json`` output.
CODE = "vantage_failed"

MAX_HOPS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass
class Probe:
    """One reference site: did it answer, and if not, why (``reason``: a stable code; ``message``: the
    operator's plain Chinese)."""

    url: str
    ok: bool
    reason: str
    message: str
    detail: str = ""
    status_code: int | None = None
    final_url: str = ""
    addresses: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "ok": self.ok,
            "reason": self.reason,
            "message": self.message,
            "detail": self.detail,
            "status_code": self.status_code,
            "final_url": self.final_url,
            "addresses": self.addresses,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }


@dataclass
class VantageReport:
    probes: list[Probe]
    min_ok: float
    nameservers: list[str]

    @property
    def total(self) -> int:
        return len(self.probes)

    @property
    def answered(self) -> int:
        return sum(1 for p in self.probes if p.ok)

    @property
    def needed(self) -> int:
        """How many reference sites must answer (at least one, unless ``min_ok`` is 0)."""
        if self.min_ok <= 0 or not self.probes:
            return 0
        return max(1, math.ceil(self.min_ok * self.total - 1e-9))

    @property
    def passed(self) -> bool:
        return self.answered >= self.needed

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "answered": self.answered,
            "total": self.total,
            "needed": self.needed,
            "min_ok": self.min_ok,
            "nameservers": self.nameservers,
            "probes": [p.to_dict() for p in self.probes],
        }

    def summary_line(self) -> str:
        return f"参照网站检查：{self.total} 个中 {self.answered} 个可以访问（至少需要 {self.needed} 个）"

    def message(self) -> str:
        """The operator's message when the check failed: what failed, why, what to do (Chinese)."""
        lines = [
            "巡检未开始：从本机访问参照网站大多失败"
            f"（{self.total} 个中只有 {self.answered} 个可以访问，至少需要 {self.needed} 个）。",
            "本机所在的网络看到的网站与普通访问者不同，此时巡检只会得到大量“无法判定”，"
            "因此没有建立巡检记录，也没有写入任何结论。",
            "参照网站：",
        ]
        for p in self.probes:
            mark = "可以访问" if p.ok else "失败"
            lines.append(f"  [{mark}] {p.url}：{p.message}")
        lines.append("请检查：")
        lines.extend(f"  {i}. {hint}" for i, hint in enumerate(self._hints(), 1))
        lines.append(
            "说明见 docs/deployment.md（巡检机应在哪里运行）。网络恢复后重新运行即可；"
            "确需跳过此项检查时加 --skip-vantage。"
        )
        return "\n".join(lines)

    def _hints(self) -> list[str]:
        failed = [p for p in self.probes if not p.ok]
        kinds = {p.reason for p in failed}
        dns = sum(1 for p in failed if p.reason.startswith("dns."))
        servers = "、".join(self.nameservers) or "系统默认"
        resolver = (
            f"本机使用的 DNS 服务器（nameservers：{servers}）是否可用，能否解析 gov.cn 域名和"
            " .政务 / .公益 中文域名（境外或公共 DNS 常常解析不了）。"
        )
        network = (
            "巡检机应在中国大陆境内的网络上运行：许多政府网站及其 CDN、防火墙屏蔽境外地址和"
            "机房、云服务器的地址（表现为超时、拒绝访问或拦截页）。请在境内网络的机器上运行，"
            "并使用各平台可加入白名单的固定出口地址。"
        )
        route = "本机能否访问互联网：路由、代理、出站防火墙规则（表现为网络不可达、连接被拒绝或超时）。"
        config = "参照网站的地址是否写对（vantage_urls），这些网站本身是否正常。"
        hints: list[str] = []
        if dns and dns * 2 >= len(failed):
            hints.append(resolver)
        if kinds & {"http.blocked", "http.forbidden", "http.timeout"}:
            hints.append(network)
        if kinds & {"net.unreachable", "http.refused", "http.reset", "http.timeout"}:
            hints.append(route)
        for h in (network, resolver, route):
            if h not in hints:
                hints.append(h)
        hints.append(config)
        return hints


class VantageError(ScanError):
    """Most reference sites failed: the scan did not start (``report`` says which and why)."""

    def __init__(self, report: VantageReport) -> None:
        super().__init__(report.message())
        self.report = report

    def to_json(self) -> dict[str, Any]:
        return {
            "error": CODE,
            "scan_id": None,
            "status": "not_started",
            "message": str(self),
            "vantage": self.report.to_dict(),
        }


def normalise_url(raw: str) -> str:
    url = raw.strip()
    if url and "://" not in url:
        url = "http://" + url
    return url


def validate(config: Config) -> None:
    if not 0.0 <= float(config.vantage_min_ok) <= 1.0:
        raise ScanError(
            "vantage_min_ok 应是 0 到 1 之间的比例（参照网站中至少多少可以访问），"
            f"而不是 {config.vantage_min_ok!r}"
        )
    if config.vantage_timeout_s <= 0:
        raise ScanError(f"vantage_timeout_s 应大于 0，而不是 {config.vantage_timeout_s!r}")


def check_vantage(config: Config, urls: Iterable[str] | None = None) -> VantageReport:
    """Probe the reference sites (``vantage_urls`` unless ``urls``) concurrently; the report.

    Runs its own event loop in a helper thread: the caller may be about to start Scrapy's reactor (or
    already run a loop) in this thread."""
    validate(config)
    targets = [normalise_url(u) for u in (config.vantage_urls if urls is None else urls) if u.strip()]
    with ThreadPoolExecutor(1, thread_name_prefix="vantage") as pool:
        probes = pool.submit(lambda: asyncio.run(_probe_all(config, targets))).result()
    return VantageReport(probes, float(config.vantage_min_ok), list(config.nameservers))


def require_vantage(config: Config, *, skip: bool = False) -> VantageReport | None:
    """Check the vantage unless ``skip`` or no reference sites are configured; raise
    :class:`VantageError` when too few answer. The report (None when nothing was checked)."""
    if skip or not [u for u in config.vantage_urls if u.strip()]:
        return None
    report = check_vantage(config)
    if not report.passed:
        raise VantageError(report)
    return report


async def _probe_all(config: Config, urls: list[str]) -> list[Probe]:

    ctx = build_context(config)
    fetcher = AiohttpFetcher(ctx)
    try:
        return list(await asyncio.gather(*(_probe(ctx, fetcher, url, config) for url in urls)))
    finally:
        await fetcher.close()


async def _probe(ctx: Any, fetcher: Any, url: str, config: Config) -> Probe:
    t0 = time.perf_counter()
    timeout = float(config.vantage_timeout_s)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Probe(url, False, "bad_url", "地址无效（应为 http:// 或 https:// 开头的网址）")
    try:
        probe = await asyncio.wait_for(_visit(fetcher, url, config), timeout)
    except TimeoutError:
        if ctx.resolver.cached(parts.hostname) is None:  # still waiting for the nameservers
            why = f"域名解析超时：DNS 服务器 {timeout:g} 秒内没有应答"
            probe = Probe(url, False, "dns.timeout", why)
        else:
            probe = Probe(url, False, "http.timeout", f"{timeout:g} 秒内没有应答（超时）")
    except Exception as exc:  # every failure is a reason for the operator, never a crash
        probe = _failure(url, exc)
    probe.elapsed_ms = (time.perf_counter() - t0) * 1000
    answer = ctx.resolver.cached(parts.hostname)
    if answer is not None:
        probe.addresses = list(answer.addresses)
    return probe


async def _visit(fetcher: Any, url: str, config: Config) -> Probe:

    current = url
    for _ in range(MAX_HOPS + 1):
        raw = await fetcher.get(current, maxsize=config.max_body_bytes)
        location = next((v for k, v in raw.headers.items() if k.lower() == "location"), "")
        if raw.status in REDIRECT_STATUSES and location:
            current = urljoin(current, location.strip())
            if urlsplit(current).scheme not in ("http", "https"):
                break
            continue
        ctype = next((v for k, v in raw.headers.items() if k.lower() == "content-type"), "")
        doc = Document.from_bytes(raw.url, raw.body, ctype)
        signal = assess(doc, raw.status, raw.headers, len(raw.body))
        status = raw.status
        base = Probe(url, False, "", "", status_code=status, final_url=raw.url)
        if signal is not None and signal.reason == "http.challenge":
            base.ok, base.reason = True, "reached"
            base.message = f"可以访问（HTTP {status}，网站的防护产品要求浏览器验证，但网络是通的）"
            base.detail = signal.detail
            return base
        if signal is not None:
            base.reason, base.detail = signal.reason, signal.detail
            base.message = _SIGNAL_ZH.get(signal.reason, "返回的不是网站内容") + f"：{signal.detail}"
            return base
        if status in (403, 451):
            base.reason = "http.forbidden"
            base.message = f"拒绝访问（HTTP {status}）：网站可能屏蔽了境外或机房的地址"
            return base
        if status >= 500:
            base.reason, base.message = "http.server_error", f"服务器错误（HTTP {status}）"
            return base
        if status >= 300:
            base.reason = "http.client_error" if status >= 400 else "http.bad_redirect"
            base.message = f"没有返回网页（HTTP {status}）"
            return base
        base.ok, base.reason, base.message = True, "ok", f"可以访问（HTTP {status}）"
        return base
    return Probe(url, False, "http.redirect_loop", f"跳转超过 {MAX_HOPS} 次或跳转地址无效", final_url=current)


_REFUSED_ZH = "连接被拒绝（对方端口没有服务或被防火墙拒绝）"
_SIGNAL_ZH = {
    "http.blocked": "返回拦截页，可能屏蔽了境外或机房的地址",
    "http.rate_limited": "返回访问频率限制页",
    "http.maintenance": "网站在维护或暂停访问",
    "http.empty": "返回的页面是空的",
    "http.default_page": "返回服务器默认页面，不是网站内容",
}


def _failure(url: str, exc: BaseException) -> Probe:
    """A network failure in the operator's words."""

    chain = _chain(exc)
    for e in chain:
        if isinstance(e, DnsFailedError):
            a = e.answer
            if a.error == "timeout":
                return Probe(url, False, "dns.timeout", "域名解析超时：DNS 服务器没有应答", str(e))
            if a.rcode == "NXDOMAIN":
                why = "域名解析失败：DNS 服务器答复该域名不存在（NXDOMAIN）"
                return Probe(url, False, "dns.nxdomain", why, str(e))
            if a.rcode and a.rcode != "NOERROR":
                return Probe(url, False, "dns.error", f"域名解析失败：DNS 服务器答复 {a.rcode}", str(e))
            if a.error and a.error.startswith("error:"):
                why = f"域名解析失败：无法连接 DNS 服务器（{a.error.removeprefix('error:').strip()}）"
                return Probe(url, False, "dns.error", why, str(e))
            if a.error:
                return Probe(url, False, "dns.error", f"域名解析失败（{a.error}）", str(e))
            return Probe(url, False, "dns.no_address", "域名解析失败：DNS 服务器没有给出地址", str(e))
        if isinstance(e, AddressRefusedError):
            return Probe(
                url,
                False,
                "http.address_refused",
                f"域名被解析到内网或保留地址（{'、'.join(e.addresses)}），按安全设置不访问；"
                "DNS 答复可能被篡改",
                str(e),
                addresses=list(e.addresses),
            )
        if isinstance(e, OSError) and e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return Probe(url, False, "net.unreachable", "网络不可达（本机没有到该网站的路由）", _short(e))
        if isinstance(e, OSError) and e.errno == errno.ECONNREFUSED:
            return Probe(url, False, "http.refused", _REFUSED_ZH, _short(e))
    kind, detail = classify_exception(exc)
    words = {
        "timeout": "连接或读取超时",
        "refused": _REFUSED_ZH,
        "reset": "连接被重置或中断（常见于防火墙拦截）",
        "tls": "TLS（HTTPS）握手失败",
        "tls_sm2": "网站只支持国密 TLCP，无法用普通 HTTPS 访问",
        "protocol": "对方的应答不是正常的 HTTP",
        "dns": "域名解析失败",
    }
    return Probe(url, False, f"http.{kind}", words.get(str(kind), "访问失败"), detail)


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(out) < 8 and current not in out:
        out.append(current)
        nxt = getattr(current, "os_error", None)  # aiohttp's ClientConnectorError
        current = nxt if isinstance(nxt, BaseException) else (current.__cause__ or current.__context__)
    return out


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
