"""The Scrapy-backed :class:`crawler.flow.Fetcher`: every request goes through Scrapy's downloader."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request

from checks.http import FetchError
from crawler.context import get_context
from crawler.errors import MalformedResponseError, classify_exception
from crawler.middlewares import TOKEN_META, Place, release_place, target_address
from crawler.politeness import Signal, page_mark
from crawler.records import RawResponse, headers_to_dict
from crawler.tls import TlsFallback


class ScrapyFetcher:
    """Downloads through ``engine.download_async``: downloader middlewares (resolver, address guard,
    per-IP slot), Scrapy's connection pool and its global concurrency limit all apply.

    TLS: a failed handshake gets one retry with a legacy context, then the TLCP probe
    (:class:`crawler.tls.TlsFallback`); a response carries the certificates its server sent and the
    protocol version, as :class:`crawler.tls.TlsPolicy` recorded them at the handshake."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.context = get_context(crawler.settings)
        self.fallback = TlsFallback(self.context)
        config = self.context.config
        # CONAC serves every site's badge: its hosts (as configured) get a rate of their own.
        self.conac_hosts = frozenset(
            h.lower() for h in (*config.conac_script_hosts, *config.conac_verify_hosts)
        )

    async def get(
        self, url: str, *, maxsize: int, priority: int = 0, headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        # The legacy flag is read by the TLS policy from the same memory: nothing to pass here.
        return await self.fallback.run(url, lambda _legacy: self._get(url, maxsize, priority, headers))

    async def _get(
        self, url: str, maxsize: int, priority: int, headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        host = (urlsplit(url).hostname or "").lower()
        address, place = await self._take_place(host)
        request = Request(
            url,
            headers=dict(headers) if headers else None,  # conditional requests (crawler/conac_cache.py)
            dont_filter=True,
            priority=priority,
            meta={
                "dont_redirect": True,
                "handle_httpstatus_all": True,
                "download_maxsize": maxsize,
                # A body cut short (Content-Length not reached, chunked framing unterminated or broken)
                # is a failed transfer, not the page: judged, its missing footer would be a badge
                # "missing". Scrapy then raises instead of flagging the response "dataloss".
                "download_fail_on_dataloss": True,
            },
        )
        if place is not None:
            request.meta["download_slot"] = address
            request.meta[TOKEN_META] = place
        try:
            response = await self.crawler.engine.download_async(request)
        except Exception as exc:
            politeness = self.context.politeness
            if politeness is not None and address and _pushed_back(exc):
                politeness.feedback(address, Signal.PUSHBACK, host=host, mark="reset")
            raise
        finally:
            # Normally released by the middleware already; not when the download was cancelled.
            await release_place(request)
        if address and self.context.politeness is not None:
            signal, retry_after = signal_of(response.status, response.headers)
            mark = f"status:{response.status}" if signal is not Signal.OK else ""
            self.context.politeness.feedback(address, signal, retry_after, host=host, mark=mark)
        if not 100 <= response.status <= 599:
            # RFC 9110 §15: a status code outside 100..599 is invalid; twisted accepts any integer
            # (0, -200, 20, 20000000000000000000) and a negative or two-digit "success" would be judged.
            raise MalformedResponseError(f"invalid status code {response.status} from {response.url}"[:300])
        ip = response.ip_address
        peer = self.context.tls.peer(response.certificate)
        return RawResponse(
            url=response.url,
            status=response.status,
            headers=headers_to_dict(response.headers),
            body=response.body,
            certificate=response.certificate,
            ip=str(ip) if ip is not None else "",
            peer_chain=peer.chain if peer is not None else None,
            tls_version=peer.version if peer is not None else "",
        )

    async def _take_place(self, host: str) -> tuple[str, Place | None]:
        """The request's place at its server address, taken *before* it enters Scrapy's downloader:
        a request waiting for a busy platform's rate does not hold one of the downloader's global
        slots (the middleware takes one itself for requests that come without)."""
        politeness = self.context.politeness
        if politeness is None or not host:
            return "", None
        address = await target_address(self.context, host)
        rate = self.context.config.conac_rate_per_min
        if rate and host in self.conac_hosts:
            politeness.set_rate(address, rate)
        return address, Place(politeness, address, await politeness.acquire(address))

    def report(self, ip: str, host: str, reason: str, status: int, body: bytes) -> None:
        """What the page ``host`` served from address ``ip`` said (checks.content): its protection
        pushed back. (A 429 or 503 already said so by its status: :func:`signal_of`.)"""
        politeness = self.context.politeness
        if politeness is None or not ip or status in (429, 503):
            return
        if reason in _BANS:
            politeness.feedback(ip, Signal.BAN, host=host, mark=page_mark(body))
        elif reason in _PUSHBACKS:
            politeness.feedback(ip, Signal.PUSHBACK, host=host, mark=page_mark(body))


# A page that says the address counted us (a CC rule's notice): stay away for a while. A block or a
# challenge page may as well be a site's WAF refusing a client that is not a browser, which waiting does
# not change: the address only slows down.
_BANS = frozenset({"http.rate_limited"})
_PUSHBACKS = frozenset({"http.blocked", "http.challenge"})


def signal_of(status: int, headers: Any) -> tuple[Signal, float | None]:
    """What a status says of the address's tolerance: 429/503 push back (``Retry-After`` bans)."""
    if status not in (429, 503):
        return Signal.OK, None
    raw = headers.get(b"Retry-After") or headers.get("Retry-After")
    value = raw.decode("latin-1", "replace") if isinstance(raw, bytes) else str(raw or "")
    try:
        retry = float(value.strip()) if value.strip() else None
    except ValueError:
        retry = None
    if retry is not None and retry > 0:
        return Signal.BAN, min(retry, 4 * 3600.0)
    return (Signal.BAN if status == 429 else Signal.PUSHBACK), None


def _pushed_back(exc: BaseException) -> bool:
    """A connection reset is how some protections answer a client they count. (A refused connection is
    not: nothing listens there, and slowing down changes nothing — measured on the province benchmark,
    where refusals of one dead address slowed it to its minimum rate and held the scan's end.)"""
    kind, _detail = classify_exception(exc)
    return kind is FetchError.RESET
