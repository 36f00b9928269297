"""Network failures → :class:`checks.http.FetchError`, and the crawler's own refusal exceptions."""

from __future__ import annotations

import gzip
import re
import zlib

from scrapy.exceptions import IgnoreRequest
from twisted.internet import defer
from twisted.internet import error as terr
from twisted.web import http
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived

from checks.errors import CrawlError
from checks.http import FetchError
from crawler.resolver import DnsAnswer


class DnsFailedError(CrawlError, IgnoreRequest):
    """The host of a request has no address (the DNS answer says why)."""

    def __init__(self, answer: DnsAnswer) -> None:
        self.answer = answer
        why = answer.error or answer.rcode or "no address"
        super().__init__(f"DNS lookup of {answer.qname} failed: {why}")


class AddressRefusedError(CrawlError, IgnoreRequest):
    """Every address of the host was refused by the address guard; nothing was sent."""

    def __init__(self, host: str, addresses: tuple[str, ...], why: str) -> None:
        self.host = host
        self.addresses = addresses
        self.why = why
        super().__init__(f"{host} → {', '.join(addresses)}: address refused ({why})")


class TooLargeError(CrawlError):
    """A body exceeded the configured maximum size."""


class MalformedResponseError(CrawlError):
    """The server's answer is not HTTP as a client can read it: a status code outside 100..599, a
    compressed body that is cut short or corrupt (``Content-Encoding`` over bytes that are not so
    encoded). Raised by the crawler itself; the HTTP parser's own refusals are recognised by
    :func:`classify_exception` from what it raised."""


class TlcpOnlyError(CrawlError):
    """The TLS handshake failed and the server answers in 国密 TLCP records (GM/T 0024) only."""

    def __init__(self, host: str, port: int, answer: str) -> None:
        self.host = host
        self.port = port
        self.answer = answer
        super().__init__(f"{host}:{port} speaks TLCP (SM2) only: {answer}")


def classify_exception(exc: BaseException) -> tuple[FetchError, str]:
    """The fetch error kind of a network exception, and a short detail for the record."""
    name = type(exc).__name__
    text = f"{name}: {exc}"[:300]
    if isinstance(exc, AddressRefusedError):
        return FetchError.ADDRESS_REFUSED, str(exc)
    if isinstance(exc, DnsFailedError):
        return FetchError.DNS, str(exc)
    if isinstance(exc, TlcpOnlyError):
        return FetchError.TLS_SM2, str(exc)
    if isinstance(exc, MalformedResponseError):
        return FetchError.PROTOCOL, text
    low = text.lower()
    if (
        isinstance(exc, TooLargeError)
        or name == "DownloadCancelledError"  # Scrapy cancels a body that grows past DOWNLOAD_MAXSIZE
        or "max size" in low
        or "maxsize" in low
        or "exceeds" in low
    ):
        return FetchError.OTHER, "too_large: " + text

    if isinstance(exc, terr.DNSLookupError):
        return FetchError.DNS, text
    if isinstance(exc, terr.ConnectionRefusedError):
        return FetchError.REFUSED, text
    if isinstance(exc, (terr.TimeoutError, terr.TCPTimedOutError, TimeoutError)) or "took longer than" in low:
        return FetchError.TIMEOUT, text
    # twisted.web (ResponseNeverReceived / ResponseFailed) and Scrapy (DownloadFailedError,
    # ResponseDataLossError) wrap the real cause(s), as twisted Failures: name those, not the
    # wrapper's repr of them.
    causes = _causes(exc)
    if causes:
        text = " ".join(f"{type(c).__name__}: {c}" for c in causes)[:300]
        low = f"{name} {text}".lower()
    malformed = _parser_refusal(exc)
    if malformed is not None:
        return FetchError.PROTOCOL, f"{type(malformed).__name__}: {malformed}"[:300]
    if _is_decoding_error(exc):
        # Scrapy's decompression of a body whose Content-Encoding lies (not gzip, not deflate...).
        return FetchError.PROTOCOL, text
    if _PROTOCOL.search(low):
        return FetchError.PROTOCOL, text
    if "ssl" in low or "tls" in low or "certificate" in low or "handshake" in low:
        return FetchError.TLS, text
    if "timeout" in low or "timed out" in low:
        return FetchError.TIMEOUT, text
    if "refused" in low:
        return FetchError.REFUSED, text
    if (
        isinstance(exc, (terr.ConnectionLost, terr.ConnectionDone, ConnectionResetError, terr.ConnectError))
        or "connectionlost" in low
        or "connectiondone" in low
        or "reset" in low
        or "responsenever" in low
        or "responsefailed" in low
        or "potentialdataloss" in low
    ):
        return FetchError.RESET, text
    return FetchError.OTHER, text


# What HTTP parsers (twisted.web, aiohttp/llhttp, h11) raise for an answer that is not HTTP: a broken
# status line, malformed or oversized headers, bad chunked framing, a wrong Content-Length.
_PROTOCOL = re.compile(
    r"parseerror|badstatusline|badhttpmessage|invalidheader|invalid header|linetoolong|"
    r"transferencodingerror|contentlengtherror|_wrongcontentlength|invalid chunk|chunk(?:ed)? encoding|"
    r"wrong number of parts|non-integer status|invalid status|localprotocolerror|remoteprotocolerror"
)


def _parser_refusal(exc: BaseException) -> BaseException | None:
    """What twisted's HTTP client raised while parsing the answer, if that is why the request failed.

    Twisted wraps every exception its response parser raises into ``ResponseFailed`` /
    ``ResponseNeverReceived`` (and Scrapy those into ``DownloadFailedError`` / ``ResponseDataLossError``),
    next to the connection's end: a conflicting ``Content-Length`` is a ``ValueError``, an unknown
    ``Transfer-Encoding`` a ``KeyError``, a bad version a ``BadResponseVersion``, a broken chunk size a
    ``_MalformedChunkedDataError``. Whatever a wrapper carries that is not the connection ending (closed,
    lost, aborted, timed out, TLS, the body cut short) was the parser refusing the answer."""

    for wrapper in _cause_tree(exc):
        if not isinstance(wrapper, (ResponseFailed, ResponseNeverReceived)):
            continue
        for reason in getattr(wrapper, "reasons", None) or ():
            value = getattr(reason, "value", reason)
            if isinstance(value, BaseException) and not _connection_end(value):
                return value
    return None


def _connection_end(exc: BaseException) -> bool:
    """Whether ``exc`` is the connection ending (not a refusal of what was received)."""

    ended = (
        terr.ConnectionDone,
        terr.ConnectionLost,
        terr.ConnectionAborted,
        terr.ConnectError,
        terr.TimeoutError,
        defer.CancelledError,
        http._DataLoss,
        http.PotentialDataLoss,
        TimeoutError,
        ConnectionError,
    )
    if isinstance(exc, ended):
        return True
    name = f"{type(exc).__module__}.{type(exc).__name__}".lower()
    return "ssl" in name or "tls" in name


def _is_decoding_error(exc: BaseException) -> bool:
    """A compressed body that does not decompress (raised by Scrapy's HttpCompressionMiddleware)."""
    if isinstance(exc, (zlib.error, gzip.BadGzipFile, EOFError)):
        return True
    module = type(exc).__module__ or ""
    return module.startswith(("brotli", "_brotli", "backports.zstd", "compression.zstd", "zstd"))


def _cause_tree(exc: BaseException, depth: int = 4) -> list[BaseException]:
    """``exc`` and the exceptions it wraps, breadth first, a few levels deep."""
    out: list[BaseException] = [exc]
    level = [exc]
    for _ in range(depth):
        nxt: list[BaseException] = []
        for e in level:
            for c in _causes(e):
                if all(c is not seen for seen in out):
                    out.append(c)
                    nxt.append(c)
        level = nxt
    return out


def _causes(exc: BaseException) -> list[BaseException]:
    """The exceptions a wrapper carries: twisted ``reasons``, Failures in its args, or ``__cause__``."""
    found: list[BaseException] = []
    for item in [*(getattr(exc, "reasons", None) or ()), *exc.args]:
        items = item if isinstance(item, (list, tuple)) else [item]
        for x in items:
            value = getattr(x, "value", x)  # a twisted Failure carries the exception in .value
            if isinstance(value, BaseException) and value is not exc and all(value is not f for f in found):
                found.append(value)
    if not found and exc.__cause__ is not None:
        found.append(exc.__cause__)
    return found


def is_too_large(detail: str) -> bool:
    return detail.startswith("too_large: ")
