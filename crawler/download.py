"""Scrapy's HTTP/1.1 download handler with a short idle life for kept-alive connections, a pool that
forgets hosts it no longer holds connections to, and a TLS policy that records what servers sent.

Twisted's connection pool keeps an idle connection per host for 240 s. A scan visits hundreds of
thousands of hosts, most of them once: at a few hundred requests per second that is tens of
thousands of idle sockets held open on our side (and on the servers'), until the process runs out of
descriptors. Connections still help where a host is asked again soon (sub-resources of a page, the
CONAC badge service), so they are kept, briefly. The pool also keeps an empty list per host it ever
pooled a connection for, forever: one entry per host of the registry, a few hundred bytes each, which
made a scan's memory grow with the registry; :class:`PrunedPool` drops them.

Response header lines may be as long as browsers accept (256 KiB, not twisted's 16 KiB: a long
``Content-Security-Policy`` or cookie made a working site look like a dropped connection); a longer
one is a protocol error, not a silent close. A header with an invalid name is skipped, as browsers do.

A compressed body is checked to be whole before Scrapy decompresses it: Scrapy returns "as much as
possible" of a gzip stream cut short, and a page cut before its footer would be judged as a page
without a badge (:func:`check_encoded_body`).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Hashable
from typing import Any, cast

from scrapy.core.downloader.handlers.http11 import (
    HTTP11DownloadHandler,
    _LenientHTTP11ClientFactory,
    _LenientHTTP11ClientProtocol,
    _LenientHTTPClientParser,
)
from twisted.web._newclient import ParseError
from twisted.web.client import HTTPConnectionPool
from twisted.web.http_headers import InvalidHeaderName
from twisted.web.iweb import IPolicyForHTTPS

from crawler.context import get_context
from crawler.errors import MalformedResponseError
from crawler.tls import TlsPolicy

log = logging.getLogger(__name__)

IDLE_SETTING = "BADGEWATCH_IDLE_CONNECTION_S"
DEFAULT_IDLE_S = 10.0
# Chrome refuses a response whose header section exceeds 256 KiB; twisted closes the connection on a
# single line over 16 KiB.
MAX_HEADER_LINE = 256 * 1024


class _RoomyParser(_LenientHTTPClientParser):
    """Scrapy's lenient response parser with browser-sized header lines; a longer line is refused as
    malformed (twisted's default drops the connection, which reads as the server hanging up). A header
    whose name is not a token (``Bad Name:``, ``: value``, raw UTF-8) is skipped as browsers skip it,
    like Scrapy skips lines without a colon, instead of failing the whole answer."""

    MAX_LENGTH = MAX_HEADER_LINE

    def headerReceived(self, name: bytes, value: bytes) -> None:
        try:
            super().headerReceived(name, value)  # type: ignore[no-untyped-call]
        except InvalidHeaderName:
            log.debug("skipping a response header with an invalid name: %r", name[:80])

    def lineLengthExceeded(self, line: bytes) -> None:
        raise ParseError(f"response header line longer than {MAX_HEADER_LINE} bytes", line[:80])  # type: ignore[no-untyped-call]


class _RoomyProtocol(_LenientHTTP11ClientProtocol):
    def request(self, request: Any) -> Any:
        d = super().request(request)
        # As Scrapy does for its lenient parser: the parser's class is fixed in twisted's request().
        assert self._parser is not None
        self._parser.__class__ = _RoomyParser
        return d


class _RoomyClientFactory(_LenientHTTP11ClientFactory):
    def buildProtocol(self, addr: Any) -> Any:
        return _RoomyProtocol(self._quiescentCallback)  # type: ignore[no-untyped-call]


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
        # Here, not at the top: importing the reactor installs one, and Scrapy installs its own first.
        from twisted.internet import reactor

        stock = self._pool
        pool = PrunedPool(reactor, persistent=True)  # type: ignore[no-untyped-call]
        pool.maxPersistentPerHost = stock.maxPersistentPerHost
        pool._factory = _RoomyClientFactory
        pool.cachedConnectionTimeout = crawler.settings.getfloat(IDLE_SETTING, DEFAULT_IDLE_S)
        self._pool = pool
        # Record each handshake's certificate chain and protocol, and give netlocs that needed it a
        # legacy TLS context (crawler/tls.py). Wrapping the handler's policy, rather than setting
        # DOWNLOADER_CLIENTCONTEXTFACTORY (deprecated in Scrapy 2.19), keeps Scrapy's own settings.
        policy = TlsPolicy(self._contextFactory, get_context(crawler.settings).tls)
        self._contextFactory = cast(IPolicyForHTTPS, policy)

    async def download_request(self, request: Any) -> Any:
        response = await super().download_request(request)
        codings = response.headers.getlist(b"Content-Encoding")
        if codings:
            maxsize = int(request.meta.get("download_maxsize", self._default_maxsize) or 0)
            check_encoded_body(codings, response.body, maxsize)
            tokens = [c.strip() for raw in codings for c in raw.split(b",") if c.strip()]
            coded = [c for c in tokens if c.lower() != b"identity"]
            if len(coded) < len(tokens):
                # "identity" is no coding at all, but Scrapy stops decoding at any coding it does not
                # know: "gzip, identity" would stay compressed and be read as a binary page.
                if coded:
                    response.headers.setlist(b"Content-Encoding", coded)
                else:
                    del response.headers[b"Content-Encoding"]
        return response


_CHUNK = 64 * 1024


def check_encoded_body(codings: list[bytes], body: bytes, maxsize: int) -> None:
    """Raise :class:`MalformedResponseError` when a body's ``Content-Encoding`` (gzip, deflate, br) does
    not decode to its end: the stream is cut short or is not so encoded.

    Only verifies (Scrapy's HttpCompressionMiddleware still decodes): the layers are undone in reverse
    order up to ``maxsize`` decoded bytes; past that, or at a coding not checked here, checking stops
    and Scrapy's own limits and rules apply (a gzip bomb is still refused there)."""
    names = [c.strip().lower() for raw in codings for c in raw.split(b",") if c.strip()]
    data = body
    for name in reversed(names):
        if name == b"identity":
            continue
        if name in (b"gzip", b"x-gzip"):
            decoded = _zlib_whole(data, zlib.decompressobj(wbits=31), maxsize, name)
        elif name == b"deflate":
            try:  # zlib-wrapped, or raw deflate as some servers send it (as Scrapy accepts both)
                decoded = _zlib_whole(data, zlib.decompressobj(), maxsize, name)
            except MalformedResponseError:
                decoded = _zlib_whole(data, zlib.decompressobj(wbits=-15), maxsize, name)
        elif name == b"br":
            decoded = _brotli_whole(data, maxsize)
        else:
            return
        if decoded is None:
            return  # over the limit: Scrapy refuses it
        data = decoded


def _zlib_whole(data: bytes, d: Any, maxsize: int, name: bytes) -> bytes | None:
    out: list[bytes] = []
    size = 0
    try:
        chunk = d.decompress(data, _CHUNK)
        while True:
            out.append(chunk)
            size += len(chunk)
            if maxsize and size > maxsize:
                return None
            if d.eof or not (chunk or d.unconsumed_tail):
                break  # the end, or nothing left to feed and nothing more produced
            chunk = d.decompress(d.unconsumed_tail, _CHUNK)
    except zlib.error as exc:
        raise MalformedResponseError(f"Content-Encoding {name.decode('latin-1')}: {exc}") from exc
    if not d.eof:
        raise MalformedResponseError(
            f"Content-Encoding {name.decode('latin-1')}: stream cut short ({len(data)} bytes received)"
        )
    return b"".join(out)


def _brotli_whole(data: bytes, maxsize: int) -> bytes | None:
    # Here: brotli is needed only for a brotli-encoded body, and is imported only then.
    import brotli

    d = brotli.Decompressor()
    out: list[bytes] = []
    size = 0
    try:
        chunk = d.process(data, output_buffer_limit=_CHUNK)
        while True:
            out.append(chunk)
            size += len(chunk)
            if maxsize and size > maxsize:
                return None
            if d.is_finished() or not chunk:
                break
            chunk = d.process(b"", output_buffer_limit=_CHUNK)
    except brotli.error as exc:
        raise MalformedResponseError(f"Content-Encoding br: {exc}") from exc
    if not d.is_finished():
        raise MalformedResponseError(f"Content-Encoding br: stream cut short ({len(data)} bytes received)")
    return b"".join(out)
