"""Scrapy's ``TWISTED_DNS_RESOLVER``: connections resolve through the scan's own resolver."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress, IHostnameResolver, IHostResolution
from zope.interface import implementer

from crawler.context import ScanContext, get_context
from crawler.resolver import DnsAnswer, is_ip


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:  # pragma: no cover - Twisted never cancels a resolution it started
        pass


@implementer(IHostnameResolver)
class TwistedNameResolver:
    """Resolves through :class:`crawler.resolver.ScanResolver`, drops guarded addresses, maps ports."""

    def __init__(self, reactor: Any, context: ScanContext) -> None:
        self.reactor = reactor
        self.context = context

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> TwistedNameResolver:
        return cls(reactor, get_context(crawler.settings))

    def install_on_reactor(self) -> None:
        self.reactor.installNameResolver(self)

    def resolveHostName(
        self,
        resolutionReceiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        port = self.context.map_port(portNumber)
        if is_ip(hostName):
            self._deliver(resolutionReceiver, [hostName.strip("[]")], port, addressTypes)
            return resolution
        cached = self.context.resolver.cached(hostName)
        if cached is not None:
            self._deliver(resolutionReceiver, list(cached.addresses), port, addressTypes)
            return resolution
        fut = asyncio.ensure_future(self.context.resolver.lookup(hostName))

        def done(f: asyncio.Future[DnsAnswer]) -> None:
            addresses = [] if f.cancelled() or f.exception() else list(f.result().addresses)
            self._deliver(resolutionReceiver, addresses, port, addressTypes)

        fut.add_done_callback(done)
        return resolution

    def _deliver(
        self,
        receiver: Any,
        addresses: list[str],
        port: int,
        address_types: Sequence[type[IAddress]] | None,
    ) -> None:
        want4 = address_types is None or IPv4Address in address_types
        want6 = address_types is None or IPv6Address in address_types
        for ip in addresses:
            # The guard is applied here too: whatever path a request took, no packet leaves for a
            # refused address.
            if self.context.guard.refusal(ip) is not None:
                continue
            if ":" in ip:
                if want6:
                    receiver.addressResolved(IPv6Address("TCP", ip, port))
            elif want4:
                receiver.addressResolved(IPv4Address("TCP", ip, port))
        receiver.resolutionComplete()
