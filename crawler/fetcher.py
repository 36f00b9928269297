"""The Scrapy-backed :class:`crawler.flow.Fetcher`: every request goes through Scrapy's downloader."""

from __future__ import annotations

from typing import Any

from scrapy import Request

from crawler.flow import RawResponse, headers_to_dict
from crawler.middlewares import release_place


class ScrapyFetcher:
    """Downloads through ``engine.download_async``: downloader middlewares (resolver, address guard,
    per-IP slot), Scrapy's connection pool and its global concurrency limit all apply."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    async def get(self, url: str, *, maxsize: int, priority: int = 0) -> RawResponse:
        request = Request(
            url,
            dont_filter=True,
            priority=priority,
            meta={"dont_redirect": True, "handle_httpstatus_all": True, "download_maxsize": maxsize},
        )
        try:
            response = await self.crawler.engine.download_async(request)
        finally:
            # Normally released by the middleware already; not when the download was cancelled.
            await release_place(request)
        ip = response.ip_address
        return RawResponse(
            url=response.url,
            status=response.status,
            headers=headers_to_dict(response.headers),
            body=response.body,
            certificate=response.certificate,
            ip=str(ip) if ip is not None else "",
        )
