"""Downloader middleware: resolve once, refuse internal addresses, one download slot per IP."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.crawler import Crawler

from crawler.context import ScanContext, get_context
from crawler.errors import AddressRefusedError, DnsFailedError
from crawler.resolver import is_ip


class ResolveGuardMiddleware:
    """Before any packet leaves: resolve the host through the scan's resolver (cached, shared with
    the DNS checks), refuse the request if every address is internal or reserved (the address guard),
    and put the request in the download slot of its IP address, so that politeness is per address:
    a consolidation platform with hundreds of sites on one IP gets ``per_ip_concurrency`` connections,
    not hundreds.
    """

    def __init__(self, context: ScanContext) -> None:
        self.context = context

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ResolveGuardMiddleware:
        return cls(get_context(crawler.settings))

    async def process_request(self, request: Request, spider: Spider | None = None) -> Any:
        if request.url.startswith("data:"):
            return None
        host = urlsplit(request.url).hostname or ""
        if not host:
            return None
        if is_ip(host):
            addresses: tuple[str, ...] = (host.strip("[]"),)
        else:
            answer = self.context.resolver.cached(host) or await self.context.resolver.lookup(host)
            if not answer.addresses:
                raise DnsFailedError(answer)
            addresses = answer.addresses
        guard = self.context.guard
        allowed = [ip for ip in addresses if guard.refusal(ip) is None]
        if not allowed:
            why = guard.refusal(addresses[0]) or "refused"
            raise AddressRefusedError(host, addresses, why)
        request.meta.setdefault("download_slot", allowed[0])
        return None
