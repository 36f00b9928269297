"""TLS as it is: the chain a server sent, servers that speak only TLS 1.0/1.1, 国密 TLCP-only servers.

Scrapy hands a response only the server's leaf certificate. :class:`TlsPolicy` wraps Scrapy's TLS client
policy (still no verification in the handshake: certificates are judged afterwards, from evidence) and
records every completed handshake in :class:`TlsMemory`: the certificates the server sent and the
protocol version, keyed by the leaf's fingerprint, where the fetcher finds them for the response.

A handshake that fails the way version-intolerant or TLS 1.0-only servers fail is tried once more with
a legacy client context (TLS 1.0 and up, OpenSSL security level 0), for that host and port only;
:class:`TlsFallback` does this for both fetchers. A handshake that still fails is explained by a small
probe (:func:`probe_tlcp`): a server that answers in TLCP records (version 0x0101) speaks only 国密
TLCP, which no TLS client reads (``http.tls_sm2``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import struct
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from checks.http import FetchError
from crawler.certs import to_cryptography
from crawler.errors import TlcpOnlyError, classify_exception
from crawler.resolver import is_ip

if TYPE_CHECKING:
    from twisted.protocols.tls import TLSMemoryBIOProtocol

    from crawler.context import ScanContext

log = logging.getLogger(__name__)

# OpenSSL 3 refuses TLS 1.0/1.1 above security level 0 (their handshake signatures use SHA-1/MD5), and
# old servers often offer only CBC or 3DES suites: everything OpenSSL has, for the servers that need it.
LEGACY_CIPHERS = "ALL:@SECLEVEL=0"
_OP_LEGACY_SERVER_CONNECT = 0x4  # what Scrapy sets too: old servers without secure renegotiation
# Failures of a TLS handshake that a legacy client context may get past: the server's protocol_version
# alert, a ServerHello of a version the client refuses, no common cipher, or a server that hangs up on
# a ClientHello it cannot parse (version intolerance; simnet's TLS 1.0 server hangs up too: asyncio
# drops the alert OpenSSL queued). "wrong version number" is not among them: the answer was not TLS.
_VERSION_FAILURES = (
    "protocol version",
    "unsupported protocol",
    "no protocols available",
    "wrong ssl version",
    "version too low",
    "handshake failure",
    "no shared cipher",
    "no ciphers available",
    "dh key too small",
    "unexpected eof",
    "eof occurred",
    "connectionlost",
    "connection was closed cleanly",
)

TLCP_VERSION = b"\x01\x01"
# TLCP cipher suites (GM/T 0024): ECC_SM4_CBC_SM3, ECDHE_SM4_CBC_SM3, ECC_SM4_GCM_SM3, ECDHE_SM4_GCM_SM3.
_TLCP_SUITES = (0xE013, 0xE011, 0xE053, 0xE051)
# A TLS 1.2 ClientHello's suites: the common ECDHE/RSA ones, plus the TLCP ones some dual servers pick.
_TLS_SUITES = (0xC02B, 0xC02F, 0xC02C, 0xC030, 0xC013, 0xC014, 0x009C, 0x002F, 0x0035, *_TLCP_SUITES)
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class PeerTls:
    """What one handshake showed: the certificates sent after the leaf, and the protocol version."""

    chain: tuple[x509.Certificate, ...]
    version: str


def fingerprint(cert: Any) -> bytes:
    """SHA-256 of a certificate (cryptography, pyOpenSSL or Twisted object)."""

    c = to_cryptography(cert)
    return c.fingerprint(hashes.SHA256()) if c is not None else b""


class TlsMemory:
    """Per-process record of handshakes (bounded) and of the netlocs that needed a legacy context."""

    def __init__(self, max_peers: int = 4096, max_legacy: int = 10_000, max_shared: int = 1024) -> None:
        self.max_peers = max_peers
        self.max_legacy = max_legacy
        self.max_shared = max_shared
        self._peers: OrderedDict[bytes, PeerTls] = OrderedDict()
        self._legacy: OrderedDict[tuple[str, int], None] = OrderedDict()
        # Intermediates are shared by thousands of sites (a few dozen CAs): one object each.
        self._shared: OrderedDict[bytes, x509.Certificate] = OrderedDict()

    def record(self, connection: SSL.Connection) -> None:
        """Remember a completed handshake's certificates and version (from the TLS info callback)."""
        sent = connection.get_peer_cert_chain()  # on the client side, the leaf first
        if not sent:
            return
        certs = [c.to_cryptography() for c in sent]
        version = connection.get_protocol_version_name()
        self.remember(certs[0], PeerTls(tuple(self._share(c) for c in certs[1:]), version))

    def _share(self, cert: x509.Certificate) -> x509.Certificate:
        key = cert.fingerprint(hashes.SHA256())
        found = self._shared.get(key)
        if found is not None:
            self._shared.move_to_end(key)
            return found
        self._shared[key] = cert
        while len(self._shared) > self.max_shared:
            self._shared.popitem(last=False)
        return cert

    def remember(self, leaf: x509.Certificate, peer: PeerTls) -> None:
        key = leaf.fingerprint(hashes.SHA256())
        self._peers[key] = peer
        self._peers.move_to_end(key)
        while len(self._peers) > self.max_peers:
            self._peers.popitem(last=False)

    def peer(self, leaf: Any) -> PeerTls | None:
        """The handshake that sent ``leaf`` (the latest one), or None when it is not remembered."""
        return self._peers.get(fingerprint(leaf)) if leaf is not None else None

    def is_legacy(self, host: str, port: int) -> bool:
        return (host.lower(), port) in self._legacy

    def mark_legacy(self, host: str, port: int) -> None:
        key = (host.lower(), port)
        self._legacy[key] = None
        self._legacy.move_to_end(key)
        while len(self._legacy) > self.max_legacy:
            self._legacy.popitem(last=False)

    def unmark_legacy(self, host: str, port: int) -> None:
        self._legacy.pop((host.lower(), port), None)


# --- Scrapy / Twisted side -------------------------------------------------------------------------


def _recorder(memory: TlsMemory, previous: Any) -> Callable[[SSL.Connection, int, int], None]:
    def info(connection: SSL.Connection, where: int, ret: int) -> None:
        if previous is not None:
            previous(connection, where, ret)  # Twisted < 26.4 sets SNI in its own info callback
        if where & SSL.SSL_CB_HANDSHAKE_DONE:
            try:
                memory.record(connection)
            except Exception:  # an exception must not escape into OpenSSL's callback
                log.debug("cannot record the peer chain", exc_info=True)

    return info


@implementer(IOpenSSLClientConnectionCreator)
class _Recording:
    """A connection creator that also records the handshake (composition: Scrapy's creator classes are
    private and differ between Twisted versions)."""

    def __init__(self, inner: Any, memory: TlsMemory) -> None:
        self.inner = inner
        self.memory = memory

    def clientConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        connection: SSL.Connection = self.inner.clientConnectionForTLS(tlsProtocol)
        previous = getattr(self.inner, "_identityVerifyingInfoCallback", None)
        connection.set_info_callback(_recorder(self.memory, previous))
        return connection


@implementer(IOpenSSLClientConnectionCreator)
class _LegacyCreator:
    """Connections of the legacy client context (no verification, as Scrapy's; SNI set)."""

    def __init__(self, context: SSL.Context, hostname: str) -> None:
        self.context = context
        self.hostname = hostname

    def clientConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        connection = SSL.Connection(self.context, None)
        if not _is_ip(self.hostname):
            connection.set_tlsext_host_name(self.hostname.encode("idna"))
        return connection


def legacy_openssl_context() -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_VERSION)
    ctx.set_cipher_list(LEGACY_CIPHERS.encode())
    ctx.set_options(_OP_LEGACY_SERVER_CONNECT | SSL.OP_NO_SSLv2 | SSL.OP_NO_SSLv3)
    ctx.set_verify(SSL.VERIFY_NONE)
    return ctx


@implementer(IPolicyForHTTPS)
class TlsPolicy:
    """Scrapy's HTTPS policy, recording each handshake; netlocs marked legacy get the legacy context."""

    def __init__(self, inner: Any, memory: TlsMemory) -> None:
        self.inner = inner
        self.memory = memory
        self._legacy: SSL.Context | None = None

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        host = hostname.decode("ascii")
        if self.memory.is_legacy(host, port):
            if self._legacy is None:
                self._legacy = legacy_openssl_context()
            return _Recording(_LegacyCreator(self._legacy, host), self.memory)
        return _Recording(self.inner.creatorForNetloc(hostname, port), self.memory)


# --- both fetchers ---------------------------------------------------------------------------------

T = TypeVar("T")


def is_tls_failure(exc: BaseException) -> bool:
    return classify_exception(exc)[0] is FetchError.TLS


def is_version_failure(exc: BaseException) -> bool:
    """A failed handshake that a legacy client context may get past (see ``_VERSION_FAILURES``)."""
    kind, detail = classify_exception(exc)
    low = f"{type(exc).__name__} {exc} {detail}".lower()
    if "wrong version number" in low:
        return False
    return kind is FetchError.TLS and any(p in low for p in _VERSION_FAILURES)


class TlsFallback:
    """Runs a fetch; a TLS handshake failure gets a legacy retry and, failing that, the TLCP probe."""

    def __init__(self, context: ScanContext) -> None:
        self.context = context
        self.memory = context.tls

    async def run(self, url: str, attempt: Callable[[bool], Awaitable[T]]) -> T:
        """``attempt(legacy)`` fetches ``url``; ``legacy`` says whether this netloc needs the legacy
        context (the Scrapy fetcher's policy reads the same mark from :class:`TlsMemory`)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme != "https" or not host:
            return await attempt(False)
        port = parts.port or 443
        legacy = self.memory.is_legacy(host, port)
        try:
            return await attempt(legacy)
        except Exception as exc:
            if not is_tls_failure(exc):
                raise
            failure: Exception = exc
        if not legacy and is_version_failure(failure):
            self.memory.mark_legacy(host, port)
            try:
                return await attempt(True)
            except Exception as exc:
                self.memory.unmark_legacy(host, port)  # legacy did not help: not a legacy server
                if not is_tls_failure(exc):
                    raise
        answer = await probe_tlcp(self.context, host, port)
        if answer:
            raise TlcpOnlyError(host, port, answer) from failure
        raise failure


# --- the TLCP probe --------------------------------------------------------------------------------


def _is_ip(host: str) -> bool:

    return is_ip(host)


def _hello(record_version: bytes, client_version: bytes, suites: tuple[int, ...], exts: bytes) -> bytes:
    body = (
        client_version
        + os.urandom(32)
        + b"\x00"  # no session id
        + struct.pack(">H", 2 * len(suites))
        + b"".join(struct.pack(">H", s) for s in suites)
        + b"\x01\x00"  # null compression
        + struct.pack(">H", len(exts))
        + exts
    )
    handshake = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16" + record_version + struct.pack(">H", len(handshake)) + handshake


def _ext(kind: int, data: bytes) -> bytes:
    return struct.pack(">HH", kind, len(data)) + data


def _sni(host: str) -> bytes:
    if not host or _is_ip(host):
        return b""
    name = host.encode("idna")
    entry = b"\x00" + struct.pack(">H", len(name)) + name
    return _ext(0, struct.pack(">H", len(entry)) + entry)


def tlcp_client_hello(host: str) -> bytes:
    """A TLCP ClientHello (record and client version 0x0101, the TLCP suites, SNI)."""
    return _hello(TLCP_VERSION, TLCP_VERSION, _TLCP_SUITES, _sni(host))


def tls_client_hello(host: str) -> bytes:
    """A plain TLS 1.2 ClientHello (what the crawler's own handshake looked like, near enough)."""
    groups = (0x001D, 0x0017, 0x0018, 0x0029)  # x25519, P-256, P-384, curveSM2
    sigs = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0201, 0x0708)
    exts = (
        _sni(host)
        + _ext(10, struct.pack(">H", 2 * len(groups)) + b"".join(struct.pack(">H", g) for g in groups))
        + _ext(11, b"\x01\x00")
        + _ext(13, struct.pack(">H", 2 * len(sigs)) + b"".join(struct.pack(">H", s) for s in sigs))
    )
    return _hello(b"\x03\x01", b"\x03\x03", _TLS_SUITES, exts)


async def _first_record(address: str, port: int, hello: bytes, timeout: float) -> bytes:
    """Send ``hello`` and return the start of the first record answered (b"" when none came)."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(address, port)
            writer.write(hello)
            await writer.drain()
            head = await reader.readexactly(5)
            length = struct.unpack(">H", head[3:5])[0]
            return head + await reader.readexactly(min(length, 64))
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return b""
    finally:
        if writer is not None:
            writer.close()


async def probe_tlcp(context: ScanContext, host: str, port: int) -> str:
    """Whether ``host:port`` speaks 国密 TLCP only: a short description of its answer, or "".

    A TLCP server answers a TLCP ClientHello with a TLCP ServerHello (GmSSL, Tongsuo). An alert in a
    0x0101 record is no proof (OpenSSL-derived servers echo the client's record version in the alert
    they send before negotiating), so then a TLS ClientHello decides: a TLS server never answers it in
    a 0x0101 record, GmSSL's TLCP server does. The probe connects only to the scan resolver's answer for
    ``host``, through the address guard, on the mapped port, like every other request of the scan."""
    answer = context.resolver.cached(host) if not _is_ip(host) else None
    if answer is None and not _is_ip(host):
        answer = await context.resolver.lookup(host)
    addresses = (host.strip("[]"),) if _is_ip(host) else (answer.addresses if answer else ())
    allowed = [ip for ip in addresses if context.guard.refusal(ip) is None]
    if not allowed:
        return ""
    address, mapped = allowed[0], context.map_port(port)
    timeout = min(PROBE_TIMEOUT_S, float(context.config.timeout_s))
    first = await _first_record(address, mapped, tlcp_client_hello(host), timeout)
    if first[:3] == b"\x16" + TLCP_VERSION and first[5:6] == b"\x02" and first[9:11] == TLCP_VERSION:
        return "TLCP ServerHello (0x0101) to a TLCP ClientHello"
    if first and first[1:3] != TLCP_VERSION:
        return ""  # answered in TLS records: a TLS server (whatever went wrong with it)
    second = await _first_record(address, mapped, tls_client_hello(host), timeout)
    if second[1:3] == TLCP_VERSION:
        kind = "alert" if second[:1] == b"\x15" else f"record type {second[0]}"
        return f"TLCP {kind} (0x0101) to a TLS ClientHello"
    return ""


# --- the aiohttp fetcher (inspect) -------------------------------------------------------------------


def legacy_ssl_context() -> ssl.SSLContext:
    """The ``ssl`` module's legacy client context (for aiohttp), unverified like the normal one."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers(LEGACY_CIPHERS)
    ctx.options |= getattr(ssl, "OP_LEGACY_SERVER_CONNECT", _OP_LEGACY_SERVER_CONNECT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0 is deprecated: that is the point
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    return ctx


def ssl_peer(ssl_object: Any) -> tuple[x509.Certificate | None, tuple[x509.Certificate, ...] | None, str]:
    """Leaf, the certificates sent after it, and the protocol version of an ``ssl`` connection.

    The sent chain is ``get_unverified_chain()``: public from Python 3.13, the same method of the
    private ``_sslobj`` since 3.10. Where neither exists the chain is None ("unknown"): the judge then
    completes from AIA and the bundle without calling the chain incomplete."""
    der = ssl_object.getpeercert(binary_form=True)
    leaf = x509.load_der_x509_certificate(der) if der else None
    unverified = getattr(ssl_object, "get_unverified_chain", None)
    if unverified is None:
        unverified = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    chain: tuple[x509.Certificate, ...] | None = None
    if unverified is not None and leaf is not None:
        try:
            certs = [x509.load_der_x509_certificate(_der_of(c)) for c in unverified() or ()]
            chain = tuple(certs[1:])  # leaf first
        except (ValueError, TypeError, AttributeError):
            chain = None
    return leaf, chain, str(ssl_object.version() or "")


def _der_of(cert: Any) -> bytes:
    if isinstance(cert, bytes):  # Python 3.13's public method
        return cert
    # Here: only older Pythons need the private module for the DER bytes.
    import _ssl

    return bytes(cert.public_bytes(getattr(_ssl, "ENCODING_DER", 2)))  # the private one: _ssl.Certificate
