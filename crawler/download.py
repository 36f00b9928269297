"""Scrapy's HTTP/1.1 download handler with a short idle life for kept-alive connections, a pool that
forgets hosts it no longer holds connections to, and a TLS policy that records what servers sent.

Twisted's connection pool keeps an idle connection per host for 240 s. A scan visits hundreds of
thousands of hosts, most of them once: at a few hundred requests per second that is tens of
thousands of idle sockets held open on our side (and on the servers'), until the process runs out of
descriptors. Connections still help where a host is asked again soon (sub-resources of a page, the
CONAC badge service), so they are kept, briefly. The pool also keeps an empty list per host it ever
pooled a connection for, forever: one entry per host of the registry, a few hundred bytes each, which
made a scan's memory grow with the registry; :class:`PrunedPool` drops them.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, cast

from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from twisted.web.client import HTTPConnectionPool
from twisted.web.iweb import IPolicyForHTTPS

from crawler.context import get_context
from crawler.tls import TlsPolicy

IDLE_SETTING = "BADGEWATCH_IDLE_CONNECTION_S"
DEFAULT_IDLE_S = 10.0


class PrunedPool(HTTPConnectionPool):
    """:class:`HTTPConnectionPool` that forgets a host once none of its connections is pooled."""

    def _forget_if_empty(self, key: Hashable) -> None:
        if key in self._connections and not self._connections[key]:
            del self._connections[key]

    def getConnection(self, key: Hashable, endpoint: Any) -> Any:
        result = super().getConnection(key, endpoint)
        self._forget_if_empty(key)
        return result

    def _removeConnection(self, key: Hashable, connection: Any) -> None:
        super()._removeConnection(key, connection)  # type: ignore[no-untyped-call]
        self._forget_if_empty(key)


class ShortKeepAliveHandler(HTTP11DownloadHandler):
    """:class:`HTTP11DownloadHandler` whose idle connections close after ``BADGEWATCH_IDLE_CONNECTION_S``
    and whose pool keeps no trace of hosts without pooled connections."""

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        from twisted.internet import reactor

        stock = self._pool
        pool = PrunedPool(reactor, persistent=True)  # type: ignore[no-untyped-call]
        pool.maxPersistentPerHost = stock.maxPersistentPerHost
        pool._factory = stock._factory
        pool.cachedConnectionTimeout = crawler.settings.getfloat(IDLE_SETTING, DEFAULT_IDLE_S)
        self._pool = pool
        # Record each handshake's certificate chain and protocol, and give netlocs that needed it a
        # legacy TLS context (crawler/tls.py). Wrapping the handler's policy, rather than setting
        # DOWNLOADER_CLIENTCONTEXTFACTORY (deprecated in Scrapy 2.19), keeps Scrapy's own settings.
        policy = TlsPolicy(self._contextFactory, get_context(crawler.settings).tls)
        self._contextFactory = cast(IPolicyForHTTPS, policy)
