"""The downloader middleware against a real nameserver: one slot per IP, guard, DNS failures;
and the resolver's cache is shared (each name asked once)."""

from __future__ import annotations

import asyncio

import pytest
from scrapy import Request

from crawler.context import build_context
from crawler.errors import AddressRefusedError, DnsFailedError
from crawler.middlewares import ResolveGuardMiddleware
from storage.config import Config
from tests.crawler.netkit import DnsTable, dns_server


def test_slots_guard_and_cache() -> None:
    table = DnsTable(
        a={
            "a.platform.gov.cn": ["127.0.0.5"],
            "b.platform.gov.cn": ["127.0.0.5"],
            "c.other.gov.cn": ["127.0.0.6"],
            "meta.evil.gov.cn": ["169.254.169.254"],
        }
    )
    with dns_server(table) as ns:
        ctx = build_context(Config(nameservers=[ns], allow_private=True, dns_timeout_s=2))
        mw = ResolveGuardMiddleware(ctx)

        async def run() -> None:
            reqs = [
                Request(f"http://{h}/") for h in ("a.platform.gov.cn", "b.platform.gov.cn", "c.other.gov.cn")
            ]
            for r in reqs:
                assert await mw.process_request(r) is None
            # Two sites on one address share one download slot: politeness is per IP, not per host.
            assert [r.meta["download_slot"] for r in reqs] == ["127.0.0.5", "127.0.0.5", "127.0.0.6"]
            with pytest.raises(AddressRefusedError, match="link-local"):
                await mw.process_request(Request("http://meta.evil.gov.cn/latest/meta-data/"))
            with pytest.raises(DnsFailedError, match="NXDOMAIN"):
                await mw.process_request(Request("http://missing.gov.cn/"))
            # Asked again (the DNS check, a sub-resource, a redirect): answered from the scan's cache.
            before = len(table.queries)
            answers = await asyncio.gather(*(ctx.resolver.lookup("a.platform.gov.cn") for _ in range(20)))
            assert {a.addresses for a in answers} == {("127.0.0.5",)}
            assert len(table.queries) == before

        asyncio.run(run())
    # Each name was asked once for A and once for AAAA, however many requests used it.
    assert table.queries.count("a.platform.gov.cn") == 2
