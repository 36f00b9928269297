"""Scrapy's HTTP/1.1 download handler with a short idle life for kept-alive connections.

Twisted's connection pool keeps an idle connection per host for 240 s. A scan visits hundreds of
thousands of hosts, most of them once: at a few hundred requests per second that is tens of
thousands of idle sockets held open on our side (and on the servers'), until the process runs out of
descriptors. Connections still help where a host is asked again soon (sub-resources of a page, the
CONAC badge service), so they are kept, briefly.
"""

from __future__ import annotations

from typing import Any

from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler

IDLE_SETTING = "BADGEWATCH_IDLE_CONNECTION_S"
DEFAULT_IDLE_S = 10.0


class ShortKeepAliveHandler(HTTP11DownloadHandler):
    """:class:`HTTP11DownloadHandler` whose idle connections close after ``BADGEWATCH_IDLE_CONNECTION_S``."""

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        self._pool.cachedConnectionTimeout = crawler.settings.getfloat(IDLE_SETTING, DEFAULT_IDLE_S)
