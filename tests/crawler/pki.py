"""Real certificate chains for tests: a root, intermediates and leaves made with ``cryptography``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

NOW = dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "badgewatch tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(False, False, False, False, False, True, True, False, False)


def root(cn: str = "test root CA") -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=10))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def intermediate(
    issuer: Issued, cn: str = "test intermediate CA", expired: bool = False, aia: str = ""
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = NOW - dt.timedelta(days=10), NOW + dt.timedelta(days=1000)
    if expired:
        start, end = NOW - dt.timedelta(days=900), NOW - dt.timedelta(days=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_usage(), critical=True)
    )
    if aia:
        builder = builder.add_extension(_aia(aia), critical=False)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def leaf(issuer: Issued, host: str, aia: str = "", expired: bool = False) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = NOW - dt.timedelta(days=10), NOW + dt.timedelta(days=300)
    if expired:
        start, end = NOW - dt.timedelta(days=400), NOW - dt.timedelta(days=3)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if aia:
        builder = builder.add_extension(_aia(aia), critical=False)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def _aia(url: str) -> x509.AuthorityInformationAccess:
    where = x509.UniformResourceIdentifier(url)
    return x509.AuthorityInformationAccess(
        [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, where)]
    )


def write_pem(path: Path, *certs: Issued) -> str:
    path.write_bytes(b"".join(c.pem for c in certs))
    return str(path)
