"""``badgewatch inspect``: every verdict for one page, fetched live or read from a file.

A URL is fetched with the scan's own procedure (:class:`crawler.flow.Flow`: redirects recorded, the
sub-resources the checks ask for, the configured nameservers, the address guard) over a small aiohttp
fetcher, so one page needs no Scrapy process. A FILE is read offline; scripts and images the checks
ask for are looked up beside it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from checks.expected import Expected, UnitKind
from checks.http import classify_http, page_readable, unreadable
from checks.page import NeedKind, Page
from crawler import checking
from crawler.certs import CertJudge
from crawler.context import ScanContext, build_context
from crawler.errors import AddressRefusedError, DnsFailedError
from crawler.flow import Flow, RawResponse, attach_subresource
from crawler.jobs import SiteJob
from crawler.tls import TlsFallback, legacy_ssl_context, ssl_peer
from storage.config import Config


class _Resolver(AbstractResolver):
    """aiohttp resolution through the scan resolver, with the guard and the port map."""

    def __init__(self, ctx: ScanContext) -> None:
        self.ctx = ctx

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        answer = await self.ctx.resolver.lookup(host)
        if not answer.addresses:
            raise DnsFailedError(answer)
        allowed = [ip for ip in answer.addresses if self.ctx.guard.refusal(ip) is None]
        if not allowed:
            raise AddressRefusedError(
                host, answer.addresses, self.ctx.guard.refusal(answer.addresses[0]) or ""
            )
        mapped = self.ctx.map_port(port)
        return [
            {
                "hostname": host,
                "host": ip,
                "port": mapped,
                "family": socket.AF_INET6 if ":" in ip else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for ip in allowed
        ]

    async def close(self) -> None:
        return None


class AiohttpFetcher:
    def __init__(self, ctx: ScanContext) -> None:
        self.ctx = ctx
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE  # read the page whatever the certificate; judged separately
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=_Resolver(ctx), ssl=tls, limit=16),
            timeout=aiohttp.ClientTimeout(total=ctx.config.timeout_s),
            headers={"User-Agent": ctx.config.user_agent},
            auto_decompress=True,
        )
        # TLS 1.0-only servers (legacy retry) and 国密-only ones (TLCP probe), as the scan does.
        self.fallback = TlsFallback(ctx)
        self.legacy_tls = legacy_ssl_context()

    async def get(self, url: str, *, maxsize: int, priority: int = 0) -> RawResponse:
        return await self.fallback.run(url, lambda legacy: self._get(url, maxsize, legacy))

    async def _get(self, url: str, maxsize: int, legacy: bool) -> RawResponse:
        extra: dict[str, Any] = {"ssl": self.legacy_tls} if legacy else {}
        async with self.session.get(url, allow_redirects=False, **extra) as resp:
            cert, chain, version = None, None, ""
            # A small body is read with the headers and the connection already back in the pool
            # (``resp.connection`` None): its protocol still holds the transport.
            protocol = resp.connection.protocol if resp.connection else getattr(resp, "_protocol", None)
            transport = protocol.transport if protocol is not None else None
            ssl_obj = transport.get_extra_info("ssl_object") if transport is not None else None
            if ssl_obj is not None:
                # Leaf, the certificates sent after it, the protocol (crawler/tls.py: ssl_peer).
                cert, chain, version = ssl_peer(ssl_obj)
            body = await resp.content.read(maxsize + 1)
            if len(body) > maxsize:
                raise aiohttp.ClientPayloadError(f"body larger than max size ({maxsize})")
            headers = {k: v for k, v in resp.headers.items()}
            return RawResponse(str(resp.url), resp.status, headers, body, cert, "", chain, version)

    async def close(self) -> None:
        await self.session.close()


def _expected(kind: str, url: str = "") -> Expected:
    return Expected(unit_kind=UnitKind(kind), site_url=url)


def inspect_url(url: str, kind: str, config: Config) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        ctx = build_context(config)
        fetcher = AiohttpFetcher(ctx)
        try:
            flow = Flow(
                fetcher,
                ctx.resolver,
                None,
                checking.rules_from_config(config),
                CertJudge(config.ca_file, config.intermediates_file),
                max_body=config.max_body_bytes,
                max_subresources=config.max_subresources,
                render_mode="never",
            )
            result = await flow.site(SiteJob(0, url, _expected(kind, url)))
        finally:
            await fetcher.close()
        return {v.check: _flat(v) for v in result.verdicts}

    return asyncio.run(run())


def inspect_file(path: Path, kind: str, config: Config) -> dict[str, Any]:
    body = path.read_bytes()
    base = path.resolve().as_uri()
    page = Page(url=base, body=body, headers={})
    rules = checking.rules_from_config(config)
    expected = _expected(kind)
    verdicts, needs = checking.run_page_checks(page, expected, rules)
    for _ in range(3):
        todo = [n for n in needs if n.kind is not NeedKind.RENDER and not page.settled(n)]
        if not todo:
            break
        for need in todo:
            local = _local(need.url, path)
            if local is not None and local.is_file():
                attach_subresource(page, need, need.url, local.read_bytes(), "")
            else:
                page.mark_failed(need, "not available offline")
        verdicts, needs = checking.run_page_checks(page, expected, rules)
    page.exhausted = True
    verdicts, _ = checking.run_page_checks(page, expected, rules)
    from checks.http import FetchOutcome

    http = classify_http(
        FetchOutcome(
            url=base,
            final_url=base,
            status=200,
            text_head=body[:32768].decode("utf-8", "replace"),
            body_size=len(body),
        )
    )
    if not page_readable(http):
        verdicts = [unreadable(v.check, http) for v in verdicts]
    return {v.check: _flat(v) for v in verdicts}


def _local(url: str, page_path: Path) -> Path | None:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    name = Path(unquote(parts.path)).name
    return page_path.parent / name if name else None


def _flat(v: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "status": str(v.status),
        "reason": v.reason,
        "message": v.message,
        "detail": v.detail,
    }
    for key, value in v.data.items():
        entry.setdefault(key, value)
    entry["evidence"] = [e.to_dict() for e in v.evidence]
    return entry
