"""simnet's certificate authority and per-host TLS contexts chosen by SNI.

One CA (EC P-256, created per run) issues a certificate per host on first use. Hosts can instead present
an expired certificate, a self-signed one, or one issued for another name.
"""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from simnet.model import TlsMode

WRONG_NAME = "default.simnet-hosting.com"
DEFAULT_NAME = "simnet.invalid"
MAX_CACHED = 4096


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "simnet"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


class CertAuthority:
    """A CA in ``directory``: ``ca.pem`` (what clients trust) and per-host certificates on demand."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name("simnet root CA"))
            .issuer_name(_name("simnet root CA"))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = self.dir / "ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
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
        issuer_name, signer = self.cert.subject, self.key
        if mode == TlsMode.SELF_SIGNED:
            issuer_name, signer = _name(name), self.leaf_key
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(issuer_name)
            .public_key(self.leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(signer, hashes.SHA256())
        )
        pem = cert.public_bytes(serialization.Encoding.PEM)
        if mode != TlsMode.SELF_SIGNED:
            pem += self.cert.public_bytes(serialization.Encoding.PEM)
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
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.issue(host, mode), self.leaf_key_file)
            if len(self._contexts) >= MAX_CACHED:
                self._contexts.clear()
            self._contexts[key] = ctx
            return ctx

    def server_context(self, lookup: Callable[[str], TlsMode | None]) -> ssl.SSLContext:
        """The listening context: picks each host's certificate from the SNI name via ``lookup``."""
        base = self.context(DEFAULT_NAME, TlsMode.OK)
        listening = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        listening.load_cert_chain(self.issue(DEFAULT_NAME, TlsMode.OK), self.leaf_key_file)

        def pick(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
            if not server_name:
                sslobj.context = base
                return
            host = server_name.lower().rstrip(".")
            mode = lookup(host)
            sslobj.context = self.context(host, mode) if mode is not None else base

        listening.sni_callback = pick
        return listening
