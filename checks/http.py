"""Classification of one fetch outcome (the home page of a site) into the ``http`` verdict.

Pure: the crawler describes what happened (:class:`FetchOutcome`); this module decides the reason.
Every failure is ``unknown`` with a specific ``http.*`` reason, never non-compliance (a firewall or a
timeout says nothing about the badge); certificate problems are warnings and the page is still read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from checks.verdict import Evidence, Status, Verdict


class FetchError(StrEnum):
    """Why no usable response arrived (set by the crawler from the network error)."""

    TIMEOUT = "timeout"
    REFUSED = "refused"
    RESET = "reset"
    TLS = "tls"
    TLS_SM2 = "tls_sm2"  # the server speaks only 国密 TLCP (GM/T 0024): no TLS client can read it
    DNS = "dns"
    ADDRESS_REFUSED = "address_refused"  # the address guard refused an internal/reserved target
    REDIRECT_LOOP = "redirect_loop"  # a loop, or more hops than allowed
    OTHER = "other"


class CertProblem(StrEnum):
    EXPIRED = "expired"
    HOSTNAME = "hostname"
    UNTRUSTED = "untrusted"
    INCOMPLETE_CHAIN = "incomplete_chain"  # trusted only once a missing intermediate was fetched or known
    LEGACY_TLS = "legacy_tls"  # the server was reached over TLS 1.0/1.1 only


@dataclass(frozen=True, slots=True)
class Hop:
    """One request of the HTTP chain: what was asked and what came back."""

    url: str
    status: int | None = None
    location: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status, "location": self.location, "error": self.error}


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """What a fetch of a site's home page produced, redirects followed.

    ``status`` is the final response's status (``None`` when none arrived; ``error`` then says why).
    ``text_head`` is the start of the decoded final body (a few KiB is enough to recognise challenge
    pages). ``body_size`` is the number of body bytes received; ``truncated`` marks a body cut at the
    size limit.
    """

    url: str
    final_url: str = ""
    status: int | None = None
    error: FetchError | None = None
    error_detail: str = ""
    chain: tuple[Hop, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    text_head: str = ""
    body_size: int = 0
    truncated: bool = False
    cert_problems: tuple[CertProblem, ...] = ()


_ERROR_REASONS: dict[FetchError, str] = {
    FetchError.TIMEOUT: "http.timeout",
    FetchError.REFUSED: "http.refused",
    FetchError.RESET: "http.reset",
    FetchError.TLS: "http.tls_error",
    FetchError.TLS_SM2: "http.tls_sm2",
    FetchError.DNS: "http.dns_error",
    FetchError.ADDRESS_REFUSED: "http.address_refused",
    FetchError.REDIRECT_LOOP: "http.redirect_loop",
    FetchError.OTHER: "http.error",
}

_CERT_REASONS: dict[CertProblem, str] = {
    CertProblem.EXPIRED: "http.cert_expired",
    CertProblem.HOSTNAME: "http.cert_hostname",
    CertProblem.UNTRUSTED: "http.cert_untrusted",
    CertProblem.INCOMPLETE_CHAIN: "http.cert_incomplete_chain",
    CertProblem.LEGACY_TLS: "http.tls_legacy",
}

# Markers of anti-crawler challenge pages (WAFs and CDN shields common on Chinese government hosting):
# a browser passes them by running JavaScript or solving a puzzle; a crawler sees only this page.
_CHALLENGE = re.compile(
    r"challenge-platform|cf-chl|__cf_chl|just a moment\.\.\.|checking your browser|"
    r"__jsl_clearance|acw_sc__v2|yunsuo_session_verify|_waf_|waf[-_ ]?challenge|"
    r"安全验证|人机验证|访问验证|滑动验证|请完成验证|正在验证|验证您的浏览器|浏览器安全检查|"
    r"请开启\s*javascript|请启用\s*javascript|enable\s+javascript\s+and\s+cookies|"
    r"安全狗|云锁|创宇盾|网站卫士拦截|访问被拦截|您的访问被阻断|访问受限|access denied|"
    r"request blocked|web application firewall",
    re.I,
)
# Challenge pages are small interstitials; a full page that merely mentions "安全验证" is not one.
_CHALLENGE_MAX_CHARS = 16 * 1024
_BLOCK_STATUSES = frozenset({401, 403, 407, 429, 451})


def looks_like_challenge(text_head: str, body_size: int) -> str | None:
    """The challenge marker found in a small page, or None."""
    if body_size > _CHALLENGE_MAX_CHARS * 4 or len(text_head) > _CHALLENGE_MAX_CHARS * 2:
        return None
    m = _CHALLENGE.search(text_head[:_CHALLENGE_MAX_CHARS])
    return m.group(0) if m else None


def _verdict(reason: str, status: Status, detail: str, outcome: FetchOutcome, excerpt: str = "") -> Verdict:
    data: dict[str, Any] = {
        "url": outcome.url,
        "final_url": outcome.final_url or outcome.url,
        "status_code": outcome.status,
        "hops": len(outcome.chain),
        "truncated": outcome.truncated,
        "cert_problems": [str(c) for c in outcome.cert_problems],
    }
    ev = (Evidence("http", excerpt),) if excerpt else ()
    return Verdict("http", status, reason, detail, ev, data)


def classify_http(outcome: FetchOutcome) -> Verdict:
    """The ``http`` verdict of a home-page fetch.

    Order matters: a network error decides first; then the final status (403/429 and challenge pages
    are "blocked", not "missing"); then a truncated body; then certificate warnings; else ``http.ok``.
    """
    chain = " → ".join(f"{h.status or h.error or '?'} {h.url}" for h in outcome.chain)
    if outcome.error is not None:
        reason = _ERROR_REASONS[outcome.error]
        detail = outcome.error_detail or str(outcome.error)
        return _verdict(reason, Status.UNKNOWN, detail, outcome, chain)
    if outcome.truncated:
        return _verdict("http.too_large", Status.UNKNOWN, f"body over {outcome.body_size} bytes", outcome)
    status = outcome.status
    if status is None:
        return _verdict("http.error", Status.UNKNOWN, "no response", outcome, chain)
    if status in _BLOCK_STATUSES:
        return _verdict("http.blocked", Status.UNKNOWN, f"HTTP {status}", outcome, chain)
    if 300 <= status < 400:
        # A redirect that was not followed: a missing/invalid Location or too many hops.
        return _verdict("http.redirect_loop", Status.UNKNOWN, f"HTTP {status} not followed", outcome, chain)
    if status >= 500:
        marker = looks_like_challenge(outcome.text_head, outcome.body_size)
        if marker:
            return _verdict("http.blocked", Status.UNKNOWN, f"HTTP {status}, {marker}", outcome, marker)
        return _verdict("http.server_error", Status.UNKNOWN, f"HTTP {status}", outcome, chain)
    if status >= 400:
        return _verdict("http.client_error", Status.UNKNOWN, f"HTTP {status}", outcome, chain)
    marker = looks_like_challenge(outcome.text_head, outcome.body_size)
    if marker:
        return _verdict("http.blocked", Status.UNKNOWN, f"challenge page ({marker})", outcome, marker)
    if outcome.cert_problems:
        first = outcome.cert_problems[0]
        detail = ", ".join(str(c) for c in outcome.cert_problems)
        return _verdict(_CERT_REASONS[first], Status.WARN, detail, outcome)
    return _verdict("http.ok", Status.PASS, f"HTTP {status}", outcome)


def page_readable(verdict: Verdict) -> bool:
    """Whether the page checks may read the fetched body (the fetch reached the site's own page)."""
    return verdict.reason in ("http.ok", "http.too_large") or verdict.reason in _CERT_REASONS.values()


def unreadable(check: str, http_verdict: Verdict) -> Verdict:
    """The verdict of a page check when the page could not be read: ``unknown`` with the http reason."""
    return Verdict(check, Status.UNKNOWN, http_verdict.reason, http_verdict.detail, http_verdict.evidence)
