"""Downloader middleware: resolve once, refuse internal addresses, one download slot per IP, and the
per-address politeness (concurrency, rate, back-off; in a distributed scan shared by every worker)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler

from crawler.context import ScanContext, get_context
from crawler.errors import AddressRefusedError, DnsFailedError
from crawler.politeness import Limiter, Politeness, PolitenessSettings
from crawler.resolver import is_ip
from crawler.shared_politeness import SharedPoliteness
from storage.config import Config

# Scrapy setting: this process is a worker of a distributed scan (the per-IP limit lives in Redis).
DISTRIBUTED_KEY = "BADGEWATCH_DISTRIBUTED"
TOKEN_META = "badgewatch_ip_token"
log = logging.getLogger(__name__)


class Place:
    """A request's place in the per-IP limit of its address, released exactly once by whichever path
    ends the request: a response or an exception through the middleware chain, or the fetcher's
    ``finally``. The chain alone is not enough: a later middleware that raises on the way back
    (Scrapy's decompression refusing a gzip bomb with ``IgnoreRequest``) skips ours, and each such
    request left its place held until an address's limit was used up and the scan stalled."""

    __slots__ = ("address", "semaphore", "token")

    def __init__(self, semaphore: Limiter, address: str, token: str) -> None:
        self.semaphore = semaphore
        self.address = address
        self.token = token

    async def release(self) -> None:
        await self.semaphore.release(self.address, self.token)


async def release_place(request: Request) -> None:
    """Give back the per-IP place ``request`` holds, if it still holds one."""
    place = request.meta.pop(TOKEN_META, None)
    if isinstance(place, Place):
        await place.release()


class ResolveGuardMiddleware:
    """Before any packet leaves: resolve the host through the scan's resolver (cached, shared with
    the DNS checks), refuse the request if every address is internal or reserved (the address guard),
    and put the request in the download slot of its IP address, so that politeness is per address:
    a consolidation platform with hundreds of sites on one IP gets ``per_ip_concurrency`` connections,
    not hundreds.

    The download slot alone does not hold the limit: Scrapy 2.19's downloader (asyncio reactor) starts
    every queued request of a slot at once when it processes the slot's queue (the request is counted
    as transferring only when its task runs), so 40 requests queued for one address were measured
    sending 37 at once with a limit of 2. Each request therefore also holds a place of a per-address
    semaphore from before it is sent until its response or failure (:class:`crawler.politeness.Politeness`,
    which also paces the address's rate and backs off when it pushes back).

    In a distributed scan (setting ``BADGEWATCH_DISTRIBUTED``) a local limit is not enough: N workers
    would open N × ``per_ip_concurrency`` connections to one address. Each request then also holds a
    place of the address's counting semaphore in Redis (:class:`crawler.distributed.IpSemaphore`) from
    before it is sent until its response or failure, so all workers together stay within the limit.
    """

    def __init__(self, context: ScanContext, semaphore: Limiter | None = None) -> None:
        self.context = context
        self.semaphore = semaphore
        self.stats: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ResolveGuardMiddleware:
        context = get_context(crawler.settings)
        config = context.config
        settings = politeness_settings(config)
        semaphore: Limiter
        if crawler.settings.getbool(DISTRIBUTED_KEY):
            # A holder outlives any request (timeout, plus time queued): when it expires, its worker died.
            ttl = max(30.0, 2 * config.timeout_s + 10)
            semaphore = SharedPoliteness(config.redis_url, config.redis_prefix, settings, ttl)
        else:
            semaphore = Politeness(settings)
        context.politeness = semaphore
        mw = cls(context, semaphore)
        mw.stats = crawler.stats
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    async def spider_closed(self, spider: Spider | None = None) -> None:
        # What the addresses said of the scan's pace, for the scan's stats and the log.
        pol = self.semaphore
        if pol is not None and self.stats is not None:
            self.stats.set_value("badgewatch/politeness_bans", getattr(pol, "bans", 0))
            self.stats.set_value("badgewatch/politeness_pushbacks", getattr(pol, "pushbacks", 0))
        snapshot = getattr(pol, "snapshot", None)
        if snapshot is not None and (slowed := snapshot()):
            log.warning("addresses that pushed back or are slowed: %s", slowed)
        # Places a distributed worker keeps between requests go back at once (not after their expiry).
        aclose = getattr(self.semaphore, "aclose", None)
        if aclose is not None:
            await aclose()

    async def process_request(self, request: Request, spider: Spider | None = None) -> Any:
        if request.url.startswith("data:"):
            return None
        host = urlsplit(request.url).hostname or ""
        if not host:
            return None
        slot = request.meta.get("download_slot") or await target_address(self.context, host)
        request.meta["download_slot"] = slot
        if self.semaphore is not None and TOKEN_META not in request.meta:
            request.meta[TOKEN_META] = Place(self.semaphore, slot, await self.semaphore.acquire(slot))
        return None

    async def process_response(self, request: Request, response: Any, spider: Spider | None = None) -> Any:
        await release_place(request)
        return response

    async def process_exception(
        self, request: Request, exception: BaseException, spider: Spider | None = None
    ) -> None:
        await release_place(request)
        return None


async def target_address(context: ScanContext, host: str) -> str:
    """The address a request to ``host`` goes to: resolved through the scan's resolver (cached, the
    answers the DNS checks saw), the first the address guard allows. Raises :class:`DnsFailedError`
    or :class:`AddressRefusedError` (nothing is sent)."""
    if is_ip(host):
        addresses: tuple[str, ...] = (host.strip("[]"),)
    else:
        answer = context.resolver.cached(host) or await context.resolver.lookup(host)
        if not answer.addresses:
            raise DnsFailedError(answer)
        addresses = answer.addresses
    guard = context.guard
    allowed = [ip for ip in addresses if guard.refusal(ip) is None]
    if not allowed:
        why = guard.refusal(addresses[0]) or "refused"
        raise AddressRefusedError(host, addresses, why)
    return allowed[0]


def politeness_settings(config: Config) -> PolitenessSettings:
    return PolitenessSettings(
        concurrency=max(1, config.per_ip_concurrency),
        rate_per_min=max(0.0, config.per_ip_rate_per_min),
        min_rate_per_min=max(0.1, config.per_ip_min_rate_per_min),
        ban_s=max(1.0, config.ban_backoff_s),
        max_ban_s=max(1.0, config.ban_max_s, config.ban_backoff_s),
    )
