"""Certificate evidence: the fetch does not stop at a bad certificate; the problems are recorded.

Scrapy reads pages whatever the certificate (expired and mismatched certificates are common on the
sites we scan, and the page still matters); this module then judges the server's leaf certificate:
expired (or not yet valid), issued for another host name, or not chaining to a trusted root (the
system bundle plus ``Config.ca_file``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import warnings
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtensionOID

from checks.http import CertProblem

log = logging.getLogger(__name__)

_X509_V_ERR_CERT_NOT_YET_VALID = 9
_X509_V_ERR_CERT_HAS_EXPIRED = 10
SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


class CertJudge:
    """Judges leaf certificates against the trusted roots; results are cached per (cert, host)."""

    def __init__(self, extra_ca_file: str = "") -> None:
        self._bundles = [p for p in SYSTEM_BUNDLES if os.path.exists(p)][:1]
        if extra_ca_file:
            self._bundles.append(extra_ca_file)
        self._roots: list[Any] | None = None
        self._store: Any = None
        self.judge = lru_cache(maxsize=20_000)(self._judge)

    def problems(self, certificate: Any, host: str) -> tuple[CertProblem, ...]:
        """Problems of a Twisted/pyOpenSSL/cryptography certificate served for ``host``."""
        cert = to_cryptography(certificate)
        if cert is None:
            return ()
        return self.judge(cert.fingerprint(hashes.SHA256()), host.lower(), cert)

    def _judge(self, _fp: bytes, host: str, cert: x509.Certificate) -> tuple[CertProblem, ...]:
        out: list[CertProblem] = []
        now = dt.datetime.now(dt.UTC)
        if now > cert.not_valid_after_utc or now < cert.not_valid_before_utc:
            out.append(CertProblem.EXPIRED)
        names = san_names(cert)
        if not any(host_matches(pattern, host) for pattern in names):
            out.append(CertProblem.HOSTNAME)
        if not self._trusted(cert):
            out.append(CertProblem.UNTRUSTED)
        return tuple(out)

    def _root_certs(self) -> list[Any]:
        if self._roots is None:
            from OpenSSL import crypto

            roots: list[Any] = []
            for path in self._bundles:
                try:
                    with open(path, "rb") as fh, warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # non-conforming serials in some system roots
                        roots.extend(
                            crypto.X509.from_cryptography(c)
                            for c in x509.load_pem_x509_certificates(fh.read())
                        )
                except (OSError, ValueError) as exc:
                    log.warning("cannot read CA bundle %s: %s", path, exc)
            self._roots = roots
        return self._roots

    def _trusted(self, cert: x509.Certificate) -> bool:
        """RFC 5280 path validation with OpenSSL (browsers' rules, not the stricter CA/B profile)."""
        from OpenSSL import crypto

        if self._store is None:
            self._store = crypto.X509Store()
            for root in self._root_certs():
                self._store.add_cert(root)
        try:
            crypto.X509StoreContext(self._store, crypto.X509.from_cryptography(cert)).verify_certificate()
        except crypto.X509StoreContextError as exc:
            # OpenSSL builds the chain before it checks dates: "expired"/"not yet valid" means the
            # chain itself is trusted (expiry is reported on its own).
            code = exc.errors[0] if getattr(exc, "errors", None) else None
            if code in (_X509_V_ERR_CERT_NOT_YET_VALID, _X509_V_ERR_CERT_HAS_EXPIRED):
                return True
            log.debug("certificate not trusted: %s", exc)
            return False
        return True


def to_cryptography(certificate: Any) -> x509.Certificate | None:
    if certificate is None:
        return None
    if isinstance(certificate, x509.Certificate):
        return certificate
    original = getattr(certificate, "original", certificate)  # twisted.internet.ssl.Certificate
    to_crypto = getattr(original, "to_cryptography", None)
    if to_crypto is None:
        return None
    result = to_crypto()
    return result if isinstance(result, x509.Certificate) else None


def san_names(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        cn = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
        return [str(cn[0].value).lower()] if cn else []
    value = ext.value
    assert isinstance(value, x509.SubjectAlternativeName)
    return [n.lower() for n in value.get_values_for_type(x509.DNSName)]


def host_matches(pattern: str, host: str) -> bool:
    """RFC 6125 matching: exact, or one wildcard label at the left."""
    if pattern == host:
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return host.endswith(suffix) and "." not in host[: -len(suffix)] and len(host) > len(suffix)
    return False


def cert_summary(certificate: Any) -> dict[str, Any]:
    """A small record of the certificate for the capture (subject, issuer, validity, names)."""
    cert = to_cryptography(certificate)
    if cert is None:
        return {}
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "names": san_names(cert),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(),
    }
