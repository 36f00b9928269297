"""Classification of one fetch outcome (the home page of a site) into the ``http`` verdict.

Pure: the crawler describes what happened (:class:`FetchOutcome`); this module decides the reason.
Every failure is ``unknown`` with a specific ``http.*`` reason, never non-compliance (a firewall or a
timeout says nothing about the badge); certificate problems are warnings and the page is still read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from checks.content import assess, is_html
from checks.page import Document
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
    BAD_REDIRECT = "bad_redirect"  # a Location that is malformed or not a web address
    PROTOCOL = "protocol"  # an answer that is not HTTP (bad status line, broken headers or framing)
    BAD_URL = "bad_url"  # the address to visit is not a valid web address (a registry entry)
    OTHER = "other"


class CertProblem(StrEnum):
    EXPIRED = "expired"
    HOSTNAME = "hostname"
    UNTRUSTED = "untrusted"
    INCOMPLETE_CHAIN = "incomplete_chain"  # trusted only once a missing intermediate was fetched or known
    LEGACY_TLS = "legacy_tls"  # the server was reached over TLS 1.0/1.1 only


@dataclass(frozen=True, slots=True)
class Hop:
    """One step of the chain to the page a visitor sees: what was asked, what came back, where next.

    ``via`` says how the browser moves on: "" for an HTTP redirect (``location``), else the landing
    kind of :mod:`checks.landing` (``meta_refresh``, ``refresh_header``, ``script``, ``frameset``,
    ``iframe``) whose target is in ``location``.
    """

    url: str
    status: int | None = None
    location: str = ""
    error: str = ""
    via: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"url": self.url, "status": self.status, "location": self.location,
                               "error": self.error}
        if self.via:
            out["via"] = self.via
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Hop:
        return cls(
            str(raw.get("url", "")),
            raw.get("status"),
            str(raw.get("location") or ""),
            str(raw.get("error") or ""),
            str(raw.get("via") or ""),
        )


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
    body_head: bytes = b""  # the first bytes as received (is it a web page at all?)


_ERROR_REASONS: dict[FetchError, str] = {
    FetchError.TIMEOUT: "http.timeout",
    FetchError.REFUSED: "http.refused",
    FetchError.RESET: "http.reset",
    FetchError.TLS: "http.tls_error",
    FetchError.TLS_SM2: "http.tls_sm2",
    FetchError.DNS: "http.dns_error",
    FetchError.ADDRESS_REFUSED: "http.address_refused",
    FetchError.REDIRECT_LOOP: "http.redirect_loop",
    FetchError.BAD_REDIRECT: "http.bad_redirect",
    FetchError.PROTOCOL: "http.protocol_error",
    FetchError.BAD_URL: "http.bad_url",
    FetchError.OTHER: "http.error",
}

_CERT_REASONS: dict[CertProblem, str] = {
    CertProblem.EXPIRED: "http.cert_expired",
    CertProblem.HOSTNAME: "http.cert_hostname",
    CertProblem.UNTRUSTED: "http.cert_untrusted",
    CertProblem.INCOMPLETE_CHAIN: "http.cert_incomplete_chain",
    CertProblem.LEGACY_TLS: "http.tls_legacy",
}

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


def classify_http(outcome: FetchOutcome, doc: Document | None = None) -> Verdict:
    """The ``http`` verdict of a home-page fetch.

    Order matters: a network error decides first; then a truncated body; then whether the answer is a
    web page at all; then whether the page is the site's content (:func:`checks.content.assess`, at
    any status: a challenge at 200 or a maintenance notice at 503); then the status (4xx/5xx are
    unknown, never "missing"); then certificate warnings; else ``http.ok``. ``doc`` is the decoded
    final page (the crawler parses it once for every check); without it ``text_head`` is read.
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
    if 300 <= status < 400:
        # A redirect status without a Location to follow (the flow follows those it can): a browser is
        # left on an empty answer.
        return _verdict("http.bad_redirect", Status.UNKNOWN, f"HTTP {status}，没有跳转地址", outcome, chain)
    ctype = next((v for k, v in outcome.headers.items() if k.lower() == "content-type"), "")
    head = outcome.body_head or outcome.text_head[:1024].encode("utf-8", "replace")
    if status < 300 and not is_html(ctype, head):
        detail = f"HTTP {status}，内容类型 {ctype or '未声明'}"
        return _verdict("http.not_html", Status.UNKNOWN, detail, outcome)
    if doc is None:
        doc = Document(outcome.final_url or outcome.url, outcome.text_head)
    signal = assess(doc, status, outcome.headers, outcome.body_size)
    if signal is not None:
        return _verdict(signal.reason, Status.UNKNOWN, signal.detail, outcome, signal.marker or chain)
    if status >= 500:
        return _verdict("http.server_error", Status.UNKNOWN, f"HTTP {status}", outcome, chain)
    if status >= 400:
        return _verdict("http.client_error", Status.UNKNOWN, f"HTTP {status}", outcome, chain)
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
