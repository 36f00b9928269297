"""Classification of DNS answers (``dns``) and of what a Chinese domain is used for (``usage``).

Pure: the crawler fills :class:`DnsResult` from its resolver (see :func:`result_from_exception` and
:func:`result_from_addresses` for dnspython outcomes) and :class:`UsageObservation` from the fetch of
``http://<domain>/``; the functions here decide the reason. A timeout, SERVFAIL or REFUSED says nothing
about the domain (``unknown``); NXDOMAIN and NODATA are answers (``fail``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from checks.domains import DomainError, encode_domain
from checks.expected import Expected
from checks.reasons import describe
from checks.rules import Rules
from checks.verdict import Evidence, Status, Verdict

# --- DNS --------------------------------------------------------------------------------------------

#: ``DnsResult.error`` values the crawler sets when no usable response arrived.
ERROR_TIMEOUT = "timeout"
ERROR_REFUSED = "refused"  # every nameserver answered REFUSED (or refused the connection)
ERROR_SERVFAIL = "servfail"  # every nameserver answered SERVFAIL
ERROR_NO_NAMESERVERS = "no_nameservers"
ERROR_CNAME_LOOP = "cname_loop"


@dataclass(frozen=True, slots=True)
class DnsResult:
    """What the resolver said about one name (A and AAAA merged).

    ``qname`` is the name asked (ASCII form); ``rcode`` the response code of the final answer
    (``NOERROR``, ``NXDOMAIN``, ``SERVFAIL``, ``REFUSED``, …); ``error`` is set when no usable answer
    arrived (:data:`ERROR_TIMEOUT`, …); ``cname_chain`` the aliases followed, in order; ``addresses``
    the A/AAAA addresses at the end of the chain; ``records`` the answer in zone-file text, for
    evidence.
    """

    qname: str
    rcode: str = "NOERROR"
    error: str | None = None
    cname_chain: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    nameserver: str = ""
    elapsed_ms: float | None = None
    records: tuple[str, ...] = ()

    def describe(self) -> str:
        """A short, dig-like rendering for evidence."""
        head = f"{self.qname} → {self.error or self.rcode}"
        if self.nameserver:
            head += f" @{self.nameserver}"
        lines = [head, *(f"CNAME {c}" for c in self.cname_chain), *self.addresses]
        lines.extend(r for r in self.records if r not in lines)
        return "\n".join(lines)


def _norm_name(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _has_loop(qname: str, chain: Iterable[str]) -> bool:
    seen = {_norm_name(qname)}
    for name in chain:
        n = _norm_name(name)
        if n in seen:
            return True
        seen.add(n)
    return False


def classify_dns(result: DnsResult) -> Verdict:
    """The ``dns`` verdict of one lookup."""
    data = {
        "qname": result.qname,
        "rcode": result.rcode,
        "error": result.error,
        "cname_chain": list(result.cname_chain),
        "addresses": list(result.addresses),
        "nameserver": result.nameserver,
    }
    evidence = (Evidence("dns", result.describe()),)
    err = (result.error or "").lower()
    rcode = (result.rcode or "").upper()
    if err == ERROR_CNAME_LOOP or _has_loop(result.qname, result.cname_chain):
        code, detail = "dns.cname_loop", " → ".join([result.qname, *result.cname_chain])
    elif err:
        code = {
            ERROR_TIMEOUT: "dns.timeout",
            ERROR_REFUSED: "dns.refused",
            ERROR_SERVFAIL: "dns.servfail",
        }.get(err, "dns.error")
        detail = "" if code != "dns.error" else f"解析出错：{result.error}"
    elif rcode == "NXDOMAIN":
        code = "dns.nxdomain"
        detail = f"别名 {result.cname_chain[-1]} 不存在" if result.cname_chain else ""
    elif rcode == "SERVFAIL":
        code, detail = "dns.servfail", ""
    elif rcode == "REFUSED":
        code, detail = "dns.refused", ""
    elif rcode != "NOERROR":
        code, detail = "dns.error", f"域名服务器返回 {rcode}"
    elif result.addresses:
        code, detail = "dns.ok", "、".join(result.addresses[:8])
    else:
        code = "dns.nodata"
        detail = f"别名 {result.cname_chain[-1]} 没有地址记录" if result.cname_chain else ""
    return Verdict("dns", describe(code).status, code, detail, evidence, data)


def result_from_exception(qname: str, exc: BaseException, nameserver: str = "") -> DnsResult:
    """A :class:`DnsResult` for a dnspython resolver exception (no import of dnspython needed here).

    ``NXDOMAIN`` → rcode NXDOMAIN; ``NoAnswer`` → NOERROR without addresses (NODATA); ``LifetimeTimeout``
    / ``Timeout`` → timeout; ``NoNameservers`` → SERVFAIL or REFUSED as the servers said; anything else
    → an error named after the exception.
    """
    name = type(exc).__name__
    if name == "NXDOMAIN":
        return DnsResult(qname, "NXDOMAIN", nameserver=nameserver)
    if name == "NoAnswer":
        return DnsResult(qname, "NOERROR", nameserver=nameserver)
    if name in ("LifetimeTimeout", "Timeout", "TimeoutError"):
        return DnsResult(qname, "", ERROR_TIMEOUT, nameserver=nameserver)
    if name == "NoNameservers":
        # A server that answered with a looping or endless CNAME chain: read the answer itself.
        errors = getattr(exc, "kwargs", {}).get("errors") or []
        for err in errors:
            if len(err) >= 5 and type(err[3]).__name__ == "ChainTooLong" and err[4] is not None:
                result = result_from_message(qname, err[4], nameserver)
                if result.error is None:  # dnspython's limit is shorter than ours: still no end
                    return DnsResult(qname, result.rcode, ERROR_CNAME_LOOP, result.cname_chain, (),
                                     nameserver, records=result.records)  # fmt: skip
                return result
        text = str(exc).upper()
        err = ERROR_REFUSED if "REFUSED" in text and "SERVFAIL" not in text else ERROR_SERVFAIL
        rcode = "SERVFAIL" if err == ERROR_SERVFAIL else "REFUSED"
        return DnsResult(qname, rcode, err, nameserver=nameserver)
    if name == "YXDOMAIN":
        return DnsResult(qname, "YXDOMAIN", nameserver=nameserver)
    return DnsResult(qname, "", f"{name}: {exc}"[:200], nameserver=nameserver)


def result_from_message(qname: str, message: Any, nameserver: str = "") -> DnsResult:
    """A :class:`DnsResult` from a dnspython response message (``Answer.response``): the rcode, the
    CNAME chain from ``qname`` (a loop is reported as :data:`ERROR_CNAME_LOOP`), and the A/AAAA
    addresses of the chain's last name."""
    import dns.name
    import dns.rcode
    import dns.rdatatype

    rcode = dns.rcode.to_text(message.rcode())
    answer = list(message.answer)
    records = tuple(line for rrset in answer for line in rrset.to_text().splitlines())[:40]
    name = dns.name.from_text(qname)
    seen = {name}
    chain: list[str] = []
    while True:
        cname = next((r for r in answer if r.name == name and r.rdtype == dns.rdatatype.CNAME), None)
        if cname is None or not len(cname):
            break
        target = next(iter(cname)).target
        chain.append(target.to_text(omit_final_dot=True))
        if target in seen or len(chain) > 32:
            return DnsResult(qname, rcode, ERROR_CNAME_LOOP, tuple(chain), (), nameserver, records=records)
        seen.add(target)
        name = target
    addresses = tuple(
        rd.address
        for r in answer
        if r.name == name and r.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
        for rd in r
    )
    return DnsResult(qname, rcode, None, tuple(chain), addresses, nameserver, records=records)


def result_from_addresses(
    qname: str, addresses: Iterable[str], cname_chain: Iterable[str] = (), nameserver: str = ""
) -> DnsResult:
    """A NOERROR :class:`DnsResult` (NODATA when ``addresses`` is empty)."""
    return DnsResult(qname, "NOERROR", None, tuple(cname_chain), tuple(addresses), nameserver)


# --- usage of a Chinese domain ------------------------------------------------------------------------

# Words of parking and for-sale pages (registrars, brokers).
_PARKED = re.compile(
    r"域名停放|停放页面|(?:此|该|本)域名(?:正在|可以|已)?(?:出售|转让|待售)|域名(?:出售|转让|拍卖)|"
    r"domain\s+(?:is\s+)?(?:for\s+sale|parked|parking)|buy\s+this\s+domain|"
    r"this\s+domain\s+(?:may\s+be|is)\s+for\s+sale|"
    r"parkingcrew|sedoparking|bodis\.com|dan\.com",
    re.I,
)
# Default pages of a server nobody put a site on.
_EMPTY_SITE = re.compile(
    r"welcome\s+to\s+nginx|apache2?\s+(?:\w+\s+)?default\s+page|it\s+works!|iis\s+windows\s+server|"
    r"test\s+page\s+for\s+the\s+(?:nginx|apache)|网站(?:正在)?建设中|站点创建成功|恭喜，站点创建成功|"
    r"没有找到站点|网站暂时无法访问|该站点暂停访问",
    re.I,
)


def same_page(title: str, links: Iterable[str], other_title: str, other_links: Iterable[str]) -> bool:
    """Whether two visits show the same site's page: most links in common (and the same title when
    there are few links). Byte equality fails on pages that change on every visit."""
    a, b = set(links), set(other_links)
    if not a or not b:
        return False
    overlap = len(a & b) / len(a | b)
    if len(a) >= 5 and len(b) >= 5 and overlap >= 0.8:
        return True
    return bool(title.strip()) and title.strip() == other_title.strip() and overlap >= 0.5


# Pages that hide what a name serves (see checks.content): the use of the domain stays undecided.
_NOT_SERVED = frozenset(
    {
        "http.challenge",
        "http.blocked",
        "http.rate_limited",
        "http.maintenance",
        "http.landing_unresolved",
        "http.empty",  # an answer with nothing in it: a misbehaving server as much as an unused name
        "http.not_html",
        "http.bad_redirect",
        "http.protocol_error",
    }
)


@dataclass(frozen=True, slots=True)
class UsageObservation:
    """What fetching ``http://<domain>/`` showed (filled by the crawler).

    ``error`` names a fetch failure (``timeout``, ``refused``, ``reset``, ``tls``, ``dns``, …, the
    :class:`checks.http.FetchError` values); ``final_url`` is the URL after redirects; ``text`` is a
    short piece of the page's visible text (title and first few hundred characters) for the parked-page
    test; ``body_sha256`` lets the caller compare content with the unit's own site.
    """

    domain: str
    final_url: str = ""
    status: int | None = None
    error: str | None = None
    title: str = ""
    text: str = ""
    body_sha256: str = ""
    body_length: int | None = None
    redirects: tuple[str, ...] = ()
    links: tuple[str, ...] = ()  # the paths the page links to (without host)
    page_state: str = ""  # the http reason when the page reached is not content (http.challenge …)
    dns: DnsResult | None = None


def ascii_host(host: str) -> str:
    """A host name in lower-case ASCII (A-labels), without port or trailing dot; "" when invalid."""
    h = host.strip().lower().rstrip(".")
    if not h:
        return ""
    if h.isascii():
        return h
    try:
        return encode_domain(h).ascii
    except (DomainError, ValueError):
        return ""


def _url_host(url: str) -> str:
    u = url.strip()
    if not u:
        return ""
    if "//" not in u:
        u = "http://" + u
    try:
        host = urlsplit(u).hostname or ""
    except ValueError:
        return ""
    return ascii_host(host)


def _bare(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


def own_hosts(expected: Expected) -> frozenset[str]:
    """Hosts that serve the unit's own site: the site URL's host and every registered domain."""
    hosts = {_url_host(expected.site_url)}
    hosts.update(ascii_host(d) for d in (*expected.en_domains, *expected.cn_domains))
    hosts.discard("")
    return frozenset(_bare(h) for h in hosts)


def _host_in(host: str, hosts: Iterable[str]) -> bool:
    bare = _bare(host)
    return any(bare == h or bare.endswith("." + h) for h in hosts if h)


def classify_usage(
    obs: UsageObservation,
    expected: Expected,
    rules: Rules,
    own_sha256: Iterable[str] = (),
    own_pages: Iterable[Mapping[str, Any]] = (),
) -> Verdict:
    """The ``usage`` verdict of one Chinese domain, decided by where its visitor ends up.

    ``own_sha256`` are body digests of the unit's own site and ``own_pages`` its pages' ``title`` and
    ``links``: a domain serving the site's page without redirecting is used for the site too, also when
    the page differs byte for byte on every visit (counters, timestamps, tokens).
    """
    final = obs.final_url or (obs.redirects[-1] if obs.redirects else "")
    host = _url_host(final) if final else ""
    chain = " → ".join(obs.redirects) if obs.redirects else final
    data = {
        "domain": obs.domain,
        "final_url": final,
        "status": obs.status,
        "error": obs.error,
        "title": obs.title,
    }
    shown = chain or obs.domain
    evidence = (Evidence("http", f"{shown}（HTTP {obs.status}）" if obs.status else shown),)

    def out(code: str, detail: str = "") -> Verdict:
        return Verdict("usage", describe(code).status, code, detail, evidence, data)

    if obs.dns is not None:
        dns_v = classify_dns(obs.dns)
        if dns_v.status is Status.UNKNOWN:
            return out("usage.unreachable", f"域名解析未完成：{dns_v.message}")
        if dns_v.status is Status.FAIL:
            return out("usage.not_used", f"域名不能解析：{dns_v.message}")
    red_hosts = [ascii_host(h) for h in rules.red_page_hosts]
    # The domain itself is registered to the unit; it counts as the site's host only when the
    # registry gives it as the site address. Otherwise what it serves decides.
    me = _bare(ascii_host(obs.domain))
    site_host = _bare(_url_host(expected.site_url))
    own = own_hosts(expected) - ({me} if me != site_host else set())
    # A redirect that reached a known host decides even if the last hop then failed.
    if host and _host_in(host, red_hosts):
        return out("usage.red_page", f"指向网络红页 {host}")
    if host and own and _host_in(host, own) and _bare(host) != me:
        return out("usage.own_site", f"跳转到本单位网站 {final}")
    err = (obs.error or "").lower()
    if err and obs.redirects:
        # The domain answered with a redirect; where it leads failed: that says nothing of its use.
        return out("usage.unreachable", f"跳转后的网页无法访问：{obs.error}")
    if err:
        # A refused connection means no web server on that address: the domain is not used for the
        # web. Not so for the registered site's own host: there it is the site being down, which the
        # http check already calls unknown (never an accusation on one failed visit).
        if err == "refused" and me != site_host:
            return out("usage.not_used", "域名解析正常，但服务器不接受网页访问（连接被拒绝）")
        return out("usage.unreachable", f"访问出错：{obs.error}")
    status = obs.status or 0
    # An error status says as little as the http check's 4xx/5xx (http.client_error is unknown too):
    # a firewall, a missing index page or a broken server, not whether the domain is in use.
    if not (200 <= status < 300):  # an error, or a redirect status without a Location to follow
        return out("usage.unreachable", f"网站返回 HTTP {status}" if status else "没有收到网页")
    landing_on_site = obs.page_state == "http.landing_unresolved" and me == site_host
    if not landing_on_site and (obs.page_state in _NOT_SERVED or (obs.page_state and me == site_host)):
        # Nothing of the unit's is shown (a challenge, a block or maintenance notice; or the site's own
        # host showing no content, which its http check already calls unknown): undecided.
        return out("usage.unreachable", f"网页不是正常内容：{describe(obs.page_state).message}")
    if obs.body_length == 0:
        return out("usage.not_used", "网页内容为空")
    shas = {s for s in own_sha256 if s}
    if host and own and _host_in(host, own):
        return out("usage.own_site", f"提供本单位网站 {final}")
    if obs.body_sha256 and obs.body_sha256 in shas:
        return out("usage.own_site", "与本单位网站内容相同")
    for own_page in own_pages:
        if same_page(obs.title, obs.links, str(own_page.get("title", "")), own_page.get("links") or ()):
            return out("usage.own_site", "与本单位网站是同一网站（标题和链接相同）")
    page_text = f"{obs.title}\n{obs.text}"
    names = [n.strip() for n in (expected.site_name, expected.unit_name) if len(n.strip()) >= 4]
    if obs.title and any(n in obs.title for n in names):
        return out("usage.own_site", f"页面标题“{obs.title}”与登记的网站名称一致")
    if _PARKED.search(page_text):
        return out("usage.parked", f"页面标题：{obs.title}" if obs.title else "停放或出售页面")
    if _EMPTY_SITE.search(page_text):
        return out("usage.not_used", f"服务器默认页面：{obs.title}" if obs.title else "服务器默认页面")
    title = f"（{obs.title}）" if obs.title else ""
    return out("usage.other_site", f"指向 {host or final}{title}，不是登记的本单位网站")
