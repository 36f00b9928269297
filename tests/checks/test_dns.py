"""DNS answer and domain-usage classification (checks/dns.py)."""

from __future__ import annotations

import dns.exception
import dns.message
import dns.name
import dns.resolver
import pytest

from checks.dns import (
    DnsResult,
    UsageObservation,
    ascii_host,
    classify_dns,
    classify_usage,
    own_hosts,
    result_from_addresses,
    result_from_exception,
)
from checks.expected import Expected, UnitKind
from checks.rules import Rules

Q = "xn--fiq228c5hs.xn--zfr164b"


@pytest.mark.parametrize(
    ("result", "status", "reason"),
    [
        (DnsResult(Q, addresses=("127.0.0.10",)), "pass", "dns.ok"),
        (
            DnsResult(Q, cname_chain=("a.example.cn", "b.example.cn"), addresses=("127.0.0.10",)),
            "pass",
            "dns.ok",
        ),
        (DnsResult(Q, "NXDOMAIN"), "fail", "dns.nxdomain"),
        (DnsResult(Q, "NXDOMAIN", cname_chain=("gone.example.cn",)), "fail", "dns.nxdomain"),
        (DnsResult(Q), "fail", "dns.nodata"),
        (DnsResult(Q, cname_chain=("a.example.cn", Q.upper() + ".")), "fail", "dns.cname_loop"),
        (DnsResult(Q, "", "cname_loop"), "fail", "dns.cname_loop"),
        (DnsResult(Q, "SERVFAIL"), "unknown", "dns.servfail"),
        (DnsResult(Q, "REFUSED"), "unknown", "dns.refused"),
        (DnsResult(Q, "", "timeout"), "unknown", "dns.timeout"),
        (DnsResult(Q, "", "no_nameservers"), "unknown", "dns.error"),
        (DnsResult(Q, "FORMERR"), "unknown", "dns.error"),
    ],
)
def test_classify_dns(result: DnsResult, status: str, reason: str) -> None:
    v = classify_dns(result)
    assert (v.check, str(v.status), v.reason) == ("dns", status, reason)
    assert v.evidence and v.evidence[0].source == "dns" and Q in v.evidence[0].excerpt
    assert v.data["addresses"] == list(result.addresses)


def _no_nameservers(rcode: str) -> BaseException:
    query = dns.message.make_query(Q, "A")
    return dns.resolver.NoNameservers(request=query, errors=[("127.0.0.1", False, 53, rcode, None)])  # type: ignore[no-untyped-call]


def _nxdomain() -> BaseException:
    return dns.resolver.NXDOMAIN(qnames=[dns.name.from_text(Q)], responses={})  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (_nxdomain(), "dns.nxdomain"),
        (dns.resolver.NoAnswer(), "dns.nodata"),  # type: ignore[no-untyped-call]
        (dns.resolver.LifetimeTimeout(timeout=2.0, errors=[]), "dns.timeout"),  # type: ignore[no-untyped-call]
        (dns.exception.Timeout(), "dns.timeout"),  # type: ignore[no-untyped-call]
        (_no_nameservers("SERVFAIL"), "dns.servfail"),
        (_no_nameservers("REFUSED"), "dns.refused"),
        (RuntimeError("boom"), "dns.error"),
    ],
)
def test_result_from_dnspython_exceptions(exc: BaseException, reason: str) -> None:
    assert classify_dns(result_from_exception(Q, exc)).reason == reason


def test_result_from_addresses() -> None:
    assert classify_dns(result_from_addresses(Q, ["127.0.0.9"], ["x.example.cn"])).reason == "dns.ok"
    assert classify_dns(result_from_addresses(Q, [])).reason == "dns.nodata"


UNIT = Expected(
    UnitKind.PARTY_GOV,
    unit_name="保定市机构编制委员会办公室",
    site_name="保定机构编制网",
    site_url="http://www.bdbb.gov.cn/",
    cn_domains=("保定市编办.政务", "保定市机构编制委员会办公室.政务"),
    en_domains=("www.bdbb.gov.cn",),
)
CN = "保定市编办.政务"
RULES = Rules(red_page_hosts=("hongye.conac.cn",))


def test_ascii_host_and_own_hosts() -> None:
    assert ascii_host("保定市编办．政务") == ascii_host("保定市编办.政务")
    assert ascii_host("保定市编办.政务").endswith(".xn--zfr164b")
    assert ascii_host("WWW.Example.CN.") == "www.example.cn"
    assert ascii_host("a" * 70 + ".cn") == "a" * 70 + ".cn"  # ASCII passes as written
    assert ascii_host("鄂尔多斯市恩格贝生态示范区管理委员会办公室综合服务中心.政务") == ""  # label too long
    assert "bdbb.gov.cn" in own_hosts(UNIT)


@pytest.mark.parametrize(
    ("obs", "status", "reason"),
    [
        # Redirects to the unit's own site (any scheme, www or not).
        (UsageObservation(CN, "https://www.bdbb.gov.cn/index.html", 200), "pass", "usage.own_site"),
        (
            UsageObservation(CN, "http://bdbb.gov.cn/", 200, redirects=("http://x/", "http://bdbb.gov.cn/")),
            "pass",
            "usage.own_site",
        ),
        # A redirect that reached the own site and then failed still shows the domain is used for it.
        (UsageObservation(CN, "http://www.bdbb.gov.cn/", None, "timeout"), "pass", "usage.own_site"),
        # Same content as the own site without a redirect.
        (
            UsageObservation(CN, "http://xn--fiq228c5hs.xn--zfr164b/", 200, body_sha256="ab" * 32),
            "pass",
            "usage.own_site",
        ),
        # Title names the registered site.
        (
            UsageObservation(CN, "http://xn--fiq228c5hs.xn--zfr164b/", 200, title="首页 - 保定机构编制网"),
            "pass",
            "usage.own_site",
        ),
        (UsageObservation(CN, "http://hongye.conac.cn/u/123", 200), "pass", "usage.red_page"),
        (UsageObservation(CN, "http://www.sale.cn/", 200, title="该域名正在出售"), "warn", "usage.parked"),
        (
            UsageObservation(CN, "http://p.example/", 200, text="This domain is for sale"),
            "warn",
            "usage.parked",
        ),
        (
            UsageObservation(CN, "http://xn--fiq228c5hs.xn--zfr164b/", 200, title="Welcome to nginx!"),
            "warn",
            "usage.not_used",
        ),
        (UsageObservation(CN, "http://xn--fiq228c5hs.xn--zfr164b/", 404), "unknown", "usage.unreachable"),
        (
            UsageObservation(CN, "http://xn--fiq228c5hs.xn--zfr164b/", 200, body_length=0),
            "warn",
            "usage.not_used",
        ),
        (UsageObservation(CN, "", None, "refused"), "warn", "usage.not_used"),
        (UsageObservation(CN, "http://www.other.gov.cn/", 200, title="其他单位"), "warn", "usage.other_site"),
        (UsageObservation(CN, "", None, "timeout"), "unknown", "usage.unreachable"),
        (UsageObservation(CN, "", None, "tls"), "unknown", "usage.unreachable"),
        (UsageObservation(CN, "http://xn--fiq228c5hs.xn--zfr164b/", 403), "unknown", "usage.unreachable"),
        (UsageObservation(CN, "http://xn--fiq228c5hs.xn--zfr164b/", 503), "unknown", "usage.unreachable"),
        (UsageObservation(CN, dns=DnsResult(Q, "NXDOMAIN")), "warn", "usage.not_used"),
        (UsageObservation(CN, dns=DnsResult(Q, "", "timeout")), "unknown", "usage.unreachable"),
    ],
)
def test_classify_usage(obs: UsageObservation, status: str, reason: str) -> None:
    v = classify_usage(obs, UNIT, RULES, own_sha256=["ab" * 32])
    assert (v.check, str(v.status), v.reason) == ("usage", status, reason), v.detail


def test_domain_itself_is_own_site_only_when_registered_as_the_site_address() -> None:
    obs = UsageObservation(CN, f"http://{ascii_host(CN)}/", 200, title="某页面")
    assert classify_usage(obs, UNIT, RULES).reason == "usage.other_site"
    on_cn = Expected(UnitKind.PARTY_GOV, site_url=f"http://{CN}/", cn_domains=(CN,))
    assert classify_usage(obs, on_cn, RULES).reason == "usage.own_site"
