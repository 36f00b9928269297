"""checks.http: every fetch outcome gets its reason; failures are unknown, certificates warnings."""

from __future__ import annotations

import pytest

from checks.http import CertProblem, FetchError, FetchOutcome, Hop, classify_http, page_readable, unreadable
from checks.reasons import REASONS
from checks.verdict import Status


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (FetchError.TIMEOUT, "http.timeout"),
        (FetchError.REFUSED, "http.refused"),
        (FetchError.RESET, "http.reset"),
        (FetchError.TLS, "http.tls_error"),
        (FetchError.TLS_SM2, "http.tls_sm2"),
        (FetchError.DNS, "http.dns_error"),
        (FetchError.ADDRESS_REFUSED, "http.address_refused"),
        (FetchError.REDIRECT_LOOP, "http.redirect_loop"),
        (FetchError.OTHER, "http.error"),
    ],
)
def test_network_errors_are_unknown_with_their_reason(error: FetchError, reason: str) -> None:
    v = classify_http(FetchOutcome(url="http://a.gov.cn/", error=error, chain=(Hop("http://a.gov.cn/"),)))
    assert (v.status, v.reason) == (Status.UNKNOWN, reason)
    assert reason in REASONS
    assert not page_readable(v)


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (200, "http.ok", Status.PASS),
        (403, "http.blocked", Status.UNKNOWN),
        (429, "http.rate_limited", Status.UNKNOWN),
        (412, "http.challenge", Status.UNKNOWN),
        (493, "http.blocked", Status.UNKNOWN),
        (404, "http.client_error", Status.UNKNOWN),
        (410, "http.client_error", Status.UNKNOWN),
        (500, "http.server_error", Status.UNKNOWN),
        (502, "http.server_error", Status.UNKNOWN),
        (302, "http.bad_redirect", Status.UNKNOWN),  # a redirect without a Location to follow
    ],
)
def test_statuses(status: int, reason: str, expected: Status) -> None:
    v = classify_http(
        FetchOutcome(url="http://a.gov.cn/", status=status, text_head="<html>正文</html>", body_size=20)
    )
    assert (v.status, v.reason) == (expected, reason)


@pytest.mark.parametrize(
    "head",
    [
        "<html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>",
        "<html><body><h1>安全验证</h1><p>请完成下方验证后继续访问</p></body></html>",
        "<html><script>document.cookie='__jsl_clearance=1';location.reload()</script></html>",
        "<html><body>请开启 JavaScript 后刷新页面</body></html>",
    ],
)
def test_challenge_pages_with_200_are_challenges(head: str) -> None:
    v = classify_http(FetchOutcome(url="http://a/", status=200, text_head=head, body_size=len(head)))
    assert v.reason == "http.challenge"
    assert v.status is Status.UNKNOWN


def test_a_big_real_page_mentioning_verification_is_not_a_challenge() -> None:
    head = "<html><body>" + "政务公开 " * 8000 + "安全验证</body></html>"
    v = classify_http(FetchOutcome(url="http://a/", status=200, text_head=head, body_size=len(head.encode())))
    assert v.reason == "http.ok"


def test_503_challenge_is_a_challenge_plain_503_is_server_error() -> None:
    ch = classify_http(
        FetchOutcome(url="http://a/", status=503, text_head="<title>Just a moment...</title>", body_size=40)
    )
    plain = classify_http(
        FetchOutcome(url="http://a/", status=503, text_head="Service Unavailable", body_size=19)
    )
    assert (ch.reason, plain.reason) == ("http.challenge", "http.server_error")


@pytest.mark.parametrize(
    ("problems", "reason"),
    [
        ((CertProblem.EXPIRED,), "http.cert_expired"),
        ((CertProblem.HOSTNAME,), "http.cert_hostname"),
        ((CertProblem.UNTRUSTED,), "http.cert_untrusted"),
        ((CertProblem.EXPIRED, CertProblem.UNTRUSTED), "http.cert_expired"),
        ((CertProblem.INCOMPLETE_CHAIN,), "http.cert_incomplete_chain"),
        ((CertProblem.LEGACY_TLS,), "http.tls_legacy"),
        ((CertProblem.INCOMPLETE_CHAIN, CertProblem.LEGACY_TLS), "http.cert_incomplete_chain"),
    ],
)
def test_certificate_problems_are_warnings_and_page_is_read(
    problems: tuple[CertProblem, ...], reason: str
) -> None:
    page = "<html><body>" + '<a href="/x">政务公开</a>' * 40 + "</body></html>"
    v = classify_http(
        FetchOutcome(
            url="https://a/", status=200, text_head=page, body_size=len(page), cert_problems=problems
        )
    )
    assert (v.status, v.reason) == (Status.WARN, reason)
    assert page_readable(v)


def test_truncated_body() -> None:
    v = classify_http(FetchOutcome(url="http://a/", status=None, truncated=True, body_size=5_000_000))
    assert v.reason == "http.too_large"


def test_unreadable_page_checks_carry_the_http_reason() -> None:
    http = classify_http(FetchOutcome(url="http://a/", error=FetchError.TIMEOUT))
    badge = unreadable("badge", http)
    assert (badge.check, badge.status, badge.reason) == ("badge", Status.UNKNOWN, "http.timeout")


def test_wrapped_network_errors_are_named_by_their_cause() -> None:
    """Scrapy/twisted wrap the real failure; the record names it, not the wrapper's repr of it."""
    from scrapy.exceptions import DownloadFailedError
    from twisted.internet.error import ConnectionLost
    from twisted.python.failure import Failure
    from twisted.web._newclient import ResponseNeverReceived

    from crawler.errors import classify_exception

    try:
        raise ConnectionLost()
    except ConnectionLost:
        failure = Failure()
    for wrapper in (ResponseNeverReceived([failure]), DownloadFailedError([failure])):
        kind, detail = classify_exception(wrapper)
        assert kind == FetchError.RESET
        assert detail.startswith("ConnectionLost: ") and "twisted.python" not in detail


def test_tlcp_only_server_is_its_own_fetch_error() -> None:
    """The TLCP probe's verdict (crawler.errors.TlcpOnlyError) is http.tls_sm2, not a TLS error."""
    from crawler.errors import TlcpOnlyError, classify_exception

    kind, detail = classify_exception(TlcpOnlyError("www.a.gov.cn", 443, "TLCP ServerHello"))
    assert kind == FetchError.TLS_SM2
    assert "www.a.gov.cn:443" in detail
    assert REASONS["http.tls_sm2"].status is Status.UNKNOWN
