"""Certificate evidence: the fetch does not stop at a bad certificate; the problems are recorded.

Scrapy reads pages whatever the certificate (expired and mismatched certificates are common on the
sites we scan, and the page still matters); this module then judges what the server presented: the
leaf expired (or not yet valid), issued for another host name, not chaining to a trusted root (the
system bundle, else certifi's, plus ``Config.ca_file``), a chain that verifies only once a missing
intermediate is added, and a protocol older than TLS 1.2.

The chain is verified as the server sent it: the leaf with the certificates after it as untrusted
intermediates, RFC 5280 path validation by OpenSSL. When the only trouble is a missing issuer, the
chain is completed as browsers do: from a bundle of known intermediates (``Config.intermediates_file``)
and from the issuer URL the certificate names (AIA ``caIssuers``), fetched through the scan's own
fetcher (resolver, address guard, port map, per-IP limit) and kept per URL for the scan. Completed →
``incomplete_chain`` (a warning: some browsers and most programs fail); not completable → ``untrusted``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID
from OpenSSL import crypto

from checks.http import CertProblem

if TYPE_CHECKING:
    from crawler.records import Fetcher

log = logging.getLogger(__name__)

# OpenSSL X509_V_ERR_* codes that matter here.
_NOT_YET_VALID = 9
_HAS_EXPIRED = 10
# No issuer found for some certificate of the path: the chain is incomplete (or rooted elsewhere).
# UNABLE_TO_GET_ISSUER_CERT, UNABLE_TO_GET_ISSUER_CERT_LOCALLY, UNABLE_TO_VERIFY_LEAF_SIGNATURE.
_MISSING_ISSUER = frozenset({2, 20, 21})
SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
# Protocol names as OpenSSL gives them (pyOpenSSL ``get_protocol_version_name``, ``ssl`` ``version()``).
LEGACY_VERSIONS = frozenset({"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"})
AIA_MAX_BYTES = 64 * 1024
AIA_CACHE = 1024
MAX_PATH = 6


class CertJudge:
    """Judges what a server presented; results are cached per (leaf, host, chain, version)."""

    def __init__(self, extra_ca_file: str = "", intermediates_file: str = "") -> None:
        self._bundles = [p for p in SYSTEM_BUNDLES if os.path.exists(p)][:1]
        if not self._bundles:
            self._bundles = _certifi_bundle()
        if extra_ca_file:
            self._bundles.append(extra_ca_file)
        self._intermediates_file = intermediates_file
        self._roots: list[x509.Certificate] | None = None
        self._root_subjects: set[bytes] = set()
        self._known: dict[bytes, list[x509.Certificate]] | None = None
        self._store: Any = None
        self._aia: OrderedDict[str, tuple[x509.Certificate, ...]] = OrderedDict()
        self._aia_inflight: dict[str, asyncio.Future[None]] = {}
        self.judge = lru_cache(maxsize=20_000)(self._judge)

    # --- judging -----------------------------------------------------------------------------------

    def problems(
        self, certificate: Any, host: str, chain: Sequence[Any] | None = None, tls_version: str = ""
    ) -> tuple[CertProblem, ...]:
        """Problems of a leaf (Twisted/pyOpenSSL/cryptography) served for ``host``.

        ``chain``: the certificates the server sent after its leaf (None: not known, e.g. ``inspect`` on
        Python < 3.13; then a chain completed from AIA or the bundle is not called incomplete).
        ``tls_version``: the negotiated protocol (``TLSv1.2``…; "" unknown)."""
        cert = to_cryptography(certificate)
        if cert is None:
            return ()
        sent = None if chain is None else _certs(chain)
        extra, _missing = self._complete(cert, sent or ())
        legacy = tls_version in LEGACY_VERSIONS
        return self.judge(
            cert.fingerprint(hashes.SHA256()),
            host.lower(),
            None if sent is None else tuple(c.fingerprint(hashes.SHA256()) for c in sent),
            tuple(c.fingerprint(hashes.SHA256()) for c in extra),
            legacy,
            cert,
            sent,
            extra,
        )

    def _judge(
        self,
        _fp: bytes,
        host: str,
        _sent_fps: tuple[bytes, ...] | None,
        _extra_fps: tuple[bytes, ...],
        legacy: bool,
        cert: x509.Certificate,
        sent: tuple[x509.Certificate, ...] | None,
        extra: tuple[x509.Certificate, ...],
    ) -> tuple[CertProblem, ...]:
        out: list[CertProblem] = []
        now = dt.datetime.now(dt.UTC)
        if now > cert.not_valid_after_utc or now < cert.not_valid_before_utc:
            out.append(CertProblem.EXPIRED)
        names = san_names(cert)
        if not any(host_matches(pattern, host) for pattern in names):
            out.append(CertProblem.HOSTNAME)
        outcome = self._verify(cert, sent or ())
        incomplete = False
        if outcome == "missing_issuer" and extra:
            outcome = self._verify(cert, (*(sent or ()), *extra))
            # Completed: the server did not send what the path needs (when we know what it sent).
            incomplete = outcome in ("ok", "expired") and sent is not None
        if outcome == "expired" and CertProblem.EXPIRED not in out:
            out.append(CertProblem.EXPIRED)  # an intermediate (or the root) of the path has expired
        if outcome not in ("ok", "expired"):
            out.append(CertProblem.UNTRUSTED)
        if incomplete:
            out.append(CertProblem.INCOMPLETE_CHAIN)
        if legacy:
            out.append(CertProblem.LEGACY_TLS)
        return tuple(out)

    def _verify(self, cert: x509.Certificate, untrusted: Sequence[x509.Certificate]) -> str:
        """RFC 5280 path validation with OpenSSL (browsers' rules, not the stricter CA/B profile):
        ``ok``, ``expired`` (trusted path, an intermediate or the root out of date), ``missing_issuer``
        or ``untrusted``. The leaf's own dates are judged separately."""

        if self._store is None:
            self._store = crypto.X509Store()
            for root in self._root_certs():
                self._store.add_cert(crypto.X509.from_cryptography(root))
        chain = [crypto.X509.from_cryptography(c) for c in untrusted]
        try:
            crypto.X509StoreContext(
                self._store, crypto.X509.from_cryptography(cert), chain=chain or None
            ).verify_certificate()
        except crypto.X509StoreContextError as exc:
            errors = getattr(exc, "errors", None) or [None, 0]
            code, depth = errors[0], errors[1]
            # OpenSSL builds and trusts the path before it checks dates: a date error means the path
            # itself is trusted. The leaf's dates are reported on their own.
            if code in (_NOT_YET_VALID, _HAS_EXPIRED):
                return "ok" if depth == 0 else "expired"
            if code in _MISSING_ISSUER:
                return "missing_issuer"
            log.debug("certificate not trusted: %s", exc)
            return "untrusted"
        return "ok"

    # --- completing a chain ------------------------------------------------------------------------

    def _complete(
        self, cert: x509.Certificate, sent: Sequence[x509.Certificate]
    ) -> tuple[tuple[x509.Certificate, ...], list[str]]:
        """Walk the path from the leaf by issuer name through the sent certificates, then the known
        intermediates and the AIA certificates already fetched. Returns the certificates it took from
        outside what was sent, and the AIA URLs of the certificate whose issuer is still missing."""
        self._root_certs()
        known = self._known_intermediates()
        extra: list[x509.Certificate] = []
        current = cert
        for _ in range(MAX_PATH):
            issuer = current.issuer.public_bytes()
            if issuer == current.subject.public_bytes() or issuer in self._root_subjects:
                return tuple(extra), []
            found = _issued_by(current, [c for c in sent if c.subject.public_bytes() == issuer])
            if found is None:
                urls = aia_urls(current)
                pool = known.get(issuer, []) + [c for u in urls for c in self._aia.get(u, ())]
                found = _issued_by(current, pool)
                if found is None:
                    return tuple(extra), [u for u in urls if u not in self._aia]
                if all(found is not c for c in extra):
                    extra.append(found)
            if found is current:
                break
            current = found
        return tuple(extra), []

    async def fetch_issuers(self, certificate: Any, chain: Sequence[Any] | None, fetcher: Fetcher) -> None:
        """Fetch, through ``fetcher``, the issuer certificates that an incomplete path names by AIA
        (once per URL for the scan; concurrent askers share the fetch). Call before :meth:`problems`."""
        cert = to_cryptography(certificate)
        if cert is None:
            return
        sent = _certs(chain or ())
        for _ in range(MAX_PATH):
            _extra, missing = self._complete(cert, sent)
            missing = [u for u in missing if u.startswith(("http://", "https://"))]
            if not missing:
                return
            await asyncio.gather(*(self._fetch_aia(u, fetcher) for u in missing))

    async def _fetch_aia(self, url: str, fetcher: Fetcher) -> None:
        if url in self._aia:
            return
        pending = self._aia_inflight.get(url)
        if pending is not None:
            await asyncio.shield(pending)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._aia_inflight[url] = future
        certs: tuple[x509.Certificate, ...] = ()
        try:
            resp = await fetcher.get(url, maxsize=AIA_MAX_BYTES, priority=1)
            if 200 <= resp.status < 300:
                certs = parse_certificates(resp.body)
            log.debug("AIA %s: HTTP %s, %d certificate(s)", url, resp.status, len(certs))
        except Exception as exc:  # a failed fetch leaves the chain incomplete: untrusted
            log.debug("AIA %s failed: %s", url, exc)
        finally:
            self._aia[url] = certs  # failures too: not asked again during the scan
            while len(self._aia) > AIA_CACHE:
                self._aia.popitem(last=False)
            del self._aia_inflight[url]
            future.set_result(None)

    # --- stores ------------------------------------------------------------------------------------

    def _root_certs(self) -> list[x509.Certificate]:
        if self._roots is None:
            roots: list[x509.Certificate] = []
            for path in self._bundles:
                roots.extend(_read_pem(path))
            self._roots = roots
            self._root_subjects = {c.subject.public_bytes() for c in roots}
        return self._roots

    def _known_intermediates(self) -> dict[bytes, list[x509.Certificate]]:
        if self._known is None:
            known: dict[bytes, list[x509.Certificate]] = {}
            if self._intermediates_file:
                for c in _read_pem(self._intermediates_file):
                    known.setdefault(c.subject.public_bytes(), []).append(c)
            self._known = known
        return self._known


def _certifi_bundle() -> list[str]:
    """certifi's Mozilla roots, where the system has no bundle (minimal containers)."""
    try:
        # Here: certifi is optional (only where the system has no CA bundle).
        import certifi
    except ImportError:
        return []
    return [certifi.where()]


def _read_pem(path: str) -> list[x509.Certificate]:
    try:
        with open(path, "rb") as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # non-conforming serials in some system roots
            return list(x509.load_pem_x509_certificates(fh.read()))
    except (OSError, ValueError) as exc:
        log.warning("cannot read certificate bundle %s: %s", path, exc)
        return []


def _certs(items: Iterable[Any]) -> tuple[x509.Certificate, ...]:
    return tuple(c for c in (to_cryptography(x) for x in items) if c is not None)


def _issued_by(cert: x509.Certificate, candidates: Iterable[x509.Certificate]) -> x509.Certificate | None:
    """The candidate whose key signed ``cert`` (names alone can repeat across CA generations)."""
    for cand in candidates:
        try:
            cert.verify_directly_issued_by(cand)
        except Exception:  # another key, another algorithm, an unsupported key type (SM2…)
            continue
        return cand
    return None


def aia_urls(cert: x509.Certificate) -> list[str]:
    """The ``caIssuers`` URLs of a certificate's Authority Information Access extension."""
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    except (x509.ExtensionNotFound, ValueError):
        return []
    value = ext.value
    assert isinstance(value, x509.AuthorityInformationAccess)
    return [
        str(d.access_location.value)
        for d in value
        if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


def parse_certificates(body: bytes) -> tuple[x509.Certificate, ...]:
    """Certificates from an AIA answer: DER (the usual ``.crt``/``.cer``), PEM, or PKCS#7 (``.p7c``)."""
    data = body.strip()
    try:
        if data.startswith(b"-----BEGIN"):
            if b"PKCS7" in data[:40]:
                return tuple(pkcs7.load_pem_pkcs7_certificates(data))
            return tuple(x509.load_pem_x509_certificates(data))
        try:
            return (x509.load_der_x509_certificate(data),)
        except ValueError:
            return tuple(pkcs7.load_der_pkcs7_certificates(data))
    except ValueError:
        return ()


def to_cryptography(certificate: Any) -> x509.Certificate | None:
    if certificate is None:
        return None
    if isinstance(certificate, x509.Certificate):
        return certificate
    if isinstance(certificate, bytes):
        try:
            return x509.load_der_x509_certificate(certificate)
        except ValueError:
            return None
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


def tls_summary(chain: Sequence[Any] | None, tls_version: str) -> dict[str, Any]:
    """The rest of what the handshake showed, for the capture: the certificates sent after the leaf
    (null when not known) and the protocol version."""
    return {
        "version": tls_version,
        "chain": None if chain is None else [cert_summary(c) for c in chain],
    }
