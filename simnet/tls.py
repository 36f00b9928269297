"""simnet's public-key infrastructure and the TLS side of the web farm.

A root CA (``ca.pem``, what clients trust) signs one intermediate CA, and the intermediate issues a
certificate per host on first use, as real CAs do: a normal host sends leaf + intermediate and a client
that trusts only the root can build the path. Hosts can instead present an expired certificate, a
self-signed one, one issued for another name, or the leaf alone (an incomplete chain: the leaf's AIA
``caIssuers`` URL names where the intermediate can be fetched, :data:`AIA_URL`).

Two server shapes need a listening socket of their own: a TLS 1.0-only server (the protocol version is
fixed when the connection is created, before SNI could pick another context) and a 国密 TLCP-only server
(:class:`TlcpServer`, GM/T 0024: not TLS at all).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import ssl
import struct
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from simnet.model import TlsMode

WRONG_NAME = "default.simnet-hosting.com"
DEFAULT_NAME = "simnet.invalid"
MAX_CACHED = 4096
# Where the intermediate can be fetched (DER), as a leaf's Authority Information Access names it.
AIA_HOST = "ca.simnet-pki.cn"
AIA_PATH = "/intermediate.crt"
AIA_URL = f"http://{AIA_HOST}{AIA_PATH}"
# TLCP (GM/T 0024) record and protocol version, and its ECC_SM4_CBC_SM3 cipher suite.
TLCP_VERSION = b"\x01\x01"
TLCP_ECC_SM4_CBC_SM3 = b"\xe0\x13"
# OpenSSL 3 refuses TLS 1.0 above security level 0 (its signatures use SHA-1).
LEGACY_CIPHERS = "DEFAULT:@SECLEVEL=0"


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "simnet"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(False, False, False, False, False, True, True, False, False)


def _server_context(legacy: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if legacy:
        ctx.set_ciphers(LEGACY_CIPHERS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1 is deprecated: that is the point
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1
    return ctx


class CertAuthority:
    """Root and intermediate CA in ``directory``: ``ca.pem`` (the root: what clients trust),
    ``intermediate.pem`` / ``intermediate.der`` (not trusted: servers send it, AIA serves it) and
    per-host certificates on demand."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        self.key = ec.generate_private_key(ec.SECP256R1())
        root_name = _name("simnet root CA")
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = self.dir / "ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = (
            x509.CertificateBuilder()
            .subject_name(_name("simnet intermediate CA G1"))
            .issuer_name(root_name)
            .public_key(self.intermediate_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1825))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.intermediate_key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        self.intermediate_pem = self.intermediate.public_bytes(serialization.Encoding.PEM)
        self.intermediate_der = self.intermediate.public_bytes(serialization.Encoding.DER)
        (self.dir / "intermediate.pem").write_bytes(self.intermediate_pem)
        (self.dir / "intermediate.der").write_bytes(self.intermediate_der)
        # One leaf key for every host: key generation is the slow part and nothing checks key reuse.
        self.leaf_key = ec.generate_private_key(ec.SECP256R1())
        self.leaf_key_file = self.dir / "leaf.key"
        self.leaf_key_file.write_bytes(
            self.leaf_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self._contexts: dict[tuple[str, TlsMode], ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def issue(self, host: str, mode: TlsMode) -> Path:
        """Write the certificate chain ``host`` presents in ``mode``; returns the PEM file."""
        now = dt.datetime.now(dt.UTC)
        name = WRONG_NAME if mode == TlsMode.WRONG_HOST else host
        start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=825)
        if mode == TlsMode.EXPIRED:
            start, end = now - dt.timedelta(days=400), now - dt.timedelta(days=35)
        self_signed = mode == TlsMode.SELF_SIGNED
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name) if self_signed else self.intermediate.subject)
            .public_key(self.leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        if not self_signed:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.intermediate_key.public_key()),
                critical=False,
            ).add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(AIA_URL)
                        )
                    ]
                ),
                critical=False,
            )
        signer = self.leaf_key if self_signed else self.intermediate_key
        cert = builder.sign(signer, hashes.SHA256())
        pem = cert.public_bytes(serialization.Encoding.PEM)
        if not self_signed and mode != TlsMode.INCOMPLETE_CHAIN:
            pem += self.intermediate_pem  # what a correctly configured server sends; never the root
        path = self.dir / f"{mode.value}-{name}.pem"
        path.write_bytes(pem)
        return path

    def context(self, host: str, mode: TlsMode) -> ssl.SSLContext:
        """The server context for ``host`` (cached)."""
        key = (host, mode)
        with self._lock:
            ctx = self._contexts.get(key)
            if ctx is not None:
                return ctx
            ctx = _server_context(legacy=mode == TlsMode.LEGACY)
            ctx.load_cert_chain(self.issue(host, mode), self.leaf_key_file)
            if len(self._contexts) >= MAX_CACHED:
                self._contexts.clear()
            self._contexts[key] = ctx
            return ctx

    def server_context(self, lookup: Callable[[str], TlsMode | None], legacy: bool = False) -> ssl.SSLContext:
        """The listening context: picks each host's certificate from the SNI name via ``lookup``.

        ``legacy``: the listener speaks TLS 1.0 only (the SNI callback swaps certificates, not protocol
        versions: those are fixed by the listening context)."""
        base_mode = TlsMode.LEGACY if legacy else TlsMode.OK
        base = self.context(DEFAULT_NAME, base_mode)
        listening = _server_context(legacy)
        listening.load_cert_chain(self.issue(DEFAULT_NAME, base_mode), self.leaf_key_file)

        def pick(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
            if not server_name:
                sslobj.context = base
                return
            host = server_name.lower().rstrip(".")
            mode = lookup(host)
            if mode is not None and legacy:
                mode = TlsMode.LEGACY
            sslobj.context = self.context(host, mode) if mode is not None else base

        listening.sni_callback = pick
        return listening


# --- 国密 TLCP -------------------------------------------------------------------------------------


def _record(content_type: int, version: bytes, payload: bytes) -> bytes:
    return bytes([content_type]) + version + struct.pack(">H", len(payload)) + payload


# A fatal protocol_version alert in a TLCP record: what GmSSL's TLCP server answers to a TLS
# ClientHello (its alerts carry the connection's own protocol, 0x0101).
TLCP_PROTOCOL_VERSION_ALERT = _record(21, TLCP_VERSION, b"\x02\x46")


def tlcp_server_hello() -> bytes:
    """A TLCP ServerHello record (version 0x0101, ECC_SM4_CBC_SM3, no extensions)."""
    session = os.urandom(32)
    body = TLCP_VERSION + os.urandom(32) + bytes([len(session)]) + session + TLCP_ECC_SM4_CBC_SM3 + b"\x00"
    handshake = b"\x02" + struct.pack(">I", len(body))[1:] + body
    return _record(22, TLCP_VERSION, handshake)


class TlcpServer(asyncio.Protocol):
    """A 国密 TLCP-only server as a TLS client meets it (GM/T 0024-2023).

    It reads the ClientHello: one that asks for TLCP (client version 0x0101) gets a TLCP ServerHello,
    anything else a fatal ``protocol_version`` alert in a TLCP record, as GmSSL's TLCP server answers
    (Tongsuo's NTLS-only server answers a TLS hello with an alert echoing the client's version, so only
    a TLCP hello tells it apart). The handshake stops after the ServerHello: the certificates would be
    SM2 ones, which the ``cryptography`` package cannot make, and no client of simnet goes further.
    """

    def __init__(self, connections: set[asyncio.Transport] | None = None) -> None:
        self.connections = connections if connections is not None else set()
        self.transport: asyncio.Transport | None = None
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.connections.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.connections.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        t = self.transport
        assert t is not None
        self.buf += data
        if len(self.buf) < 5:
            return
        if self.buf[0] != 22:  # not a handshake record (plain HTTP, garbage): hang up
            t.close()
            return
        length = struct.unpack(">H", self.buf[3:5])[0]
        if len(self.buf) < 5 + min(length, 6):
            return
        hello = self.buf[5 : 5 + length]
        wants_tlcp = hello[:1] == b"\x01" and hello[4:6] == TLCP_VERSION
        t.write(tlcp_server_hello() if wants_tlcp else TLCP_PROTOCOL_VERSION_ALERT)
        t.close()
